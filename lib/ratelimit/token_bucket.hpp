#pragma once
// A byte-rate cap as a "position" token bucket: each caller takes n bytes and gets the position its
// bytes end at; it may proceed once the allowance (which grows at `rate` with time) reaches that
// position. A rate change re-times callers already waiting, since their wait is recomputed from their
// position. Pure and thread-safe; the clock is passed in, so tests need no sleeping. Does no waiting.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace ferry::ratelimit {

// Buckets run on the monotonic clock; timetables on the wall clock.
using steady_time = std::chrono::steady_clock::time_point;

class token_bucket {
 public:
  // The largest quantum: what an unlimited or fast bucket hands out per socket read or write.
  static constexpr std::size_t max_quantum = 64 * 1024;

  // bytes_per_second 0 = unlimited. burst 0 = the default, max(64 KiB, rate / 20), which follows rate changes.
  explicit token_bucket(std::uint64_t bytes_per_second = 0, steady_time now = std::chrono::steady_clock::now(),
                        std::uint64_t burst = 0);

  // Claims n bytes; returns the position to pass to wait_for.
  std::uint64_t take(std::uint64_t n, steady_time now);
  // How long until `position` may proceed; zero when it may now.
  std::chrono::nanoseconds wait_for(std::uint64_t position, steady_time now);
  // Gives back bytes taken but not moved (a short read, a cancelled wait); never raises idle credit above burst.
  void refund(std::uint64_t n);
  // New rate from now on; callers already waiting see it at their next wait_for.
  void set_rate(std::uint64_t bytes_per_second, steady_time now);

  // The size one socket read or write should ask for: min(64 KiB, max(4 KiB, rate / 50)); 64 KiB unlimited.
  std::size_t quantum() const;
  // Bytes per second; 0 = unlimited. Lock-free, for fast paths.
  std::uint64_t rate() const { return rate_atomic_.load(std::memory_order_relaxed); }
  std::uint64_t burst() const;
  // Bytes taken minus bytes refunded since construction (a counter for metrics).
  std::uint64_t bytes() const;

 private:
  void settle(steady_time now);  // mutex held
  void set_burst();              // mutex held

  mutable std::mutex mutex_;
  std::uint64_t rate_ = 0;
  std::uint64_t burst_ = 0;
  std::uint64_t fixed_burst_ = 0;
  std::uint64_t issued_ = 0;
  // allowance - issued: idle credit when positive, bytes owed by waiters when negative. Kept relative so a
  // double stays exact however many petabytes pass; fractional so at 1 byte/s a nanosecond still counts.
  double credit_ = 0;
  steady_time last_;
  std::atomic<std::uint64_t> rate_atomic_{0};
};

}  // namespace ferry::ratelimit
