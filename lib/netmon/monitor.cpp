#include "netmon/monitor.hpp"

#include <algorithm>
#include <cmath>

namespace ferry::netmon {

namespace {

constexpr double kAlpha = 1.0 / 8;  // RFC 6298's SRTT gain: smooth, yet follows a change within ~16 samples

double ns(duration d) { return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()); }

bool inflated(duration srtt, duration min_rtt, double k, duration floor) {
  const auto threshold = std::max(std::chrono::duration_cast<duration>(min_rtt * k), min_rtt + floor);
  return srtt > threshold;
}

}  // namespace

std::string_view to_string(error_class c) {
  switch (c) {
    case error_class::timeout:
      return "timeout";
    case error_class::reset:
      return "reset";
    case error_class::server_error:
      return "server_error";
    case error_class::throttle:
      return "throttle";
    case error_class::other:
      return "other";
  }
  return "other";
}

std::string_view to_string(grade g) {
  switch (g) {
    case grade::unknown:
      return "unknown";
    case grade::excellent:
      return "excellent";
    case grade::good:
      return "good";
    case grade::fair:
      return "fair";
    case grade::poor:
      return "poor";
  }
  return "unknown";
}

grade grade_of(const snapshot& s, std::uint64_t min_requests) {
  using std::chrono::milliseconds;
  if (s.requests < std::max<std::uint64_t>(min_requests, 1) || !s.min_rtt || !s.srtt) return grade::unknown;
  const auto e = s.error_rate;
  if (e < 0.001 && !inflated(*s.srtt, *s.min_rtt, 2, milliseconds(20))) return grade::excellent;
  if (e < 0.01 && !inflated(*s.srtt, *s.min_rtt, 4, milliseconds(50))) return grade::good;
  if (e < 0.05 && !inflated(*s.srtt, *s.min_rtt, 8, milliseconds(200))) return grade::fair;
  return grade::poor;
}

path_monitor::path_monitor(monitor_config cfg)
    : cfg_(cfg),
      bytes_(cfg.throughput_window / 50),
      counts_(cfg.error_window / 60),
      min_rtt_(cfg.min_rtt_window / 10) {}

void path_monitor::add_bytes_locked(std::uint64_t bytes, time_point t) {
  if (bytes == 0) return;
  if (auto* b = bytes_.slot(t)) *b += bytes;
  if (!first_bytes_at_ || t < *first_bytes_at_) first_bytes_at_ = t;
}

void path_monitor::add_rtt_locked(duration d, time_point t) {
  if (d <= duration::zero()) return;
  if (auto* m = min_rtt_.slot(t)) m->v = std::min(m->v, d.count());
}

void path_monitor::record(const request_sample& s) {
  std::lock_guard lk(mutex_);
  ++total_requests_;
  if (auto* c = counts_.slot(s.at)) {
    ++c->requests;
    if (s.error) ++c->errors;
    if (s.error == error_class::throttle) ++c->throttles;
  }
  if (s.error) ++errors_by_class_[static_cast<std::size_t>(*s.error)];

  if (s.connect) add_rtt_locked(*s.connect, s.at);
  if (s.first_byte) {
    if (s.small) add_rtt_locked(*s.first_byte, s.at);
    const double v = ns(*s.first_byte);
    srtt_ns_ = srtt_ns_ ? *srtt_ns_ + kAlpha * (v - *srtt_ns_) : v;
  }

  if (!s.progress_reported) add_bytes_locked(s.body_bytes, s.at);
  if (s.body_bytes >= cfg_.min_conn_sample_bytes && s.body_time > duration::zero()) {
    const double bps = static_cast<double>(s.body_bytes) / (ns(s.body_time) / 1e9);
    conn_bps_ = conn_bps_ > 0 ? conn_bps_ + kAlpha * (bps - conn_bps_) : bps;
  }
}

void path_monitor::record_progress(std::uint64_t bytes, time_point now) {
  std::lock_guard lk(mutex_);
  add_bytes_locked(bytes, now);
}

snapshot path_monitor::snap(time_point now) const {
  std::lock_guard lk(mutex_);
  snapshot s;

  duration::rep m = INT64_MAX;
  min_rtt_.for_each(now, [&](const minimum& b) { m = std::min(m, b.v); });
  if (m != INT64_MAX) s.min_rtt = duration(m);
  if (srtt_ns_) s.srtt = std::chrono::duration_cast<duration>(std::chrono::nanoseconds(std::llround(*srtt_ns_)));

  // Averaged over the part of the window that has seen traffic, so a path that started 1 s ago
  // is not reported at a fifth of its rate.
  std::uint64_t bytes = 0;
  bytes_.for_each(now, [&](std::uint64_t b) { bytes += b; });
  if (bytes > 0 && first_bytes_at_) {
    auto from = std::max(bytes_.window_start(now), *first_bytes_at_);
    auto span = std::max<duration>(now - from, bytes_.width());
    s.throughput = static_cast<double>(bytes) / (ns(span) / 1e9);
  }
  s.conn_throughput = conn_bps_;

  counts_.for_each(now, [&](const counts& c) {
    s.requests += c.requests;
    s.errors += c.errors;
    s.throttles += c.throttles;
  });
  if (s.requests > 0) {
    s.error_rate = static_cast<double>(s.errors) / static_cast<double>(s.requests);
    s.throttle_rate = static_cast<double>(s.throttles) / static_cast<double>(s.requests);
  }
  s.requests_per_second = static_cast<double>(s.requests) / (ns(cfg_.error_window) / 1e9);
  s.total_requests = total_requests_;
  s.errors_by_class = errors_by_class_;
  s.quality = grade_of(s, cfg_.min_graded_requests);
  return s;
}

}  // namespace ferry::netmon
