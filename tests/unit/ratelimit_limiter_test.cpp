#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ratelimit/limiter.hpp"

#include <array>
#include <ctime>
#include <exception>
#include <optional>
#include <thread>

namespace ferry::ratelimit {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;

timetable must_parse(const char* s) {
  auto r = timetable::parse(s);
  EXPECT_TRUE(r.has_value()) << s;
  return r ? *r : timetable{};
}

std::shared_ptr<gate> constant_gate(std::uint64_t rate) {
  return std::make_shared<gate>(timetable::constant({rate, rate}));
}

// Runs the io_context for at most `limit` and fails the test if work is left over.
void run_bounded(asio::io_context& io, std::chrono::seconds limit = 10s) {
  io.run_for(limit);
  EXPECT_TRUE(io.stopped()) << "work left after " << limit.count() << " s";
}

struct outcome {
  std::optional<boost::system::error_code> ec;
  steady_clock::duration elapsed{};
};

// Acquires `n` bytes in throttle-sized quanta, recording when it ends and how.
asio::awaitable<void> acquire_all(throttle t, direction d, std::uint64_t n, outcome& out) {
  const auto start = steady_clock::now();
  for (std::uint64_t done = 0; done < n;) {
    const std::size_t q = t.quantum(d);
    if (!t.try_acquire(d, q)) {
      const auto ec = co_await t.acquire(d, q);
      if (ec) {
        out.ec = ec;
        out.elapsed = steady_clock::now() - start;
        co_return;
      }
    }
    done += q;
  }
  out.ec = boost::system::error_code{};
  out.elapsed = steady_clock::now() - start;
}

void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

TEST(RatelimitLimiter, AcquireAtOneMiBPerSecondTakesAboutTheIdealTime) {
  asio::io_context io;
  auto g = constant_gate(1 * MiB);
  throttle t{g};
  const std::uint64_t q = t.quantum(direction::down);
  ASSERT_EQ(q, 1 * MiB / 50);
  // The 64 KiB burst passes at once; about 0.3 s of data after it.
  const std::uint64_t n = (64 * KiB + 300 * KiB + q - 1) / q * q;
  const double ideal = static_cast<double>(n - 64 * KiB) / static_cast<double>(1 * MiB);
  outcome out;
  asio::co_spawn(io, acquire_all(t, direction::down, n, out), rethrow);
  run_bounded(io);
  ASSERT_TRUE(out.ec.has_value());
  EXPECT_FALSE(*out.ec);
  const double secs = std::chrono::duration<double>(out.elapsed).count();
  EXPECT_GE(secs, 0.8 * ideal);
  EXPECT_LT(secs, 5.0);
  EXPECT_EQ(g->bucket(direction::down).bytes(), n);
  EXPECT_EQ(g->bucket(direction::up).bytes(), 0u);
}

TEST(RatelimitLimiter, CancelledAcquireReturnsOperationAbortedPromptlyAndGivesTheBytesBack) {
  asio::io_context io;
  auto g = constant_gate(4 * KiB);  // after the 64 KiB burst, 64 KiB more takes 16 s
  throttle t{g};
  g->bucket(direction::up).take(64 * KiB, steady_clock::now());
  asio::cancellation_signal cancel;
  outcome out;
  asio::co_spawn(io, acquire_all(t, direction::up, 64 * KiB, out),
                 asio::bind_cancellation_slot(cancel.slot(), rethrow));
  // Runs after the coroutine has reached its first timer wait (it starts first, and one thread runs both).
  asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
  run_bounded(io);
  ASSERT_TRUE(out.ec.has_value());
  EXPECT_EQ(*out.ec, asio::error::operation_aborted);
  EXPECT_LT(out.elapsed, 2s);
  EXPECT_EQ(g->bucket(direction::up).bytes(), 64 * KiB);  // only the burst taken before
}

TEST(RatelimitLimiter, RaisingTheRateWakesAWaiterEarly) {
  asio::io_context io;
  auto g = constant_gate(4 * KiB);
  throttle t{g};
  g->bucket(direction::down).take(64 * KiB, steady_clock::now());
  outcome out;
  // 256 KiB at 4 KiB/s would take a minute.
  asio::co_spawn(io, acquire_all(t, direction::down, 256 * KiB, out), rethrow);
  asio::steady_timer later(io, 100ms);
  later.async_wait([&](boost::system::error_code) { g->set_timetable(timetable::constant({0, 100 * MiB})); });
  run_bounded(io);
  ASSERT_TRUE(out.ec.has_value());
  EXPECT_FALSE(*out.ec);
  EXPECT_LT(out.elapsed, 3s);
  EXPECT_EQ(g->bucket(direction::down).rate(), 100 * MiB);
  EXPECT_TRUE(t.unlimited(direction::up));
}

TEST(RatelimitLimiter, ConcurrentAcquiresOnTwoThreadsShareOneRate) {
  asio::io_context io;
  auto g = constant_gate(2 * MiB);
  throttle t{g};
  constexpr int workers = 8;
  const std::uint64_t q = t.quantum(direction::up);
  const std::uint64_t each = 4 * q;  // 8 x 4 x 41943 bytes: ~0.6 s at 2 MiB/s after the burst
  std::array<outcome, workers> outs;
  for (auto& o : outs) asio::co_spawn(io, acquire_all(t, direction::up, each, o), rethrow);
  const auto start = steady_clock::now();
  std::thread second([&] { io.run_for(10s); });
  run_bounded(io);
  second.join();
  const double secs = std::chrono::duration<double>(steady_clock::now() - start).count();
  const double ideal = static_cast<double>(workers * each - g->bucket(direction::up).burst()) / (2.0 * MiB);
  for (const auto& o : outs) EXPECT_EQ(o.ec, boost::system::error_code{});
  EXPECT_EQ(g->bucket(direction::up).bytes(), workers * each);
  EXPECT_GE(secs, 0.8 * ideal);
  EXPECT_LT(secs, 5.0);
}

TEST(RatelimitLimiter, ThrottleTakesFromEveryGateAndUsesTheSmallestQuantum) {
  auto global = constant_gate(1 * MiB);
  auto job = constant_gate(0);
  throttle t{global, job, nullptr};
  EXPECT_FALSE(t.unlimited(direction::down));
  EXPECT_FALSE(t.try_acquire(direction::down, 1000));
  EXPECT_EQ(global->bucket(direction::down).bytes(), 0u);  // a refused try takes nothing
  EXPECT_EQ(t.quantum(direction::down), 1 * MiB / 50);

  asio::io_context io;
  outcome out;
  asio::co_spawn(io, acquire_all(t, direction::down, 40 * KiB, out), rethrow);
  run_bounded(io);
  EXPECT_EQ(global->bucket(direction::down).bytes(), job->bucket(direction::down).bytes());
  EXPECT_GE(job->bucket(direction::down).bytes(), 40 * KiB);
  t.refund(direction::down, 1000);
  EXPECT_EQ(global->bucket(direction::down).bytes(), job->bucket(direction::down).bytes());

  throttle only_job{job};
  EXPECT_TRUE(only_job.unlimited(direction::up));
  EXPECT_TRUE(only_job.try_acquire(direction::up, 5000));
  EXPECT_EQ(job->bucket(direction::up).bytes(), 5000u);  // counted even when unlimited
  EXPECT_EQ(only_job.quantum(direction::up), 64 * KiB);
  EXPECT_TRUE(throttle{}.unlimited(direction::up));
}

TEST(RatelimitLimiter, LimitsTickAppliesTimetablesAndForgetsFinishedJobs) {
  // 2024-01-01 was a Monday; local time, as the daemon evaluates it.
  auto local = [](int mday, int hour) {
    std::tm tm{};
    tm.tm_year = 124;
    tm.tm_mday = mday;
    tm.tm_hour = hour;
    tm.tm_isdst = -1;
    return std::chrono::system_clock::from_time_t(std::mktime(&tm));
  };
  limits l(must_parse("Mon-00:00,1M Wed-00:00,2M:3M"));
  const auto now = steady_clock::now();
  l.tick(local(1, 12), now);
  EXPECT_EQ(l.global()->bucket(direction::up).rate(), 1 * MiB);
  auto job = l.add_job("j1", must_parse("Tue-06:00,5M Thu-00:00,off"));
  EXPECT_EQ(l.find_job("j1"), job);
  l.tick(local(3, 12), now);
  EXPECT_EQ(l.global()->bucket(direction::up).rate(), 2 * MiB);
  EXPECT_EQ(l.global()->bucket(direction::down).rate(), 3 * MiB);
  EXPECT_EQ(job->bucket(direction::down).rate(), 5 * MiB);
  EXPECT_EQ(l.next_change(local(3, 12)), local(4, 0));                  // the job's Thursday entry comes first
  EXPECT_EQ(l.throttle_for(job).quantum(direction::up), 2 * MiB / 50);  // the global gate's, the smaller
  EXPECT_FALSE(l.throttle_for(job).unlimited(direction::up));

  job.reset();
  EXPECT_EQ(l.find_job("j1"), nullptr);
  l.tick(local(3, 12), now);
  EXPECT_EQ(l.next_change(local(3, 12)), local(8, 0));  // only the global Monday entry is left
  EXPECT_FALSE(limits{}.next_change(local(3, 12)).has_value());
}

}  // namespace
}  // namespace ferry::ratelimit
