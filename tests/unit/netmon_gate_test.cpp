#include "netmon/gate.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace ferry::netmon {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using result_t = boost::system::result<permit>;

// Runs the context until pred holds; false after 5 s (a bounded wait, never a hang).
template <class P>
bool run_until(asio::io_context& ctx, P pred) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    ctx.restart();
    ctx.run_for(2ms);
  }
  return true;
}

void spawn_acquire(asio::io_context& ctx, request_gate& g, std::chrono::milliseconds timeout,
                   std::optional<result_t>& out) {
  asio::co_spawn(ctx, g.acquire(timeout), [&out](std::exception_ptr e, result_t r) {
    if (e) std::rethrow_exception(e);
    out = std::move(r);
  });
}

TEST(NetmonGate, GrantsAtOnceBelowTheLimit) {
  request_gate g(2);
  auto a = g.try_acquire();
  auto b = g.try_acquire();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(g.try_acquire());
  EXPECT_EQ(g.in_use(), 2u);
  a.reset();
  EXPECT_EQ(g.in_use(), 1u);

  asio::io_context ctx;
  std::optional<result_t> r;
  spawn_acquire(ctx, g, 1s, r);
  ASSERT_TRUE(run_until(ctx, [&] { return r.has_value(); }));
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(g.in_use(), 2u);
  EXPECT_EQ(g.waiting(), 0u);
}

