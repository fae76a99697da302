#pragma once
// Bandwidth caps applied to sockets: a gate (one upload and one download bucket following a timetable), a
// throttle (the gates one transfer passes: the global one, its job's) with an awaitable acquire, and the
// daemon's registry of gates whose timetables it re-applies.
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "ratelimit/timetable.hpp"
#include "ratelimit/token_bucket.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace ferry::ratelimit {

enum class direction { up, down };

// Two buckets under one timetable. Thread-safe.
class gate {
 public:
  explicit gate(timetable tt = {}, std::chrono::system_clock::time_point wall = std::chrono::system_clock::now(),
                steady_time now = std::chrono::steady_clock::now());

  // Sets both buckets' rates to what the timetable says for `wall`.
  void apply(std::chrono::system_clock::time_point wall, steady_time now);
  void apply() { apply(std::chrono::system_clock::now(), std::chrono::steady_clock::now()); }
  // Replaces the timetable and applies it at once; transfers in flight keep going at the new rates.
  void set_timetable(timetable tt, std::chrono::system_clock::time_point wall, steady_time now);
  void set_timetable(timetable tt) {
    set_timetable(std::move(tt), std::chrono::system_clock::now(), std::chrono::steady_clock::now());
  }
  timetable current_timetable() const;
  std::optional<std::chrono::system_clock::time_point> next_change(std::chrono::system_clock::time_point wall) const;

  token_bucket& bucket(direction d) { return d == direction::up ? up_ : down_; }
  const token_bucket& bucket(direction d) const { return d == direction::up ? up_ : down_; }

 private:
  mutable std::mutex mutex_;  // guards tt_; the buckets lock themselves
  timetable tt_;
  token_bucket up_;
  token_bucket down_;
};

// The gates one transfer passes, copied by value into each request. Every byte is taken from every gate.
class throttle {
 public:
  static constexpr std::size_t max_gates = 4;

  throttle() = default;
  // Null gates are skipped; gates past max_gates are dropped (a bug: assert in debug builds).
  throttle(std::initializer_list<std::shared_ptr<gate>> gates);

  // True when no gate limits `d` now. Lock-free: for the fast path.
  bool unlimited(direction d) const;
  // Counts n bytes and returns true when no gate limits `d` (nothing to wait for); false takes nothing, and the
  // caller co_awaits acquire instead.
  bool try_acquire(direction d, std::size_t n) const;
  // Takes n bytes from every gate, then waits until all let them pass, re-checking at least every 50 ms so a
  // rate change reaches waiters. Returns operation_aborted (the bytes given back) when the awaiting
  // coroutine's cancellation slot fires; never throws for cancellation. The throttle is copied into the frame.
  boost::asio::awaitable<boost::system::error_code> acquire(direction d, std::size_t n) const;
  // Gives back bytes acquired but not moved (a short read).
  void refund(direction d, std::size_t n) const;
  // The smallest quantum of any gate for `d`: how much one socket read or write should ask for.
  std::size_t quantum(direction d) const;

 private:
  static boost::asio::awaitable<boost::system::error_code> acquire_in(throttle self, direction d, std::size_t n);

  std::array<std::shared_ptr<gate>, max_gates> gates_{};
  std::size_t count_ = 0;
};

// The daemon's caps: the global gate and one gate per job that has its own limit. Thread-safe.
class limits {
 public:
  explicit limits(timetable global = {});

  std::shared_ptr<gate> global() const { return global_; }
  // A gate for job `id` (replacing any earlier one under that id); the registry holds it weakly, so it lives as
  // long as the job holds the returned pointer.
  std::shared_ptr<gate> add_job(const std::string& id, timetable tt);
  // Registers a gate made before the job had its id (held weakly, as add_job's).
  void attach_job(const std::string& id, std::shared_ptr<gate> g);
  // The live gate of job `id`, or null.
  std::shared_ptr<gate> find_job(const std::string& id) const;
  // The throttle a transfer of that job passes: the global gate, then the job's (when it has one).
  throttle throttle_for(const std::shared_ptr<gate>& job) const { return throttle{global_, job}; }

  // Re-applies every timetable (the daemon calls it every second or at next_change) and forgets finished jobs.
  void tick(std::chrono::system_clock::time_point wall, steady_time now);
  void tick() { tick(std::chrono::system_clock::now(), std::chrono::steady_clock::now()); }
  // The earliest change of any timetable after `wall`; nullopt when every timetable is constant.
  std::optional<std::chrono::system_clock::time_point> next_change(std::chrono::system_clock::time_point wall) const;

 private:
  std::shared_ptr<gate> global_;
  mutable std::mutex mutex_;
  std::map<std::string, std::weak_ptr<gate>, std::less<>> jobs_;
};

}  // namespace ferry::ratelimit
