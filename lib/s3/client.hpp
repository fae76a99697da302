#pragma once
// ferry::s3::client: the S3 operations ferry uses, for one remote (endpoint + region +
// credentials). Every call signs, sends through the http pool, classifies the answer once and
// retries what "standard" mode retries. Knows nothing of jobs.
#include "http/client.hpp"
#include "netmon/controller.hpp"
#include "netmon/gate.hpp"
#include "netmon/monitor.hpp"
#include "ratelimit/limiter.hpp"
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
// What a failure says about the path: throttling (503 SlowDown, 429...), another 5xx, a timeout, a
// reset or broken connection, anything else.
netmon::error_class failure_class_of(const error& e);

// Counters for metrics and tests.
struct client_stats {
  std::atomic<std::uint64_t> requests{0}, retries{0}, throttled{0};
  std::array<util::latency_histogram, operations.size()> latency;  // request sent -> response head
  std::array<std::atomic<std::uint64_t>, netmon::error_class_count> errors_by_reason{};
  std::array<std::atomic<std::uint64_t>, netmon::error_class_count> retries_by_reason{};
};

// How the endpoint is measured and how many requests may be in flight to it. Data requests
// (GetObject; PutObject, UploadPart, CopyObject, UploadPartCopy) wait for a slot: reads and writes
// have a gate each, both at the controller's limit, so a copy that holds a GET while it waits for
// its PUT can never deadlock with another holding a PUT.
struct tuning_config {
  netmon::controller_config controller;
  std::chrono::milliseconds slot_wait{120'000};  // waiting longer for a slot fails the request (retryable)
};

// What one view of the client adds to its requests (see client::with).
struct request_options {
  ratelimit::throttle throttle;            // bandwidth caps of the job
  std::optional<std::size_t> concurrency;  // fixed data requests in flight for this view, instead of adaptive
};

class client {
 public:
  // The local clock requests are signed with (tests skew it); the server's corrections add to it.
  using clock_fn = std::function<std::chrono::system_clock::time_point()>;

  // `http` supplies the connection pools; the credentials are resolved once by the caller.
  client(std::shared_ptr<http::client> http, remote_config cfg, credentials creds, clock_fn clock = {},
         tuning_config tuning = {});

  // A view of this client whose requests carry `o` (a job's caps and fixed concurrency); it shares
  // the connection pools, retry quota, clock correction, statistics and path measurements.
  std::shared_ptr<client> with(request_options o) const;

  const remote_config& config() const { return cfg_; }
  const client_stats& stats() const { return shared_->stats; }
  // The endpoint's measured path, and the adaptive limit on data requests in flight.
  netmon::snapshot path() const;
  std::size_t concurrency_limit() const;
  const netmon::concurrency_controller& controller() const { return shared_->controller; }
  // The part size the measurements advise for an object of `size` within [floor, ceiling].
  std::uint64_t advised_part_size(std::uint64_t size, std::uint64_t floor, std::uint64_t ceiling) const;
  std::uint64_t last_advised_part_size() const { return shared_->last_part_size.load(); }
  std::size_t data_requests_in_flight() const { return shared_->in_flight.load(); }
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

  // What every view of one client shares.
  struct shared_state {
    explicit shared_state(const tuning_config& t)
        : tuning(t), controller(t.controller), reads(t.controller.initial_limit), writes(t.controller.initial_limit) {}
    tuning_config tuning;
    std::atomic<std::int64_t> clock_offset_ms{0};  // server time - local time, learnt from RequestTimeTooSkewed
    client_stats stats;
    netmon::path_monitor monitor;
    netmon::concurrency_controller controller;
    netmon::request_gate reads, writes;
    std::atomic<std::size_t> in_flight{0};         // data requests holding a slot
    std::atomic<std::uint64_t> last_part_size{0};  // the latest advice (metrics)
  };
  // The slot a data request waits for (empty for other requests).
  asio::awaitable<result<std::shared_ptr<netmon::permit>>> admit(const call& c);
  http::exchange_observer observe(const call& c, std::shared_ptr<netmon::permit> slot) const;

  std::shared_ptr<http::client> http_;
  remote_config cfg_;
  credentials creds_;
  http::origin origin_;
  std::shared_ptr<retry_quota> quota_;
  clock_fn clock_;
  std::shared_ptr<shared_state> shared_;
  request_options opts_;
  std::shared_ptr<netmon::request_gate> fixed_reads_, fixed_writes_;  // a view's fixed concurrency
};

}  // namespace ferry::s3
