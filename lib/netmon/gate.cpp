#include "netmon/gate.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <mutex>
#include <vector>

namespace ferry::netmon {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace detail {

// One queued acquire. The channel is how a releaser on another thread wakes it: thread-safe,
// and it keeps the wake-up if it comes before the waiter started listening.
struct waiter {
  explicit waiter(asio::any_io_executor ex) : ready(std::move(ex), 1) {}
  asio::experimental::concurrent_channel<void(error_code)> ready;
  bool granted = false;  // guarded by gate_state::mutex
};

struct gate_state {
  gate_state(std::size_t l, std::size_t mw) : limit(l), max_waiters(mw) {}

  // Hands free slots to waiters in order; returns whom to wake (outside the lock).
  void grant_locked(std::vector<std::shared_ptr<waiter>>& wake) {
    while (!closed && in_use < limit && !waiters.empty()) {
      auto w = std::move(waiters.front());
      waiters.pop_front();
      w->granted = true;
      ++in_use;
      wake.push_back(std::move(w));
    }
  }

  static void wake_all(const std::vector<std::shared_ptr<waiter>>& wake, error_code ec = {}) {
    for (const auto& w : wake) w->ready.try_send(ec);
  }

  void release() {
    std::vector<std::shared_ptr<waiter>> wake;
    {
      std::lock_guard lk(mutex);
      if (in_use > 0) --in_use;
      grant_locked(wake);
    }
    wake_all(wake);
  }

  mutable std::mutex mutex;
  std::size_t limit;
  std::size_t max_waiters;
  std::size_t in_use = 0;
  bool closed = false;
  std::deque<std::shared_ptr<waiter>> waiters;
};

}  // namespace detail

permit& permit::operator=(permit&& o) noexcept {
  if (this != &o) {
    release();
    state_ = std::move(o.state_);
  }
  return *this;
}

permit::~permit() { release(); }

void permit::release() {
  if (auto s = std::move(state_)) s->release();
}

request_gate::request_gate(std::size_t limit, std::size_t max_waiters)
    : state_(std::make_shared<detail::gate_state>(limit, max_waiters)) {}

request_gate::~request_gate() { close(); }

asio::awaitable<boost::system::result<permit>> request_gate::acquire(std::chrono::milliseconds timeout) {
  // The frame keeps the state alive: the gate itself may go away while we wait.
  auto st = state_;
  auto cs = co_await asio::this_coro::cancellation_state;
  if (cs.cancelled() != asio::cancellation_type::none) co_return error_code(asio::error::operation_aborted);
  auto ex = co_await asio::this_coro::executor;

  std::shared_ptr<detail::waiter> w;
  {
    std::lock_guard lk(st->mutex);
    if (st->closed) co_return error_code(asio::error::operation_aborted);
    if (st->waiters.empty() && st->in_use < st->limit) {
      ++st->in_use;
      co_return permit(st);
    }
    if (timeout <= std::chrono::milliseconds::zero()) co_return error_code(asio::error::timed_out);
    if (st->waiters.size() >= st->max_waiters) co_return error_code(asio::error::no_buffer_space);
    w = std::make_shared<detail::waiter>(ex);
    st->waiters.push_back(w);
  }

  constexpr auto tok = asio::as_tuple(asio::use_awaitable);
  asio::steady_timer timer(ex, timeout);
  auto r = co_await (w->ready.async_receive(tok) || timer.async_wait(tok));
  const error_code ec = r.index() == 0 ? std::get<0>(std::get<0>(r)) : std::get<0>(std::get<1>(r));
  const bool timed_out = r.index() == 1 && !ec;

  std::unique_lock lk(st->mutex);
  if (w->granted) {
    if (timed_out || !ec) co_return permit(st);  // a grant that raced the timer still counts
    lk.unlock();
    st->release();  // cancelled after the grant: hand the slot on
    co_return error_code(asio::error::operation_aborted);
  }
  std::erase(st->waiters, w);
  co_return error_code(timed_out ? asio::error::timed_out : asio::error::operation_aborted);
}

std::optional<permit> request_gate::try_acquire() {
  std::lock_guard lk(state_->mutex);
  if (state_->closed || !state_->waiters.empty() || state_->in_use >= state_->limit) return std::nullopt;
  ++state_->in_use;
  return permit(state_);
}

void request_gate::set_limit(std::size_t n) {
  std::vector<std::shared_ptr<detail::waiter>> wake;
  {
    std::lock_guard lk(state_->mutex);
    state_->limit = n;
    state_->grant_locked(wake);
  }
  detail::gate_state::wake_all(wake);
}

void request_gate::close() {
  std::vector<std::shared_ptr<detail::waiter>> wake;
  {
    std::lock_guard lk(state_->mutex);
    state_->closed = true;
    wake.assign(state_->waiters.begin(), state_->waiters.end());
    state_->waiters.clear();
  }
  detail::gate_state::wake_all(wake, asio::error::operation_aborted);
}

std::size_t request_gate::limit() const {
  std::lock_guard lk(state_->mutex);
  return state_->limit;
}

std::size_t request_gate::in_use() const {
  std::lock_guard lk(state_->mutex);
  return state_->in_use;
}

std::size_t request_gate::waiting() const {
  std::lock_guard lk(state_->mutex);
  return state_->waiters.size();
}

}  // namespace ferry::netmon
