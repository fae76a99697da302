#pragma once
// The planner's parts: a merge-join of two listings in key (byte) order, and change detection.
// Memory is one listing page per side, however many keys a bucket holds; the job decides what to
// do with each pair (copy, delete, leave) and streams the work to the scheduler.
#include "store/endpoint.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace ferry::sync {

namespace asio = boost::asio;

// One key and what each side holds under it; at least one side is set.
struct listed_pair {
  std::optional<store::object_info> src, dst;
};

class merge_join {
 public:
  // `dst` may be null: every pair then has only a source.
  merge_join(std::unique_ptr<store::lister> src, std::unique_ptr<store::lister> dst);
  // The next key in byte order; nullopt once both listings are exhausted. A failed listing
  // fails the call (and the pass: a partial listing must never look like deleted objects).
  asio::awaitable<store::result<std::optional<listed_pair>>> next();

 private:
  struct side {
    std::unique_ptr<store::lister> lister;
    std::vector<store::object_info> page;
    std::size_t at = 0;
    bool done = false;
  };
  asio::awaitable<store::result<void>> fill(side& s);

  side src_, dst_;
};

struct compare_options {
  bool checksum = false;   // content hashes decide (MD5 ETags, or hashing local files)
  bool size_only = false;  // equal sizes mean unchanged
};

enum class difference {
  same,
  changed,
  // The listings cannot tell: stat the source for its exact mtime (S3 listings carry only
  // Last-Modified), or, with --checksum, hash a local side. compare_exact() decides then.
  needs_detail,
};

// Change detection from two listings (src and dst under the same key):
// - sizes differ: changed; --size-only: same otherwise;
// - both ETags are MD5s (single-part S3 objects): equal ETags mean same, with or without --checksum;
// - equal non-MD5 ETags (the same multipart upload layout) mean same;
// - --checksum with a local side: needs_detail (hash it); with two multipart ETags no hash is
//   available and the times below decide;
// - otherwise the times: same when the destination was written at or after the source's last
//   change (last_modified, to the second), which holds for anything a sync wrote. An S3 source
//   copied to a local file is the exception: the file carries the source's own mtime
//   (x-amz-meta-mtime, older than its Last-Modified), so an older file needs_detail (stat the
//   source). A time missing on either side means changed.
difference compare_listed(const store::object_info& src, const store::object_info& dst, const compare_options& o);

// After compare_listed said needs_detail: `src` as stat() returned it (mtime: x-amz-meta-mtime when
// present) and, for --checksum, the hex MD5s of both sides ("" when unknown). Same when both
// hashes are known and agree; without hashes, when the destination's last_modified equals the
// source's mtime to the second.
bool compare_exact(const store::object_info& src, const store::object_info& dst, std::string_view src_md5,
                   std::string_view dst_md5);

// The content MD5 an object's listing already proves (its ETag, when that is an MD5), else "".
std::string listed_md5(const store::object_info& o);

}  // namespace ferry::sync
