#include "sync/scheduler.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <tuple>
#include <utility>

namespace ferry::sync {

namespace {

// Virtual time one grant costs a job of priority 1; priority p pays stride_one / p. 2^20 keeps the
// rounding under a millionth and the counters 2^44 grants away from overflowing.
constexpr std::uint64_t stride_one = 1ull << 20;

int clamp_priority(int p) { return std::clamp(p, 1, 100); }
int clamp_slots(int n) { return std::clamp(n, 1, max_lane_slots); }
std::size_t index_of(lane l) { return static_cast<std::size_t>(l); }
boost::system::error_code aborted() { return make_error_code(asio::error::operation_aborted); }

}  // namespace

std::string_view to_string(lane l) {
  switch (l) {
    case lane::small:
      return "small";
    case lane::medium:
      return "medium";
    case lane::large:
      return "large";
  }
  return "unknown";
}

lane lane_for(std::uint64_t size, const lane_config& c) {
  if (size >= c.large_from) return lane::large;
  if (size < c.small_below) return lane::small;
  return lane::medium;
}

// One acquire() waiting. The strand decides its fate; the caller learns it through a thread-safe
// channel bound to the caller's executor, so it resumes there whichever thread decided.
struct scheduler::waiter {
  enum class state { queued, granted, failed };
  waiter(asio::any_io_executor ex, std::shared_ptr<job_handle> j, sync::lane l)
      : job(std::move(j)), which(l), wake(std::move(ex), 1) {}
  std::shared_ptr<job_handle> job;
  const sync::lane which;
  state st = state::queued;  // strand only
  // Room for one message: the verdict is buffered when the caller has stopped listening.
  asio::experimental::concurrent_channel<void(boost::system::error_code)> wake;
};

struct scheduler::job_handle {
  job_handle(const scheduler* o, std::string i, std::uint64_t s, int p)
      : owner(o), id(std::move(i)), seq(s), priority(p) {}
  const scheduler* owner;
  const std::string id;
  const std::uint64_t seq;  // join order: breaks ties between equal virtual times
  std::atomic<int> priority;
  std::atomic<bool> cancelled{false};
  struct lane_part {
    std::uint64_t pass = 0;  // virtual time: grants so far, each weighted by 1 / priority
    std::deque<std::shared_ptr<waiter>> queue;
  };
  std::array<lane_part, 3> lanes;  // strand only
};

scheduler::ticket::ticket(ticket&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), lane_(o.lane_) {}

scheduler::ticket& scheduler::ticket::operator=(ticket&& o) noexcept {
  if (this != &o) {
    release();
    owner_ = std::exchange(o.owner_, nullptr);
    lane_ = o.lane_;
  }
  return *this;
}

void scheduler::ticket::release() {
  scheduler* s = std::exchange(owner_, nullptr);
  if (s == nullptr) return;
  asio::post(s->strand_, [s, i = index_of(lane_)] { s->release_slot(i); });
}

scheduler::scheduler(asio::any_io_executor ex, lane_config c) : strand_(asio::make_strand(std::move(ex))), cfg_(c) {
  cfg_.small_slots = clamp_slots(cfg_.small_slots);
  cfg_.medium_slots = clamp_slots(cfg_.medium_slots);
  cfg_.large_slots = clamp_slots(cfg_.large_slots);
  lanes_[index_of(lane::small)].slots = cfg_.small_slots;
  lanes_[index_of(lane::medium)].slots = cfg_.medium_slots;
  lanes_[index_of(lane::large)].slots = cfg_.large_slots;
}

scheduler::~scheduler() {
  // Nothing runs on the strand any more (see the header). Waiters left behind by coroutines that
  // were never resumed hold their job; drop the queues so jobs and waiters do not keep each other.
  for (auto& ls : lanes_) {
    for (auto& job : ls.active)
      for (auto& part : job->lanes) part.queue.clear();
    ls.active.clear();
  }
}

std::shared_ptr<scheduler::job_handle> scheduler::join(std::string job_id, int priority) {
  return std::make_shared<job_handle>(this, std::move(job_id), next_seq_.fetch_add(1, std::memory_order_relaxed),
                                      clamp_priority(priority));
}

void scheduler::set_priority(const std::shared_ptr<job_handle>& job, int priority) {
  if (job && job->owner == this) job->priority.store(clamp_priority(priority), std::memory_order_relaxed);
}

void scheduler::cancel(const std::shared_ptr<job_handle>& job) {
  if (!job || job->owner != this) return;
  // Set here, not on the strand, so an acquire() started after cancel() returns fails at once.
  job->cancelled.store(true, std::memory_order_release);
  asio::post(strand_, [this, job] { fail_waiters(*job); });
}

scheduler::lane_stats scheduler::stats(sync::lane l) const {
  const auto& ls = lanes_[index_of(l)];
  return {ls.slots, ls.in_use.load(std::memory_order_relaxed), ls.waiting.load(std::memory_order_relaxed)};
}

asio::awaitable<boost::system::result<scheduler::ticket>> scheduler::acquire(std::shared_ptr<job_handle> job,
                                                                             std::uint64_t object_size) {
  if (!job || job->owner != this) co_return make_error_code(asio::error::invalid_argument);
  if (job->cancelled.load(std::memory_order_acquire)) co_return aborted();
  // Already cancelled: the co_await below would throw instead of returning the error.
  asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
  if (cs.cancelled() != asio::cancellation_type::none) co_return aborted();

  asio::any_io_executor ex = co_await asio::this_coro::executor;
  auto w = std::make_shared<waiter>(std::move(ex), std::move(job), lane_for(object_size, cfg_));
  asio::post(strand_, [this, w] { enqueue(w); });
  auto [ec] = co_await w->wake.async_receive(asio::as_tuple(asio::use_awaitable));
  if (ec) {
    // Failed by cancel(), or the caller gave up: then leave the queue, or give back a slot granted
    // in the meantime. The strand knows which.
    asio::post(strand_, [this, w] { abandon(w); });
    co_return aborted();
  }
  co_return ticket(this, w->which);
}

void scheduler::enqueue(const std::shared_ptr<waiter>& w) {
  if (w->job->cancelled.load(std::memory_order_acquire)) {
    w->st = waiter::state::failed;
    w->wake.try_send(aborted());
    return;
  }
  const std::size_t i = index_of(w->which);
  auto& ls = lanes_[i];
  auto& part = w->job->lanes[i];
  if (part.queue.empty()) {
    // A job that joins late or comes back starts at the lane's virtual time, not at its old (or
    // zero) one: it cannot take back the turns it did not wait for, and so cannot starve others.
    part.pass = std::max(part.pass, ls.vtime);
    ls.active.push_back(w->job);
  }
  part.queue.push_back(w);
  ls.waiting.fetch_add(1, std::memory_order_relaxed);
  grant(i);
}

void scheduler::grant(std::size_t i) {
  auto& ls = lanes_[i];
  while (ls.in_use.load(std::memory_order_relaxed) < ls.slots && !ls.active.empty()) {
    // A linear scan: a ferryd runs tens of jobs, not thousands.
    auto next = std::min_element(ls.active.begin(), ls.active.end(), [i](const auto& a, const auto& b) {
      return std::tie(a->lanes[i].pass, a->seq) < std::tie(b->lanes[i].pass, b->seq);
    });
    std::shared_ptr<job_handle> job = *next;
    auto& part = job->lanes[i];
    std::shared_ptr<waiter> w = std::move(part.queue.front());
    part.queue.pop_front();
    if (part.queue.empty()) {
      *next = std::move(ls.active.back());
      ls.active.pop_back();
    }
    ls.vtime = std::max(ls.vtime, part.pass);
    part.pass += stride_one / static_cast<std::uint64_t>(job->priority.load(std::memory_order_relaxed));
    ls.in_use.fetch_add(1, std::memory_order_relaxed);
    ls.waiting.fetch_sub(1, std::memory_order_relaxed);
    w->st = waiter::state::granted;
    w->wake.try_send(boost::system::error_code{});
  }
}

void scheduler::release_slot(std::size_t i) {
  auto& ls = lanes_[i];
  if (ls.in_use.load(std::memory_order_relaxed) > 0) ls.in_use.fetch_sub(1, std::memory_order_relaxed);
  grant(i);
}

void scheduler::abandon(const std::shared_ptr<waiter>& w) {
  const std::size_t i = index_of(w->which);
  switch (w->st) {
    case waiter::state::queued: {
      auto& ls = lanes_[i];
      auto& part = w->job->lanes[i];
      auto it = std::find(part.queue.begin(), part.queue.end(), w);
      if (it != part.queue.end()) {
        part.queue.erase(it);
        ls.waiting.fetch_sub(1, std::memory_order_relaxed);
        if (part.queue.empty()) std::erase(ls.active, w->job);
      }
      break;
    }
    case waiter::state::granted:
      release_slot(i);  // granted as the caller gave up: nobody holds a ticket for it
      break;
    case waiter::state::failed:
      break;
  }
  w->st = waiter::state::failed;
}

void scheduler::fail_waiters(job_handle& job) {
  for (std::size_t i = 0; i < job.lanes.size(); ++i) {
    auto& part = job.lanes[i];
    if (part.queue.empty()) continue;
    auto& ls = lanes_[i];
    std::erase_if(ls.active, [&job](const auto& a) { return a.get() == &job; });
    ls.waiting.fetch_sub(static_cast<int>(part.queue.size()), std::memory_order_relaxed);
    std::deque<std::shared_ptr<waiter>> doomed;
    doomed.swap(part.queue);
    for (auto& w : doomed) {
      w->st = waiter::state::failed;
      w->wake.try_send(aborted());
    }
  }
}

}  // namespace ferry::sync