TEST(NetmonGate, WaitersAreServedInArrivalOrder) {
  request_gate g(1);
  auto held = g.try_acquire();
  ASSERT_TRUE(held);
  asio::io_context ctx;
  std::vector<int> order;
  for (int id = 0; id < 4; ++id) {
    asio::co_spawn(
        ctx,
        [&g, &order, id]() -> asio::awaitable<void> {
          auto p = co_await g.acquire(5s);
          if (p) order.push_back(id);
          // The permit is released here, handing the slot to the next in line.
        },
        asio::detached);
    ctx.restart();
    ctx.poll();  // queued before the next one arrives
  }
  EXPECT_EQ(g.waiting(), 4u);
  EXPECT_FALSE(g.try_acquire());  // no barging past the queue
  held.reset();
  ASSERT_TRUE(run_until(ctx, [&] { return order.size() == 4; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(g.in_use(), 0u);
}

TEST(NetmonGate, TimesOut) {
  request_gate g(1);
  auto held = g.try_acquire();
  asio::io_context ctx;
  std::optional<result_t> r;
  const auto start = std::chrono::steady_clock::now();
  spawn_acquire(ctx, g, 30ms, r);
  ASSERT_TRUE(run_until(ctx, [&] { return r.has_value(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  ASSERT_TRUE(r->has_error());
  EXPECT_EQ(r->error(), asio::error::timed_out);
  EXPECT_EQ(g.waiting(), 0u);
  EXPECT_EQ(g.in_use(), 1u);

  std::optional<result_t> now;
  spawn_acquire(ctx, g, 0ms, now);  // no time at all: fails at once
  ASSERT_TRUE(run_until(ctx, [&] { return now.has_value(); }));
  EXPECT_EQ(now->error(), asio::error::timed_out);
}

TEST(NetmonGate, CancellationSlotAbortsTheWait) {
  request_gate g(1);
  auto held = g.try_acquire();
  asio::io_context ctx;
  asio::cancellation_signal sig;
  std::optional<result_t> r;
  asio::co_spawn(ctx, g.acquire(10s), asio::bind_cancellation_slot(sig.slot(), [&r](std::exception_ptr e, result_t v) {
                   if (e) std::rethrow_exception(e);
                   r = std::move(v);
                 }));
  ASSERT_TRUE(run_until(ctx, [&] { return g.waiting() == 1; }));
  sig.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until(ctx, [&] { return r.has_value(); }));
  ASSERT_TRUE(r->has_error());
  EXPECT_EQ(r->error(), asio::error::operation_aborted);
  EXPECT_EQ(g.waiting(), 0u);
  // The cancelled waiter took nothing: the next release goes to nobody and the slot is free.
  held.reset();
  EXPECT_EQ(g.in_use(), 0u);
}

TEST(NetmonGate, GrowingTheLimitWakesWaiters) {
  request_gate g(1);
  auto held = g.try_acquire();
  asio::io_context ctx;
  std::vector<permit> got;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          auto p = co_await g.acquire(5s);
          if (p) got.push_back(std::move(*p));
        },
        asio::detached);
  }
  ASSERT_TRUE(run_until(ctx, [&] { return g.waiting() == 3; }));
  g.set_limit(3);
  ASSERT_TRUE(run_until(ctx, [&] { return got.size() == 2; }));
  EXPECT_EQ(g.waiting(), 1u);
  EXPECT_EQ(g.in_use(), 3u);
  g.set_limit(10);
  ASSERT_TRUE(run_until(ctx, [&] { return got.size() == 3; }));
  EXPECT_EQ(g.in_use(), 4u);
  EXPECT_EQ(g.limit(), 10u);
}

TEST(NetmonGate, ShrinkingTheLimitLetsPermitsDrain) {
  request_gate g(3);
  auto a = g.try_acquire(), b = g.try_acquire(), c = g.try_acquire();
  ASSERT_TRUE(a && b && c);
  g.set_limit(1);
  EXPECT_EQ(g.in_use(), 3u);  // nobody is evicted
  asio::io_context ctx;
  std::optional<result_t> r;
  spawn_acquire(ctx, g, 5s, r);
  ASSERT_TRUE(run_until(ctx, [&] { return g.waiting() == 1; }));
  a.reset();
  b.reset();
  ctx.restart();
  ctx.poll();
  EXPECT_FALSE(r.has_value());  // 1 in use, limit 1: still no room
  EXPECT_EQ(g.in_use(), 1u);
  c.reset();
  ASSERT_TRUE(run_until(ctx, [&] { return r.has_value(); }));
  EXPECT_TRUE(r->has_value());
  EXPECT_EQ(g.in_use(), 1u);
}

TEST(NetmonGate, PermitsReleasedFromAnotherThread) {
  constexpr std::size_t limit = 3;
  constexpr int n = 200;
  request_gate g(limit);
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::vector<std::thread> io;
  for (int i = 0; i < 2; ++i) io.emplace_back([&] { ctx.run(); });

  // A plain thread that destroys the permits it is handed.
  std::mutex m;
  std::condition_variable cv;
  std::deque<permit> handed;
  bool stop = false;
  std::atomic<int> active{0}, max_active{0}, acquired{0}, failed{0}, off_executor{0};
  std::thread releaser([&] {
    std::unique_lock lk(m);
    for (;;) {
      cv.wait(lk, [&] { return stop || !handed.empty(); });
      if (handed.empty() && stop) return;
      permit p = std::move(handed.front());
      handed.pop_front();
      lk.unlock();
      std::this_thread::yield();
      --active;
      p.release();
      lk.lock();
    }
  });

  for (int i = 0; i < n; ++i) {
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          auto p = co_await g.acquire(10s);
          if (!ctx.get_executor().running_in_this_thread()) ++off_executor;
          if (!p) {
            ++failed;
            co_return;
          }
          const int now_active = ++active;
          int seen = max_active.load();
          while (now_active > seen && !max_active.compare_exchange_weak(seen, now_active)) {
          }
          ++acquired;
          {
            std::lock_guard lk(m);
            handed.push_back(std::move(*p));
          }
          cv.notify_one();
        },
        asio::detached);
  }

  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (acquired + failed < n && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  {
    std::lock_guard lk(m);
    stop = true;
  }
  cv.notify_one();
  releaser.join();
  guard.reset();
  ctx.stop();
  for (auto& t : io) t.join();

  EXPECT_EQ(acquired.load(), n);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(off_executor.load(), 0);
  EXPECT_LE(max_active.load(), static_cast<int>(limit));
  EXPECT_EQ(g.in_use(), 0u);
  EXPECT_EQ(g.waiting(), 0u);
}

TEST(NetmonGate, CloseFailsWaitersAndLaterAcquires) {
  request_gate g(1);
  auto held = g.try_acquire();
  asio::io_context ctx;
  std::optional<result_t> r1, r2;
  spawn_acquire(ctx, g, 5s, r1);
  ASSERT_TRUE(run_until(ctx, [&] { return g.waiting() == 1; }));
  g.close();
  ASSERT_TRUE(run_until(ctx, [&] { return r1.has_value(); }));
  EXPECT_EQ(r1->error(), asio::error::operation_aborted);
  held.reset();
  spawn_acquire(ctx, g, 5s, r2);
  ASSERT_TRUE(run_until(ctx, [&] { return r2.has_value(); }));
  EXPECT_EQ(r2->error(), asio::error::operation_aborted);
  EXPECT_FALSE(g.try_acquire());
}

TEST(NetmonGate, QueueIsBounded) {
  request_gate g(1, 1);
  auto held = g.try_acquire();
  asio::io_context ctx;
  std::optional<result_t> r1, r2;
  spawn_acquire(ctx, g, 5s, r1);
  ASSERT_TRUE(run_until(ctx, [&] { return g.waiting() == 1; }));
  spawn_acquire(ctx, g, 5s, r2);
  ASSERT_TRUE(run_until(ctx, [&] { return r2.has_value(); }));
  EXPECT_EQ(r2->error(), asio::error::no_buffer_space);
  held.reset();
  ASSERT_TRUE(run_until(ctx, [&] { return r1.has_value(); }));
  EXPECT_TRUE(r1->has_value());
}

TEST(NetmonGate, PermitMovesAndReleasesOnce) {
  request_gate g(2);
  auto p1 = g.try_acquire();
  ASSERT_TRUE(p1);
  permit a = std::move(*p1);
  EXPECT_FALSE(*p1);
  EXPECT_TRUE(a);
  permit b;
  b = std::move(a);
  EXPECT_EQ(g.in_use(), 1u);
  b.release();
  b.release();
  EXPECT_FALSE(b);
  EXPECT_EQ(g.in_use(), 0u);
  p1.reset();
  EXPECT_EQ(g.in_use(), 0u);
}

TEST(NetmonGate, PermitMayOutliveTheGate) {
  auto g = std::make_unique<request_gate>(1);
  auto p = g->try_acquire();
  ASSERT_TRUE(p);
  g.reset();
  p.reset();  // releases into the shared state, not into a destroyed gate
  SUCCEED();
}

}  // namespace
}  // namespace ferry::netmon
