#pragma once
// A job's progress in lib/state, seen from the transfer engine and the planner: the journal that
// keeps multipart uploads resumable, and the listing of what a mirror has already copied.
#include "state/async_state.hpp"
#include "store/endpoint.hpp"
#include "transfer/copier.hpp"

#include <memory>
#include <string>

namespace ferry::sync {

namespace asio = boost::asio;

// Where a job's multipart uploads go, for the registry of uploads ferry started (upload_record):
// the destination's remote name and bucket, and the prefix its keys are under.
struct upload_target {
  std::string endpoint;  // remote name; "local" for a directory (nothing to abort there)
  std::string bucket;
  std::string prefix;
};

// Keeps each multipart upload of one job in the objects, parts and uploads column families:
// the upload id (fsync) before the first part, every completed part as it completes.
class state_journal final : public transfer::multipart_journal {
 public:
  // `db` must outlive the journal. `parts` is the durability of per-part records.
  state_journal(state::async_state_db& db, std::string job, upload_target target, state::durability parts);

  asio::awaitable<std::optional<transfer::resume_point>> find(const store::object_info& object) override;
  asio::awaitable<bool> started(const store::object_info& object, std::string upload_id,
                                std::uint64_t part_size) override;
  asio::awaitable<bool> part_done(const store::object_info& object, std::string upload_id,
                                  transfer::journal_part part) override;
  asio::awaitable<void> all_parts_sent(const store::object_info& object, std::string upload_id,
                                       std::uint64_t part_size) override;
  asio::awaitable<void> ended(const store::object_info& object, std::string upload_id) override;

 private:
  state::upload_record upload(const store::object_info& object, const std::string& upload_id) const;

  state::async_state_db& db_;
  std::string job_;
  upload_target target_;
  state::durability parts_;
};

// What a mirror copied and verified, as a listing in key order: each object as its source was
// when copied (size, source ETag, source last_modified). Objects not verified are left out, so
// the planner sees them as missing and copies them again.
std::unique_ptr<store::lister> make_record_lister(state::async_state_db& db, std::string job);

// An object's state in `phase`, describing its source as listed (size, ETag, last change), so a
// later pass can tell whether the source is still the same.
state::object_state state_of(const store::object_info& source, state::object_phase phase);

// The state record of an object that is now at the destination, identical to its source.
state::object_state verified_state(const store::object_info& source, std::string destination_etag,
                                   std::uint32_t attempts);

}  // namespace ferry::sync
