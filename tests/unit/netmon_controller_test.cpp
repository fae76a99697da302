#include "netmon/controller.hpp"
#include "netmon/monitor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

namespace ferry::netmon {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + std::chrono::hours(1);

// A deterministic PRNG (std distributions differ between standard libraries).
struct rng {
  std::uint64_t s = 0x9E3779B97F4A7C15ull;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double uniform() { return static_cast<double>(next() >> 11) / static_cast<double>(1ull << 53); }  // [0, 1)
};

// A fluid model of a path and a workload that always has work (unless app_limit is set): every
// 50 ms tick the aggregate rate min(capacity, limit x per_conn) moves as progress; parts finish at
// that rate; a small request (HEAD) goes out every 100 ms. Every sample goes through a real
// path_monitor into the controller, as the s3 layer will do it.
struct path_sim {
  double capacity = 12.5e6;  // bytes/s of the bottleneck (100 Mbit/s)
  double per_conn = 1e6;     // bytes/s one connection can do
  duration rtt = 50ms;
  double noise = 0;                         // +- relative noise on the rate
  double throttle_share = 0;                // share of requests answered 503 SlowDown
  std::function<duration(rng&)> small_rtt;  // RTT of small requests; default: rtt
  std::size_t app_limit = 0;                // 0: always limit-many requests in flight
  double part_bytes = 8.0 * (1 << 20);

  path_monitor mon;
  concurrency_controller ctl;
  time_point now = t0;
  rng r;
  double parts_due = 0;
  duration since_small{};
  std::uint64_t seen_decisions = 0;
  std::vector<decision> history;
  std::vector<std::pair<time_point, std::size_t>> limits;  // after every tick

  explicit path_sim(controller_config cfg = {}) : ctl(cfg) {}

  std::size_t in_flight() const { return app_limit ? std::min(app_limit, ctl.limit()) : ctl.limit(); }

  void feed(const request_sample& s) {
    mon.record(s);
    ctl.on_sample(s, mon.snap(s.at), in_flight(), s.at);
    if (ctl.decisions() != seen_decisions) {
      seen_decisions = ctl.decisions();
      history.push_back(*ctl.last_decision());
    }
  }

  void run(duration d) {
    const auto end = now + d;
    const duration tick = 50ms;
    while (now < end) {
      now += tick;
      const double conns = static_cast<double>(in_flight());
      const double rate =
          std::min(capacity, conns * per_conn) * (1 + noise * (2 * r.uniform() - 1)) * (1 - throttle_share);
      const double tick_s = std::chrono::duration<double>(tick).count();
      mon.record_progress(static_cast<std::uint64_t>(rate * tick_s), now);
      parts_due += rate * tick_s / part_bytes;
      while (parts_due >= 1) {
        parts_due -= 1;
        request_sample s;
        s.at = now;
        s.first_byte = rtt;
        s.body_bytes = static_cast<std::uint64_t>(part_bytes);
        s.body_time = std::chrono::duration_cast<duration>(std::chrono::duration<double>(part_bytes / (rate / conns)));
        s.progress_reported = true;
        feed(s);
        // Requests issued alongside are throttled at once, at the configured share.
        if (r.uniform() < throttle_share / (1 - throttle_share + 1e-9)) {
          request_sample t;
          t.at = now;
          t.first_byte = rtt;
          t.error = error_class::throttle;
          feed(t);
        }
      }
      since_small += tick;
      if (since_small >= 100ms) {
        since_small = {};
        request_sample s;
        s.at = now;
        s.small = true;
        s.first_byte = small_rtt ? small_rtt(r) : rtt;
        if (r.uniform() < throttle_share) s.error = error_class::throttle;
        feed(s);
      }
      limits.emplace_back(now, ctl.limit());
    }
  }

