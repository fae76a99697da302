#include "ratelimit/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace ferry::ratelimit {
namespace {

constexpr std::uint64_t min_burst = 64 * 1024;
constexpr std::uint64_t min_quantum = 4 * 1024;

}  // namespace

token_bucket::token_bucket(std::uint64_t bytes_per_second, steady_time now, std::uint64_t burst)
    : rate_(bytes_per_second), fixed_burst_(burst), last_(now) {
  set_burst();
  // Start full: a new job should not stall on its first read.
  credit_ = rate_ == 0 ? 0.0 : static_cast<double>(burst_);
  rate_atomic_.store(rate_, std::memory_order_relaxed);
}

void token_bucket::set_burst() { burst_ = fixed_burst_ != 0 ? fixed_burst_ : std::max(min_burst, rate_ / 20); }

void token_bucket::settle(steady_time now) {
  // Callers on other threads may read the clock a little before the last caller did: time never runs back.
  const auto elapsed = now > last_ ? now - last_ : std::chrono::nanoseconds(0);
  if (now > last_) last_ = now;
  if (rate_ == 0) {
    credit_ = 0;
    return;
  }
  credit_ += std::chrono::duration<double>(elapsed).count() * static_cast<double>(rate_);
  credit_ = std::min(credit_, static_cast<double>(burst_));
}

std::uint64_t token_bucket::take(std::uint64_t n, steady_time now) {
  std::lock_guard lock(mutex_);
  settle(now);
  issued_ += n;
  if (rate_ != 0) credit_ -= static_cast<double>(n);
  return issued_;
}

std::chrono::nanoseconds token_bucket::wait_for(std::uint64_t position, steady_time now) {
  std::lock_guard lock(mutex_);
  settle(now);
  if (rate_ == 0) return std::chrono::nanoseconds(0);
  // Signed: after refunds a waiter's position may lie above what is issued now.
  const auto ahead = static_cast<double>(static_cast<std::int64_t>(position - issued_));
  const double deficit = ahead - credit_;
  if (deficit <= 0) return std::chrono::nanoseconds(0);
  const double ns = std::ceil(deficit * 1e9 / static_cast<double>(rate_));
  // Even a 64 KiB claim at 1 byte/s (18 hours) is far below the range of nanoseconds; the cap is for nonsense.
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::min(ns, 1e18)));
}

void token_bucket::refund(std::uint64_t n) {
  std::lock_guard lock(mutex_);
  n = std::min(n, issued_);
  issued_ -= n;
  if (rate_ == 0) return;
  // Unused claims become credit for later callers, but never more credit than an idle bucket keeps.
  credit_ = std::min(credit_ + static_cast<double>(n), static_cast<double>(burst_));
}

void token_bucket::set_rate(std::uint64_t bytes_per_second, steady_time now) {
  std::lock_guard lock(mutex_);
  if (bytes_per_second == rate_) return;
  settle(now);  // time so far counts at the old rate
  // Off -> on: bytes issued while unlimited were never owed, so nobody waits for them (credit stays 0).
  rate_ = bytes_per_second;
  set_burst();
  settle(now);
  rate_atomic_.store(rate_, std::memory_order_relaxed);
}

std::size_t token_bucket::quantum() const {
  const std::uint64_t r = rate();
  if (r == 0) return max_quantum;
  return static_cast<std::size_t>(std::min<std::uint64_t>(max_quantum, std::max(min_quantum, r / 50)));
}

std::uint64_t token_bucket::burst() const {
  std::lock_guard lock(mutex_);
  return burst_;
}

std::uint64_t token_bucket::bytes() const {
  std::lock_guard lock(mutex_);
  return issued_;
}

}  // namespace ferry::ratelimit
