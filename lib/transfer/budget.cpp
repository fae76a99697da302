#include "transfer/budget.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace ferry::transfer {

// A waiter is woken through a thread-safe channel: the bytes are granted to it by whichever
// thread released them, before it resumes.
struct byte_budget::waiter {
  std::uint64_t bytes;
  asio::experimental::concurrent_channel<void(boost::system::error_code)> granted;
  waiter(asio::any_io_executor ex, std::uint64_t n) : bytes(n), granted(ex, 1) {}
};

byte_budget::byte_budget(std::uint64_t capacity) : capacity_(std::max<std::uint64_t>(capacity, 1)) {}

byte_budget::lease& byte_budget::lease::operator=(lease&& o) noexcept {
  if (this != &o) {
    release();
    owner_ = std::move(o.owner_);
    bytes_ = o.bytes_;
    o.bytes_ = 0;
  }
  return *this;
}

void byte_budget::lease::release() {
  if (owner_ && bytes_ > 0) owner_->give_back(bytes_);
  bytes_ = 0;
  owner_.reset();
}

std::uint64_t byte_budget::in_use() const {
  std::lock_guard lock(mu_);
  return used_;
}

asio::awaitable<byte_budget::lease> byte_budget::acquire(std::uint64_t bytes) {
  bytes = std::min(bytes, capacity_);
  std::shared_ptr<waiter> w;
  {
    std::lock_guard lock(mu_);
    if (waiters_.empty() && used_ + bytes <= capacity_) {
      used_ += bytes;
      co_return lease(shared_from_this(), bytes);
    }
    w = std::make_shared<waiter>(co_await asio::this_coro::executor, bytes);
    waiters_.push_back(w);
  }
  auto [ec] = co_await w->granted.async_receive(asio::as_tuple(asio::use_awaitable));
  if (ec) {
    // Cancelled while waiting: leave the queue, or hand back a grant that raced in.
    bool granted = false;
    {
      std::lock_guard lock(mu_);
      auto it = std::find(waiters_.begin(), waiters_.end(), w);
      if (it != waiters_.end())
        waiters_.erase(it);
      else
        granted = true;
    }
    if (granted) give_back(w->bytes);
    throw boost::system::system_error(ec);
  }
  co_return lease(shared_from_this(), bytes);
}

void byte_budget::give_back(std::uint64_t bytes) {
  std::vector<std::shared_ptr<waiter>> wake;
  {
    std::lock_guard lock(mu_);
    used_ -= std::min(used_, bytes);
    while (!waiters_.empty() && used_ + waiters_.front()->bytes <= capacity_) {
      used_ += waiters_.front()->bytes;
      wake.push_back(std::move(waiters_.front()));
      waiters_.pop_front();
    }
  }
  for (auto& w : wake) w->granted.try_send(boost::system::error_code{});
}

}  // namespace ferry::transfer
