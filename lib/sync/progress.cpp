#include "sync/progress.hpp"

#include <spdlog/spdlog.h>

namespace ferry::sync {

namespace {

bool resumable_phase(state::object_phase p) {
  return p == state::object_phase::in_flight || p == state::object_phase::parts_done;
}

}  // namespace

state_journal::state_journal(state::async_state_db& db, std::string job, upload_target target, state::durability parts)
    : db_(db), job_(std::move(job)), target_(std::move(target)), parts_(parts) {}

state::upload_record state_journal::upload(const store::object_info& object, const std::string& upload_id) const {
  state::upload_record u;
  u.job = job_;
  u.object = object.key;
  u.endpoint = target_.endpoint;
  u.bucket = target_.bucket;
  u.key = target_.prefix + object.key;
  u.upload_id = upload_id;
  u.created_at = std::chrono::system_clock::now();
  return u;
}

asio::awaitable<std::optional<transfer::resume_point>> state_journal::find(const store::object_info& object) {
  auto s = co_await db_.get_object_state(job_, object.key);
  if (!s) {
    spdlog::warn("job {}: reading the state of {}: {}", job_, object.key, s.error().message);
    co_return std::nullopt;
  }
  if (!*s || !resumable_phase((*s)->phase) || (*s)->upload_id.empty()) co_return std::nullopt;
  const auto& st = **s;
  transfer::resume_point rp;
  rp.upload_id = st.upload_id;
  rp.part_size = st.part_size;
  // A source that changed since the upload began: its parts belong to another version.
  if (st.size != object.size || st.source_etag != object.etag) {
    rp.part_size = 0;  // makes the copier abort the upload and start over
    co_return rp;
  }
  auto parts = co_await db_.list_parts(job_, object.key, st.upload_id);
  if (!parts) {
    spdlog::warn("job {}: reading the parts of {}: {}", job_, object.key, parts.error().message);
    co_return std::nullopt;
  }
  for (const auto& p : *parts) rp.parts.push_back({static_cast<int>(p.number), p.size, p.etag, p.md5, p.crc32c});
  spdlog::info("job {}: resuming the upload of {} ({} part(s) recorded)", job_, object.key, rp.parts.size());
  co_return rp;
}

asio::awaitable<bool> state_journal::started(const store::object_info& object, std::string upload_id,
                                             std::uint64_t part_size) {
  auto s = state_of(object, state::object_phase::in_flight);
  s.upload_id = upload_id;
  s.part_size = part_size;
  state::state_batch b;
  b.clear_parts(job_, object.key);
  b.put_object_state(job_, object.key, s);
  b.register_upload(upload(object, upload_id));
  auto r = co_await db_.write(std::move(b), state::durability::fsync);
  if (!r) spdlog::error("job {}: recording the upload of {}: {}", job_, object.key, r.error().message);
  co_return r.has_value();
}

asio::awaitable<bool> state_journal::part_done(const store::object_info& object, std::string upload_id,
                                               transfer::journal_part part) {
  state::part_record p;
  p.number = static_cast<std::uint32_t>(part.number);
  p.size = part.size;
  p.etag = std::move(part.etag);
  p.md5 = std::move(part.md5);
  p.crc32c = part.crc32c;
  auto r = co_await db_.put_part(job_, object.key, std::move(upload_id), std::move(p), parts_);
  if (!r) spdlog::error("job {}: recording a part of {}: {}", job_, object.key, r.error().message);
  co_return r.has_value();
}

asio::awaitable<void> state_journal::all_parts_sent(const store::object_info& object, std::string upload_id,
                                                    std::uint64_t part_size) {
  auto s = state_of(object, state::object_phase::parts_done);
  s.upload_id = std::move(upload_id);
  s.part_size = part_size;
  auto r = co_await db_.put_object_state(job_, object.key, std::move(s), parts_);
  if (!r) spdlog::warn("job {}: recording that {} has all its parts: {}", job_, object.key, r.error().message);
}

asio::awaitable<void> state_journal::ended(const store::object_info& object, std::string upload_id) {
  state::state_batch b;
  b.clear_parts(job_, object.key);
  b.put_object_state(job_, object.key, state_of(object, state::object_phase::pending));
  b.remove_upload(upload(object, upload_id));
  // If this is lost in a crash, the upload is found untracked at startup and aborted.
  auto r = co_await db_.write(std::move(b), state::durability::wal);
  if (!r) spdlog::warn("job {}: clearing the upload of {}: {}", job_, object.key, r.error().message);
}

namespace {

class record_lister final : public store::lister {
 public:
  record_lister(state::async_state_db& db, std::string job) : db_(db), job_(std::move(job)) {}

  asio::awaitable<store::result<std::vector<store::object_info>>> next() override {
    std::vector<store::object_info> out;
    while (!done_ && out.empty()) {
      auto page = co_await db_.scan_objects(job_, from_, page_size);
      if (!page) {
        co_return s3::local_error("StateError", "reading what job " + job_ + " copied: " + page.error().message);
      }
      if (page->size() < page_size) done_ = true;
      if (!page->empty()) from_ = page->back().key + '\0';
      for (auto& entry : *page) {
        if (entry.state.phase != state::object_phase::verified) continue;
        store::object_info o;
        o.key = std::move(entry.key);
        o.size = entry.state.size;
        o.etag = std::move(entry.state.source_etag);
        o.last_modified = entry.state.source_mtime;
        out.push_back(std::move(o));
      }
    }
    co_return out;
  }

 private:
  static constexpr std::size_t page_size = 1000;
  state::async_state_db& db_;
  std::string job_;
  std::string from_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<store::lister> make_record_lister(state::async_state_db& db, std::string job) {
  return std::make_unique<record_lister>(db, std::move(job));
}

state::object_state state_of(const store::object_info& source, state::object_phase phase) {
  state::object_state s;
  s.phase = phase;
  s.size = source.size;
  s.source_etag = source.etag;
  s.source_mtime = source.last_modified;
  s.updated_at = std::chrono::system_clock::now();
  return s;
}

state::object_state verified_state(const store::object_info& source, std::string destination_etag,
                                   std::uint32_t attempts) {
  auto s = state_of(source, state::object_phase::verified);
  s.destination_etag = std::move(destination_etag);
  s.attempts = attempts;
  return s;
}

}  // namespace ferry::sync
