#include "netmon/monitor.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ferry::netmon {
namespace {

using namespace std::chrono_literals;

const time_point t0 = time_point{} + std::chrono::hours(1);

request_sample small_request(time_point at, duration rtt) {
  request_sample s;
  s.at = at;
  s.first_byte = rtt;
  s.small = true;
  return s;
}

TEST(NetmonMonitor, MinRttComesFromConnectsAndSmallRequestsOnly) {
  path_monitor m;
  request_sample big;
  big.at = t0;
  big.first_byte = 5ms;  // a large PUT's wait includes server work: not an RTT sample
  big.body_bytes = 8 << 20;
  big.body_time = 1s;
  m.record(big);
  EXPECT_FALSE(m.snap(t0).min_rtt);
  EXPECT_EQ(m.snap(t0).srtt, duration(5ms));  // but it is a first_byte sample

  request_sample conn;
  conn.at = t0 + 1s;
  conn.connect = 30ms;
  m.record(conn);
  EXPECT_EQ(m.snap(t0 + 1s).min_rtt, duration(30ms));

  m.record(small_request(t0 + 2s, 20ms));
  EXPECT_EQ(m.snap(t0 + 2s).min_rtt, duration(20ms));
  m.record(small_request(t0 + 3s, 40ms));
  EXPECT_EQ(m.snap(t0 + 3s).min_rtt, duration(20ms));
}

TEST(NetmonMonitor, MinRttAgesOutOfItsFiveMinuteWindow) {
  path_monitor m;
  m.record(small_request(t0, 10ms));
  m.record(small_request(t0 + 1min, 50ms));
  EXPECT_EQ(m.snap(t0 + 4min).min_rtt, duration(10ms));
  EXPECT_EQ(m.snap(t0 + 4min + 29s).min_rtt, duration(10ms));  // 30 s buckets: kept at least 4.5 min
  EXPECT_EQ(m.snap(t0 + 5min + 30s).min_rtt, duration(50ms));  // and gone after 5
  EXPECT_FALSE(m.snap(t0 + 6min + 31s).min_rtt);               // nothing measured in the window at all
  // A newer, larger RTT is all there is after a path change: the minimum follows it.
  m.record(small_request(t0 + 7min, 80ms));
  EXPECT_EQ(m.snap(t0 + 7min).min_rtt, duration(80ms));
}

TEST(NetmonMonitor, SrttIsAnEwmaWithGainOneEighth) {
  path_monitor m;
  m.record(small_request(t0, 100ms));
  m.record(small_request(t0 + 1s, 200ms));
  auto srtt = m.snap(t0 + 1s).srtt;
  ASSERT_TRUE(srtt);
  const double srtt_ms = std::chrono::duration<double, std::milli>(*srtt).count();
  EXPECT_NEAR(srtt_ms, 112.5, 0.01);
}

TEST(NetmonMonitor, ThroughputIsAggregatedOverTheLastFiveSeconds) {
  path_monitor m;
  // 1 MB every 100 ms = 10 MB/s, from several "connections" at once.
  for (int i = 0; i < 100; ++i) {
    m.record_progress(400'000, t0 + i * 100ms);
    m.record_progress(600'000, t0 + i * 100ms + 1ms);
  }
  const auto end = t0 + 99 * 100ms + 1ms;
  EXPECT_NEAR(m.snap(end).throughput, 10e6, 0.5e6);
  // A young window is averaged over its own age, not over 5 s.
  path_monitor young;
  for (int i = 0; i < 10; ++i) young.record_progress(1'000'000, t0 + i * 100ms);
  EXPECT_NEAR(young.snap(t0 + 1s).throughput, 10e6, 1.2e6);
  // Traffic stops: the window empties itself.
  EXPECT_NEAR(m.snap(end + 2500ms).throughput, 5e6, 0.5e6);
  EXPECT_EQ(m.snap(end + 6s).throughput, 0);
}

TEST(NetmonMonitor, SampleBodiesCountUnlessProgressWasReported) {
  path_monitor m;
  request_sample s;
  s.at = t0;
  s.body_bytes = 8'000'000;
  s.body_time = 2s;
  s.progress_reported = true;
  m.record(s);
  auto snap = m.snap(t0);
  EXPECT_EQ(snap.throughput, 0);
  EXPECT_NEAR(snap.conn_throughput, 4e6, 1);  // the per-connection figure still uses it

  s.progress_reported = false;
  m.record(s);
  EXPECT_GT(m.snap(t0).throughput, 0);
}

TEST(NetmonMonitor, PerConnectionThroughputIgnoresSmallBodies) {
  path_monitor m;
  request_sample s;
  s.at = t0;
  s.body_bytes = 8 << 20;
  s.body_time = 1s;
  m.record(s);
  EXPECT_NEAR(m.snap(t0).conn_throughput, 8 << 20, 1);
  s.body_bytes = 1000;  // 1 kB in 1 ms would say 1 MB/s: latency, not bandwidth
  s.body_time = 1ms;
  m.record(s);
  EXPECT_NEAR(m.snap(t0).conn_throughput, 8 << 20, 1);
  s.body_bytes = 16 << 20;  // 16 MiB/s: the EWMA moves by 1/8 of the difference
  s.body_time = 1s;
  m.record(s);
  EXPECT_NEAR(m.snap(t0).conn_throughput, 9 << 20, 1);
}

TEST(NetmonMonitor, ErrorCountsAreWindowedAndCumulativeByClass) {
  path_monitor m;
  for (int i = 0; i < 100; ++i) {
    request_sample s;
    s.at = t0 + i * 500ms;
    if (i % 20 == 0) s.error = error_class::throttle;  // 5
    if (i == 7 || i == 8) s.error = error_class::timeout;
    if (i == 9) s.error = error_class::reset;
    m.record(s);
  }
  const auto end = t0 + 99 * 500ms;
  auto s = m.snap(end);
  EXPECT_EQ(s.requests, 100u);
  EXPECT_EQ(s.errors, 8u);
  EXPECT_EQ(s.throttles, 5u);
  EXPECT_DOUBLE_EQ(s.error_rate, 0.08);
  EXPECT_DOUBLE_EQ(s.throttle_rate, 0.05);
  EXPECT_NEAR(s.requests_per_second, 100.0 / 60, 1e-9);

  auto later = m.snap(end + 61s);
  EXPECT_EQ(later.requests, 0u);
  EXPECT_EQ(later.error_rate, 0);
  EXPECT_EQ(later.total_requests, 100u);
  EXPECT_EQ(later.errors_by_class[static_cast<std::size_t>(error_class::throttle)], 5u);
  EXPECT_EQ(later.errors_by_class[static_cast<std::size_t>(error_class::timeout)], 2u);
  EXPECT_EQ(later.errors_by_class[static_cast<std::size_t>(error_class::reset)], 1u);
  EXPECT_EQ(later.errors_by_class[static_cast<std::size_t>(error_class::server_error)], 0u);
}

// 200 requests over 40 s: connects at `base`, small requests at `rtt`, every `error_every`-th failing.
snapshot profile(duration base, duration rtt, int error_every, int n = 200) {
  path_monitor m;
  for (int i = 0; i < n; ++i) {
    auto s = small_request(t0 + i * 200ms, rtt);
    if (i % 10 == 0) s.connect = base;
    if (error_every > 0 && i % error_every == 1) s.error = error_class::server_error;
    m.record(s);
  }
  return m.snap(t0 + n * 200ms);
}

TEST(NetmonMonitor, GradesProfiles) {
  EXPECT_EQ(profile(50ms, 55ms, 0).quality, grade::excellent);
  EXPECT_EQ(profile(50ms, 150ms, 0).quality, grade::good);        // 3x min RTT
  EXPECT_EQ(profile(50ms, 55ms, 200).quality, grade::good);       // 0.5% errors
  EXPECT_EQ(profile(50ms, 55ms, 40).quality, grade::fair);        // 2.5% errors
  EXPECT_EQ(profile(50ms, 300ms, 0).quality, grade::fair);        // 6x
  EXPECT_EQ(profile(50ms, 55ms, 10).quality, grade::poor);        // 10% errors
  EXPECT_EQ(profile(50ms, 1s, 0).quality, grade::poor);           // 20x
  EXPECT_EQ(profile(50ms, 55ms, 0, 10).quality, grade::unknown);  // too few requests
  // Loopback: 0.1 ms floor, 3 ms with jitter is 30x but still within the absolute 20 ms floor.
  EXPECT_EQ(profile(100us, 3ms, 0).quality, grade::excellent);
  EXPECT_EQ(path_monitor().snap(t0).quality, grade::unknown);
}

TEST(NetmonMonitor, NamesOfEnums) {
  EXPECT_EQ(to_string(error_class::throttle), "throttle");
  EXPECT_EQ(to_string(error_class::server_error), "server_error");
  EXPECT_EQ(to_string(grade::excellent), "excellent");
  EXPECT_EQ(to_string(grade::unknown), "unknown");
}

TEST(NetmonMonitor, RecordsFromManyThreads) {
  path_monitor m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < 5000; ++i) {
        auto s = small_request(t0 + i * 1ms, std::chrono::milliseconds(10 + t));
        s.body_bytes = 100;
        m.record(s);
        m.record_progress(100, t0 + i * 1ms);
      }
    });
  }
  for (auto& th : threads) th.join();
  auto s = m.snap(t0 + 5s);
  EXPECT_EQ(s.total_requests, 20000u);
  EXPECT_EQ(s.min_rtt, duration(10ms));
}

}  // namespace
}  // namespace ferry::netmon
