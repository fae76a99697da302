#pragma once
// ferry::s3::client: the S3 operations ferry uses, for one remote (endpoint + region +
// credentials). Every call signs, sends through the http pool, classifies the answer once and
// retries what "standard" mode retries. Knows nothing of jobs.
#include "http/client.hpp"
#include "s3/credentials.hpp"
#include "s3/error.hpp"
#include "s3/retry.hpp"
#include "s3/types.hpp"
#include "util/metrics.hpp"

#include <boost/asio/awaitable.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::s3 {

namespace asio = boost::asio;

// One [remotes.NAME] section of the config.
struct remote_config {
  std::string name;
  std::string endpoint;  // "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:9000"
  std::string region = "us-east-1";
  bool path_style = false;  // "/bucket/key" instead of "bucket.host/key"
  credentials_config credentials;
  std::string ca_file;  // extra CA bundle for this endpoint; AWS_CA_BUNDLE when empty
  std::size_t max_connections = 256;
  retry_config retry;
};

struct list_params {
  std::string prefix, delimiter, start_after, continuation_token;
  int max_keys = 1000;
};

struct get_params {
  std::optional<std::pair<std::uint64_t, std::uint64_t>> range;  // inclusive [first, last]
  std::string if_match;                                          // an ETag, without quotes
};

// A request body: in memory (shared, so every attempt resends it without a copy, and the
// client retries it) or streamed from a source of exactly `length` bytes (sent once; the caller
// retries the whole transfer).
struct body {
  std::shared_ptr<const std::string> bytes;
  http::body_source source;
  std::uint64_t length = 0;

  static body from_string(std::string s) { return body{std::make_shared<const std::string>(std::move(s)), {}, 0}; }
  static body shared(std::shared_ptr<const std::string> s) { return body{std::move(s), {}, 0}; }
  static body streamed(http::body_source src, std::uint64_t len) { return body{nullptr, std::move(src), len}; }
  std::uint64_t size() const { return source ? length : (bytes ? bytes->size() : 0); }
};

struct put_params {
  std::string content_md5;      // base64; the server rejects a body that does not match (BadDigest)
  std::string checksum_crc32c;  // base64, sent as x-amz-checksum-crc32c when set
  object_metadata metadata;
};

struct put_result {
  std::string etag;  // without quotes
};

enum class metadata_directive { copy, replace };

struct copy_params {
  metadata_directive directive = metadata_directive::copy;
  object_metadata metadata;  // with replace
  std::string if_match;      // x-amz-copy-source-if-match
};

// A GET's response: the head, and the body read on demand through the held connection.
struct object_stream {
  object_head head;
  http::response response;
  asio::awaitable<http::result<std::size_t>> read_some(std::span<char> buf) { return response.read_some(buf); }
};

// The S3 operations the client sends, in the order of client_stats::latency.
inline constexpr std::array<std::string_view, 16> operations{"ListObjectsV2",
                                                             "HeadObject",
                                                             "GetObject",
                                                             "PutObject",
                                                             "CopyObject",
                                                             "CreateMultipartUpload",
                                                             "UploadPart",
                                                             "UploadPartCopy",
                                                             "CompleteMultipartUpload",
                                                             "AbortMultipartUpload",
                                                             "ListParts",
                                                             "ListMultipartUploads",
                                                             "DeleteObjects",
                                                             "DeleteObject",
                                                             "CreateBucket",
                                                             "HeadBucket"};
// Why a request failed, in the order of client_stats' per-reason counters.
inline constexpr std::array<std::string_view, 5> failure_reasons{"throttle", "server_error", "timeout", "reset",
                                                                 "other"};
// The index in failure_reasons of a failure: throttling (503 SlowDown, 429...), another 5xx, a
// timeout, a reset or broken connection, anything else.
std::size_t failure_reason_of(const error& e);

// Counters for metrics and tests.
struct client_stats {
  std::atomic<std::uint64_t> requests{0}, retries{0}, throttled{0};
  std::array<util::latency_histogram, operations.size()> latency;  // request sent -> response head
  std::array<std::atomic<std::uint64_t>, failure_reasons.size()> errors_by_reason{};
  std::array<std::atomic<std::uint64_t>, failure_reasons.size()> retries_by_reason{};
};

