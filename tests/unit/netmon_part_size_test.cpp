#include "netmon/part_size.hpp"

#include <gtest/gtest.h>

namespace ferry::netmon {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t gib = 1024 * mib;
constexpr std::uint64_t tib = 1024 * gib;

std::uint64_t parts_of(std::uint64_t size, std::uint64_t part) { return (size + part - 1) / part; }

TEST(NetmonPartSize, FiveTebibyteObjectFitsTenThousandParts) {
  part_inputs in;
  in.object_size = 5 * tib;
  const auto p = choose_part_size(in);
  EXPECT_LE(parts_of(in.object_size, p), s3_max_parts);
  EXPECT_GT(p, in.ceiling);  // S3's limit wins over the configured ceiling
  EXPECT_EQ(p % mib, 0u);
  EXPECT_LE(p, 525 * mib);  // and it is no bigger than needed
}

TEST(NetmonPartSize, NeverBelowFiveMebibytes) {
  part_inputs in;
  in.object_size = 10 * gib;
  in.floor = 1 * mib;
  in.conn_throughput = 100'000;  // 100 kB/s x 2 s = 200 kB
  EXPECT_EQ(choose_part_size(in), s3_min_part);
  in.error_rate = 1.0;  // however many failures
  EXPECT_EQ(choose_part_size(in), s3_min_part);
}

TEST(NetmonPartSize, NeverAboveFiveGibibytes) {
  part_inputs in;
  in.object_size = 40 * tib;
  in.ceiling = 100 * gib;
  in.conn_throughput = 10e9;
  in.min_rtt = 100ms;
  EXPECT_EQ(choose_part_size(in), s3_max_part);
  in.object_size = 60 * tib;  // beyond 10,000 x 5 GiB: still capped
  EXPECT_EQ(choose_part_size(in), s3_max_part);
}

TEST(NetmonPartSize, UnknownThroughputUsesTheFloor) {
  part_inputs in;
  in.object_size = 1 * gib;
  EXPECT_EQ(choose_part_size(in), 8 * mib);
}

TEST(NetmonPartSize, FastLongPathGetsBiggerParts) {
  part_inputs slow;
  slow.object_size = 10 * gib;
  slow.conn_throughput = 1e6;
  slow.min_rtt = 1ms;
  part_inputs fast = slow;
  fast.conn_throughput = 50e6;
  fast.min_rtt = 100ms;  // 40 RTTs = 4 s > 2 s: 200 MB
  const auto ps = choose_part_size(slow);
  const auto pf = choose_part_size(fast);
  EXPECT_EQ(ps, 8 * mib);
  EXPECT_GT(pf, 150 * mib);
  EXPECT_LE(pf, 256 * mib);
  EXPECT_EQ(pf % mib, 0u);
  // A longer path at the same rate wants more (more RTTs per part), up to the ceiling.
  part_inputs mid = fast;
  mid.min_rtt = 20ms;  // 40 RTTs = 0.8 s < 2 s: 100 MB
  EXPECT_LT(choose_part_size(mid), pf);
  EXPECT_GT(choose_part_size(mid), 80 * mib);
}

TEST(NetmonPartSize, HighErrorRateGetsSmallerParts) {
  part_inputs in;
  in.object_size = 10 * gib;
  in.conn_throughput = 200e6;
  in.min_rtt = 50ms;
  const auto clean = choose_part_size(in);
  EXPECT_EQ(clean, 256 * mib);
  in.error_rate = 0.2;  // 16 MiB budget / 20% = 80 MiB
  const auto lossy = choose_part_size(in);
  EXPECT_LT(lossy, clean);
  EXPECT_LE(static_cast<double>(lossy) * in.error_rate, 16.0 * mib + mib);
  EXPECT_GE(lossy, 64 * mib);
  in.error_rate = 0.9;  // never below the configured floor
  in.resend_budget = 4 * mib;
  EXPECT_EQ(choose_part_size(in), 8 * mib);
}

TEST(NetmonPartSize, PartsAreEvenedOut) {
  part_inputs in;
  in.object_size = 70 * mib;
  in.conn_throughput = 32 * mib;  // x 2 s = 64 MiB
  in.min_rtt = 10ms;
  EXPECT_EQ(choose_part_size(in), 35 * mib);  // 2 x 35, not 64 + 6
  in.object_size = 9 * mib;                   // 2 x 5 would go below the configured 8 MiB floor: 8 + 1 instead
  in.conn_throughput = 0;
  EXPECT_EQ(choose_part_size(in), 8 * mib);
}

TEST(NetmonPartSize, SmallObjectIsOnePart) {
  part_inputs in;
  in.object_size = 3 * mib;
  EXPECT_GE(choose_part_size(in), in.object_size);
}

TEST(NetmonPartSize, AlwaysWholeMebibytesWithinLimits) {
  for (std::uint64_t size : {std::uint64_t{0}, 1 * mib + 1, 700 * mib + 3, 33 * gib + 7, 5 * tib}) {
    for (double thr : {0.0, 3.3e6, 77.7e6, 1.1e9}) {
      for (double err : {0.0, 0.013, 0.5}) {
        part_inputs in;
        in.object_size = size;
        in.conn_throughput = thr;
        in.error_rate = err;
        in.min_rtt = 37ms;
        const auto p = choose_part_size(in);
        EXPECT_EQ(p % mib, 0u) << size << " " << thr << " " << err;
        EXPECT_GE(p, s3_min_part);
        EXPECT_LE(p, s3_max_part);
        EXPECT_LE(parts_of(size, p), s3_max_parts);
      }
    }
  }
}

}  // namespace
}  // namespace ferry::netmon
