#pragma once
// What the endpoint serves: synthetic buckets (keys, sizes and bytes computed, never stored), writable
// buckets (bodies are hashed and discarded; a record per object remains), and multipart uploads.
// Thread-safe; nothing here does I/O. Calls that hash (compute_md5, fold_pending, part copies) can take
// long for big objects: the server runs them off its io threads.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "digest.hpp"
#include "spec.hpp"
#include "util/hash.hpp"

namespace ferry::synthetic {

using metadata_list = std::vector<std::pair<std::string, std::string>>;  // x-amz-meta-NAME (lower-case) -> value

// A read-only bucket of generated objects. Key i is prefix + i zero-padded + suffix, so keys sort like
// their numbers and listing is index arithmetic.
class synthetic_bucket {
 public:
  synthetic_bucket(bucket_spec spec, etag_mode default_etag, std::uint64_t md5_etag_max);
  synthetic_bucket(const synthetic_bucket&) = delete;
  synthetic_bucket& operator=(const synthetic_bucket&) = delete;
  ~synthetic_bucket();

  const bucket_spec& spec() const { return spec_; }
  std::uint64_t count() const { return spec_.keys; }
  std::string key(std::uint64_t i) const;
  std::optional<std::uint64_t> index_of(std::string_view key) const;
  // The first index whose key is >= key (count() when none).
  std::uint64_t lower_bound(std::string_view key) const;
  std::uint64_t size(std::uint64_t i) const { return spec_.sizes.size_of(spec_.seed, i); }
  std::uint64_t content_seed(std::uint64_t i) const;
  void fill(std::uint64_t i, std::uint64_t offset, std::span<char> out) const;

  // Whether object i's ETag is its MD5 (else a multipart-style "<hex>-N" that is not).
  bool etag_is_md5(std::uint64_t i) const;
  // The MD5 if already computed.
  std::optional<util::md5_digest> cached_md5(std::uint64_t i) const;
  // Generates and hashes object i (size(i) bytes of work) and caches the result.
  util::md5_digest compute_md5(std::uint64_t i);
  // The ETag without quotes, when it can be given without hashing: the MD5 once cached, or the
  // multipart-style tag. nullopt: compute_md5 first.
  std::optional<std::string> etag(std::uint64_t i) const;
  // Sum of all sizes (computed once at construction).
  std::uint64_t total_bytes() const { return total_bytes_; }
  std::uint64_t md5_computed() const { return computed_.load(std::memory_order_relaxed); }

 private:
  bucket_spec spec_;
  etag_mode mode_;
  std::uint64_t md5_max_;
  std::uint64_t total_bytes_ = 0;
  // One state byte per key (0 unknown, 1 being computed, 2 ready) and its digest; calloc'd, so pages
  // of a big bucket cost memory only once touched.
  std::uint8_t* state_ = nullptr;
  util::md5_digest* digests_ = nullptr;
  std::atomic<std::uint64_t> computed_{0};
};

// Where a written object's bytes can be regenerated from: it was copied from, or proven equal to, a
// synthetic object.
struct origin_ref {
  std::shared_ptr<synthetic_bucket> bucket;
  std::uint64_t index = 0;
};

// What a writable bucket keeps of an object.
struct object_record {
  std::uint64_t size = 0;
  std::optional<util::md5_digest> md5;  // of the whole content; nullopt when it could not be followed
  std::optional<std::uint32_t> crc32c;  // likewise
  std::string etag;                     // without quotes
  unsigned parts = 0;                   // 0: a single PUT or a copy; N: completed from N parts
  std::string content_type;
  metadata_list metadata;
  std::string how;  // "put", "copy" or "multipart"
  std::chrono::system_clock::time_point last_modified;
  std::optional<origin_ref> origin;
};

class writable_bucket {
 public:
  using map_type = std::map<std::string, object_record, std::less<>>;

  // True when the key is new.
  bool put(const std::string& key, object_record r);
  std::optional<object_record> get(std::string_view key) const;
  bool contains(std::string_view key) const;
  bool erase(std::string_view key);
  std::size_t size() const;
  // Runs f(const map_type&) under the read lock (keep it short: listings, dumps).
  template <class F>
  auto with_objects(F&& f) const {
    std::shared_lock lk(mu_);
    return f(objects_);
  }

 private:
  mutable std::shared_mutex mu_;
  map_type objects_;
};

struct bucket {
  std::string name;
  std::chrono::system_clock::time_point created;
  std::chrono::milliseconds latency{0};
  std::shared_ptr<synthetic_bucket> synthetic;  // exactly one of these two is set
  std::shared_ptr<writable_bucket> writable;
};

// A synthetic byte range: where an UploadPartCopy part's content comes from.
struct content_range {
  std::shared_ptr<synthetic_bucket> bucket;
  std::uint64_t index = 0, offset = 0, length = 0;
};

struct part_record {
  std::uint64_t size = 0;
  util::md5_digest md5{};
  std::chrono::system_clock::time_point last_modified;
  std::optional<content_range> range;
};

// Shared by every upload: the bytes of parts held back because they arrived before an earlier part.
struct buffer_budget {
  std::uint64_t limit = 1ull << 30;
  std::atomic<std::uint64_t> used{0};
};

class multipart_upload;

// Receives one part's bytes. Direct mode: the part is the next one in order, so it streams into a
// clone of the running whole-object digest. Buffer mode: an earlier part is missing; the bytes are held
// (within the budget) until it comes, or only the range is kept for a synthetic part copy.
class part_receiver {
 public:
  void update(std::span<const std::byte> data);
  std::uint64_t received() const { return received_; }
  util::md5_digest md5() const { return part_md5_.digest(); }

