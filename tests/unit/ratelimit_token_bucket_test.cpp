#include <gtest/gtest.h>

#include "ratelimit/token_bucket.hpp"

#include <algorithm>
#include <cstdint>
#include <queue>
#include <random>
#include <tuple>
#include <vector>

namespace ferry::ratelimit {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;

// A fixed origin for the simulated clock: nothing here reads the real one.
const steady_time t0 = steady_time{} + 1000h;

// One byte at 1 MiB/s is ~954 ns: comparisons of waits allow a few bytes of float rounding.
void expect_near(nanoseconds got, nanoseconds want) {
  EXPECT_LE(got > want ? got - want : want - got, nanoseconds(10'000)) << got.count() << " vs " << want.count();
}

struct pass {
  nanoseconds at;
  std::uint64_t bytes;
};

// `takers` callers each loop: take 64 KiB, poll wait_for in slices of at most 50 ms (as the limiter does),
// pass, use some of it (`use` returns how much), refund the rest. Returns every pass, by time.
template <class Use>
std::vector<pass> simulate(token_bucket& b, int takers, nanoseconds duration, Use use) {
  using event = std::tuple<nanoseconds, int, std::uint64_t>;  // wake time, taker, position
  std::priority_queue<event, std::vector<event>, std::greater<>> q;
  for (int i = 0; i < takers; ++i) q.emplace(nanoseconds(0), i, b.take(64 * KiB, t0));
  std::vector<pass> passes;
  while (!q.empty()) {
    auto [at, who, pos] = q.top();
    q.pop();
    if (at >= duration) continue;
    const auto w = b.wait_for(pos, t0 + at);
    if (w.count() > 0) {
      q.emplace(at + std::min<nanoseconds>(w, 50ms), who, pos);
      continue;
    }
    const std::uint64_t used = use();
    b.refund(64 * KiB - used);
    passes.push_back({at, used});
    q.emplace(at, who, b.take(64 * KiB, t0 + at));
  }
  return passes;
}

std::uint64_t max_window(const std::vector<pass>& passes, nanoseconds window) {
  std::uint64_t best = 0, sum = 0;
  std::size_t lo = 0;
  for (std::size_t hi = 0; hi < passes.size(); ++hi) {
    sum += passes[hi].bytes;
    while (passes[hi].at - passes[lo].at >= window) sum -= passes[lo++].bytes;
    best = std::max(best, sum);
  }
  return best;
}

std::uint64_t total(const std::vector<pass>& passes) {
  std::uint64_t sum = 0;
  for (const auto& p : passes) sum += p.bytes;
  return sum;
}

TEST(RatelimitTokenBucket, TenMiBPerSecondHoldsOverSixtySecondsAndEveryOneSecondWindow) {
  const std::uint64_t rate = 10 * MiB;
  token_bucket b(rate, t0);
  const auto passes = simulate(b, 16, 60s, [] { return 64 * KiB; });
  const double avg = static_cast<double>(total(passes)) / 60.0;
  EXPECT_GE(avg, 0.98 * rate);
  EXPECT_LE(avg, 1.02 * rate);
  EXPECT_LE(max_window(passes, 1s), rate * 11 / 10);
  // Smooth as well as capped: no whole second far below the rate while callers wait.
  std::vector<std::uint64_t> per_second(60);
  for (const auto& p : passes) per_second[std::chrono::duration_cast<std::chrono::seconds>(p.at).count()] += p.bytes;
  EXPECT_GE(*std::min_element(per_second.begin(), per_second.end()), rate * 9 / 10);
}

TEST(RatelimitTokenBucket, ShortReadsRefundedStillHoldTheCapAndTheAverage) {
  const std::uint64_t rate = 10 * MiB;
  token_bucket b(rate, t0);
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::uint64_t> dist(0, 64 * KiB);
  const auto passes = simulate(b, 16, 60s, [&] { return dist(rng); });
  const double avg = static_cast<double>(total(passes)) / 60.0;
  EXPECT_GE(avg, 0.98 * rate);
  EXPECT_LE(avg, 1.02 * rate);
  EXPECT_LE(max_window(passes, 1s), rate * 11 / 10);
  EXPECT_EQ(b.bytes(), total(passes) + 16 * 64 * KiB);  // the 16 claims still outstanding at the end
}

TEST(RatelimitTokenBucket, RefundLetsTheNextCallerHaveTheBytes) {
  token_bucket b(1 * MiB, t0);  // burst 64 KiB
  EXPECT_EQ(b.wait_for(b.take(64 * KiB, t0), t0), nanoseconds(0));
  const auto pos = b.take(64 * KiB, t0);
  expect_near(b.wait_for(pos, t0), 62'500us);
  b.refund(64 * KiB);  // that caller gave up
  const auto next = b.take(64 * KiB, t0);
  expect_near(b.wait_for(next, t0), 62'500us);  // not 125 ms: the refunded claim is not waited for
  EXPECT_EQ(b.bytes(), 128 * KiB);
}

TEST(RatelimitTokenBucket, RefundNeverRaisesIdleCreditAboveBurst) {
  token_bucket b(1 * MiB, t0);
  EXPECT_EQ(b.wait_for(b.take(64 * KiB, t0), t0), nanoseconds(0));
  const auto t = t0 + 100s;  // a long read: the bucket refills to its 64 KiB burst meanwhile
  EXPECT_EQ(b.wait_for(0, t), nanoseconds(0));
  b.refund(64 * KiB);  // the read returned nothing: 128 KiB of credit if refunds were not capped
  b.refund(1 * MiB);   // more than was ever taken: ignored beyond the total
  EXPECT_EQ(b.bytes(), 0u);
  const auto pos = b.take(128 * KiB, t);
  expect_near(b.wait_for(pos, t), 62'500us);  // 64 KiB credit, not 128 KiB or more
}

TEST(RatelimitTokenBucket, RateRaisedMidWaitShortensTheWait) {
  token_bucket b(1 * MiB, t0);
  b.take(64 * KiB, t0);  // the burst
  const auto pos = b.take(1 * MiB, t0);
  expect_near(b.wait_for(pos, t0), 1s);
  expect_near(b.wait_for(pos, t0 + 500ms), 500ms);
  b.set_rate(2 * MiB, t0 + 500ms);
  expect_near(b.wait_for(pos, t0 + 500ms), 250ms);
  EXPECT_EQ(b.wait_for(pos, t0 + 750ms), nanoseconds(0));
}

TEST(RatelimitTokenBucket, RateLoweredMidWaitLengthensTheWait) {
  token_bucket b(1 * MiB, t0);
  b.take(64 * KiB, t0);
  const auto pos = b.take(1 * MiB, t0);
  b.set_rate(512 * KiB, t0 + 500ms);
  expect_near(b.wait_for(pos, t0 + 500ms), 1s);
  EXPECT_GT(b.wait_for(pos, t0 + 1s), nanoseconds(0));
  EXPECT_EQ(b.wait_for(pos, t0 + 1500ms), nanoseconds(0));
}

TEST(RatelimitTokenBucket, UnlimitedToLimitedDoesNotOweTheUnlimitedBytes) {
  token_bucket b(0, t0);
  const auto big = b.take(100 * MiB, t0);
  EXPECT_EQ(b.wait_for(big, t0), nanoseconds(0));
  b.set_rate(1 * MiB, t0 + 1s);
  EXPECT_EQ(b.wait_for(big, t0 + 1s), nanoseconds(0));
  const auto pos = b.take(64 * KiB, t0 + 1s);
  // At most the new claim itself, never the 100 s the unlimited bytes would cost at 1 MiB/s.
  EXPECT_LE(b.wait_for(pos, t0 + 1s), 62'500us + nanoseconds(10'000));
  EXPECT_EQ(b.bytes(), 100 * MiB + 64 * KiB);
}

TEST(RatelimitTokenBucket, LimitedToUnlimitedReleasesWaitersAndBackAgain) {
  token_bucket b(1 * MiB, t0);
  const auto pos = b.take(10 * MiB, t0);
  EXPECT_GT(b.wait_for(pos, t0), 9s);
  b.set_rate(0, t0 + 1s);
  EXPECT_EQ(b.rate(), 0u);
  EXPECT_EQ(b.wait_for(pos, t0 + 1s), nanoseconds(0));
  EXPECT_EQ(b.wait_for(b.take(50 * MiB, t0 + 1s), t0 + 1s), nanoseconds(0));
  b.set_rate(1 * MiB, t0 + 2s);
  const auto again = b.take(1 * MiB, t0 + 2s);
  expect_near(b.wait_for(again, t0 + 2s), 1s);
}

TEST(RatelimitTokenBucket, IdleCreditIsCappedAtBurst) {
  token_bucket b(10 * MiB, t0);
  EXPECT_EQ(b.burst(), 512 * KiB);  // rate / 20
  b.take(512 * KiB, t0);
  const auto t = t0 + 3600s;  // an hour idle earns no more than the burst
  EXPECT_EQ(b.wait_for(b.take(512 * KiB, t), t), nanoseconds(0));
  const auto pos = b.take(64 * KiB, t);
  expect_near(b.wait_for(pos, t), 6'250us);

  token_bucket slow(100 * KiB, t0);
  EXPECT_EQ(slow.burst(), 64 * KiB);  // never below 64 KiB, so one full quantum can always pass
}

TEST(RatelimitTokenBucket, QuantumFollowsTheRate) {
  token_bucket b(0, t0);
  EXPECT_EQ(b.quantum(), 64 * KiB);
  b.set_rate(10 * MiB, t0);
  EXPECT_EQ(b.quantum(), 64 * KiB);
  b.set_rate(1 * MiB, t0);
  EXPECT_EQ(b.quantum(), 1 * MiB / 50);
  b.set_rate(100 * KiB, t0);
  EXPECT_EQ(b.quantum(), 4 * KiB);
}

TEST(RatelimitTokenBucket, ClockReadSlightlyEarlierByAnotherThreadIsHarmless) {
  token_bucket b(1 * MiB, t0);
  b.take(64 * KiB, t0 + 1s);
  const auto pos = b.take(64 * KiB, t0 + 1s);
  expect_near(b.wait_for(pos, t0 + 999ms), 62'500us);  // as at t0 + 1s: time does not run back
}

}  // namespace
}  // namespace ferry::ratelimit
