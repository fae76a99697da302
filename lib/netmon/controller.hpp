#pragma once
// Adaptive request concurrency for one S3 endpoint: how many requests may be in flight. Pure policy
// (the time is passed in); request_gate enforces the number. A user's fixed --concurrency bypasses
// this class altogether.
//
// Algorithm, and why not a plain Gradient2, Vegas or AIMD (Netflix concurrency-limits,
// github.com/Netflix/concurrency-limits: Gradient2Limit, VegasLimit, AIMDLimit):
// - Gradient2 and Vegas infer queueing from request latency against a baseline (long-term average,
//   resp. minimum). A transfer's requests last as long as their bodies take, and sharing a link
//   between more connections stretches every body with no queue anywhere; and on a link shared
//   with loss-based TCP (CUBIC) the bottleneck buffer fills at any number of flows. Latency alone
//   therefore neither says "more concurrency helps" nor "we are past the knee". What we want to
//   maximise, the aggregate goodput, is measured directly instead:
// - Growth is throughput hill climbing, as BBR's startup does it (draft-cardwell-iccrg-bbr-
//   congestion-control: keep doubling while the delivery rate still grows): from the initial limit,
//   double every measurement step while throughput grew by at least half the concurrency increase
//   (+50% per doubling); afterwards probe +25% every `probe_every` and keep the probe only if it
//   paid +12.5%. A probe that buys nothing is undone, so on a bandwidth-limited link the limit
//   stays within 2x of the knee instead of climbing to max. The "half the increase" threshold
//   sits between a per-connection-limited path (full, proportional gain) and a saturated one (~0),
//   with margin for +-5% noise in a 5 s throughput window.
// - Overload signals the server gives explicitly (throttling: 503 SlowDown/429) and timeouts cut
//   the limit multiplicatively, AIMD-style, by 0.7 (CUBIC's beta, RFC 9438: halving as Reno does
//   throws away half the rate for errors a few of many connections saw; 0.7 still halves within
//   two rounds). Trigger: >= 1 such error and >= 5% of the requests of the last second (a lone 503
//   among hundreds is background noise S3 documents; at a few requests/s one 503 is already a
//   strong signal, and the limit must drop within 2 s). Resets and 500s do not count: stale
//   keep-alive connections and server faults are no sign of our load.
// - Latency inflation, Vegas' early signal, is kept but restricted to fair RTT samples (TCP
//   connect and `small` requests' first byte) and cuts gently (x0.9, Netflix AIMDLimit's default
//   backoff): inflated when most of the last second's samples exceed max(2 x min_rtt, min_rtt +
//   20 ms). 2x is Gradient2's tolerance; the 20 ms floor keeps loopback (min_rtt ~0.1 ms) from
//   reading 1 ms of scheduler jitter as a 10x inflation, while a real bottleneck queue (a 100
//   Mbit/s link with a 1 MB buffer holds 80 ms) still shows.
// - One decrease per round, as NewReno's recovery point (RFC 6582): after a backoff, errors of
//   requests issued before it are ignored (they were sent under the old limit), and decisions are
//   at least max(100 ms, 2 x srtt) apart: one round trip for the new limit to reach new requests,
//   one for their answers; 100 ms so loopback does not decide per burst. 30 throttles in a burst
//   are one backoff.
// - After a backoff the limit regrows x2 per max(1 s, 4 x srtt) back to the level it held before
//   the episode (4 -> 8 -> 16 in 2 s: a storm costs little once it ends), then probes as above.
//   A level regained less than 30 s before it is overloaded again is not trusted: the target drops
//   to 0.85x (CUBIC's fast convergence), so self-inflicted overload converges.
// - No growth while app-limited (mean in-flight below half the limit during the step: Gradient2's
//   rule), since a limit that is not used cannot be measured.
// Throughput is measured over max(measure_step, 10 x srtt), which matches the monitor's 5 s
// window, so a verdict on a level holds only data taken at that level.
#include "netmon/monitor.hpp"
#include "netmon/window.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::netmon {

// Bounds and constants of the controller; the header comment above justifies the defaults.
struct controller_config {
  std::size_t min_limit = 4;
  std::size_t max_limit = 256;
  std::size_t initial_limit = 16;
  double backoff_factor = 0.7;                             // on throttling and timeouts
  double latency_backoff_factor = 0.9;                     // on latency inflation
  double backoff_share = 0.05;                             // share of throttled/timed-out requests in the last second
  duration min_interval = std::chrono::milliseconds(100);  // floor of the reaction interval (2 x srtt)
  duration latency_floor = std::chrono::milliseconds(20);  // inflated: rtt > max(2 x min_rtt, min_rtt + this)
  duration measure_step = std::chrono::seconds(5);         // one throughput verdict per step (floor of 10 x srtt)
  duration probe_every = std::chrono::seconds(30);         // steady state: how often to try more
  duration recovery_step = std::chrono::seconds(1);        // regrowth x2 per step (floor of 4 x srtt)
  duration trust_period = std::chrono::seconds(30);        // a regained level overloaded sooner is lowered
  double probe_increase = 0.25;                            // steady-state probe size
  double probe_gain_share = 0.5;                           // keep a step up if throughput grew by this share of it
};

// One change of the limit, for debug logs and metrics.
struct decision {
  time_point at;
  std::size_t from = 0;
  std::size_t to = 0;
  std::string reason;
};

class concurrency_controller {
 public:
  explicit concurrency_controller(controller_config cfg = {});

  // Feeds one finished request: `snap` is the endpoint monitor's snapshot taken after recording it,
  // `in_flight` the requests still in flight to the endpoint. Returns the (possibly new) limit.
  std::size_t on_sample(const request_sample& s, const snapshot& snap, std::size_t in_flight, time_point now);

  std::size_t limit() const;
  std::optional<decision> last_decision() const;
  std::uint64_t decisions() const;  // how many times the limit changed (a counter for metrics)
  std::uint64_t backoffs() const;   // backoff events, including those at the floor that change nothing
  std::string_view phase() const;   // "startup", "steady", "probing" or "recovery"

 private:
  enum class phase_t { startup, steady, probing, recovery };
  struct round_counts {
    std::uint32_t samples = 0, congested = 0, rtt_samples = 0, rtt_inflated = 0;
  };

  void restart_step_locked(time_point now);
  void change_locked(double to, time_point now, std::string reason, bool backoff = false);
  bool backoff_check_locked(const snapshot& snap, time_point now);
  void growth_check_locked(const snapshot& snap, time_point now);
  bool app_limited_locked() const;
  std::size_t rounded_locked() const;

  controller_config cfg_;
  mutable std::mutex mutex_;
  double limit_;
  phase_t phase_ = phase_t::startup;
  bool started_ = false;
  time_point last_change_at_{};
  time_point step_start_{};
  double step_inflight_sum_ = 0;
  std::uint64_t step_inflight_n_ = 0;
  double base_limit_ = 0;           // level the current step is compared with
  std::optional<double> base_thr_;  // its throughput (bytes/s)
  double recover_to_;               // target of recovery after a backoff
  std::optional<time_point> regained_at_;
  std::optional<time_point> recovery_point_;     // last backoff
  detail::bucket_ring<round_counts, 10> round_;  // the last second, post-recovery-point requests only
  std::optional<decision> last_;
  std::uint64_t decisions_ = 0, backoffs_ = 0;
};

}  // namespace ferry::netmon
