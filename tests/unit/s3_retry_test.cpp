// lib/s3/retry: backoff bounds, the retry quota, decisions, and clock-skew dates. No sleeping:
// the policy is pure, the random source is injected.
#include "s3/retry.hpp"

#include <boost/asio/error.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

namespace ferry::s3 {
namespace {

using namespace std::chrono;
using std::chrono::milliseconds;

error server_error(unsigned status, std::string code) {
  error e;
  e.http_status = status;
  e.code = std::move(code);
  e.retryable = is_retryable_code(e.code, status);
  return e;
}

TEST(Backoff, FullJitterWithinExponentialCeiling) {
  retry_config cfg;
  const random_fn top = [] { return 0.999999; };
  const random_fn bottom = [] { return 0.0; };
  const random_fn half = [] { return 0.5; };
  EXPECT_EQ(backoff_delay(cfg, 1, false, bottom), milliseconds(0));
  EXPECT_EQ(backoff_delay(cfg, 1, false, half), milliseconds(50));
  EXPECT_EQ(backoff_delay(cfg, 2, false, half), milliseconds(100));
  EXPECT_EQ(backoff_delay(cfg, 3, false, half), milliseconds(200));
  EXPECT_EQ(backoff_delay(cfg, 4, false, top), milliseconds(799));
  // Capped at max_backoff however many attempts, without overflow.
  EXPECT_EQ(backoff_delay(cfg, 30, false, half), milliseconds(10'000));
  EXPECT_EQ(backoff_delay(cfg, 1'000'000, false, top), milliseconds(19'999));
  // Throttling starts from its own base.
  EXPECT_EQ(backoff_delay(cfg, 1, true, half), milliseconds(250));
  EXPECT_EQ(backoff_delay(cfg, 2, true, half), milliseconds(500));
}

TEST(Backoff, OutOfRangeRandomIsClamped) {
  retry_config cfg;
  EXPECT_EQ(backoff_delay(cfg, 1, false, [] { return 7.0; }), milliseconds(100));
  EXPECT_EQ(backoff_delay(cfg, 1, false, [] { return -1.0; }), milliseconds(0));
  EXPECT_EQ(backoff_delay(cfg, 1, false, [] { return std::nan(""); }), milliseconds(0));
}

TEST(Backoff, DefaultRandomStaysInBounds) {
  retry_config cfg;
  for (int attempt = 1; attempt <= 12; ++attempt) {
    const auto ceiling = std::min(cfg.max_backoff, cfg.base_delay * (1 << (attempt - 1)));
    for (int i = 0; i < 200; ++i) {
      const auto d = backoff_delay(cfg, attempt);
      EXPECT_GE(d, milliseconds(0));
      EXPECT_LE(d, ceiling);
    }
  }
}

TEST(RetryQuota, DrainsThenRefuses) {
  retry_config cfg;  // 500 tokens, 5 a retry, 10 after a timeout
  retry_quota q(cfg);
  EXPECT_EQ(q.available(), 500);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(q.try_acquire(false)) << i;
  EXPECT_EQ(q.available(), 0);
  EXPECT_FALSE(q.try_acquire(false));
  EXPECT_FALSE(q.try_acquire(true));
  EXPECT_EQ(q.available(), 0);
}

TEST(RetryQuota, TimeoutsCostMoreAndPartialBalanceIsNotSpent) {
  retry_config cfg;
  cfg.quota_capacity = 14;
  retry_quota q(cfg);
  EXPECT_TRUE(q.try_acquire(true));  // 14 -> 4
  EXPECT_EQ(q.available(), 4);
  EXPECT_FALSE(q.try_acquire(false));  // 5 > 4: refused, nothing taken
  EXPECT_EQ(q.available(), 4);
}

TEST(RetryQuota, RefundsOnSuccessUpToCapacity) {
  retry_config cfg;
  retry_quota q(cfg);
  ASSERT_TRUE(q.try_acquire(false));
  ASSERT_TRUE(q.try_acquire(false));
  EXPECT_EQ(q.available(), 490);
  q.on_success(true);  // a successful retry returns its cost
  EXPECT_EQ(q.available(), 495);
  q.on_success(false);  // a first-attempt success returns 1
  EXPECT_EQ(q.available(), 496);
  for (int i = 0; i < 100; ++i) q.on_success(true);
  EXPECT_EQ(q.available(), 500) << "never above capacity";
}

TEST(RetryQuota, ThreadSafeUnderContention) {
  retry_config cfg;
  cfg.quota_capacity = 100'000;
  cfg.retry_cost = 1;
  retry_quota q(cfg);
  std::vector<std::thread> threads;
  std::atomic<int> granted{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50'000; ++i)
        if (q.try_acquire(false)) ++granted;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 100'000);
  EXPECT_EQ(q.available(), 0);
}

TEST(DecideRetry, NonRetryableErrorsAreNeverRetriedAndTakeNoQuota) {
  retry_config cfg;
  retry_quota q(cfg);
  for (const auto& e : {server_error(404, "NoSuchKey"), server_error(403, "AccessDenied"),
                        server_error(400, "BadDigest"), transport_error(boost::asio::error::operation_aborted, "x")}) {
    const auto d = decide_retry(cfg, q, e, 1, [] { return 0.5; });
    EXPECT_FALSE(d.retry) << e.to_string();
    EXPECT_EQ(d.reason, "not retryable");
  }
  EXPECT_EQ(q.available(), 500);
}

TEST(DecideRetry, RetriesUntilMaxAttempts) {
  retry_config cfg;
  retry_quota q(cfg);
  const auto e = server_error(500, "InternalError");
  for (int attempt = 1; attempt < cfg.max_attempts; ++attempt) {
    const auto d = decide_retry(cfg, q, e, attempt, [] { return 0.5; });
    EXPECT_TRUE(d.retry) << attempt;
    EXPECT_EQ(d.delay, milliseconds(50 << (attempt - 1)));
  }
  const auto last = decide_retry(cfg, q, e, cfg.max_attempts, [] { return 0.5; });
  EXPECT_FALSE(last.retry);
  EXPECT_EQ(last.reason, "max attempts reached");
  EXPECT_EQ(q.available(), 500 - 5 * (cfg.max_attempts - 1));
}

TEST(DecideRetry, ThrottlingBacksOffFromTheLargerBase) {
  retry_config cfg;
  retry_quota q(cfg);
  const auto d = decide_retry(cfg, q, server_error(503, "SlowDown"), 1, [] { return 0.5; });
  EXPECT_TRUE(d.retry);
  EXPECT_EQ(d.delay, milliseconds(250));
}

TEST(DecideRetry, TimeoutsTakeTheHigherCostAndAnEmptyQuotaStopsRetries) {
  retry_config cfg;
  cfg.quota_capacity = 15;
  retry_quota q(cfg);
  const auto timeout = transport_error(boost::asio::error::timed_out, "GetObject");
  ASSERT_TRUE(timeout.retryable);
  EXPECT_TRUE(is_timeout(timeout));
  EXPECT_TRUE(decide_retry(cfg, q, timeout, 1).retry);
  EXPECT_EQ(q.available(), 5);
  const auto d = decide_retry(cfg, q, timeout, 2);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.reason, "retry quota exhausted");
  EXPECT_TRUE(decide_retry(cfg, q, server_error(500, "InternalError"), 2).retry);  // 5 still pays a normal retry
  EXPECT_EQ(q.available(), 0);
}

TEST(Classifiers, ThrottlingTimeoutClockSkew) {
  EXPECT_TRUE(is_throttling(server_error(503, "SlowDown")));
  EXPECT_TRUE(is_throttling(server_error(400, "Throttling")));
  EXPECT_TRUE(is_throttling(server_error(429, "TooManyRequests")));
  EXPECT_FALSE(is_throttling(server_error(500, "InternalError")));
  EXPECT_TRUE(is_timeout(server_error(400, "RequestTimeout")));
  EXPECT_FALSE(is_timeout(transport_error(boost::asio::error::connection_reset, "x")));
  EXPECT_TRUE(is_clock_skew(server_error(403, "RequestTimeTooSkewed")));
  EXPECT_FALSE(is_clock_skew(server_error(403, "SignatureDoesNotMatch")));
}

TEST(ParseHttpDate, Rfc1123) {
  auto t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, sys_days{year{1994} / November / 6} + hours{8} + minutes{49} + seconds{37});
  EXPECT_EQ(parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"),
            sys_days{year{2024} / February / 29} + hours{23} + minutes{59} + seconds{59});
  EXPECT_EQ(parse_http_date("06 Nov 1994 08:49:37 UTC"), t) << "weekday optional, UTC accepted";
  EXPECT_EQ(parse_http_date("  Sun, 06 Nov 1994 08:49:37 GMT  "), t);
}

TEST(ParseHttpDate, RejectsMalformed) {
  for (const char* bad :
       {"", "garbage", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 PST", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT", "Thu, 30 Feb 2023 00:00:00 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 94 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994", "Sun, 0x Nov 1994 08:49:37 GMT", "Wednesday-long-name, 06 Nov 1994 08:49:37 GMT"})
    EXPECT_FALSE(parse_http_date(bad)) << bad;
}

TEST(ClockOffset, ServerAheadOrBehind) {
  const auto local = sys_days{year{2023} / March / 1} + hours{12};
  EXPECT_EQ(clock_offset_from_date("Wed, 01 Mar 2023 12:20:00 GMT", local), milliseconds(20 * 60 * 1000));
  EXPECT_EQ(clock_offset_from_date("Wed, 01 Mar 2023 11:45:30 GMT", local), -milliseconds((14 * 60 + 30) * 1000));
  EXPECT_EQ(clock_offset_from_date("Wed, 01 Mar 2023 12:00:00 GMT", local + milliseconds(400)), milliseconds(-400));
  EXPECT_FALSE(clock_offset_from_date("", local));
  // Applying the offset to the local clock gives the server's time.
  const auto off = clock_offset_from_date("Wed, 01 Mar 2023 12:20:00 GMT", local);
  EXPECT_EQ(local + *off, *parse_http_date("Wed, 01 Mar 2023 12:20:00 GMT"));
}

}  // namespace
}  // namespace ferry::s3
