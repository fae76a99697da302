#pragma once
// Network-quality figures of one S3 endpoint (one path), built from one sample per request that the
// s3 layer reports. Pure policy: no sockets, no timers; every call takes the time, so tests script
// whole sequences. Thread-safe (one mutex): several io threads report to the same endpoint.
#include "netmon/window.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>

namespace ferry::netmon {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using duration = clock::duration;

// Why a request failed, as far as the path is concerned.
enum class error_class {
  timeout,       // connect, first byte or body stalled past its deadline
  reset,         // connection reset or closed mid-exchange
  server_error,  // 5xx other than throttling (500 InternalError, 503 ServiceUnavailable without SlowDown...)
  throttle,      // 503 SlowDown, 429, and other "reduce your request rate" answers
  other,         // anything else (4xx, TLS failure...): not a property of the path
};
inline constexpr std::size_t error_class_count = 5;
std::string_view to_string(error_class c);

// Overall quality of the path; thresholds at snapshot::quality.
enum class grade { unknown, excellent, good, fair, poor };
std::string_view to_string(grade g);

// One finished HTTP exchange (success or failure), as the s3 layer saw it. Every attempt is its own
// sample: a throttle that a retry then hid is exactly what the controller must see.
struct request_sample {
  time_point at;                       // when the request finished
  std::optional<duration> connect;     // TCP connect, when this request opened the connection: one RTT
  std::optional<duration> tls;         // TLS handshake, when it opened the connection
  std::optional<duration> first_byte;  // request fully sent -> response head
  // Payload that moved on this request's connection (request body for a PUT, response body for a
  // GET) and how long it took: one connection's throughput.
  std::uint64_t body_bytes = 0;
  duration body_time{};
  std::optional<error_class> error;  // empty: success
  // Small body both ways and no heavy server work (HEAD, small GET/PUT, list page; NOT
  // CompleteMultipartUpload or CopyObject): its first_byte is a fair RTT sample.
  bool small = false;
  // body_bytes were already counted as they moved with path_monitor::record_progress, so they must
  // not be added to the aggregate throughput again (they still feed the per-connection figure).
  bool progress_reported = false;
};

// Windows and smoothing. Defaults are the documented behaviour; tests may shorten them.
struct monitor_config {
  duration min_rtt_window = std::chrono::minutes(5);     // windowed minimum, in 10 buckets (ages out in 4.5..5 min)
  duration throughput_window = std::chrono::seconds(5);  // aggregate throughput, in 50 buckets (100 ms)
  duration error_window = std::chrono::seconds(60);      // request/error counts, in 60 buckets (1 s)
  // Bodies shorter than this say more about slow start and latency than about the path's rate.
  std::uint64_t min_conn_sample_bytes = 256 * 1024;
  // Fewer requests than this in error_window: grade unknown.
  std::uint64_t min_graded_requests = 20;
};

// What the monitor knows at one instant.
struct snapshot {
  std::optional<duration> min_rtt;   // min over min_rtt_window of connect times and small first_byte times
  std::optional<duration> srtt;      // EWMA (alpha 1/8) of every first_byte
  double throughput = 0;             // bytes/s, all connections together, over throughput_window
  double conn_throughput = 0;        // bytes/s of one connection (EWMA, alpha 1/8); 0 until known
  std::uint64_t requests = 0;        // finished in error_window
  std::uint64_t errors = 0;          // of which failed (any class)
  std::uint64_t throttles = 0;       // of which throttled
  double error_rate = 0;             // errors / requests (0 when no requests)
  double throttle_rate = 0;          // throttles / requests
  double requests_per_second = 0;    // requests / error_window
  std::uint64_t total_requests = 0;  // cumulative, for metrics
  std::array<std::uint64_t, error_class_count> errors_by_class{};  // cumulative, indexed by error_class
  // unknown: fewer than min_graded_requests requests in error_window, or no min_rtt/srtt yet.
  // Otherwise, with "inflated by k, f" meaning srtt > max(k * min_rtt, min_rtt + f) (the absolute
  // floor keeps a loopback path, min_rtt ~0.1 ms, from looking congested at 1 ms of jitter):
  //   excellent: error_rate < 0.1% and srtt not inflated by 2, 20 ms
  //   good:      error_rate < 1%   and srtt not inflated by 4, 50 ms
  //   fair:      error_rate < 5%   and srtt not inflated by 8, 200 ms
  //   poor:      anything worse
  grade quality = grade::unknown;
};

// The grade for the figures above (exposed for tests and for ferryctl's explanations).
grade grade_of(const snapshot& s, std::uint64_t min_requests = 20);

class path_monitor {
 public:
  explicit path_monitor(monitor_config cfg = {});

  // One finished request.
  void record(const request_sample& s);
  // Body bytes that moved just now on some connection, for a throughput figure that does not wait
  // for long requests to finish (set request_sample::progress_reported on their samples).
  void record_progress(std::uint64_t bytes, time_point now);
  snapshot snap(time_point now) const;

 private:
  struct counts {
    std::uint64_t requests = 0, errors = 0, throttles = 0;
  };
  struct minimum {
    duration::rep v = INT64_MAX;
  };

  void add_bytes_locked(std::uint64_t bytes, time_point t);
  void add_rtt_locked(duration d, time_point t);

  monitor_config cfg_;
  mutable std::mutex mutex_;
  detail::bucket_ring<std::uint64_t, 50> bytes_;
  detail::bucket_ring<counts, 60> counts_;
  detail::bucket_ring<minimum, 10> min_rtt_;
  std::optional<time_point> first_bytes_at_;  // throughput is averaged from here while the window is younger
  std::optional<double> srtt_ns_;
  double conn_bps_ = 0;
  std::uint64_t total_requests_ = 0;
  std::array<std::uint64_t, error_class_count> errors_by_class_{};
};

}  // namespace ferry::netmon
