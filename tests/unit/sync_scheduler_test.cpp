// The transfer scheduler: size lanes, slots never exceeded, shares by priority (stride scheduling),
// late joiners, cancellation by job and by the caller's cancellation slot, and tickets that free
// their slot exactly once. Grants are counted, never timed.
#include "sync/scheduler.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

namespace ferry::sync {
namespace {

using namespace std::chrono_literals;
using ticket = scheduler::ticket;
using job_ptr = std::shared_ptr<scheduler::job_handle>;
using outcome = std::optional<boost::system::result<ticket>>;

constexpr std::uint64_t small_object = 4096;
constexpr std::uint64_t large_object = 1ull << 30;
const boost::system::error_code aborted = asio::error::operation_aborted;

lane_config one_slot() {
  lane_config c;
  c.small_slots = c.medium_slots = c.large_slots = 1;
  return c;
}

// io_context::shutdown() is protected; the fixture calls it to destroy coroutines a failed test
// left suspended (and the tickets they hold) while the scheduler still exists.
class test_context : public asio::io_context {
 public:
  void shut_down() { shutdown(); }
};

class SyncSchedulerTest : public ::testing::Test {
 protected:
  ~SyncSchedulerTest() override {
    io_.shut_down();
    sched_.reset();
  }

  scheduler& make(lane_config c) { return sched_.emplace(io_.get_executor(), c); }

  // Starts `a` on `ex`; an exception escaping it fails the test.
  template <class Executor>
  void spawn(Executor ex, asio::awaitable<void> a) {
    ++live_;
    asio::co_spawn(ex, std::move(a), [this](std::exception_ptr e) {
      if (e) ++escaped_;
      --live_;
    });
  }

  // Runs the io_context on `threads` threads until no work is left; false if `limit` passed first.
  bool drain(int threads = 1, std::chrono::seconds limit = 30s) {
    io_.restart();
    std::vector<std::thread> extra;
    for (int i = 1; i < threads; ++i) extra.emplace_back([&] { io_.run_for(limit); });
    io_.run_for(limit);
    for (auto& t : extra) t.join();
    return io_.stopped() && live_ == 0 && escaped_ == 0;
  }

  // Runs handlers on this thread until `done()`; false if `limit` passed or nothing is left to run.
  template <class Pred>
  bool run_until(Pred done, std::chrono::seconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    io_.restart();
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (io_.run_one_for(100ms) == 0 && io_.stopped()) return done();
    }
    return true;
  }

  // Runs every handler that is ready, and what they post, without waiting for timers.
  void settle() {
    io_.restart();
    io_.poll();
  }

  test_context io_;
  std::optional<scheduler> sched_;
  std::atomic<int> live_{0}, escaped_{0};
};

asio::awaitable<void> take(scheduler& s, job_ptr job, std::uint64_t size, outcome& out) {
  auto r = co_await s.acquire(job, size);
  out.emplace(std::move(r));
}

// --- lanes ---

TEST(SyncSchedulerLanes, LaneForSplitsAtTheConfiguredEdges) {
  lane_config c;
  EXPECT_EQ(lane_for(0, c), lane::small);
  EXPECT_EQ(lane_for((1ull << 20) - 1, c), lane::small);
  EXPECT_EQ(lane_for(1ull << 20, c), lane::medium);
  EXPECT_EQ(lane_for((64ull << 20) - 1, c), lane::medium);
  EXPECT_EQ(lane_for(64ull << 20, c), lane::large);
  EXPECT_EQ(lane_for(UINT64_MAX, c), lane::large);

  lane_config overlapping;  // a multipart-sized object is large whatever small_below says
  overlapping.small_below = 100;
  overlapping.large_from = 50;
  EXPECT_EQ(lane_for(49, overlapping), lane::small);
  EXPECT_EQ(lane_for(50, overlapping), lane::large);

  EXPECT_EQ(to_string(lane::small), "small");
  EXPECT_EQ(to_string(lane::medium), "medium");
  EXPECT_EQ(to_string(lane::large), "large");
}

TEST_F(SyncSchedulerTest, SlotCountsAreClampedAndReported) {
  lane_config c;
  c.small_slots = 0;
  c.medium_slots = -3;
  c.large_slots = 1 << 30;
  auto& s = make(c);
  EXPECT_EQ(s.stats(lane::small).slots, 1);
  EXPECT_EQ(s.stats(lane::medium).slots, 1);
  EXPECT_EQ(s.stats(lane::large).slots, max_lane_slots);
  EXPECT_EQ(s.stats(lane::small).in_use, 0);
  EXPECT_EQ(s.stats(lane::small).waiting, 0);
}

TEST_F(SyncSchedulerTest, HandlesFromElsewhereAreRefused) {
  auto& s = make({});
  scheduler other(io_.get_executor(), {});
  auto stranger = other.join("stranger", 1);
  job_ptr none;
  outcome a, b;
  spawn(io_.get_executor(), take(s, stranger, small_object, a));
  spawn(io_.get_executor(), take(s, none, small_object, b));
  ASSERT_TRUE(drain());
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->error(), asio::error::invalid_argument);
  EXPECT_EQ(b->error(), asio::error::invalid_argument);
  EXPECT_EQ(s.stats(lane::small).in_use, 0);
}

