#pragma once
// ferryd's persistent state: jobs, per-object progress, multipart parts, integrity verdicts,
// listing cursors and the registry of multipart uploads ferry started, in one RocksDB database
// (layout: schema.hpp). Every call here blocks on disk: on an io thread use async_state_db
// (async_state.hpp) instead. All members are safe to call from several threads at once.
#include "state/records.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Env;
class WriteBatch;
}  // namespace rocksdb

namespace ferry::state {

struct open_options {
  bool create_if_missing = true;
  rocksdb::Env* env = nullptr;  // tests: a file system that fails on demand; must outlive the state_db
};

// Related writes that reach the disk together or not at all (one RocksDB WriteBatch), e.g. an
// object's new state with its verdict. Invalid arguments are remembered and returned by
// state_db::write, which then writes nothing.
class state_batch {
 public:
  state_batch();
  ~state_batch();
  state_batch(state_batch&&) noexcept;
  state_batch& operator=(state_batch&&) noexcept;

  void put_job(const job_record& j);
  void put_object_state(std::string_view job, std::string_view key, const object_state& s);
  void put_part(std::string_view job, std::string_view key, std::string_view upload_id, const part_record& p);
  // Removes every part stored for the object (any upload id).
  void clear_parts(std::string_view job, std::string_view key);
  // Appends the verdict to the job's sequence and makes it the key's latest.
  void record_integrity(std::string_view job, const transfer::integrity_record& r);
  void put_cursor(std::string_view job, std::string_view name, std::string_view value);
  void delete_cursor(std::string_view job, std::string_view name);
  void register_upload(const upload_record& u);
  void remove_upload(const upload_record& u);

  bool empty() const;

 private:
  friend class state_db;
  struct op;
  void fail(error e);

  std::vector<op> ops_;
  std::optional<error> error_;
};

class state_db {
 public:
  // Opens (or creates) the database in directory `dir`. Fails with the reason (directory not
  // writable, locked by another ferryd, written by a newer ferryd, RocksDB's own error).
  static result<std::unique_ptr<state_db>> open(const std::filesystem::path& dir, const open_options& opts = {});
  ~state_db();
  state_db(const state_db&) = delete;
  state_db& operator=(const state_db&) = delete;

  const std::filesystem::path& path() const { return path_; }

  result<void> write(state_batch& batch, durability d = durability::fsync);

  // Jobs. next_job_id() hands out "j-000001", "j-000002", ... persisted (fsync) before it returns,
  // so an id is never handed out twice, across restarts too.
  result<std::string> next_job_id();
  result<void> put_job(const job_record& j, durability d = durability::fsync);
  result<std::optional<job_record>> get_job(std::string_view id);
  result<std::vector<job_record>> list_jobs();  // in id order
  // The job and everything under it (objects, parts, verdicts, cursors); not its uploads.
  result<void> delete_job(std::string_view id);

  // Objects.
  struct object_entry {
    std::string key;
    object_state state;
  };
  result<void> put_object_state(std::string_view job, std::string_view key, const object_state& s,
                                durability d = durability::fsync);
  result<std::optional<object_state>> get_object_state(std::string_view job, std::string_view key);
  // Up to `limit` objects of the job with key >= from_key, in key (byte) order. The next page
  // starts at the last key + '\0'.
  result<std::vector<object_entry>> scan_objects(std::string_view job, std::string_view from_key, std::size_t limit);

  // Parts of multipart uploads.
  result<void> put_part(std::string_view job, std::string_view key, std::string_view upload_id, const part_record& p,
                        durability d = durability::fsync);
  // The upload's stored parts, by ascending number.
  result<std::vector<part_record>> list_parts(std::string_view job, std::string_view key, std::string_view upload_id);
  result<void> clear_parts(std::string_view job, std::string_view key, durability d = durability::fsync);

  // Integrity verdicts: every one kept, numbered 1, 2, ... per job in the order recorded (gaps
  // possible after a failed write); the latest per key is found directly. Returns the sequence number.
  result<std::uint64_t> record_integrity(std::string_view job, const transfer::integrity_record& r,
                                         durability d = durability::fsync);
  result<std::optional<integrity_entry>> latest_integrity(std::string_view job, std::string_view key);
  struct integrity_page {
    std::vector<integrity_entry> entries;
    std::uint64_t next_after = 0;  // pass as after_seq for the next page
    bool more = false;             // more verdicts follow (as of this read)
  };
  // Up to `limit` verdicts with seq > after_seq (0: from the first), in sequence order.
  result<integrity_page> integrity_records(std::string_view job, std::uint64_t after_seq, std::size_t limit);

  // Listing cursors, to resume a listing where it stopped.
  result<void> put_cursor(std::string_view job, std::string_view name, std::string_view value,
                          durability d = durability::fsync);
  result<std::optional<std::string>> get_cursor(std::string_view job, std::string_view name);
  result<void> delete_cursor(std::string_view job, std::string_view name, durability d = durability::fsync);

  // The registry of multipart uploads ferry started (see upload_record). Register before the first
  // part is sent; remove once completed or aborted.
  result<void> register_upload(const upload_record& u, durability d = durability::fsync);
  result<void> remove_upload(const upload_record& u, durability d = durability::fsync);
  result<std::vector<upload_record>> list_uploads();  // all, in job order
  // Registered uploads nothing tracks any more, to abort at startup: the job or the object is
  // gone, the object now has another upload id, or it is completed, verified or failed.
  result<std::vector<upload_record>> untracked_uploads();

  // After a write failed with no_space, RocksDB refuses every write until it recovers: on its own,
  // checking for free space every few seconds, or now through this call. Waits up to `wait` for
  // space (a probe write) and a recovery already under way; fails (no_space, busy) if writing has
  // not resumed by then. Rarely RocksDB cannot resume its log even with space back: io_error,
  // whose message says to restart ferryd (reopening replays the log; nothing acknowledged is lost).
  result<void> recover(std::chrono::milliseconds wait = std::chrono::seconds(10));

 private:
  state_db() = default;
  rocksdb::ColumnFamilyHandle* cf(std::size_t i) const { return handles_[i]; }
  result<void> apply(rocksdb::WriteBatch& wb, durability d);
  result<std::uint64_t> next_seq_locked(const std::string& job);  // integrity_mu_ held
  result<std::optional<std::string>> get_raw(std::size_t cf, const std::string& key);

  // A small write to the state directory succeeds now (see recover()).
  bool can_write() const;

  std::filesystem::path path_;
  rocksdb::Env* env_ = nullptr;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // schema::column_families order, then any unknown
  std::mutex job_id_mu_;
  std::optional<std::uint64_t> next_job_number_;  // cached under job_id_mu_
  std::mutex integrity_mu_;
  std::map<std::string, std::uint64_t, std::less<>> next_seq_;  // per job, under integrity_mu_
};

}  // namespace ferry::state
