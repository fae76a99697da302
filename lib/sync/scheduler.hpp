#pragma once
// The transfer scheduler: one per ferryd, shared by every job, deciding whose object starts next.
// Objects are sorted by size into lanes, each with its own slots, so a stream of small objects
// keeps flowing while huge ones run. Within a lane, waiting jobs get slots in proportion to their
// priority (stride scheduling). It counts objects in flight, not bytes: memory is
// transfer::byte_budget's job.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/result.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::sync {

namespace asio = boost::asio;

enum class lane { small, medium, large };
std::string_view to_string(lane l);

inline constexpr int max_lane_slots = 4096;

// Slots are per ferryd (all jobs together) and fixed per lane: a lane with no waiters lends none
// to a busy one. That leaves a little throughput unused, but keeps each lane's share predictable.
struct lane_config {
  std::uint64_t small_below = 1ull << 20;                   // size < this: small
  std::uint64_t large_from = 64ull << 20;                   // size >= this: large (the multipart threshold)
  int small_slots = 12, medium_slots = 6, large_slots = 2;  // objects in flight per lane; clamped to 1..max_lane_slots
};

// The lane of an object of `size` bytes; `large_from` wins where the two thresholds overlap.
lane lane_for(std::uint64_t size, const lane_config& c);

class scheduler {
 public:
  // All scheduling state lives on a strand of `ex`. The scheduler must outlive every ticket and
  // job handle it gives out (end the jobs first), and be destroyed before `ex`'s io_context.
  scheduler(asio::any_io_executor ex, lane_config c);
  ~scheduler();
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  // One slot in one lane, held until destroyed or release()d; freed exactly once, from any thread.
  class ticket {
   public:
    ticket() = default;
    ticket(ticket&& o) noexcept;
    ticket& operator=(ticket&& o) noexcept;
    ~ticket() { release(); }
    void release();
    bool held() const { return owner_ != nullptr; }
    sync::lane lane() const { return lane_; }

   private:
    friend class scheduler;
    ticket(scheduler* owner, sync::lane l) : owner_(owner), lane_(l) {}
    scheduler* owner_ = nullptr;
    sync::lane lane_ = sync::lane::small;
  };

  // A job's registration: its priority and its place in each lane. Dropping the last reference
  // unregisters the job (its waiters hold one, so that happens once it waits no more).
  struct job_handle;
  // Priority 1..100 (clamped): a job's share of a lane is its priority over the waiting jobs' sum.
  std::shared_ptr<job_handle> join(std::string job_id, int priority);
  void set_priority(const std::shared_ptr<job_handle>& job, int priority);

  // Waits for a slot in the lane of an object of `object_size` bytes and resumes the caller on its
  // own executor. operation_aborted when the job is cancel()led or the caller's cancellation slot
  // fires (terminal cancellation, as `||` and co_spawn's bound signals emit it); invalid_argument
  // for a handle from another scheduler.
  asio::awaitable<boost::system::result<ticket>> acquire(std::shared_ptr<job_handle> job, std::uint64_t object_size);

  // Fails the job's current and future waits; tickets it holds stay valid until released.
  void cancel(const std::shared_ptr<job_handle>& job);

  struct lane_stats {
    int slots, in_use, waiting;
  };
  // A snapshot, from any thread; it trails the strand by the handlers still queued there.
  lane_stats stats(sync::lane l) const;

 private:
  struct waiter;
  struct lane_state {
    int slots = 1;
    std::atomic<int> in_use{0}, waiting{0};           // written on the strand only; atomic for stats()
    std::uint64_t vtime = 0;                          // virtual time of the last grant: where a returning job starts
    std::vector<std::shared_ptr<job_handle>> active;  // jobs with waiters in this lane
  };

  // On the strand.
  void enqueue(const std::shared_ptr<waiter>& w);
  void abandon(const std::shared_ptr<waiter>& w);
  void fail_waiters(job_handle& job);
  void release_slot(std::size_t lane_index);
  void grant(std::size_t lane_index);

  asio::strand<asio::any_io_executor> strand_;
  lane_config cfg_;
  std::array<lane_state, 3> lanes_;
  std::atomic<std::uint64_t> next_seq_{0};
};

}  // namespace ferry::sync