// --- slots ---

struct occupancy {
  std::atomic<int> holders{0}, peak{0}, grants{0}, failures{0}, off_executor{0}, over_stats{0};
};

// Takes a slot `rounds` times, holding each for a moment, from the job's own strand.
asio::awaitable<void> hold_repeatedly(scheduler& s, job_ptr job, asio::strand<asio::io_context::executor_type> mine,
                                      int rounds, int slots, occupancy& o) {
  asio::steady_timer hold(mine);
  for (int r = 0; r < rounds; ++r) {
    auto t = co_await s.acquire(job, small_object);
    if (!t) {
      ++o.failures;
      co_return;
    }
    if (!mine.running_in_this_thread()) ++o.off_executor;
    const int now = ++o.holders;
    int seen = o.peak.load();
    while (now > seen && !o.peak.compare_exchange_weak(seen, now)) {
    }
    if (s.stats(lane::small).in_use > slots) ++o.over_stats;
    ++o.grants;
    hold.expires_after(1ms);
    co_await hold.async_wait(asio::as_tuple(asio::use_awaitable));
    --o.holders;  // before the ticket goes at the end of this iteration
  }
}

TEST_F(SyncSchedulerTest, HoldersNeverOutnumberSlotsWithManyWaitersOnTwoThreads) {
  lane_config c;
  c.small_slots = 3;
  auto& s = make(c);
  occupancy o;
  constexpr int jobs = 4, workers = 10, rounds = 10;
  std::vector<job_ptr> handles;
  for (int j = 0; j < jobs; ++j) handles.push_back(s.join("job-" + std::to_string(j), j + 1));
  for (int j = 0; j < jobs; ++j) {
    for (int w = 0; w < workers; ++w) {
      auto strand = asio::make_strand(io_.get_executor());
      spawn(strand, hold_repeatedly(s, handles[j], strand, rounds, c.small_slots, o));
    }
  }
  ASSERT_TRUE(drain(2));
  EXPECT_EQ(o.failures.load(), 0);
  EXPECT_EQ(o.grants.load(), jobs * workers * rounds);
  EXPECT_EQ(o.peak.load(), 3);  // full use, never more
  EXPECT_EQ(o.over_stats.load(), 0);
  EXPECT_EQ(o.off_executor.load(), 0);  // every caller resumed on its own strand
  EXPECT_EQ(s.stats(lane::small).in_use, 0);
  EXPECT_EQ(s.stats(lane::small).waiting, 0);
}

TEST_F(SyncSchedulerTest, SmallObjectsKeepFlowingWhileTheLargeLaneIsFull) {
  lane_config c;
  c.large_slots = 2;
  c.small_slots = 1;
  auto& s = make(c);
  auto big = s.join("big", 100), little = s.join("little", 1);
  std::array<outcome, 3> large;
  for (auto& o : large) spawn(io_.get_executor(), take(s, big, large_object, o));
  auto granted = [&] {
    int n = 0;
    for (auto& o : large) n += o.has_value();
    return n;
  };
  ASSERT_TRUE(run_until([&] { return granted() == 2 && s.stats(lane::large).waiting == 1; }));

  int smalls = 0;
  auto stream = [](scheduler& sch, job_ptr job, int& done) -> asio::awaitable<void> {
    for (int i = 0; i < 50; ++i) {
      auto t = co_await sch.acquire(job, small_object);
      if (!t) co_return;
      ++done;
    }
  };
  spawn(io_.get_executor(), stream(s, little, smalls));
  ASSERT_TRUE(run_until([&] { return smalls == 50; }));
  EXPECT_EQ(granted(), 2);
  auto st = s.stats(lane::large);
  EXPECT_EQ(st.slots, 2);
  EXPECT_EQ(st.in_use, 2);
  EXPECT_EQ(st.waiting, 1);

  for (auto& o : large) {  // one large object ends: the one waiting starts
    if (o) {
      ASSERT_TRUE(*o);
      o.reset();
      break;
    }
  }
  ASSERT_TRUE(run_until([&] { return granted() == 2 && s.stats(lane::large).waiting == 0; }));
  for (auto& o : large) o.reset();
  ASSERT_TRUE(drain());
  EXPECT_EQ(s.stats(lane::large).in_use, 0);
}

