#pragma once
// An integrity_sink that persists every verdict of one job in state_db (record order kept per
// job; the latest per key found directly). record() cannot report failure to its caller: failures
// are logged and counted here. Where the verdict must be on disk before the object counts as
// done, write it with the object's state in one state_batch through async_state_db instead.
#include "state/state_db.hpp"
#include "transfer/integrity.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace ferry::store {
class blocking_pool;
}

namespace ferry::state {

class integrity_store : public transfer::integrity_sink {
 public:
  // With a pool, record() hands the write to it and returns at once (for io threads); without,
  // record() writes before it returns. `db` and `pool` must outlive this object and, with a pool,
  // every write still queued (blocking_pool::wait_detached waits for them).
  integrity_store(state_db& db, std::string job, store::blocking_pool* pool = nullptr, durability d = durability::wal);

  void record(const transfer::integrity_record& r) override;

  std::uint64_t failures() const { return failures_.load(); }
  std::optional<error> last_error() const;

 private:
  void write(const transfer::integrity_record& r);

  state_db& db_;
  std::string job_;
  store::blocking_pool* pool_;
  durability durability_;
  std::atomic<std::uint64_t> failures_{0};
  mutable std::mutex mu_;
  std::optional<error> last_error_;
};

}  // namespace ferry::state
