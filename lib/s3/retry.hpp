#pragma once
// AWS "standard" retry mode as an I/O-free policy: which errors to retry, how long to wait (capped
// exponential backoff with full jitter), a per-endpoint retry quota that stops retry storms when an
// endpoint is failing, and clock-skew correction from the server's Date header. The S3 client
// drives it: it sleeps, re-signs and resends; nothing here touches a socket or a timer.
#include "s3/error.hpp"

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>

namespace ferry::s3 {

struct retry_config {
  // Attempts per request, the first included. AWS's standard mode uses 3; a transfer daemon rides
  // out longer blips instead, since a failed object costs a whole re-transfer later.
  int max_attempts = 5;
  // Backoff before retry i (1-based): random[0,1) * min(max_backoff, base * 2^(i-1)).
  std::chrono::milliseconds base_delay{100};
  // Throttling answers (SlowDown, 503, 429...) back off from a larger base, as the AWS SDKs do.
  std::chrono::milliseconds throttle_base_delay{500};
  std::chrono::milliseconds max_backoff{20'000};
  // The retry quota (token bucket), shared by every request to one endpoint.
  int quota_capacity = 500;     // initial and maximum tokens
  int retry_cost = 5;           // taken by a retry
  int timeout_retry_cost = 10;  // taken by a retry after a timeout
  int success_refund = 1;       // returned by a success on the first attempt (a retried success returns its cost)
};

// A source of uniform doubles in [0, 1); tests inject a fixed one.
using random_fn = std::function<double()>;

// The jittered delay before retrying after attempt `attempt` (1-based) failed. An empty rng uses a
// thread-local generator.
std::chrono::milliseconds backoff_delay(const retry_config& cfg, int attempt, bool throttled = false,
                                        const random_fn& rng = {});

// The retry quota of one endpoint. Thread-safe.
class retry_quota {
 public:
  explicit retry_quota(const retry_config& cfg);

  // Takes the cost of one retry; false (and nothing taken) when the quota cannot pay it.
  bool try_acquire(bool timeout);
  // After a successful attempt: refunds the retry cost if it was a retry, else success_refund.
  void on_success(bool retried);
  int available() const;

 private:
  mutable std::mutex mutex_;
  int tokens_;
  int capacity_, retry_cost_, timeout_cost_, refund_;
};

// Throttling: back off harder, and count it for metrics.
bool is_throttling(const error& e);
// A timeout (transport timed_out, Beast's timeout, or HTTP 408/RequestTimeout): costs more quota.
bool is_timeout(const error& e);

struct retry_decision {
  bool retry = false;
  std::chrono::milliseconds delay{0};
  std::string_view reason;  // "retry", "not retryable", "max attempts reached", "retry quota exhausted"
};

// After attempt `attempt` (1-based) failed with `e`: whether to try again and after how long.
// Takes quota when it says yes; non-retryable errors never take quota and are never retried.
retry_decision decide_retry(const retry_config& cfg, retry_quota& quota, const error& e, int attempt,
                            const random_fn& rng = {});

// Parses an HTTP date in IMF-fixdate form (RFC 1123: "Sun, 06 Nov 1994 08:49:37 GMT"; the weekday
// is optional and not checked, "UTC" is accepted for "GMT"). nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s);

// Server time minus local time, from the Date header of a RequestTimeTooSkewed (or
// RequestExpired/RequestInTheFuture) answer: add it to the local clock when signing. nullopt when the
// date does not parse.
std::optional<std::chrono::milliseconds> clock_offset_from_date(std::string_view server_date,
                                                                std::chrono::system_clock::time_point local_now);

// True for the clock-skew error codes above.
bool is_clock_skew(const error& e);

}  // namespace ferry::s3