// --- shares ---

// Shared by the competitors of one race for a single slot. Grants from `phase_at` on count in
// phase 1; `at_phase` runs once, when that grant is made.
struct race {
  int limit = 0, total = 0, errors = 0;
  int phase_at = INT_MAX;
  std::function<void()> at_phase;
};
struct grants {
  std::array<int, 2> by_phase{0, 0};
  int all() const { return by_phase[0] + by_phase[1]; }
};

// Keeps taking slots for its job until the race has had `limit` grants. Each job runs several of
// these, so it always has a wait queued, as a job with many objects does.
asio::awaitable<void> compete(scheduler& s, job_ptr job, race& r, grants& mine) {
  auto ex = co_await asio::this_coro::executor;
  for (;;) {
    auto t = co_await s.acquire(job, small_object);
    if (!t) {
      ++r.errors;
      co_return;
    }
    if (r.total >= r.limit) co_return;
    ++mine.by_phase[r.total >= r.phase_at ? 1 : 0];
    if (++r.total == r.phase_at && r.at_phase) r.at_phase();
    co_await asio::post(ex, asio::use_awaitable);  // hold the slot across a hop, as a transfer would
  }
}

TEST_F(SyncSchedulerTest, PriorityThreeGetsThreeTimesTheGrantsOfPriorityOne) {
  auto& s = make(one_slot());
  auto heavy = s.join("heavy", 3), light = s.join("light", 1);
  race r;
  r.limit = 800;
  grants h, l;
  for (int i = 0; i < 4; ++i) {
    spawn(io_.get_executor(), compete(s, heavy, r, h));
    spawn(io_.get_executor(), compete(s, light, r, l));
  }
  ASSERT_TRUE(drain());
  EXPECT_EQ(r.errors, 0);
  EXPECT_EQ(h.all() + l.all(), 800);
  ASSERT_GT(l.all(), 0);
  EXPECT_NEAR(static_cast<double>(h.all()) / l.all(), 3.0, 0.3) << h.all() << " vs " << l.all();
}

TEST_F(SyncSchedulerTest, PrioritiesAreClampedToOneToAHundred) {
  auto& s = make(one_slot());
  auto high = s.join("high", 1000), low = s.join("low", -5);  // 100 and 1
  race r;
  r.limit = 1010;
  grants h, l;
  for (int i = 0; i < 3; ++i) {
    spawn(io_.get_executor(), compete(s, high, r, h));
    spawn(io_.get_executor(), compete(s, low, r, l));
  }
  ASSERT_TRUE(drain());
  EXPECT_EQ(r.errors, 0);
  EXPECT_EQ(h.all() + l.all(), 1010);
  EXPECT_NEAR(l.all(), 10, 2) << h.all() << " vs " << l.all();
}

TEST_F(SyncSchedulerTest, SetPriorityChangesTheShareFromTheNextGrant) {
  auto& s = make(one_slot());
  auto a = s.join("a", 1), b = s.join("b", 1);
  race r;
  r.limit = 600;
  r.phase_at = 200;
  r.at_phase = [&] { s.set_priority(b, 3); };
  grants ga, gb;
  for (int i = 0; i < 3; ++i) {
    spawn(io_.get_executor(), compete(s, a, r, ga));
    spawn(io_.get_executor(), compete(s, b, r, gb));
  }
  ASSERT_TRUE(drain());
  EXPECT_NEAR(ga.by_phase[0], 100, 5);
  EXPECT_NEAR(gb.by_phase[0], 100, 5);
  ASSERT_GT(ga.by_phase[1], 0);
  EXPECT_NEAR(static_cast<double>(gb.by_phase[1]) / ga.by_phase[1], 3.0, 0.3)
      << gb.by_phase[1] << " vs " << ga.by_phase[1];
}

