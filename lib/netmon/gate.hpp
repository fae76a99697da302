#pragma once
// The admission point for requests to one endpoint: an awaitable counting semaphore whose capacity
// follows the concurrency controller. FIFO, thread-safe across io threads; a waiter is resumed on
// its own executor. It only counts: it knows nothing of connections or of S3.
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>

namespace ferry::netmon {

namespace detail {
struct gate_state;
}

// One admitted request: releases its slot when destroyed (on any thread, even after the gate).
class permit {
 public:
  permit() = default;
  permit(permit&& o) noexcept = default;
  permit& operator=(permit&& o) noexcept;
  permit(const permit&) = delete;
  permit& operator=(const permit&) = delete;
  ~permit();

  explicit operator bool() const { return state_ != nullptr; }
  // Gives the slot back now; the permit becomes empty.
  void release();

 private:
  friend class request_gate;
  explicit permit(std::shared_ptr<detail::gate_state> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::gate_state> state_;
};

class request_gate {
 public:
  // `max_waiters` bounds the queue: beyond it acquire fails with no_buffer_space at once.
  explicit request_gate(std::size_t limit, std::size_t max_waiters = 100'000);
  ~request_gate();
  request_gate(const request_gate&) = delete;
  request_gate& operator=(const request_gate&) = delete;

  // Waits for a slot, in arrival order. Errors: asio::error::timed_out after `timeout`,
  // operation_aborted when the awaiting coroutine's cancellation slot fires or the gate is closed.
  boost::asio::awaitable<boost::system::result<permit>> acquire(std::chrono::milliseconds timeout);
  // A slot now, or nothing (also when others are already waiting).
  std::optional<permit> try_acquire();

  // Growing wakes waiters; shrinking lets permits in use drain, with no new ones until below.
  void set_limit(std::size_t n);
  // Fails every waiter and every later acquire with operation_aborted (shutdown).
  void close();

  std::size_t limit() const;
  std::size_t in_use() const;
  std::size_t waiting() const;

 private:
  std::shared_ptr<detail::gate_state> state_;
};

}  // namespace ferry::netmon
