#pragma once
// lib/store: where objects live. One interface, two implementations: an S3 bucket (+ prefix)
// and a local directory. Keys are relative to the endpoint's root, '/'-separated, and listed in
// UTF-8 byte order (S3's order) by both, so the planner can merge-join any two listings.
// Nothing here knows about jobs, retries of whole objects, or verification.
#include "http/client.hpp"
#include "s3/error.hpp"
#include "s3/types.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::s3 {
class client;
}

namespace ferry::store {

namespace asio = boost::asio;
using s3::error;
template <class T>
using result = s3::result<T>;

struct object_info {
  std::string key;  // relative to the endpoint's root, '/'-separated
  std::uint64_t size = 0;
  std::string etag;  // S3: as the server gave it, without quotes; local: ""
  // Local: the file's mtime. S3: x-amz-meta-mtime when present (rclone's key), else Last-Modified.
  std::optional<std::chrono::system_clock::time_point> mtime;
  s3::object_metadata metadata;  // filled by stat() and read(), not by listings
  // When the object was last written: S3 Last-Modified (from listings and HEAD), local: the file's mtime.
  // Last and defaulted, so positional initializers written before it stay valid and warning-free.
  std::optional<std::chrono::system_clock::time_point> last_modified{};
};

struct byte_range {
  std::uint64_t first = 0, last = 0;  // inclusive
  std::uint64_t size() const { return last - first + 1; }
};

// Lists an endpoint page by page, in UTF-8 byte order of key.
class lister {
 public:
  virtual ~lister() = default;
  // The next page; an empty page means the listing is complete.
  virtual asio::awaitable<result<std::vector<object_info>>> next() = 0;
};

// The bytes of one object (or one range of it), read in bounded chunks.
class object_reader {
 public:
  virtual ~object_reader() = default;
  // The object as it was when reading began (size is the whole object's, not the range's).
  virtual const object_info& info() const = 0;
  // Up to buf.size() bytes; 0 at the end of the object or range.
  virtual asio::awaitable<result<std::size_t>> read_some(std::span<char> buf) = 0;
};

struct write_options {
  std::string content_md5;      // base64 MD5 of the whole body; S3 rejects a mismatch (BadDigest)
  std::string checksum_crc32c;  // base64, sent as x-amz-checksum-crc32c when set
  s3::object_metadata metadata;
  std::optional<std::chrono::system_clock::time_point> mtime;  // local: set on the file; S3: x-amz-meta-mtime
};

struct write_result {
  std::string etag;  // S3: the destination's ETag; local: ""
};

// A multipart write: parts may arrive in any order and in parallel; nothing is visible at the
// destination until complete() succeeds. Destroying it without complete() or abort() leaves the
// upload for abort_stale/cleanup (S3) or removes the temp file (local).
class multipart_writer {
 public:
  virtual ~multipart_writer() = default;
  // S3: the upload id (for resuming); local: the temp file's path.
  virtual const std::string& id() const = 0;
  // Writes part `part_number` (1-based), bytes [offset, offset + data->size()) of the object.
  // Parts are staged in memory (from the transfer's byte budget) so they can be hashed before
  // sending and resent on a retry without another read; `content_md5` (base64) is checked by S3.
  // Returns the part's ETag (S3) or "" (local).
  virtual asio::awaitable<result<std::string>> write_part(int part_number, std::uint64_t offset,
                                                          std::shared_ptr<const std::string> data,
                                                          std::string content_md5) = 0;
  // Publishes the object from `parts` (ascending part numbers).
  virtual asio::awaitable<result<write_result>> complete(const std::vector<s3::part_info>& parts) = 0;
  virtual asio::awaitable<result<void>> abort() = 0;
  // The parts the destination already holds for this upload, ascending (S3: ListParts, every page, at most
  // 10,000 parts; local: "NotSupported"). After a crash, what need not be sent again.
  virtual asio::awaitable<result<std::vector<s3::part_info>>> uploaded_parts() = 0;
};

// Where an S3 endpoint points: what a server-side copy needs.
struct s3_target {
  std::shared_ptr<s3::client> client;
  std::string bucket;
  std::string prefix;  // "" or ending in '/'
};

class endpoint {
 public:
  virtual ~endpoint() = default;

  // The S3 bucket behind this endpoint; nullptr for a local directory.
  virtual const s3_target* s3() const { return nullptr; }

  // For logs and job descriptions: "remote:bucket/prefix/" or "/abs/path".
  virtual std::string describe() const = 0;
  virtual bool is_local() const = 0;

  virtual std::unique_ptr<lister> list() = 0;
  virtual asio::awaitable<result<object_info>> stat(std::string_view key) = 0;
  // Reads the object or a range of it. With if_match (an ETag), S3 answers 412 PreconditionFailed
  // if the object changed since: a copy never mixes two versions.
  virtual asio::awaitable<result<std::unique_ptr<object_reader>>> read(std::string_view key,
                                                                       std::optional<byte_range> range,
                                                                       std::string_view if_match) = 0;
  // Writes a whole object of exactly `size` bytes from `body`.
  virtual asio::awaitable<result<write_result>> write(std::string_view key, http::body_source body, std::uint64_t size,
                                                      const write_options& opts) = 0;
  virtual asio::awaitable<result<std::unique_ptr<multipart_writer>>> begin_multipart(std::string_view key,
                                                                                     const write_options& opts) = 0;
  // A writer for an upload begun earlier (crash resume). S3: no request is made; the first call that
  // fails with "NoSuchUpload" says the upload is gone. Local: "NotSupported" (what was written dies with
  // the writer; start again).
  virtual asio::awaitable<result<std::unique_ptr<multipart_writer>>> resume_multipart(std::string_view key,
                                                                                      std::string upload_id) = 0;
  // Abandons an upload begun earlier (S3: AbortMultipartUpload, "NoSuchUpload" counts as done; local:
  // succeeds, removing the temp file `upload_id` names if a crashed writer left it beside the key).
  virtual asio::awaitable<result<void>> abort_multipart(std::string_view key, std::string upload_id) = 0;
  virtual asio::awaitable<result<void>> remove(std::string_view key) = 0;
  // Deletes `keys`; a missing key counts as deleted. Returns the keys that could not be deleted, with
  // why; the outer error is a failure of the whole call (keys of earlier S3 batches may be gone).
  // S3: DeleteObjects, 1000 keys a request. Local: each file, then the directories left empty (never
  // the root).
  virtual asio::awaitable<result<std::vector<std::pair<std::string, error>>>> remove_many(
      std::vector<std::string> keys) = 0;
};

// A missing object, as stat() and read() of either endpoint report it: HTTP status 404 with code
// "NoSuchKey" (a bare 404 to a HEAD, "NotFound", counts too).
inline bool is_not_found(const error& e) {
  return e.code == "NoSuchKey" || (e.http_status == 404 && e.code == "NotFound");
}

}  // namespace ferry::store
