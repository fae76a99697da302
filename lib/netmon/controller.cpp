#include "netmon/controller.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ferry::netmon {

namespace {

double ms(duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Intervals scale with srtt, which a slow server-side operation (a long CompleteMultipartUpload)
// can inflate: beyond 2 s it stops stretching them, so decisions keep coming on any real path.
duration scaled(std::optional<duration> d, int k) {
  return d ? std::min<duration>(*d, std::chrono::seconds(2)) * k : duration::zero();
}

// When the request behind a sample was issued, as well as its timings tell: a PUT spends
// body_time sending and first_byte waiting, a GET the other way round.
time_point issued_at(const request_sample& s) {
  auto spent = s.body_time;
  if (s.connect) spent += *s.connect;
  if (s.tls) spent += *s.tls;
  if (s.first_byte) spent += *s.first_byte;
  return s.at - spent;
}

bool congestion(const request_sample& s) { return s.error == error_class::throttle || s.error == error_class::timeout; }

}  // namespace

concurrency_controller::concurrency_controller(controller_config cfg)
    : cfg_(cfg), round_(std::chrono::milliseconds(100)) {
  cfg_.min_limit = std::max<std::size_t>(cfg_.min_limit, 1);
  cfg_.max_limit = std::max(cfg_.max_limit, cfg_.min_limit);
  limit_ = static_cast<double>(std::clamp(cfg_.initial_limit, cfg_.min_limit, cfg_.max_limit));
  recover_to_ = limit_;
}

std::size_t concurrency_controller::rounded_locked() const {
  auto v = static_cast<std::size_t>(std::llround(limit_));
  return std::clamp(v, cfg_.min_limit, cfg_.max_limit);
}

std::size_t concurrency_controller::limit() const {
  std::lock_guard lk(mutex_);
  return rounded_locked();
}

std::optional<decision> concurrency_controller::last_decision() const {
  std::lock_guard lk(mutex_);
  return last_;
}

std::uint64_t concurrency_controller::decisions() const {
  std::lock_guard lk(mutex_);
  return decisions_;
}

std::uint64_t concurrency_controller::backoffs() const {
  std::lock_guard lk(mutex_);
  return backoffs_;
}

std::string_view concurrency_controller::phase() const {
  std::lock_guard lk(mutex_);
  switch (phase_) {
    case phase_t::startup:
      return "startup";
    case phase_t::steady:
      return "steady";
    case phase_t::probing:
      return "probing";
    case phase_t::recovery:
      return "recovery";
  }
  return "steady";
}

void concurrency_controller::restart_step_locked(time_point now) {
  step_start_ = now;
  step_inflight_sum_ = 0;
  step_inflight_n_ = 0;
}

void concurrency_controller::change_locked(double to, time_point now, std::string reason, bool backoff) {
  const auto from = rounded_locked();
  limit_ = std::clamp(to, static_cast<double>(cfg_.min_limit), static_cast<double>(cfg_.max_limit));
  last_change_at_ = now;
  const auto now_limit = rounded_locked();
  if (backoff) ++backoffs_;
  if (now_limit != from) {
    ++decisions_;
    last_ = decision{now, from, now_limit, std::move(reason)};
  }
}

bool concurrency_controller::app_limited_locked() const {
  if (step_inflight_n_ == 0) return true;
  return step_inflight_sum_ / static_cast<double>(step_inflight_n_) < limit_ / 2;
}

bool concurrency_controller::backoff_check_locked(const snapshot& snap, time_point now) {
  const auto interval = std::max(cfg_.min_interval, scaled(snap.srtt, 2));
  if (now - last_change_at_ < interval) return false;

  round_counts total;
  round_.for_each(now, [&](const round_counts& c) {
    total.samples += c.samples;
    total.congested += c.congested;
    total.rtt_samples += c.rtt_samples;
    total.rtt_inflated += c.rtt_inflated;
  });

  double factor = 0;
  std::string reason;
  if (total.congested > 0 && total.congested >= cfg_.backoff_share * total.samples) {
    factor = cfg_.backoff_factor;
    reason = fmt::format("backoff: {} of {} requests throttled or timed out in the last second", total.congested,
                         total.samples);
  } else if (total.rtt_samples >= 3 && 2 * total.rtt_inflated > total.rtt_samples && snap.min_rtt) {
    factor = cfg_.latency_backoff_factor;
    reason = fmt::format("backoff: latency inflated ({} of {} RTT samples above {:.1f} ms, min RTT {:.1f} ms)",
                         total.rtt_inflated, total.rtt_samples,
                         ms(std::max(*snap.min_rtt * 2, *snap.min_rtt + cfg_.latency_floor)), ms(*snap.min_rtt));
  } else {
    return false;
  }

  // Where to regrow to: the level before this episode, unless this episode is the probe's fault
  // or the level failed again soon after it was regained.
  switch (phase_) {
    case phase_t::probing:
      recover_to_ = base_limit_;
      break;
    case phase_t::startup:
      recover_to_ = base_thr_ ? base_limit_ : limit_;
      break;
    case phase_t::steady:
      if (regained_at_ && now - *regained_at_ < cfg_.trust_period) {
        recover_to_ = std::min(recover_to_, limit_) * 0.85;
      } else {
        recover_to_ = limit_;
      }
      break;
    case phase_t::recovery:
      break;
  }
  recover_to_ = std::clamp(recover_to_, static_cast<double>(cfg_.min_limit), static_cast<double>(cfg_.max_limit));
  change_locked(limit_ * factor, now, std::move(reason), true);
  phase_ = limit_ < recover_to_ ? phase_t::recovery : phase_t::steady;
  regained_at_.reset();
  base_thr_.reset();
  recovery_point_ = now;
  round_.clear();
  restart_step_locked(now);
  return true;
}

void concurrency_controller::growth_check_locked(const snapshot& snap, time_point now) {
  const double max = static_cast<double>(cfg_.max_limit);
  const double thr = snap.throughput;

  if (phase_ == phase_t::recovery) {
    if (now - last_change_at_ < std::max(cfg_.recovery_step, scaled(snap.srtt, 4))) return;
    const double next = std::min(recover_to_, limit_ * 2);
    change_locked(next, now, fmt::format("recovery: regrowing towards {:.0f}", recover_to_));
    if (limit_ >= recover_to_) {
      phase_ = phase_t::steady;
      regained_at_ = now;
    }
    restart_step_locked(now);
    return;
  }

  if (phase_ == phase_t::steady) {
    if (now - step_start_ < cfg_.probe_every) return;
    if (app_limited_locked() || thr <= 0 || limit_ >= max) {
      restart_step_locked(now);
      return;
    }
    base_limit_ = limit_;
    base_thr_ = thr;
    phase_ = phase_t::probing;
    const double next = std::max(limit_ * (1 + cfg_.probe_increase), limit_ + 1);
    change_locked(next, now, fmt::format("probe: trying more concurrency at {:.1f} MB/s", thr / 1e6));
    restart_step_locked(now);
    return;
  }

  // startup or probing: a verdict on the current level once it has been measured for a whole step.
  if (now - step_start_ < std::max(cfg_.measure_step, scaled(snap.srtt, 10))) return;
  if (app_limited_locked()) {
    if (phase_ == phase_t::probing) {
      change_locked(base_limit_, now, "probe abandoned: the limit was not used");
      phase_ = phase_t::steady;
    }
    restart_step_locked(now);  // startup: measure again, the workload may fill up
    return;
  }
  if (!base_thr_) {  // startup's first measurement: the initial level
    base_limit_ = limit_;
    base_thr_ = thr;
    if (thr > 0 && limit_ < max) {
      change_locked(limit_ * 2, now, fmt::format("startup: doubling from {:.1f} MB/s", thr / 1e6));
    } else {
      phase_ = phase_t::steady;
      recover_to_ = limit_;
    }
    restart_step_locked(now);
    return;
  }

  const double gain = *base_thr_ > 0 ? thr / *base_thr_ : 0;
  const double needed = 1 + cfg_.probe_gain_share * (limit_ / base_limit_ - 1);
  if (gain >= needed) {
    base_limit_ = limit_;
    base_thr_ = thr;
    recover_to_ = limit_;
    if (limit_ >= max) {
      phase_ = phase_t::steady;
    } else {
      const double next =
          phase_ == phase_t::startup ? limit_ * 2 : std::max(limit_ * (1 + cfg_.probe_increase), limit_ + 1);
      change_locked(next, now,
                    fmt::format("{}: throughput +{:.0f}% ({:.1f} MB/s), going on",
                                phase_ == phase_t::startup ? "startup" : "probe kept", (gain - 1) * 100, thr / 1e6));
    }
  } else {
    const auto kept = base_limit_;
    change_locked(kept, now,
                  fmt::format("plateau: throughput {:+.0f}% ({:.1f} MB/s) at {:.0f}, back to {:.0f}", (gain - 1) * 100,
                              thr / 1e6, limit_, kept));
    recover_to_ = kept;
    const bool knee_between = phase_ == phase_t::startup && gain >= 1 + cfg_.probe_gain_share * cfg_.probe_increase;
    phase_ = phase_t::steady;
    base_thr_.reset();
    restart_step_locked(now);
    // Doubling paid, only not enough to go on: the knee lies in between, so the finer steady
    // probes start after one measurement step instead of after probe_every.
    if (knee_between) step_start_ = now - cfg_.probe_every + std::max(cfg_.measure_step, scaled(snap.srtt, 10));
    return;
  }
  restart_step_locked(now);
}

std::size_t concurrency_controller::on_sample(const request_sample& s, const snapshot& snap, std::size_t in_flight,
                                              time_point now) {
  std::lock_guard lk(mutex_);
  if (!started_) {
    started_ = true;
    last_change_at_ = now;
    restart_step_locked(now);
  }
  step_inflight_sum_ += static_cast<double>(in_flight);
  ++step_inflight_n_;

  if (!recovery_point_ || issued_at(s) >= *recovery_point_) {
    if (auto* c = round_.slot(now)) {
      ++c->samples;
      if (congestion(s)) ++c->congested;
      if (snap.min_rtt) {
        const auto threshold = std::max(*snap.min_rtt * 2, *snap.min_rtt + cfg_.latency_floor);
        auto rtt = [&](duration d) {
          ++c->rtt_samples;
          if (d > threshold) ++c->rtt_inflated;
        };
        if (s.connect) rtt(*s.connect);
        if (s.small && s.first_byte) rtt(*s.first_byte);
      }
    }
  }

  if (!backoff_check_locked(snap, now)) growth_check_locked(snap, now);
  return rounded_locked();
}

}  // namespace ferry::netmon
