#pragma once
// Copies one object from a source endpoint to a destination endpoint and proves it arrived
// intact. Chooses, per object: a server-side copy (same S3 service and credentials), a streamed
// single-part copy, or a multipart copy with parts in parallel; hashes every byte that passes
// through (MD5, CRC32C) and reaches a verdict. See DESIGN.md "Integrity, precisely".
// One attempt per call: retrying the object is the job's decision.
#include "store/endpoint.hpp"
#include "transfer/budget.hpp"
#include "transfer/integrity.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::transfer {

namespace asio = boost::asio;

// auto: server-side where possible, streaming where the server refuses; server: server-side or
// fail; stream: always through ferry.
enum class copy_mode { automatic, server, stream };
std::optional<copy_mode> parse_copy_mode(std::string_view s);  // "auto" | "server" | "stream"
std::string_view to_string(copy_mode m);

struct transfer_config {
  std::uint64_t multipart_threshold = 64ull << 20;  // objects this large or larger go in parts
  std::uint64_t part_size = 8ull << 20;             // grown when an object would need > 10,000 parts
  // Part size from the destination's measured path (netmon), between part_size and this; false:
  // part_size as configured (a user's fixed --part-size, or [transfer] part_size set in the config).
  bool adaptive_part_size = true;
  std::uint64_t part_size_ceiling = 32ull << 20;
  int part_concurrency = 4;  // parts of one object in flight
  bool sha256 = false;       // also hash every streamed byte with SHA-256 (recorded; costs CPU)
};

struct copy_outcome {
  integrity_record record;  // always filled; record.result says what happened
  bool retryable = false;   // worth another attempt (transport, throttling, mismatch, source changed)
  // The server or the network failed for a while (throttling, 5xx, a reset, a timeout): worth retrying
  // later, and no fault of the object's own.
  bool transient = false;
  bool server_side = false;  // the server copied the bytes
  bool fell_back = false;    // a server-side copy was refused and the object was streamed instead
  std::string refusal;       // the server's refusal, when fell_back
  std::uint64_t bytes = 0;   // bytes that moved through ferry

  bool verified() const { return record.result == verdict::verified; }
};

// One part of a multipart upload as a journal keeps it.
struct journal_part {
  int number = 0;
  std::uint64_t size = 0;
  std::string etag;  // the destination's, without quotes
  std::string md5;   // hex MD5 of the part's bytes
  std::uint32_t crc32c = 0;
};

// An upload an earlier attempt (or an earlier ferryd) began for the object and did not finish.
struct resume_point {
  std::string upload_id;
  std::uint64_t part_size = 0;
  std::vector<journal_part> parts;  // completed, by ascending number
};

// Where a streamed multipart upload's progress is kept so that a crash loses none of it (lib/sync
// puts it in RocksDB). Called on the copy's executor; each call returns once the progress is
// durable enough to act on: false means it is not, and the copy fails rather than running
// unrecorded.
class multipart_journal {
 public:
  virtual ~multipart_journal() = default;
  // The unfinished upload recorded for this object while its source was the same (size, ETag).
  virtual asio::awaitable<std::optional<resume_point>> find(const store::object_info& object) = 0;
  // Before the upload's first part is sent.
  virtual asio::awaitable<bool> started(const store::object_info& object, std::string upload_id,
                                        std::uint64_t part_size) = 0;
  virtual asio::awaitable<bool> part_done(const store::object_info& object, std::string upload_id,
                                          journal_part part) = 0;
  // Every part is at the destination; CompleteMultipartUpload comes next.
  virtual asio::awaitable<void> all_parts_sent(const store::object_info& object, std::string upload_id,
                                               std::uint64_t part_size) = 0;
  // The upload is gone: completed or aborted (the object's verdict is recorded by the job).
  virtual asio::awaitable<void> ended(const store::object_info& object, std::string upload_id) = 0;
};

struct copy_context {
  store::endpoint& source;
  store::endpoint& destination;
  byte_budget& budget;
  const transfer_config& config;
  copy_mode mode = copy_mode::automatic;
  multipart_journal* journal = nullptr;  // optional: multipart progress survives a crash
  // Optional: set when the job is cancelled; a multipart copy stops before its next part and
  // aborts its upload.
  const std::atomic<bool>* cancelled = nullptr;
  // Optional: set when ferryd is shutting down; a multipart copy stops before its next part and
  // keeps its upload (and the journal's record of it) for the next start to resume.
  const std::atomic<bool>* stopping = nullptr;
};

// Copies `object` (as listed or stat'ed at the source) to the same key at the destination.
asio::awaitable<copy_outcome> copy_object(const copy_context& ctx, const store::object_info& object);

// At least `configured` (and S3's 5 MiB), large enough for at most 10,000 parts, at most 5 GiB.
std::uint64_t part_size_for(std::uint64_t object_size, std::uint64_t configured);
// Reads the whole object and returns the hex MD5 of its bytes.
asio::awaitable<store::result<std::string>> read_md5(store::endpoint& ep, std::string_view key);
// True for a 32-hex-digit ETag: the MD5 of a single-part, non-KMS object.
bool etag_is_md5(std::string_view etag);
// Same endpoint, region and access key: a server-side copy between them is possible.
bool same_service(const store::s3_target& a, const store::s3_target& b);

}  // namespace ferry::transfer
