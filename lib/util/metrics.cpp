#include "util/metrics.hpp"

#include <fmt/format.h>

#include <cmath>

namespace ferry::util {

void latency_histogram::observe(std::chrono::nanoseconds d) {
  const double s = std::chrono::duration<double>(d).count();
  std::size_t i = 0;
  while (i < bounds_seconds.size() && s > bounds_seconds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, d.count())), std::memory_order_relaxed);
}

latency_histogram::snapshot latency_histogram::read() const {
  snapshot s;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += s.buckets[i];
  }
  s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

namespace {

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<std::int64_t>(v));
  return fmt::format("{}", v);
}

// Label values: backslash, double quote and newline escaped, as the text format requires.
void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

}  // namespace

void prometheus_writer::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += fmt::format("# HELP {} ", name);
  for (char c : help) out_ += c == '\n' ? ' ' : c;
  out_ += fmt::format("\n# TYPE {} {}\n", name, type);
}

void prometheus_writer::labels(metric_labels l, std::string_view extra_name, std::string_view extra_value) {
  if (l.size() == 0 && extra_name.empty()) return;
  out_ += '{';
  bool first = true;
  auto one = [&](std::string_view k, std::string_view v) {
    if (!first) out_ += ',';
    first = false;
    out_ += k;
    out_ += "=\"";
    append_escaped(out_, v);
    out_ += '"';
  };
  for (const auto& [k, v] : l) one(k, v);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out_ += '}';
}

void prometheus_writer::sample(std::string_view name, metric_labels l, double value) {
  out_ += name;
  labels(l);
  out_ += ' ';
  out_ += format_value(value);
  out_ += '\n';
}

void prometheus_writer::histogram(std::string_view name, metric_labels l, const latency_histogram::snapshot& h) {
  std::uint64_t cumulative = 0;
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t i = 0; i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i];
    out_ += bucket;
    const std::string le =
        i < latency_histogram::bounds_seconds.size() ? format_value(latency_histogram::bounds_seconds[i]) : "+Inf";
    labels(l, "le", le);
    out_ += fmt::format(" {}\n", cumulative);
  }
  out_ += std::string(name) + "_sum";
  labels(l);
  out_ += " " + format_value(h.sum_seconds) + "\n";
  out_ += std::string(name) + "_count";
  labels(l);
  out_ += fmt::format(" {}\n", h.count);
}

}  // namespace ferry::util
