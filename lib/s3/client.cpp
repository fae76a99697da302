#include "s3/client.hpp"

#include "netmon/part_size.hpp"

#include "s3/sigv4.hpp"
#include "s3/uri.hpp"
#include "s3/xml.hpp"
#include "util/hash.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstring>

namespace ferry::s3 {

// Error documents are small; anything larger is not an S3 error body.
constexpr std::size_t error_body_limit = 256 * 1024;
// In-memory bodies up to this size are copied into each attempt; larger ones are streamed from
// the shared buffer.
constexpr std::size_t small_body = 64 * 1024;
// Listing pages of 1000 keys with long keys stay far below this.
constexpr std::size_t xml_body_limit = 16 * 1024 * 1024;

struct client::call {
  std::string op;  // for logs and errors: "PutObject"
  std::string method;
  std::string bucket;
  std::string key;
  std::vector<std::pair<std::string, std::string>> query;  // raw, encoded when sent
  http::header_list headers;
  body payload;
  bool head = false;  // HEAD: no response body
};

namespace {

std::string strip_quotes(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return std::string(s);
}

std::string header_or_empty(const http::header_list& h, std::string_view name) {
  auto v = h.get(name);
  return v ? std::string(*v) : std::string();
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

void add_metadata_headers(http::header_list& h, const object_metadata& m) {
  auto set_if = [&](std::string_view name, const std::string& v) {
    if (!v.empty()) h.set(name, v);
  };
  set_if("Content-Type", m.content_type);
  set_if("Content-Encoding", m.content_encoding);
  set_if("Content-Disposition", m.content_disposition);
  set_if("Content-Language", m.content_language);
  set_if("Cache-Control", m.cache_control);
  set_if("Expires", m.expires);
  for (const auto& [k, v] : m.user) h.set("x-amz-meta-" + k, v);
}

object_head head_from_headers(const http::header_list& h) {
  object_head out;
  if (auto cl = h.get("Content-Length")) out.size = std::strtoull(std::string(*cl).c_str(), nullptr, 10);
  out.etag = strip_quotes(header_or_empty(h, "ETag"));
  out.last_modified = header_or_empty(h, "Last-Modified");
  auto& m = out.metadata;
  m.content_type = header_or_empty(h, "Content-Type");
  m.content_encoding = header_or_empty(h, "Content-Encoding");
  m.content_disposition = header_or_empty(h, "Content-Disposition");
  m.content_language = header_or_empty(h, "Content-Language");
  m.cache_control = header_or_empty(h, "Cache-Control");
  m.expires = header_or_empty(h, "Expires");
  constexpr std::string_view meta = "x-amz-meta-";
  for (const auto& [name, value] : h.items) {
    if (starts_with_ci(name, meta)) {
      std::string k = name.substr(meta.size());
      for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      m.user[k] = value;
    }
  }
  if (auto c = h.get("x-amz-checksum-crc32c")) out.checksum_crc32c = std::string(*c);
  return out;
}

std::string range_header(std::uint64_t first, std::uint64_t last) {
  return "bytes=" + std::to_string(first) + "-" + std::to_string(last);
}

// x-amz-copy-source: "/bucket/key", the key URI-encoded with '/' kept.
std::string copy_source(std::string_view bucket, std::string_view key) {
  return "/" + std::string(bucket) + "/" + uri_encode(key, false);
}

}  // namespace

client::client(std::shared_ptr<http::client> http, remote_config cfg, credentials creds, clock_fn clock,
               tuning_config tuning)
    : http_(std::move(http)),
      cfg_(std::move(cfg)),
      creds_(std::move(creds)),
      quota_(std::make_shared<retry_quota>(cfg_.retry)),
      clock_(clock ? std::move(clock) : clock_fn([] { return std::chrono::system_clock::now(); })),
      shared_(std::make_shared<shared_state>(tuning)) {
  auto o = http::parse_origin(cfg_.endpoint);
  if (o) origin_ = *o;  // the daemon validates endpoints at config load; a bad one fails every call
}

std::shared_ptr<client> client::with(request_options o) const {
  auto v = std::make_shared<client>(*this);
  v->opts_ = std::move(o);
  v->fixed_reads_ = v->fixed_writes_ = nullptr;
  if (v->opts_.concurrency) {
    v->fixed_reads_ = std::make_shared<netmon::request_gate>(*v->opts_.concurrency);
    v->fixed_writes_ = std::make_shared<netmon::request_gate>(*v->opts_.concurrency);
  }
  return v;
}

netmon::snapshot client::path() const { return shared_->monitor.snap(netmon::clock::now()); }

std::size_t client::concurrency_limit() const { return shared_->controller.limit(); }

std::uint64_t client::advised_part_size(std::uint64_t size, std::uint64_t floor, std::uint64_t ceiling) const {
  const auto snap = path();
  netmon::part_inputs in;
  in.object_size = size;
  in.conn_throughput = snap.conn_throughput;
  in.min_rtt = snap.min_rtt.value_or(netmon::duration{});
  in.error_rate = snap.error_rate;
  in.floor = floor;
  in.ceiling = std::max(floor, ceiling);
  const auto part = netmon::choose_part_size(in);
  shared_->last_part_size.store(part);
  return part;
}

netmon::error_class failure_class_of(const error& e) {
  if (is_throttling(e)) return netmon::error_class::throttle;
  if (e.http_status >= 500) return netmon::error_class::server_error;
  if (is_timeout(e)) return netmon::error_class::timeout;
  if (e.http_status == 0 && e.transport) return netmon::error_class::reset;
  return netmon::error_class::other;
}

namespace {

bool is_read(std::string_view op) { return op == "GetObject"; }
bool is_write(std::string_view op) {
  return op == "PutObject" || op == "UploadPart" || op == "CopyObject" || op == "UploadPartCopy";
}
// Requests whose first byte is one round trip plus little server work: fair RTT samples.
bool is_small(std::string_view op) {
  return op == "HeadObject" || op == "HeadBucket" || op == "ListObjectsV2" || op == "ListParts" ||
         op == "DeleteObject" || op == "AbortMultipartUpload" || op == "ListMultipartUploads";
}

}  // namespace

asio::awaitable<result<std::shared_ptr<netmon::permit>>> client::admit(const call& c) {
  const bool read = is_read(c.op);
  if (!read && !is_write(c.op)) co_return std::shared_ptr<netmon::permit>{};
  auto& shared = *shared_;
  netmon::request_gate* gate = nullptr;
  if (opts_.concurrency)
    gate = read ? fixed_reads_.get() : fixed_writes_.get();
  else
    gate = read ? &shared.reads : &shared.writes;
  auto p = co_await gate->acquire(shared.tuning.slot_wait);
  if (!p) {
    if (p.error() == asio::error::timed_out)
      co_return local_error("SlotTimeout", "no request slot to " + cfg_.name + " for " +
                                               std::to_string(shared.tuning.slot_wait.count() / 1000) + " s");
    co_return transport_error(p.error(), c.op + " waiting for a request slot");
  }
  ++shared.in_flight;
  auto held = std::shared_ptr<netmon::permit>(new netmon::permit(std::move(*p)), [s = shared_](netmon::permit* q) {
    --s->in_flight;
    delete q;
  });
  co_return held;
}

// Feeds the monitor and the controller when the exchange ends, then frees the request's slot.
http::exchange_observer client::observe(const call& c, std::shared_ptr<netmon::permit> slot) const {
  return [s = shared_, slot = std::move(slot), small = is_small(c.op), data = is_read(c.op) || is_write(c.op),
          name = cfg_.name](const http::exchange_report& r) mutable {
    const auto now = netmon::clock::now();
    netmon::request_sample sample;
    sample.at = now;
    sample.connect = r.connect;
    sample.tls = r.tls;
    sample.first_byte = r.first_byte;
    sample.small = small;
    sample.body_bytes = std::max(r.sent_body_bytes, r.received_body_bytes);
    sample.body_time = r.sent_body_bytes > r.received_body_bytes ? r.send_time : r.receive_time;
    if (r.ec) {
      error e = transport_error(r.ec, "");
      sample.error = failure_class_of(e);
    } else if (r.status == 503 || r.status == 429) {
      sample.error = netmon::error_class::throttle;
    } else if (r.status >= 500) {
      sample.error = netmon::error_class::server_error;
    }
    s->monitor.record(sample);
    slot.reset();
    if (!data) return;
    const auto before = s->controller.limit();
    const auto limit = s->controller.on_sample(sample, s->monitor.snap(now), s->in_flight.load(), now);
    if (limit != before) {
      s->reads.set_limit(limit);
      s->writes.set_limit(limit);
      if (auto d = s->controller.last_decision()) {
        // A backoff is an event an operator wants in the journal (one per round at most); growth is not.
        if (d->to < d->from)
          spdlog::info("remote {}: backing off, concurrency {} -> {} ({})", name, d->from, d->to, d->reason);
        else
          spdlog::debug("remote {}: concurrency {} -> {} ({})", name, d->from, d->to, d->reason);
      }
    }
  };
}

asio::awaitable<result<http::response>> client::execute(call& c) {
  const auto op_index =
      static_cast<std::size_t>(std::find(operations.begin(), operations.end(), c.op) - operations.begin());
  if (origin_.host.empty())
    co_return local_error("InvalidEndpoint", "remote " + cfg_.name + ": cannot parse endpoint '" + cfg_.endpoint + "'");

  http::origin where = origin_;
  std::string target;
  if (cfg_.path_style || c.bucket.empty()) {
    target = "/" + c.bucket;
    if (!c.key.empty()) target += "/" + uri_encode(c.key, false);
  } else {
    where.host = c.bucket + "." + origin_.host;
    target = "/" + uri_encode(c.key, false);
  }
  if (!c.query.empty()) {
    target += '?';
    bool first = true;
    for (const auto& [k, v] : c.query) {
      if (!first) target += '&';
      first = false;
      target += uri_encode(k, true);
      target += '=';
      target += uri_encode(v, true);
    }
  }
  auto pool = http_->pool_for(where);
  const bool streamed = static_cast<bool>(c.payload.source);
  std::string payload_hash;
  if (streamed || where.tls())
    payload_hash = std::string(unsigned_payload);  // TLS protects the body; Content-MD5 checks it
  else
    payload_hash =
        util::to_hex(util::sha256(c.payload.bytes ? std::string_view(*c.payload.bytes) : std::string_view()));

  auto ex = co_await asio::this_coro::executor;
  for (int attempt = 1;; ++attempt) {
    http::request req;
    req.method = c.method;
    req.target = target;
    req.headers = c.headers;
    if (streamed) {
      req.source = c.payload.source;
      req.content_length = c.payload.length;
    } else if (c.payload.bytes && c.payload.bytes->size() <= small_body) {
      req.body = *c.payload.bytes;  // small: a copy keeps the http layer's stale-connection resend
    } else if (c.payload.bytes) {
      // A staged part: read from the shared buffer, never copied.
      req.source = [data = c.payload.bytes, offset = std::size_t{0}](
                       std::span<char> buf) mutable -> asio::awaitable<http::result<std::size_t>> {
        std::size_t n = std::min(buf.size(), data->size() - offset);
        std::memcpy(buf.data(), data->data() + offset, n);
        offset += n;
        co_return n;
      };
      req.content_length = c.payload.bytes->size();
    }
    req.idempotent = true;  // every S3 call ferry makes may be repeated safely
    req.throttle = opts_.throttle;
    auto slot = co_await admit(c);
    if (!slot) co_return slot.error();
    req.observer = observe(c, std::move(*slot));
    auto& stats = shared_->stats;
    sign_params sp{creds_, cfg_.region, "s3", clock_() + std::chrono::milliseconds(shared_->clock_offset_ms.load())};
    sign_request(req, where.host_header(), payload_hash, sp);
    ++stats.requests;

    error err;
    const auto sent = std::chrono::steady_clock::now();
    auto resp = co_await pool->send(std::move(req));
    if (op_index < stats.latency.size()) stats.latency[op_index].observe(std::chrono::steady_clock::now() - sent);
    if (!resp) {
      err = transport_error(resp.error(), c.op + " " + c.bucket + "/" + c.key);
    } else if (resp->status() >= 200 && resp->status() < 300) {
      quota_->on_success(attempt > 1);
      co_return std::move(*resp);
    } else {
      std::string body;
      if (!c.head) {
        auto b = co_await resp->read_all(error_body_limit);
        if (b) body = std::move(*b);
      }
      err = classify_response(resp->status(), body, header_or_empty(resp->headers(), "x-amz-request-id"),
                              header_or_empty(resp->headers(), "Date"));
    }
    if (is_throttling(err)) ++stats.throttled;
    const auto reason = static_cast<std::size_t>(failure_class_of(err));
    ++stats.errors_by_reason[reason];
    if (is_clock_skew(err) && !err.server_date.empty()) {
      // Re-signing with the server's clock is what makes the retry succeed.
      if (auto off = clock_offset_from_date(err.server_date, clock_())) shared_->clock_offset_ms.store(off->count());
    }
    if (streamed) co_return err;  // the body cannot be replayed; the caller retries the transfer
    auto decision = decide_retry(cfg_.retry, *quota_, err, attempt);
    if (!decision.retry) {
      if (err.retryable && attempt > 1)
        err.message += " (after " + std::to_string(attempt) + " attempts; " + std::string(decision.reason) + ")";
      co_return err;
    }
    ++stats.retries;
    ++stats.retries_by_reason[reason];
    auto delay = decision.delay;
    spdlog::debug("s3 {} {}/{}: {}; retry {} in {} ms", c.op, c.bucket, c.key, err.to_string(), attempt, delay.count());
    asio::steady_timer timer(ex, delay);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<result<std::string>> client::execute_read(call& c, std::size_t body_limit) {
  // A body cut short is a transport failure of the whole exchange: retry it like one.
  for (int attempt = 1;; ++attempt) {
    auto resp = co_await execute(c);
    if (!resp) co_return resp.error();
    if (c.head) co_return std::string();
    auto body = co_await resp->read_all(body_limit);
    if (body) co_return std::move(*body);
    auto err = transport_error(body.error(), c.op + " reading response body");
    if (c.payload.source || attempt >= cfg_.retry.max_attempts) co_return err;
  }
}

asio::awaitable<result<list_page>> client::list_objects_v2(std::string_view bucket, const list_params& p) {
  call c{"ListObjectsV2", "GET", std::string(bucket), {}, {}, {}, {}, false};
  c.query.emplace_back("list-type", "2");
  c.query.emplace_back("encoding-type", "url");
  c.query.emplace_back("max-keys", std::to_string(p.max_keys));
  if (!p.prefix.empty()) c.query.emplace_back("prefix", p.prefix);
  if (!p.delimiter.empty()) c.query.emplace_back("delimiter", p.delimiter);
  if (!p.start_after.empty()) c.query.emplace_back("start-after", p.start_after);
  if (!p.continuation_token.empty()) c.query.emplace_back("continuation-token", p.continuation_token);
  auto body = co_await execute_read(c, xml_body_limit);
  if (!body) co_return body.error();
  co_return parse_list_objects_v2(*body);
}

asio::awaitable<result<object_head>> client::head_object(std::string_view bucket, std::string_view key) {
  call c{"HeadObject", "HEAD", std::string(bucket), std::string(key), {}, {}, {}, true};
  auto resp = co_await execute(c);
  if (!resp) co_return resp.error();
  co_return head_from_headers(resp->headers());
}

asio::awaitable<result<object_stream>> client::get_object(std::string_view bucket, std::string_view key,
                                                          const get_params& p) {
  call c{"GetObject", "GET", std::string(bucket), std::string(key), {}, {}, {}, false};
  if (p.range) c.headers.set("Range", range_header(p.range->first, p.range->second));
  if (!p.if_match.empty()) c.headers.set("If-Match", "\"" + p.if_match + "\"");
  auto resp = co_await execute(c);
  if (!resp) co_return resp.error();
  object_stream out{head_from_headers(resp->headers()), std::move(*resp)};
  co_return out;
}

asio::awaitable<result<put_result>> client::put_object(std::string_view bucket, std::string_view key, body b,
                                                       const put_params& p) {
  call c{"PutObject", "PUT", std::string(bucket), std::string(key), {}, {}, std::move(b), false};
  if (!p.content_md5.empty()) c.headers.set("Content-MD5", p.content_md5);
  if (!p.checksum_crc32c.empty()) c.headers.set("x-amz-checksum-crc32c", p.checksum_crc32c);
  add_metadata_headers(c.headers, p.metadata);
  auto resp = co_await execute(c);
  if (!resp) co_return resp.error();
  put_result out{strip_quotes(header_or_empty(resp->headers(), "ETag"))};
  co_return out;
}

asio::awaitable<result<copy_result>> client::copy_object(std::string_view src_bucket, std::string_view src_key,
                                                         std::string_view dst_bucket, std::string_view dst_key,
                                                         const copy_params& p) {
  call c{"CopyObject", "PUT", std::string(dst_bucket), std::string(dst_key), {}, {}, {}, false};
  c.headers.set("x-amz-copy-source", copy_source(src_bucket, src_key));
  if (!p.if_match.empty()) c.headers.set("x-amz-copy-source-if-match", "\"" + p.if_match + "\"");
  if (p.directive == metadata_directive::replace) {
    c.headers.set("x-amz-metadata-directive", "REPLACE");
    add_metadata_headers(c.headers, p.metadata);
  } else {
    c.headers.set("x-amz-metadata-directive", "COPY");
  }
  auto body = co_await execute_read(c, error_body_limit);
  if (!body) co_return body.error();
  co_return parse_copy_result(*body);
}

asio::awaitable<result<std::string>> client::create_multipart_upload(std::string_view bucket, std::string_view key,
                                                                     const object_metadata& m) {
  call c{"CreateMultipartUpload", "POST", std::string(bucket), std::string(key), {{"uploads", ""}}, {}, {}, false};
  add_metadata_headers(c.headers, m);
  auto body = co_await execute_read(c, error_body_limit);
  if (!body) co_return body.error();
  co_return parse_initiate_multipart_upload(*body);
}

asio::awaitable<result<put_result>> client::upload_part(std::string_view bucket, std::string_view key,
                                                        std::string_view upload_id, int part_number, body b,
                                                        std::string_view content_md5) {
  call c{"UploadPart", "PUT", std::string(bucket), std::string(key), {}, {}, std::move(b), false};
  c.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", std::string(upload_id)}};
  if (!content_md5.empty()) c.headers.set("Content-MD5", std::string(content_md5));
  auto resp = co_await execute(c);
  if (!resp) co_return resp.error();
  put_result out{strip_quotes(header_or_empty(resp->headers(), "ETag"))};
  co_return out;
}

asio::awaitable<result<copy_result>> client::upload_part_copy(
    std::string_view src_bucket, std::string_view src_key, std::string_view dst_bucket, std::string_view dst_key,
    std::string_view upload_id, int part_number, std::optional<std::pair<std::uint64_t, std::uint64_t>> range,
    std::string_view if_match) {
  call c{"UploadPartCopy", "PUT", std::string(dst_bucket), std::string(dst_key), {}, {}, {}, false};
  c.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", std::string(upload_id)}};
  c.headers.set("x-amz-copy-source", copy_source(src_bucket, src_key));
  if (range) c.headers.set("x-amz-copy-source-range", range_header(range->first, range->second));
  if (!if_match.empty()) c.headers.set("x-amz-copy-source-if-match", "\"" + std::string(if_match) + "\"");
  auto body = co_await execute_read(c, error_body_limit);
  if (!body) co_return body.error();
  co_return parse_copy_result(*body);
}

asio::awaitable<result<std::string>> client::complete_multipart_upload(std::string_view bucket, std::string_view key,
                                                                       std::string_view upload_id,
                                                                       const std::vector<part_info>& parts) {
  call c{"CompleteMultipartUpload", "POST", std::string(bucket), std::string(key), {}, {}, {}, false};
  c.query = {{"uploadId", std::string(upload_id)}};
  c.payload = body::from_string(build_complete_multipart_upload(parts));
  c.headers.set("Content-Type", "application/xml");
  auto resp_body = co_await execute_read(c, error_body_limit);
  if (!resp_body) co_return resp_body.error();
  co_return parse_complete_multipart_upload(*resp_body);
}

asio::awaitable<result<void>> client::abort_multipart_upload(std::string_view bucket, std::string_view key,
                                                             std::string_view upload_id) {
  call c{"AbortMultipartUpload", "DELETE", std::string(bucket), std::string(key), {}, {}, {}, false};
  c.query = {{"uploadId", std::string(upload_id)}};
  auto body = co_await execute_read(c, error_body_limit);
  if (!body) co_return body.error();
  co_return result<void>();
}

asio::awaitable<result<parts_page>> client::list_parts(std::string_view bucket, std::string_view key,
                                                       std::string_view upload_id, int part_number_marker) {
  call c{"ListParts", "GET", std::string(bucket), std::string(key), {}, {}, {}, false};
  c.query = {{"uploadId", std::string(upload_id)}};
  if (part_number_marker > 0) c.query.emplace_back("part-number-marker", std::to_string(part_number_marker));
  auto body = co_await execute_read(c, xml_body_limit);
  if (!body) co_return body.error();
  co_return parse_list_parts(*body);
}

asio::awaitable<result<multipart_uploads_page>> client::list_multipart_uploads(std::string_view bucket,
                                                                               std::string_view prefix,
                                                                               std::string_view key_marker,
                                                                               std::string_view upload_id_marker) {
  call c{"ListMultipartUploads", "GET", std::string(bucket), {}, {{"uploads", ""}}, {}, {}, false};
  if (!prefix.empty()) c.query.emplace_back("prefix", std::string(prefix));
  if (!key_marker.empty()) c.query.emplace_back("key-marker", std::string(key_marker));
  if (!upload_id_marker.empty()) c.query.emplace_back("upload-id-marker", std::string(upload_id_marker));
  auto body = co_await execute_read(c, xml_body_limit);
  if (!body) co_return body.error();
  co_return parse_list_multipart_uploads(*body);
}

asio::awaitable<result<delete_result>> client::delete_objects(std::string_view bucket,
                                                              const std::vector<std::string>& keys) {
  if (keys.size() > 1000)
    co_return local_error("TooManyKeys", "DeleteObjects takes at most 1000 keys, got " + std::to_string(keys.size()));
  if (keys.empty()) co_return delete_result{};
  call c{"DeleteObjects", "POST", std::string(bucket), {}, {{"delete", ""}}, {}, {}, false};
  std::string xml = build_delete_objects(keys, /*quiet=*/false);
  auto md5 = util::md5(xml);
  c.headers.set("Content-MD5", util::base64_encode(md5));  // S3 requires it for DeleteObjects
  c.headers.set("Content-Type", "application/xml");
  c.payload = body::from_string(std::move(xml));
  auto body = co_await execute_read(c, xml_body_limit);
  if (!body) co_return body.error();
  co_return parse_delete_result(*body);
}

asio::awaitable<result<void>> client::delete_object(std::string_view bucket, std::string_view key) {
  call c{"DeleteObject", "DELETE", std::string(bucket), std::string(key), {}, {}, {}, false};
  auto body = co_await execute_read(c, error_body_limit);
  if (!body) co_return body.error();
  co_return result<void>();
}

asio::awaitable<result<void>> client::create_bucket(std::string_view bucket) {
  call c{"CreateBucket", "PUT", std::string(bucket), {}, {}, {}, {}, false};
  if (cfg_.region != "us-east-1")
    c.payload = body::from_string(
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>" +
        cfg_.region + "</LocationConstraint></CreateBucketConfiguration>");
  auto body = co_await execute_read(c, error_body_limit);
  if (!body) co_return body.error();
  co_return result<void>();
}

asio::awaitable<result<void>> client::head_bucket(std::string_view bucket) {
  call c{"HeadBucket", "HEAD", std::string(bucket), {}, {}, {}, {}, true};
  auto resp = co_await execute(c);
  if (!resp) co_return resp.error();
  co_return result<void>();
}

}  // namespace ferry::s3