class client {
 public:
  // The local clock requests are signed with (tests skew it); the server's corrections add to it.
  using clock_fn = std::function<std::chrono::system_clock::time_point()>;

  // `http` supplies the connection pools; the credentials are resolved once by the caller.
  client(std::shared_ptr<http::client> http, remote_config cfg, credentials creds, clock_fn clock = {});

  const remote_config& config() const { return cfg_; }
  const client_stats& stats() const { return stats_; }
  const http::client& http() const { return *http_; }
  const s3::credentials& creds() const { return creds_; }

  asio::awaitable<result<list_page>> list_objects_v2(std::string_view bucket, const list_params& p);
  asio::awaitable<result<object_head>> head_object(std::string_view bucket, std::string_view key);
  asio::awaitable<result<object_stream>> get_object(std::string_view bucket, std::string_view key, const get_params& p);
  asio::awaitable<result<put_result>> put_object(std::string_view bucket, std::string_view key, body b,
                                                 const put_params& p);
  asio::awaitable<result<copy_result>> copy_object(std::string_view src_bucket, std::string_view src_key,
                                                   std::string_view dst_bucket, std::string_view dst_key,
                                                   const copy_params& p);
  asio::awaitable<result<std::string>> create_multipart_upload(std::string_view bucket, std::string_view key,
                                                               const object_metadata& m);
  asio::awaitable<result<put_result>> upload_part(std::string_view bucket, std::string_view key,
                                                  std::string_view upload_id, int part_number, body b,
                                                  std::string_view content_md5 = {});
  // Copies bytes [first, last] of the source into one part (server-side).
  asio::awaitable<result<copy_result>> upload_part_copy(std::string_view src_bucket, std::string_view src_key,
                                                        std::string_view dst_bucket, std::string_view dst_key,
                                                        std::string_view upload_id, int part_number,
                                                        std::optional<std::pair<std::uint64_t, std::uint64_t>> range,
                                                        std::string_view if_match = {});
  // ETag of the completed object, without quotes. A 200 whose body is an <Error> is an error.
  asio::awaitable<result<std::string>> complete_multipart_upload(std::string_view bucket, std::string_view key,
                                                                 std::string_view upload_id,
                                                                 const std::vector<part_info>& parts);
  asio::awaitable<result<void>> abort_multipart_upload(std::string_view bucket, std::string_view key,
                                                       std::string_view upload_id);
  asio::awaitable<result<parts_page>> list_parts(std::string_view bucket, std::string_view key,
                                                 std::string_view upload_id, int part_number_marker = 0);
  asio::awaitable<result<multipart_uploads_page>> list_multipart_uploads(std::string_view bucket,
                                                                         std::string_view prefix = {},
                                                                         std::string_view key_marker = {},
                                                                         std::string_view upload_id_marker = {});
  // At most 1000 keys a call (S3's limit): more is a local error, not a request.
  asio::awaitable<result<delete_result>> delete_objects(std::string_view bucket, const std::vector<std::string>& keys);
  // DELETE of one key; S3 answers success for a key that does not exist too.
  asio::awaitable<result<void>> delete_object(std::string_view bucket, std::string_view key);
  asio::awaitable<result<void>> create_bucket(std::string_view bucket);
  asio::awaitable<result<void>> head_bucket(std::string_view bucket);

  struct call;  // one request's description (internal)

 private:
  // Sends a call with signing, retries and error classification. On success the response is
  // returned with its body unread (the caller streams or reads it).
  asio::awaitable<result<http::response>> execute(call& c);
  asio::awaitable<result<std::string>> execute_read(call& c, std::size_t body_limit);

  std::shared_ptr<http::client> http_;
  remote_config cfg_;
  credentials creds_;
  http::origin origin_;
  std::shared_ptr<retry_quota> quota_;
  clock_fn clock_;
  std::atomic<std::int64_t> clock_offset_ms_{0};  // server time - local time, learnt from RequestTimeTooSkewed
  client_stats stats_;
};

}  // namespace ferry::s3