  std::size_t max_limit_since(time_point from) const {
    std::size_t m = 0;
    for (auto& [t, l] : limits)
      if (t >= from) m = std::max(m, l);
    return m;
  }
  std::size_t min_limit_since(time_point from) const {
    std::size_t m = SIZE_MAX;
    for (auto& [t, l] : limits)
      if (t >= from) m = std::min(m, l);
    return m;
  }
  // First time at or after `from` the limit satisfied pred; nullopt if never.
  template <class P>
  std::optional<time_point> first_time(time_point from, P pred) const {
    for (auto& [t, l] : limits)
      if (t >= from && pred(l)) return t;
    return std::nullopt;
  }
  std::uint64_t decisions_with(std::string_view word) const {
    return static_cast<std::uint64_t>(std::count_if(
        history.begin(), history.end(), [&](const decision& d) { return d.reason.find(word) != std::string::npos; }));
  }
};

TEST(NetmonController, ClimbsWhileThroughputRises) {
  path_sim sim;  // 1 MB/s per connection, 100 MB/s link: the knee is at 100
  sim.capacity = 100e6;
  sim.noise = 0.03;
  sim.run(2min);
  const auto l = sim.ctl.limit();
  EXPECT_GE(l, 100u);
  EXPECT_LE(l, 200u);
  EXPECT_GE(sim.mon.snap(sim.now).throughput, 0.9 * sim.capacity);
  EXPECT_EQ(sim.ctl.backoffs(), 0u);
  // It climbed in steps, never below where it started, and passed the knee within a minute.
  auto above = sim.first_time(t0, [](std::size_t x) { return x > 100; });
  ASSERT_TRUE(above);
  EXPECT_EQ(sim.min_limit_since(t0), 16u);
  EXPECT_LT(*above - t0, 60s);
}

TEST(NetmonController, HoldsOnAPlateauInsteadOfGrowingToMax) {
  controller_config cfg;
  cfg.initial_limit = 4;
  path_sim sim(cfg);  // 100 Mbit/s, 1 MB/s per connection: the knee is at 12.5
  sim.noise = 0.04;
  sim.run(5min);
  const double knee = sim.capacity / sim.per_conn;
  EXPECT_LE(sim.ctl.limit(), 2 * knee);
  EXPECT_GE(sim.ctl.limit(), 0.8 * knee);
  EXPECT_LE(sim.max_limit_since(t0), 3 * knee);  // probes included
  EXPECT_LE(sim.max_limit_since(t0 + 1min), 2 * knee);
  EXPECT_GE(sim.mon.snap(sim.now).throughput, 0.9 * sim.capacity);
  EXPECT_GE(sim.decisions_with("plateau"), 2u);  // startup's overshoot and later probes were undone
  EXPECT_EQ(sim.ctl.backoffs(), 0u);
}

TEST(NetmonController, ThrottleStormBacksOffFastAndRecoversAfter) {
  path_sim sim;  // the bench's path: 100 Mbit/s, 50 ms
  sim.noise = 0.03;
  sim.run(90s);
  const auto before = sim.ctl.limit();
  const double thr_before = sim.mon.snap(sim.now).throughput;
  ASSERT_GE(thr_before, 0.9 * sim.capacity);

  const auto storm = sim.now;
  sim.throttle_share = 0.3;
  sim.run(10s);
  const auto storm_end = sim.now;

  auto dropped = sim.first_time(storm, [&](std::size_t l) { return l < before; });
  ASSERT_TRUE(dropped);
  EXPECT_LE(*dropped - storm, 2s);
  EXPECT_GE(sim.min_limit_since(storm), 4u);  // never below min
  // Backoffs during the storm are at least one reaction interval (100 ms, 2 x 50 ms) apart.
  std::optional<time_point> prev;
  int storm_backoffs = 0;
  for (const auto& d : sim.history) {
    if (d.at < storm || d.reason.find("backoff") == std::string::npos) continue;
    ++storm_backoffs;
    if (prev) {
      EXPECT_GE(d.at - *prev, 100ms);
    }
    prev = d.at;
  }
  EXPECT_GE(storm_backoffs, 1);

  sim.throttle_share = 0;
  sim.run(15s);
  EXPECT_GE(sim.ctl.limit(), before * 9 / 10);
  EXPECT_GE(sim.mon.snap(sim.now).throughput, 0.9 * thr_before);
  auto back = sim.first_time(storm_end, [&](std::size_t l) { return l >= before; });
  ASSERT_TRUE(back);
  EXPECT_LE(*back - storm_end, 10s);
}

TEST(NetmonController, BurstOfThrottlesIsOneBackoffPerRound) {
  concurrency_controller ctl;
  path_monitor mon;
  auto feed = [&](request_sample s) {
    mon.record(s);
    ctl.on_sample(s, mon.snap(s.at), 16, s.at);
  };
  for (int i = 0; i < 20; ++i) {
    request_sample ok;
    ok.at = t0 + i * 10ms;
    ok.first_byte = 10ms;
    feed(ok);
  }
  const auto burst = t0 + 1s;
  request_sample throttled;
  throttled.at = burst;
  throttled.first_byte = 10ms;
  throttled.error = error_class::throttle;
  for (int i = 0; i < 30; ++i) feed(throttled);
  EXPECT_EQ(ctl.backoffs(), 1u);
  EXPECT_EQ(ctl.limit(), 11u);  // 16 x 0.7
  ASSERT_TRUE(ctl.last_decision());
  EXPECT_EQ(ctl.last_decision()->from, 16u);
  EXPECT_EQ(ctl.last_decision()->to, 11u);
  EXPECT_EQ(ctl.last_decision()->at, burst);

  // Later answers to requests issued before the backoff (sent under the old limit) are ignored,
  // however late they come.
  request_sample old = throttled;
  old.at = burst + 400ms;
  old.body_time = 500ms;
  for (int i = 0; i < 30; ++i) feed(old);
  EXPECT_EQ(ctl.backoffs(), 1u);

  // Within the reaction interval even new requests' throttles wait.
  request_sample fresh = throttled;
  fresh.at = burst + 50ms;
  fresh.first_byte = 5ms;
  feed(fresh);
  EXPECT_EQ(ctl.backoffs(), 1u);
  // A new round: requests issued after the backoff are still throttled -> one more backoff.
  fresh.at = burst + 600ms;
  for (int i = 0; i < 10; ++i) feed(fresh);
  EXPECT_EQ(ctl.backoffs(), 2u);
  EXPECT_EQ(ctl.limit(), 8u);  // 16 x 0.7 x 0.7 = 7.84
}

TEST(NetmonController, LoneThrottleAmongManyRequestsIsNoise) {
  concurrency_controller ctl;
  path_monitor mon;
  for (int i = 0; i < 400; ++i) {
    request_sample s;
    s.at = t0 + i * 5ms;  // 200 requests/s
    s.first_byte = 10ms;
    if (i % 100 == 50) s.error = error_class::throttle;  // 1%
    mon.record(s);
    ctl.on_sample(s, mon.snap(s.at), 16, s.at);
  }
  EXPECT_EQ(ctl.backoffs(), 0u);
  EXPECT_EQ(ctl.limit(), 16u);
}

TEST(NetmonController, TimeoutsBackOffButResetsAndServerErrorsDoNot) {
  for (auto cls : {error_class::reset, error_class::server_error, error_class::other}) {
    concurrency_controller ctl;
    path_monitor mon;
    for (int i = 0; i < 50; ++i) {
      request_sample s;
      s.at = t0 + i * 50ms;
      s.error = cls;
      mon.record(s);
      ctl.on_sample(s, mon.snap(s.at), 16, s.at);
    }
    EXPECT_EQ(ctl.backoffs(), 0u) << to_string(cls);
  }
  concurrency_controller ctl;
  path_monitor mon;
  request_sample s;
  s.at = t0;
  s.error = error_class::timeout;
  mon.record(s);
  ctl.on_sample(s, mon.snap(s.at), 16, s.at);
  mon.record(s);
  ctl.on_sample(s, mon.snap(s.at), 16, s.at + 200ms);
  EXPECT_EQ(ctl.backoffs(), 1u);
  EXPECT_LT(ctl.limit(), 16u);
}

TEST(NetmonController, LatencyInflationBacksOff) {
  path_sim sim;
  sim.run(60s);
  const auto before = sim.ctl.limit();
  EXPECT_EQ(sim.ctl.backoffs(), 0u);
  const auto start = sim.now;
  sim.small_rtt = [](rng&) { return duration(250ms); };  // a queue builds up: 50 ms -> 250 ms
  sim.run(2s);
  EXPECT_GE(sim.ctl.backoffs(), 1u);
  EXPECT_GE(sim.decisions_with("latency"), 1u);
  auto dropped = sim.first_time(start, [&](std::size_t l) { return l < before; });
  ASSERT_TRUE(dropped);
  EXPECT_LE(*dropped - start, 1s);
}

TEST(NetmonController, LoopbackJitterIsNoLatencyInflation) {
  path_sim sim;
  sim.rtt = 100us;
  sim.capacity = 2e9;
  sim.per_conn = 200e6;
  sim.noise = 0.04;
  // 0.1 ms base, up to 5 ms of scheduler noise, and a 15 ms hiccup in 2% of requests.
  sim.small_rtt = [](rng& r) {
    if (r.uniform() < 0.02) return duration(15ms);
    return std::chrono::duration_cast<duration>(std::chrono::duration<double, std::milli>(0.1 + 4.9 * r.uniform()));
  };
  sim.run(3min);
  EXPECT_EQ(sim.decisions_with("latency"), 0u);
  EXPECT_EQ(sim.ctl.backoffs(), 0u);
  EXPECT_GE(sim.ctl.limit(), 10u);
}

TEST(NetmonController, StaysWithinBounds) {
  controller_config cfg;
  cfg.min_limit = 4;
  cfg.max_limit = 40;
  cfg.initial_limit = 1000;
  {
    concurrency_controller ctl(cfg);
    EXPECT_EQ(ctl.limit(), 40u);
  }
  cfg.initial_limit = 16;
  path_sim sim(cfg);
  sim.capacity = 1e9;  // more connections always help: growth stops only at max
  sim.run(60s);
  EXPECT_EQ(sim.ctl.limit(), 40u);
  EXPECT_LE(sim.max_limit_since(t0), 40u);
  sim.throttle_share = 0.5;  // an endless storm: down to min, never below
  sim.run(60s);
  EXPECT_EQ(sim.ctl.limit(), 4u);
  EXPECT_GE(sim.min_limit_since(t0), 4u);
}

TEST(NetmonController, NoGrowthWhileAppLimited) {
  path_sim sim;
  sim.capacity = 1e9;
  sim.app_limit = 3;  // only 3 requests' worth of work at a time
  sim.run(2min);
  EXPECT_EQ(sim.ctl.limit(), 16u);
  EXPECT_EQ(sim.ctl.decisions(), 0u);
}

TEST(NetmonController, RepeatedOverloadRightAfterRecoveryLowersTheTarget) {
  // The server throttles whenever more than 12 requests are in flight: a self-inflicted overload
  // must converge to 12 or less rather than saw-tooth back to the same level for ever.
  concurrency_controller ctl;
  path_monitor mon;
  time_point now = t0;
  std::size_t overloads = 0;
  for (int i = 0; i < 4000; ++i) {  // 200 s at 20 samples/s
    now += 50ms;
    request_sample s;
    s.at = now;
    s.first_byte = 20ms;
    if (ctl.limit() > 12) {
      s.error = error_class::throttle;
      ++overloads;
    }
    mon.record(s);
    ctl.on_sample(s, mon.snap(now), ctl.limit(), now);
  }
  EXPECT_LE(ctl.limit(), 12u);
  EXPECT_LT(overloads, 200u);
}

TEST(NetmonController, PhaseNamesAndDecisionLog) {
  path_sim sim;
  EXPECT_EQ(sim.ctl.phase(), "startup");
  EXPECT_FALSE(sim.ctl.last_decision());
  sim.run(20s);
  EXPECT_EQ(sim.ctl.phase(), "steady");
  ASSERT_FALSE(sim.history.empty());
  EXPECT_NE(sim.history.front().reason.find("startup"), std::string::npos);
  EXPECT_EQ(sim.history.front().from, 16u);
  EXPECT_EQ(sim.history.front().to, 32u);
}

}  // namespace
}  // namespace ferry::netmon