TEST_F(SyncSchedulerTest, LateJoinerNeitherStarvesNorIsStarved) {
  auto& s = make(one_slot());
  auto a = s.join("a", 1), b = s.join("b", 1);
  job_ptr late;
  race r;
  r.limit = 600;
  r.phase_at = 300;
  grants ga, gb, gl;
  // After 300 grants between a and b, a third job of the same priority arrives. Had it started at
  // virtual time zero, it would take the next 150 grants alone.
  r.at_phase = [&] {
    late = s.join("late", 1);
    for (int i = 0; i < 3; ++i) spawn(io_.get_executor(), compete(s, late, r, gl));
  };
  for (int i = 0; i < 3; ++i) {
    spawn(io_.get_executor(), compete(s, a, r, ga));
    spawn(io_.get_executor(), compete(s, b, r, gb));
  }
  ASSERT_TRUE(drain());
  EXPECT_EQ(r.errors, 0);
  EXPECT_NEAR(ga.by_phase[0], 150, 5);
  EXPECT_NEAR(gb.by_phase[0], 150, 5);
  EXPECT_EQ(gl.by_phase[0], 0);
  // 300 grants after it joined: about a third each.
  EXPECT_NEAR(gl.by_phase[1], 100, 15) << ga.by_phase[1] << "/" << gb.by_phase[1] << "/" << gl.by_phase[1];
  EXPECT_NEAR(ga.by_phase[1], 100, 15);
  EXPECT_NEAR(gb.by_phase[1], 100, 15);
}

// --- cancellation ---

TEST_F(SyncSchedulerTest, CancelFailsTheJobsWaitsAndReleasesNothingItDoesNotHold) {
  auto& s = make(one_slot());
  auto holder = s.join("holder", 1), doomed = s.join("doomed", 50), bystander = s.join("bystander", 1);
  outcome held;
  spawn(io_.get_executor(), take(s, holder, small_object, held));
  ASSERT_TRUE(run_until([&] { return held.has_value(); }));
  ASSERT_TRUE(*held);

  std::array<outcome, 3> waits;
  for (auto& w : waits) spawn(io_.get_executor(), take(s, doomed, small_object, w));
  outcome other;
  spawn(io_.get_executor(), take(s, bystander, small_object, other));
  ASSERT_TRUE(run_until([&] { return s.stats(lane::small).waiting == 4; }));

  s.cancel(doomed);
  ASSERT_TRUE(run_until([&] { return waits[0] && waits[1] && waits[2]; }));
  for (auto& w : waits) EXPECT_EQ(w->error(), aborted);
  settle();
  EXPECT_FALSE(other.has_value());  // the slot is still the holder's
  EXPECT_EQ(s.stats(lane::small).in_use, 1);
  EXPECT_EQ(s.stats(lane::small).waiting, 1);

  outcome later;  // a wait begun after cancel() fails too
  spawn(io_.get_executor(), take(s, doomed, small_object, later));
  ASSERT_TRUE(run_until([&] { return later.has_value(); }));
  EXPECT_EQ(later->error(), aborted);

  s.cancel(holder);  // its ticket stays valid until released
  settle();
  EXPECT_FALSE(other.has_value());
  EXPECT_TRUE((*held)->held());
  EXPECT_EQ(s.stats(lane::small).in_use, 1);

  held.reset();
  ASSERT_TRUE(run_until([&] { return other.has_value(); }));
  EXPECT_TRUE(*other);
  other.reset();
  ASSERT_TRUE(drain());
  EXPECT_EQ(s.stats(lane::small).in_use, 0);
  EXPECT_EQ(s.stats(lane::small).waiting, 0);
}

TEST_F(SyncSchedulerTest, TheCallersCancellationSlotEndsTheWait) {
  auto& s = make(one_slot());
  auto job = s.join("j", 1);
  outcome held;
  spawn(io_.get_executor(), take(s, job, small_object, held));
  ASSERT_TRUE(run_until([&] { return held.has_value(); }));

  asio::cancellation_signal sig;
  outcome waited;
  asio::co_spawn(io_, take(s, job, small_object, waited),
                 asio::bind_cancellation_slot(sig.slot(), [this](std::exception_ptr e) {
                   if (e) ++escaped_;
                 }));
  ASSERT_TRUE(run_until([&] { return s.stats(lane::small).waiting == 1; }));
  sig.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until([&] { return waited.has_value(); }));
  EXPECT_EQ(waited->error(), aborted);
  settle();
  EXPECT_EQ(s.stats(lane::small).waiting, 0);
  EXPECT_EQ(s.stats(lane::small).in_use, 1);

  // The job itself is not cancelled: its next wait gets the slot when the holder lets go.
  outcome next;
  spawn(io_.get_executor(), take(s, job, small_object, next));
  ASSERT_TRUE(run_until([&] { return s.stats(lane::small).waiting == 1; }));
  held.reset();
  ASSERT_TRUE(run_until([&] { return next.has_value(); }));
  EXPECT_TRUE(*next);
  next.reset();
  ASSERT_TRUE(drain());
  EXPECT_EQ(s.stats(lane::small).in_use, 0);
}

