#pragma once
// Metrics in the Prometheus text format (version 0.0.4): a lock-free latency histogram that hot
// paths update, and a writer that renders families of samples with escaped labels. Owners keep
// their own counters (atomics); the daemon gathers them into one exposition when scraped.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace ferry::util {

// Request latencies from 1 ms to 60 s: S3 answers in milliseconds on a LAN and in seconds on a slow
// path or a large part; the buckets cover both with roughly 2.5x steps.
class latency_histogram {
 public:
  static constexpr std::array<double, 14> bounds_seconds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                         0.25,  0.5,    1,     2.5,  5,     10,   60};
  void observe(std::chrono::nanoseconds d);

  struct snapshot {
    std::array<std::uint64_t, bounds_seconds.size() + 1> buckets{};  // non-cumulative; last is +Inf
    std::uint64_t count = 0;
    double sum_seconds = 0;
  };
  snapshot read() const;

 private:
  std::array<std::atomic<std::uint64_t>, bounds_seconds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

using metric_labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Builds one exposition. Each family is announced once (HELP, TYPE) before its samples.
class prometheus_writer {
 public:
  // type: "counter", "gauge" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, metric_labels labels, double value);
  void histogram(std::string_view name, metric_labels labels, const latency_histogram::snapshot& h);
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void labels(metric_labels l, std::string_view extra_name = {}, std::string_view extra_value = {});
  std::string out_;
};

}  // namespace ferry::util
