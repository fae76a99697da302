#include "state/async_state.hpp"

namespace ferry::state {

// Each wrapper names its lambda before the co_await (GCC 12 destroys a lambda temporary written
// inside a co_await expression twice).

asio::awaitable<result<void>> async_state_db::write(state_batch batch, durability d) {
  auto fn = [this, b = std::move(batch), d]() mutable { return db_.write(b, d); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<std::string>> async_state_db::next_job_id() {
  auto fn = [this] { return db_.next_job_id(); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<void>> async_state_db::put_job(job_record j, durability d) {
  auto fn = [this, j = std::move(j), d] { return db_.put_job(j, d); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<std::optional<job_record>>> async_state_db::get_job(std::string id) {
  auto fn = [this, id = std::move(id)] { return db_.get_job(id); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<std::vector<job_record>>> async_state_db::list_jobs() {
  auto fn = [this] { return db_.list_jobs(); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<void>> async_state_db::delete_job(std::string id) {
  auto fn = [this, id = std::move(id)] { return db_.delete_job(id); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<void>> async_state_db::put_object_state(std::string job, std::string key, object_state s,
                                                               durability d) {
  auto fn = [this, job = std::move(job), key = std::move(key), s = std::move(s), d] {
    return db_.put_object_state(job, key, s, d);
  };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<std::optional<object_state>>> async_state_db::get_object_state(std::string job,
                                                                                      std::string key) {
  auto fn = [this, job = std::move(job), key = std::move(key)] { return db_.get_object_state(job, key); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<std::vector<state_db::object_entry>>> async_state_db::scan_objects(std::string job,
                                                                                          std::string from_key,
                                                                                          std::size_t limit) {
  auto fn = [this, job = std::move(job), from = std::move(from_key), limit] {
    return db_.scan_objects(job, from, limit);
  };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<void>> async_state_db::put_part(std::string job, std::string key, std::string upload_id,
                                                       part_record p, durability d) {
  auto fn = [this, job = std::move(job), key = std::move(key), upload_id = std::move(upload_id), p = std::move(p), d] {
    return db_.put_part(job, key, upload_id, p, d);
  };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<std::vector<part_record>>> async_state_db::list_parts(std::string job, std::string key,
                                                                             std::string upload_id) {
  auto fn = [this, job = std::move(job), key = std::move(key), upload_id = std::move(upload_id)] {
    return db_.list_parts(job, key, upload_id);
  };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<void>> async_state_db::clear_parts(std::string job, std::string key, durability d) {
  auto fn = [this, job = std::move(job), key = std::move(key), d] { return db_.clear_parts(job, key, d); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<std::uint64_t>> async_state_db::record_integrity(std::string job, transfer::integrity_record r,
                                                                        durability d) {
  auto fn = [this, job = std::move(job), r = std::move(r), d] { return db_.record_integrity(job, r, d); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<std::optional<integrity_entry>>> async_state_db::latest_integrity(std::string job,
                                                                                         std::string key) {
  auto fn = [this, job = std::move(job), key = std::move(key)] { return db_.latest_integrity(job, key); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<state_db::integrity_page>> async_state_db::integrity_records(std::string job,
                                                                                    std::uint64_t after_seq,
                                                                                    std::size_t limit) {
  auto fn = [this, job = std::move(job), after_seq, limit] { return db_.integrity_records(job, after_seq, limit); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<void>> async_state_db::put_cursor(std::string job, std::string name, std::string value,
                                                         durability d) {
  auto fn = [this, job = std::move(job), name = std::move(name), value = std::move(value), d] {
    return db_.put_cursor(job, name, value, d);
  };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<std::optional<std::string>>> async_state_db::get_cursor(std::string job, std::string name) {
  auto fn = [this, job = std::move(job), name = std::move(name)] { return db_.get_cursor(job, name); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<void>> async_state_db::register_upload(upload_record u, durability d) {
  auto fn = [this, u = std::move(u), d] { return db_.register_upload(u, d); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<void>> async_state_db::remove_upload(upload_record u, durability d) {
  auto fn = [this, u = std::move(u), d] { return db_.remove_upload(u, d); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

asio::awaitable<result<std::vector<upload_record>>> async_state_db::untracked_uploads() {
  auto fn = [this] { return db_.untracked_uploads(); };
  co_return co_await store::run_blocking(pool_, std::move(fn));
}

}  // namespace ferry::state
