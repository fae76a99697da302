#pragma once
// The endpoint of an S3 bucket under a prefix: keys are relative to the prefix (prefix + key is
// the S3 key). Listings check their own order; mtimes travel as x-amz-meta-mtime, as rclone does.
#include "s3/client.hpp"
#include "store/endpoint.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::store {

// `prefix` is "" or a folder ("photos/2024/"); a missing trailing '/' is added.
std::unique_ptr<endpoint> make_s3_endpoint(std::shared_ptr<s3::client> client, std::string bucket, std::string prefix);

// One ListObjectsV2 call; the S3 lister's only dependency, so tests can feed it pages.
using list_page_fn = std::function<asio::awaitable<result<s3::list_page>>(const s3::list_params&)>;

// The S3 lister: pages of keys under `prefix` with the prefix stripped (an object named exactly
// like the prefix is skipped), failing with "ListingOutOfOrder" on keys out of byte order.
// `where` names the listing in errors. S3 listings carry no mtime: Last-Modified is the upload
// time, not the object's mtime, which only stat() gives (x-amz-meta-mtime). They fill last_modified
// (left empty when the server's timestamp does not parse).
std::unique_ptr<lister> make_s3_lister(list_page_fn fetch, std::string prefix, std::string where);

// One ListParts call from a part-number marker; what the S3 writer's uploaded_parts() needs, so
// tests can feed it pages.
using list_parts_fn = std::function<asio::awaitable<result<s3::parts_page>>(int part_number_marker)>;

// Every part of an upload, page after page, ascending; "InvalidResponse" for a page out of order or
// one that does not advance, and for more than 10,000 parts. `where` names the upload in errors.
asio::awaitable<result<std::vector<s3::part_info>>> list_all_parts(list_parts_fn fetch, std::string where);

// One DeleteObjects call (at most 1000 full keys): the S3 remove_many's only dependency, for tests.
using delete_batch_fn = std::function<asio::awaitable<result<s3::delete_result>>(const std::vector<std::string>&)>;

// The S3 remove_many: `keys` (relative to `prefix`) deleted in batches of at most 1000, one batch at a
// time. Per-key failures ("InvalidKey" included) come back with the key as given; a failed request
// fails the whole call. S3's "NoSuchKey" for a key counts as deleted.
asio::awaitable<result<std::vector<std::pair<std::string, error>>>> delete_in_batches(delete_batch_fn del,
                                                                                      std::string prefix,
                                                                                      std::vector<std::string> keys);

// ListObjectsV2's LastModified, ISO 8601 in UTC ("2026-11-23T16:30:00.000Z"; "+00:00" and other
// offsets are accepted, fractions are kept to the nanosecond); nullopt when it does not parse.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s);

// rclone's x-amz-meta-mtime: decimal Unix seconds with an optional fraction ("1700000000.5").
std::string format_rclone_mtime(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> parse_rclone_mtime(std::string_view s);

// A Content-Range response header, "bytes FIRST-LAST/TOTAL" (inclusive, TOTAL known).
struct content_range {
  std::uint64_t first = 0, last = 0, total = 0;
};
std::optional<content_range> parse_content_range(std::string_view s);

}  // namespace ferry::store
