#include "ratelimit/limiter.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cassert>
#include <tuple>
#include <vector>

namespace ferry::ratelimit {
namespace {

namespace asio = boost::asio;

// How often a waiter re-reads the rate: bounds how late a raised limit reaches it.
constexpr auto max_slice = std::chrono::milliseconds(50);

}  // namespace

gate::gate(timetable tt, std::chrono::system_clock::time_point wall, steady_time now)
    : tt_(std::move(tt)), up_(tt_.at(wall).up, now), down_(tt_.at(wall).down, now) {}

void gate::apply(std::chrono::system_clock::time_point wall, steady_time now) {
  std::lock_guard lock(mutex_);
  const bandwidth bw = tt_.at(wall);
  up_.set_rate(bw.up, now);
  down_.set_rate(bw.down, now);
}

void gate::set_timetable(timetable tt, std::chrono::system_clock::time_point wall, steady_time now) {
  std::lock_guard lock(mutex_);
  tt_ = std::move(tt);
  const bandwidth bw = tt_.at(wall);
  up_.set_rate(bw.up, now);
  down_.set_rate(bw.down, now);
}

timetable gate::current_timetable() const {
  std::lock_guard lock(mutex_);
  return tt_;
}

std::optional<std::chrono::system_clock::time_point> gate::next_change(
    std::chrono::system_clock::time_point wall) const {
  std::lock_guard lock(mutex_);
  return tt_.next_change(wall);
}

throttle::throttle(std::initializer_list<std::shared_ptr<gate>> gates) {
  for (const auto& g : gates) {
    if (!g) continue;
    assert(count_ < max_gates);
    if (count_ == max_gates) break;
    gates_[count_++] = g;
  }
}

bool throttle::unlimited(direction d) const {
  for (std::size_t i = 0; i < count_; ++i)
    if (gates_[i]->bucket(d).rate() != 0) return false;
  return true;
}

bool throttle::try_acquire(direction d, std::size_t n) const {
  if (!unlimited(d)) return false;
  // Still taken, for the byte counters; an unlimited bucket never makes anyone wait for it.
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < count_; ++i) gates_[i]->bucket(d).take(n, now);
  return true;
}

asio::awaitable<boost::system::error_code> throttle::acquire(direction d, std::size_t n) const {
  return acquire_in(*this, d, n);
}

asio::awaitable<boost::system::error_code> throttle::acquire_in(throttle self, direction d, std::size_t n) {
  std::array<std::uint64_t, max_gates> positions{};
  auto now = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < self.count_; ++i) positions[i] = self.gates_[i]->bucket(d).take(n, now);

  const auto ex = co_await asio::this_coro::executor;
  std::optional<asio::steady_timer> timer;
  for (;;) {
    now = std::chrono::steady_clock::now();
    std::chrono::nanoseconds wait{0};
    for (std::size_t i = 0; i < self.count_; ++i)
      wait = std::max(wait, self.gates_[i]->bucket(d).wait_for(positions[i], now));
    if (wait.count() == 0) co_return boost::system::error_code{};

    // Checked before every sleep: a wait started after cancellation would otherwise throw (throw_if_cancelled).
    const auto cs = co_await asio::this_coro::cancellation_state;
    boost::system::error_code ec;
    if (cs.cancelled() != asio::cancellation_type::none) {
      ec = asio::error::operation_aborted;
    } else {
      if (!timer) timer.emplace(ex);
      timer->expires_after(std::min<std::chrono::nanoseconds>(wait, max_slice));
      std::tie(ec) = co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (ec) {
      // The bytes never moved: let other transfers have them.
      self.refund(d, n);
      co_return ec;
    }
  }
}

void throttle::refund(direction d, std::size_t n) const {
  for (std::size_t i = 0; i < count_; ++i) gates_[i]->bucket(d).refund(n);
}

std::size_t throttle::quantum(direction d) const {
  std::size_t q = token_bucket::max_quantum;
  for (std::size_t i = 0; i < count_; ++i) q = std::min(q, gates_[i]->bucket(d).quantum());
  return q;
}

limits::limits(timetable global) : global_(std::make_shared<gate>(std::move(global))) {}

std::shared_ptr<gate> limits::add_job(const std::string& id, timetable tt) {
  auto g = std::make_shared<gate>(std::move(tt));
  std::lock_guard lock(mutex_);
  std::erase_if(jobs_, [](const auto& kv) { return kv.second.expired(); });
  jobs_[id] = g;
  return g;
}

void limits::attach_job(const std::string& id, std::shared_ptr<gate> g) {
  std::lock_guard lock(mutex_);
  std::erase_if(jobs_, [](const auto& kv) { return kv.second.expired(); });
  jobs_[id] = std::move(g);
}

std::shared_ptr<gate> limits::find_job(const std::string& id) const {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second.lock();
}

void limits::tick(std::chrono::system_clock::time_point wall, steady_time now) {
  global_->apply(wall, now);
  std::vector<std::shared_ptr<gate>> live;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(jobs_, [](const auto& kv) { return kv.second.expired(); });
    for (const auto& [id, w] : jobs_)
      if (auto g = w.lock()) live.push_back(std::move(g));
  }
  // Outside the registry lock: applying takes each gate's and bucket's locks.
  for (const auto& g : live) g->apply(wall, now);
}

std::optional<std::chrono::system_clock::time_point> limits::next_change(
    std::chrono::system_clock::time_point wall) const {
  auto best = global_->next_change(wall);
  std::lock_guard lock(mutex_);
  for (const auto& [id, w] : jobs_) {
    const auto g = w.lock();
    if (!g) continue;
    const auto c = g->next_change(wall);
    if (c && (!best || *c < *best)) best = c;
  }
  return best;
}

}  // namespace ferry::ratelimit
