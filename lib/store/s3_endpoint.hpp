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

namespace ferry::store {

// `prefix` is "" or a folder ("photos/2024/"); a missing trailing '/' is added.
std::unique_ptr<endpoint> make_s3_endpoint(std::shared_ptr<s3::client> client, std::string bucket, std::string prefix);

// One ListObjectsV2 call; the S3 lister's only dependency, so tests can feed it pages.
using list_page_fn = std::function<asio::awaitable<result<s3::list_page>>(const s3::list_params&)>;

// The S3 lister: pages of keys under `prefix` with the prefix stripped (an object named exactly
// like the prefix is skipped), failing with "ListingOutOfOrder" on keys out of byte order.
// `where` names the listing in errors. S3 listings carry no mtime: Last-Modified is the upload
// time, not the object's mtime, which only stat() gives (x-amz-meta-mtime).
std::unique_ptr<lister> make_s3_lister(list_page_fn fetch, std::string prefix, std::string where);

// rclone's x-amz-meta-mtime: decimal Unix seconds with an optional fraction ("1700000000.5").
std::string format_rclone_mtime(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> parse_rclone_mtime(std::string_view s);

// A Content-Range response header, "bytes FIRST-LAST/TOTAL" (inclusive, TOTAL known).
struct content_range {
  std::uint64_t first = 0, last = 0, total = 0;
};
std::optional<content_range> parse_content_range(std::string_view s);

}  // namespace ferry::store
