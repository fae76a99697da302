#pragma once
// A sliding time window kept as a ring of fixed-width buckets: O(N) memory whatever the sample rate,
// and a window that expires on its own as the clock moves (no per-sample list to trim).
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace ferry::netmon::detail {

// N buckets of `width` each; the window is the current bucket and the N-1 before it. T is the
// per-bucket aggregate and must value-initialise to "empty".
template <class T, std::size_t N>
class bucket_ring {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  explicit bucket_ring(duration width) : width_(width.count() > 0 ? width : duration(1)) { clear(); }

  // The bucket holding time t, emptied first if it held an older slice; nullptr when its slot
  // already holds a newer slice (t is older than the window).
  T* slot(time_point t) {
    const std::int64_t e = epoch(t);
    const std::size_t i = index(e);
    if (epochs_[i] == e) return &slots_[i];
    if (epochs_[i] > e) return nullptr;
    epochs_[i] = e;
    slots_[i] = T{};
    return &slots_[i];
  }

  // Calls f(const T&) for every bucket inside the window that ends at `now`.
  template <class F>
  void for_each(time_point now, F&& f) const {
    const std::int64_t e_now = epoch(now);
    for (std::size_t i = 0; i < N; ++i) {
      if (epochs_[i] <= e_now && epochs_[i] > e_now - static_cast<std::int64_t>(N)) f(slots_[i]);
    }
  }

  // Where the window ending at `now` starts: the beginning of its oldest bucket.
  time_point window_start(time_point now) const {
    return time_point(width_ * (epoch(now) - static_cast<std::int64_t>(N) + 1));
  }

  void clear() {
    slots_.fill(T{});
    epochs_.fill(kNever);
  }

  duration width() const { return width_; }

 private:
  static constexpr std::int64_t kNever = INT64_MIN / 2;

  std::int64_t epoch(time_point t) const {
    const auto c = t.time_since_epoch().count();
    const auto w = width_.count();
    return static_cast<std::int64_t>(c >= 0 ? c / w : -((-c + w - 1) / w));  // floor
  }
  static std::size_t index(std::int64_t e) {
    const auto m = e % static_cast<std::int64_t>(N);
    return static_cast<std::size_t>(m < 0 ? m + static_cast<std::int64_t>(N) : m);
  }

  duration width_;
  std::array<T, N> slots_{};
  std::array<std::int64_t, N> epochs_{};
};

}  // namespace ferry::netmon::detail
