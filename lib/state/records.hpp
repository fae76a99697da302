#pragma once
// What lib/state stores, as plain structs, and its error type. How each record is keyed and
// encoded on disk is in schema.hpp; how it is read and written is in state_db.hpp.
#include "transfer/copier.hpp"
#include "transfer/integrity.hpp"

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::state {

using time_point = std::chrono::system_clock::time_point;

// What went wrong, coarsely, so a caller can react (no_space: stop writing and tell the operator)
// without parsing text.
enum class error_kind {
  invalid_argument,  // a job id, key or name lib/state cannot store (empty, too long, NUL in a job id)
  bad_value,         // a stored value that does not decode: corrupt, or written by a newer ferryd
  no_space,          // the disk is full (RocksDB Status::NoSpace); writes fail until space is freed
  io_error,          // any other I/O failure, including "state directory locked by another process"
  corruption,        // RocksDB found its own files corrupt
  busy,              // RocksDB busy / try again / timed out
  other,
};
std::string_view to_string(error_kind k);

// `message` is for the operator and includes RocksDB's status text where there is one.
struct error {
  error_kind kind = error_kind::other;
  std::string message;
};

template <class T>
using result = boost::system::result<T, error>;

// Lets result<T>::value() throw std::runtime_error(message): for tests and startup only.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

// How far a write goes before it returns. fsync: the WAL is fsynced (survives power loss); the
// default, for every transition that matters after a crash. wal: written to the WAL only
// (survives ferryd crashing, not the machine), for progress that can be redone.
enum class durability { fsync, wal };

// A job as persisted: its request and its counters. `state` and `kind` are the job manager's
// words ("queued", "running", ...; "copy", "sync", "mirror"): lib/state does not interpret them.
struct job_record {
  std::string id;  // "j-000001", from state_db::next_job_id()
  std::string name, kind, state;
  std::string source, destination;
  transfer::copy_mode mode = transfer::copy_mode::automatic;
  time_point created_at{};
  std::optional<time_point> started_at, finished_at;
  std::uint64_t objects_total = 0, objects_done = 0, objects_failed = 0, objects_skipped = 0;
  std::uint64_t bytes_total = 0, bytes_done = 0;
  std::uint64_t server_side = 0, streamed = 0, fallbacks = 0;
  std::string error;  // job-level failure
  std::uint64_t priority = 10;
  std::string options;  // the job's options as lib/sync encodes them; lib/state does not read them
  std::uint64_t deleted = 0, passes = 0;
  std::optional<time_point> last_pass_at;
  std::uint64_t plan_copy_objects = 0, plan_copy_bytes = 0, plan_delete_objects = 0, plan_delete_bytes = 0;
  std::uint64_t plan_unchanged_objects = 0, plan_unchanged_bytes = 0;
  std::string delete_refused;

  friend bool operator==(const job_record&, const job_record&) = default;
};

// One object's place in its job. Stored values keep these numbers: never renumber.
//   pending -> in_flight -> [parts_done ->] completed -> verified | failed
// parts_done: every part of a multipart upload is stored, CompleteMultipartUpload not yet done.
// completed: the destination has the object, the verdict is not yet recorded.
enum class object_phase : std::uint8_t {
  pending = 0,
  in_flight = 1,
  parts_done = 2,
  completed = 3,
  verified = 4,
  failed = 5,
};
std::string_view to_string(object_phase p);
std::optional<object_phase> parse_object_phase(std::string_view s);

struct object_state {
  object_phase phase = object_phase::pending;
  std::uint64_t size = 0;
  std::string source_etag;
  std::optional<time_point> source_mtime;
  std::string upload_id;         // the multipart upload in progress; "" for a single-part copy
  std::uint64_t part_size = 0;   // of that upload: a resumed upload must keep it
  std::string destination_etag;  // once completed
  std::uint32_t attempts = 0;    // tries so far
  std::string error;             // the last failure
  time_point updated_at{};       // set by the caller

  friend bool operator==(const object_state&, const object_state&) = default;
};

// One completed part of a multipart upload, as needed to complete and verify it after a restart.
struct part_record {
  std::uint32_t number = 0;  // 1..10000
  std::uint64_t size = 0;
  std::string etag;          // as the server returned it, without quotes
  std::string md5;           // hex MD5 of the bytes sent (for the multipart ETag check)
  std::uint32_t crc32c = 0;  // of the bytes sent

  friend bool operator==(const part_record&, const part_record&) = default;
};

// A multipart upload ferry started, kept until it is completed or aborted, so that uploads ferry
// began and no longer tracks can be found and aborted at startup, and only ferry's own.
struct upload_record {
  std::string job;
  std::string object;                  // the job's key for the object (objects CF), which the upload is for
  std::string endpoint;                // the destination's identity: remote name or endpoint URL, as the caller chooses
  std::string bucket, key, upload_id;  // key: the destination key in the bucket, as sent to S3
  time_point created_at{};

  friend bool operator==(const upload_record&, const upload_record&) = default;
};

// A verdict as stored: the record and its place in the job's sequence of verdicts (1, 2, ...).
struct integrity_entry {
  std::uint64_t seq = 0;
  transfer::integrity_record record;
};

}  // namespace ferry::state