TEST_F(SyncSchedulerTest, ASlotGrantedAsTheCallerGaveUpIsGivenBack) {
  auto& s = make(one_slot());
  auto job = s.join("j", 1);
  outcome held;
  spawn(io_.get_executor(), take(s, job, small_object, held));
  ASSERT_TRUE(run_until([&] { return held.has_value(); }));
  asio::cancellation_signal sig;
  outcome waited;
  asio::co_spawn(io_, take(s, job, small_object, waited),
                 asio::bind_cancellation_slot(sig.slot(), [this](std::exception_ptr e) {
                   if (e) ++escaped_;
                 }));
  ASSERT_TRUE(run_until([&] { return s.stats(lane::small).waiting == 1; }));

  // Nothing runs between these two lines. co_spawn delivers the signal through the coroutine's
  // executor, so it lands first, and the strand then grants the freed slot to a waiter that has
  // already stopped listening.
  sig.emit(asio::cancellation_type::terminal);
  (*held)->release();
  ASSERT_TRUE(run_until([&] { return waited.has_value(); }));
  EXPECT_EQ(waited->error(), aborted);
  settle();
  EXPECT_EQ(s.stats(lane::small).in_use, 0);
  EXPECT_EQ(s.stats(lane::small).waiting, 0);

  outcome again;
  spawn(io_.get_executor(), take(s, job, small_object, again));
  ASSERT_TRUE(run_until([&] { return again.has_value(); }));
  EXPECT_TRUE(*again);
  again.reset();
  held.reset();
  ASSERT_TRUE(drain());
  EXPECT_EQ(s.stats(lane::small).in_use, 0);
}

// --- tickets ---

TEST_F(SyncSchedulerTest, TicketsMoveAndFreeTheirSlotExactlyOnce) {
  lane_config c;
  c.small_slots = 2;
  auto& s = make(c);
  auto job = s.join("j", 1);
  outcome a, b;
  spawn(io_.get_executor(), take(s, job, small_object, a));
  spawn(io_.get_executor(), take(s, job, small_object, b));
  ASSERT_TRUE(run_until([&] { return a && b; }));
  ASSERT_TRUE(*a && *b);

  ticket t1 = std::move(**a);
  ticket t2 = std::move(**b);
  EXPECT_FALSE((*a)->held());
  EXPECT_TRUE(t1.held());
  EXPECT_EQ(t1.lane(), lane::small);
  a.reset();  // moved-from: frees nothing
  b.reset();
  settle();
  EXPECT_EQ(s.stats(lane::small).in_use, 2);

  t1 = std::move(t2);  // t1's own slot is freed, t2's moves in
  EXPECT_FALSE(t2.held());
  EXPECT_TRUE(t1.held());
  t2.release();
  settle();
  EXPECT_EQ(s.stats(lane::small).in_use, 1);

  ticket& same = t1;
  t1 = std::move(same);
  EXPECT_TRUE(t1.held());
  settle();
  EXPECT_EQ(s.stats(lane::small).in_use, 1);

  // With t1 held, exactly one more slot is free: an extra release anywhere above would show here.
  outcome x, y;
  spawn(io_.get_executor(), take(s, job, small_object, x));
  spawn(io_.get_executor(), take(s, job, small_object, y));
  ASSERT_TRUE(run_until([&] { return (x.has_value() || y.has_value()) && s.stats(lane::small).waiting == 1; }));
  settle();
  EXPECT_NE(x.has_value(), y.has_value());
  EXPECT_EQ(s.stats(lane::small).in_use, 2);

  t1.release();
  t1.release();
  ASSERT_TRUE(run_until([&] { return x && y; }));
  settle();
  EXPECT_EQ(s.stats(lane::small).in_use, 2);
  x.reset();
  y.reset();
  ASSERT_TRUE(drain());
  EXPECT_EQ(s.stats(lane::small).in_use, 0);
}

}  // namespace
}  // namespace ferry::sync
