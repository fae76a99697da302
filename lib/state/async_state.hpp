#pragma once
// state_db for coroutines on io threads: each call runs the blocking RocksDB work on a
// store::blocking_pool and resumes the caller on its own executor. Arguments are taken by value,
// so the caller's temporaries may die while the call runs. Not cancellable: a write that has
// started finishes (and then is on disk), which is what a crash-safe transition needs.
#include "state/state_db.hpp"
#include "store/blocking.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ferry::state {

namespace asio = boost::asio;

class async_state_db {
 public:
  // Both must outlive this object and every call still running.
  async_state_db(state_db& db, store::blocking_pool& pool) : db_(db), pool_(pool) {}

  state_db& db() { return db_; }

  // Runs fn(state_db&) on the pool, for what has no wrapper below. GCC 12: name the lambda and
  // pass std::move(fn), never a lambda written inside the co_await expression.
  template <class F>
  asio::awaitable<std::invoke_result_t<F&, state_db&>> run(F fn) {
    auto call = [this, fn = std::move(fn)]() mutable { return fn(db_); };
    co_return co_await store::run_blocking(pool_, std::move(call));
  }

  asio::awaitable<result<void>> write(state_batch batch, durability d = durability::fsync);

  asio::awaitable<result<std::string>> next_job_id();
  asio::awaitable<result<void>> put_job(job_record j, durability d = durability::fsync);
  asio::awaitable<result<std::optional<job_record>>> get_job(std::string id);
  asio::awaitable<result<std::vector<job_record>>> list_jobs();
  asio::awaitable<result<void>> delete_job(std::string id);

  asio::awaitable<result<void>> put_object_state(std::string job, std::string key, object_state s,
                                                 durability d = durability::fsync);
  asio::awaitable<result<std::optional<object_state>>> get_object_state(std::string job, std::string key);
  asio::awaitable<result<std::vector<state_db::object_entry>>> scan_objects(std::string job, std::string from_key,
                                                                            std::size_t limit);

  asio::awaitable<result<void>> put_part(std::string job, std::string key, std::string upload_id, part_record p,
                                         durability d = durability::fsync);
  asio::awaitable<result<std::vector<part_record>>> list_parts(std::string job, std::string key, std::string upload_id);
  asio::awaitable<result<void>> clear_parts(std::string job, std::string key, durability d = durability::fsync);

  asio::awaitable<result<std::uint64_t>> record_integrity(std::string job, transfer::integrity_record r,
                                                          durability d = durability::fsync);
  asio::awaitable<result<std::optional<integrity_entry>>> latest_integrity(std::string job, std::string key);
  asio::awaitable<result<state_db::integrity_page>> integrity_records(std::string job, std::uint64_t after_seq,
                                                                      std::size_t limit);

  asio::awaitable<result<void>> put_cursor(std::string job, std::string name, std::string value,
                                           durability d = durability::fsync);
  asio::awaitable<result<std::optional<std::string>>> get_cursor(std::string job, std::string name);

  asio::awaitable<result<void>> register_upload(upload_record u, durability d = durability::fsync);
  asio::awaitable<result<void>> remove_upload(upload_record u, durability d = durability::fsync);
  asio::awaitable<result<std::vector<upload_record>>> untracked_uploads();

 private:
  state_db& db_;
  store::blocking_pool& pool_;
};

}  // namespace ferry::state