 private:
  friend class multipart_upload;
  int number_ = 0;
  bool direct_ = false;
  bool keep_bytes_ = false;  // buffer mode for a body that must be held until its turn
  bool overflow_ = false;    // buffer mode over budget: the running digest is given up
  std::uint64_t received_ = 0;
  md5_ctx part_md5_;
  std::optional<md5_ctx> running_md5_;  // direct mode: a clone of the upload's
  util::crc32c_hasher running_crc_{};
  std::string buffer_;
  std::optional<content_range> range_;
  buffer_budget* budget_ = nullptr;
};

struct complete_part {
  int number = 0;
  std::string etag;  // without quotes
};

// An S3 error as (code, message, http status).
struct s3_failure {
  unsigned status = 400;
  std::string code, message;
};

class multipart_upload {
 public:
  multipart_upload(std::string id, std::string bucket, std::string key, std::string content_type,
                   metadata_list metadata, buffer_budget* budget);
  ~multipart_upload();

  const std::string id, bucket, key, content_type;
  const metadata_list metadata;
  const std::chrono::system_clock::time_point initiated;

  // Starts part `number`; `range` for a part copied from synthetic bytes (the receiver is fed those
  // bytes too, but keeps only the range if the part must wait).
  std::unique_ptr<part_receiver> begin_part(int number, std::optional<content_range> range = std::nullopt);
  // Records the part (md5: of its content). Returns true when parts are waiting to be folded.
  bool finish_part(part_receiver& r, const util::md5_digest& md5);
  // Gives up a part that failed (its bytes never count).
  void cancel_part(part_receiver& r);
  // Folds waiting parts into the running digest, in order, as far as they go. Hashes: call off the io
  // threads when pending_bytes() is large.
  void fold_pending();
  std::uint64_t pending_bytes() const;

  std::vector<std::pair<int, part_record>> parts() const;
  // Checks the list as S3 does (ascending, known parts, matching ETags, all but the last part at least
  // min_part_size) and gives the object's record.
  boost::system::result<object_record, s3_failure> complete(const std::vector<complete_part>& list,
                                                            std::uint64_t min_part_size);
  // Frees held bytes (abort, completion, shutdown).
  void release();

 private:
  struct pending {
    std::string bytes;
    std::optional<content_range> range;
    util::md5_digest md5{};
  };
  void drop_stale_locked();
  mutable std::mutex mu_;
  std::map<int, part_record> parts_;
  buffer_budget* budget_;
  // Running digest over parts 1 .. next_-1, each folded exactly once, in order.
  md5_ctx running_md5_;
  util::crc32c_hasher running_crc_{};
  int next_ = 1;
  bool busy_ = false;    // a direct part or fold_pending() owns the running digest
  bool broken_ = false;  // the running digest can no longer become the object's MD5
  std::map<int, util::md5_digest> folded_;
  std::map<int, pending> pending_;
  std::uint64_t pending_bytes_ = 0;
};

class store {
 public:
  struct limits {
    std::size_t max_buckets = 1000;
    std::size_t max_uploads = 100'000;
    std::uint64_t max_objects = 50'000'000;  // across writable buckets
  };
  store() = default;
  explicit store(limits l) : limits_(l) {}

  // Start-up: adds a bucket from its spec. Fails on a duplicate name.
  bool add(const bucket_spec& spec, etag_mode default_etag, std::uint64_t md5_etag_max);
  std::shared_ptr<bucket> find(std::string_view name) const;
  std::vector<std::shared_ptr<bucket>> buckets() const;  // by name
  std::vector<std::shared_ptr<synthetic_bucket>> synthetic_buckets() const;
  enum class create_result { created, exists, too_many };
  create_result create_writable(const std::string& name);
  // Removes an empty writable bucket; the failure otherwise.
  std::optional<s3_failure> remove(const std::string& name);

  // Counts an object about to be added (false: over max_objects); uncount on delete.
  bool reserve_object();
  void release_object();

  std::shared_ptr<multipart_upload> create_upload(const std::string& bucket, const std::string& key,
                                                  std::string content_type, metadata_list metadata);
  std::shared_ptr<multipart_upload> find_upload(std::string_view id) const;
  void remove_upload(std::string_view id);
  std::vector<std::shared_ptr<multipart_upload>> uploads_of(std::string_view bucket) const;
  buffer_budget& budget() { return budget_; }

  // A synthetic object with the same content as a written one (same key or key tail after a '/',
  // same size and MD5), so the written object can be read back. Hashes the candidate only when its
  // MD5 is cached or it is at most hash_limit bytes.
  std::optional<origin_ref> find_origin(std::string_view key, std::uint64_t size, const util::md5_digest& md5,
                                        std::uint64_t hash_limit) const;

 private:
  limits limits_{};
  mutable std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<bucket>, std::less<>> buckets_;
  std::map<std::string, std::shared_ptr<multipart_upload>, std::less<>> uploads_;
  std::atomic<std::uint64_t> objects_{0};
  std::atomic<std::uint64_t> upload_counter_{0};
  buffer_budget budget_;
};

// Hex of an MD5, and the multipart ETag MD5(part MD5s)-N.
std::string hex(const util::md5_digest& d);
std::string multipart_etag(const std::vector<util::md5_digest>& part_md5s);

}  // namespace ferry::synthetic
