// One coroutine per connection, on its own strand: read a request head, dispatch on (method, path,
// subresource), stream the body through hashers when there is one, write the reply, repeat.
// Hashing that can be long (a listing page of unhashed objects, a big object's MD5, a part copy)
// goes to the hash pool and is awaited, so io threads keep serving other connections.
#include "server.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "chunked.hpp"
#include "generator.hpp"
#include "listing.hpp"
#include "s3/sigv4.hpp"
#include "s3/uri.hpp"
#include "xml.hpp"

namespace ferry::synthetic {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto tok = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t io_buffer_bytes = 256 * 1024;
constexpr std::size_t drain_limit = 1 << 20;             // an unread body up to this is read and dropped
constexpr std::uint64_t inline_hash_limit = 256 * 1024;  // hash on the io thread up to this many bytes
constexpr std::size_t max_metadata_bytes = 2048;         // S3's limit on user metadata
constexpr std::size_t max_key_bytes = 1024;
constexpr std::string_view owner_id = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";

enum class op : unsigned {
  list_buckets,
  head_bucket,
  create_bucket,
  delete_bucket,
  bucket_location,
  bucket_versioning,
  list_objects_v1,
  list_objects_v2,
  list_uploads,
  delete_objects,
  head_object,
  get_object,
  put_object,
  copy_object,
  create_upload,
  upload_part,
  upload_part_copy,
  complete_upload,
  abort_upload,
  list_parts,
  delete_object,
  admin,
  other,
  count_
};
constexpr std::array<std::string_view, static_cast<std::size_t>(op::count_)> op_names = {"ListBuckets",
                                                                                         "HeadBucket",
                                                                                         "CreateBucket",
                                                                                         "DeleteBucket",
                                                                                         "GetBucketLocation",
                                                                                         "GetBucketVersioning",
                                                                                         "ListObjects",
                                                                                         "ListObjectsV2",
                                                                                         "ListMultipartUploads",
                                                                                         "DeleteObjects",
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
                                                                                         "DeleteObject",
                                                                                         "Admin",
                                                                                         "Other"};

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool istarts_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && iequals(s.substr(0, p.size()), p);
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

template <class T>
bool parse_uint(std::string_view s, T& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// Continuation tokens: base64url of the last key returned, so any client passes them through intact.
std::string encode_token(std::string_view key) {
  std::string b = util::base64_encode(key);
  for (auto& c : b) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!b.empty() && b.back() == '=') b.pop_back();
  return b;
}

std::optional<std::string> decode_token(std::string_view token) {
  std::string b(token);
  for (auto& c : b) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (b.size() % 4 != 0) b.push_back('=');
  auto d = util::base64_decode(b);
  if (!d) return std::nullopt;
  return std::string(d->begin(), d->end());
}

std::string quote_etag(std::string_view etag) { return "\"" + std::string(etag) + "\""; }

// An If-Match / If-None-Match list against an ETag (without quotes).
bool etag_matches(std::string_view condition, std::string_view etag) {
  while (!condition.empty()) {
    const auto comma = condition.find(',');
    std::string_view t = trim(condition.substr(0, comma));
    condition = comma == std::string_view::npos ? std::string_view{} : condition.substr(comma + 1);
    if (t.starts_with("W/")) t.remove_prefix(2);
    if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
    if (t == "*" || iequals(t, etag)) return true;
  }
  return false;
}

struct byte_range {
  std::uint64_t first = 0, last = 0;
};
enum class range_status { none, ok, unsatisfiable };

// "bytes=a-b", "bytes=a-", "bytes=-n". Anything else (multiple ranges, other units) is ignored, as
// HTTP allows and S3 does.
range_status parse_range(std::string_view h, std::uint64_t size, byte_range& out) {
  h = trim(h);
  if (!h.starts_with("bytes=")) return range_status::none;
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return range_status::none;
  const auto dash = h.find('-');
  if (dash == std::string_view::npos) return range_status::none;
  const std::string_view a = trim(h.substr(0, dash)), b = trim(h.substr(dash + 1));
  std::uint64_t x = 0, y = 0;
  if (a.empty()) {
    if (!parse_uint(b, y)) return range_status::none;
    if (y == 0 || size == 0) return range_status::unsatisfiable;
    out = {size - std::min(y, size), size - 1};
    return range_status::ok;
  }
  if (!parse_uint(a, x)) return range_status::none;
  if (!b.empty()) {
    if (!parse_uint(b, y) || y < x) return range_status::none;
  } else {
    y = ~0ull;
  }
  if (x >= size) return range_status::unsatisfiable;
  out = {x, std::min(y, size - 1)};
  return range_status::ok;
}

// x-amz-copy-source: "[/]bucket/key[?versionId=...]", URL-encoded.
std::optional<std::pair<std::string, std::string>> parse_copy_source(std::string_view v) {
  v = trim(v);
  v = v.substr(0, v.find('?'));
  auto d = s3::uri_decode(v, false);
  if (!d) return std::nullopt;
  std::string_view s = *d;
  if (s.starts_with('/')) s.remove_prefix(1);
  const auto slash = s.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= s.size()) return std::nullopt;
  return std::pair{std::string(s.substr(0, slash)), std::string(s.substr(slash + 1))};
}

std::string tsv_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '\t')
      out += "\\t";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\\')
      out += "\\\\";
    else
      out += c;
  }
  return out;
}

// HTTP Date header, formatted once per second per thread.
const std::string& date_now() {
  thread_local std::int64_t cached_second = -1;
  thread_local std::string cached;
  const auto now = std::chrono::system_clock::now();
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (s != cached_second) {
    cached_second = s;
    cached = http_date(now);
  }
  return cached;
}

struct body_sink {
  virtual ~body_sink() = default;
  // False stops reading (the reply then closes the connection).
  virtual bool consume(std::span<const std::byte> raw) = 0;
};

struct null_sink final : body_sink {
  bool consume(std::span<const std::byte>) override { return true; }
};

// Collects a small body (XML), refusing more than `limit` bytes.
struct string_sink final : body_sink {
  explicit string_sink(std::size_t l) : limit(l) {}
  bool consume(std::span<const std::byte> raw) override {
    if (text.size() + raw.size() > limit) {
      too_large = true;
      return false;
    }
    text.append(reinterpret_cast<const char*>(raw.data()), raw.size());
    return true;
  }
  std::size_t limit;
  std::string text;
  bool too_large = false;
};

// What a reply is: status, headers, and a body that is a string or a generated byte range.
struct reply {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string content_type = "application/xml";
  std::shared_ptr<synthetic_bucket> gen;  // body generated from (gen, gen_index)
  std::uint64_t gen_index = 0, gen_offset = 0, gen_length = 0;
  bool head = false;  // HEAD: announce head_length, send no body
  std::uint64_t head_length = 0;
  bool close = false;
  std::string error_code;  // for logs and stats
};

// The parsed request line and what dispatch resolved.
struct request {
  bhttp::verb method = bhttp::verb::unknown;
  std::string method_text, target, raw_path, raw_query;
  std::string bucket, key;  // decoded
  std::vector<std::pair<std::string, std::string>> query;
  std::string id;
  std::shared_ptr<synthetic::bucket> b;
  op kind = op::other;
  std::uint64_t bytes_in = 0;

  bool has(std::string_view name) const {
    return std::any_of(query.begin(), query.end(), [&](const auto& p) { return p.first == name; });
  }
  std::optional<std::string_view> q(std::string_view name) const {
    for (const auto& [k, v] : query)
      if (k == name) return std::string_view(v);
    return std::nullopt;
  }
  std::string resource() const { return raw_path; }
};

using parser_type = bhttp::request_parser<bhttp::buffer_body>;

struct conn {
  explicit conn(tcp::socket s)
      : stream(std::move(s)),
        buffer(1 << 20),
        io(io_buffer_bytes),
        timer(stream.get_executor()),
        watchdog(stream.get_executor()) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::vector<char> io;
  std::optional<parser_type> parser;
  asio::steady_timer timer;     // bucket latency
  asio::steady_timer watchdog;  // bulk transfers: fires when there was no progress for the idle timeout
  std::chrono::steady_clock::time_point progress;
  bool sent_continue = false;
  // Content-Length bodies are read straight from the socket, past Beast: bytes still to come.
  // nullopt: chunked transfer-encoding, read through the parser.
  std::optional<std::uint64_t> body_left;

  parser_type& p() { return *parser; }
  bool body_done() const { return body_left ? *body_left == 0 : parser->is_done(); }
  std::string_view header(std::string_view name) const {
    const auto& m = parser->get();
    auto it = m.find(name);
    return it == m.end() ? std::string_view{} : std::string_view(it->value());
  }
  bool has_header(std::string_view name) const { return parser->get().find(name) != parser->get().end(); }
};

// A PUT or UploadPart body: aws-chunked decoding, then MD5 (or the part receiver), CRC32C, and the
// payload SHA-256 when the client gave one to check.
class payload_sink final : public body_sink {
 public:
  payload_sink(bool chunked, bool sha256, std::uint64_t limit, part_receiver* part)
      : chunked_(chunked), sha_(sha256), limit_(limit), part_(part) {}

  bool consume(std::span<const std::byte> raw) override {
    if (sha_) sha256_.update(raw);
    if (!chunked_) return payload(raw);
    auto sink = [this](std::span<const char> s) {
      if (!failed_) payload(std::span<const std::byte>(reinterpret_cast<const std::byte*>(s.data()), s.size()));
    };
    if (!decoder_.feed(std::span<const char>(reinterpret_cast<const char*>(raw.data()), raw.size()), sink))
      failed_ = true;
    return !failed_;
  }

  bool too_large() const { return too_large_; }
  bool decode_failed() const { return chunked_ && !decoder_.error().empty(); }
  bool complete() const { return !chunked_ || decoder_.done(); }
  std::uint64_t size() const { return size_; }
  util::md5_digest md5() { return part_ ? part_->md5() : md5_.finish(); }
  util::crc32c_hasher& crc() { return crc_; }
  util::sha256_digest sha256() { return sha256_.finish(); }
  const aws_chunked_decoder& decoder() const { return decoder_; }

 private:
  bool payload(std::span<const std::byte> b) {
    size_ += b.size();
    if (size_ > limit_) {
      too_large_ = failed_ = true;
      return false;
    }
    if (part_)
      part_->update(b);
    else
      md5_.update(b);
    crc_.update(b);
    return true;
  }

  bool chunked_, sha_;
  std::uint64_t limit_;
  part_receiver* part_;
  bool failed_ = false, too_large_ = false;
  std::uint64_t size_ = 0;
  aws_chunked_decoder decoder_;
  util::md5_hasher md5_;
  util::crc32c_hasher crc_;
  util::sha256_hasher sha256_;
};

// What the client promised about a body, checked before and after reading it.
struct payload_expectations {
  std::optional<util::md5_digest> content_md5;
  std::optional<std::string> sha256_hex;
  std::optional<std::uint32_t> crc32c;
  bool crc32c_in_trailer = false;
  bool chunked = false;
  std::optional<std::uint64_t> decoded_length;
};

std::optional<std::uint32_t> decode_crc32c(std::string_view b64) {
  auto d = util::base64_decode(trim(b64));
  if (!d || d->size() != 4) return std::nullopt;
  return (std::uint32_t{(*d)[0]} << 24) | (std::uint32_t{(*d)[1]} << 16) | (std::uint32_t{(*d)[2]} << 8) | (*d)[3];
}

// An object as GET/HEAD/copy see it.
struct object_view {
  std::uint64_t size = 0;
  std::string etag;
  std::chrono::system_clock::time_point mtime;
  std::string content_type = "application/octet-stream";
  metadata_list metadata;
  std::optional<util::md5_digest> md5;
  std::shared_ptr<synthetic_bucket> gen;  // readable: bytes come from here
  std::uint64_t gen_index = 0;
};

}  // namespace

struct server::impl {
  impl(store& s, server_config c)
      : st(s),
        cfg(std::move(c)),
        threads(cfg.threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : cfg.threads),
        ioc(static_cast<int>(threads)),
        pool(threads),
        acceptor(ioc),
        started(std::chrono::steady_clock::now()) {
    const std::uint64_t r =
        mix64(static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()));
    id_base = r & 0xFFFFFFFF00000000ull;
  }

  store& st;
  server_config cfg;
  unsigned threads;
  asio::io_context ioc;
  asio::thread_pool pool;
  tcp::acceptor acceptor;
  std::chrono::steady_clock::time_point started;
  std::uint64_t id_base = 0;

  std::atomic<std::uint64_t> next_id{0};
  std::atomic<std::size_t> connections{0};
  std::atomic<std::uint64_t> connections_total{0}, refused{0}, requests{0}, bytes_in{0}, bytes_out{0}, status_4xx{0},
      status_5xx{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(op::count_)> op_counts{};

  // ---- plumbing ----

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(tcp::socket sock);
  asio::awaitable<bool> serve(conn& c);
  asio::awaitable<reply> dispatch(conn& c, request& r);
  asio::awaitable<void> watchdog(conn& c);
  asio::awaitable<error_code> read_raw(conn& c, request& r, body_sink& sink);
  asio::awaitable<error_code> read_body(conn& c, request& r, body_sink& sink);
  asio::awaitable<error_code> write_raw(conn& c, const std::string& head, reply& rep, std::uint64_t& sent);
  asio::awaitable<error_code> write_reply(conn& c, const request& r, reply& rep, bool keep_alive);

  // Runs fn(i) for i in [0, n) on the hash pool; resumes here when all are done. Rethrows the first
  // exception a call threw.
  template <class F>
  asio::awaitable<void> parallel_for(std::size_t n, F& fn) {
    if (n == 0) co_return;
    const std::size_t tasks = std::min<std::size_t>(n, threads);
    auto ex = co_await asio::this_coro::executor;
    asio::experimental::concurrent_channel<void(error_code)> done(ex, tasks);
    std::atomic<std::size_t> next{0};
    std::mutex mu;
    std::exception_ptr first_error;
    for (std::size_t t = 0; t < tasks; ++t) {
      asio::post(pool, [&] {
        for (std::size_t i; (i = next.fetch_add(1)) < n;) {
          try {
            fn(i);
          } catch (...) {
            std::lock_guard lk(mu);
            if (!first_error) first_error = std::current_exception();
          }
        }
        done.try_send(error_code{});
      });
    }
    for (std::size_t t = 0; t < tasks; ++t) co_await done.async_receive(asio::use_awaitable);
    if (first_error) std::rethrow_exception(first_error);
  }

  // Runs fn() inline when `work` bytes are cheap, else on the hash pool.
  template <class F>
  asio::awaitable<void> hash_work(std::uint64_t work, F& fn) {
    if (work <= inline_hash_limit) {
      fn();
      co_return;
    }
    auto one = [&fn](std::size_t) { fn(); };
    co_await parallel_for(1, one);
  }

  // ---- replies ----

  reply error(const request& r, unsigned status, std::string_view code, std::string_view message) {
    reply rep;
    rep.status = status;
    rep.error_code = code;
    if (r.method == bhttp::verb::head) {
      rep.head = true;
      return rep;
    }
    xml_writer x("Error", false);
    x.element("Code", code).element("Message", message).element("Resource", r.resource()).element("RequestId", r.id);
    if (!r.bucket.empty()) x.element("BucketName", r.bucket);
    if (!r.key.empty()) x.element("Key", r.key);
    rep.body = x.finish();
    return rep;
  }
  reply error(const request& r, const s3_failure& f) { return error(r, f.status, f.code, f.message); }
  reply no_such_bucket(const request& r) {
    return error(r, 404, "NoSuchBucket", "The specified bucket does not exist");
  }
  reply no_such_key(const request& r) { return error(r, 404, "NoSuchKey", "The specified key does not exist."); }
  reply read_only(const request& r) {
    return error(r, 403, "AccessDenied", "Synthetic buckets are read-only; write to a writable bucket");
  }
  reply not_implemented(const request& r, std::string_view what) {
    return error(r, 501, "NotImplemented", std::string(what) + " is not implemented by synthetic-s3");
  }
  static reply xml_reply(std::string body) {
    reply rep;
    rep.body = std::move(body);
    return rep;
  }

  // ---- checks ----

  std::optional<s3_failure> verify_signature(conn& c, const request& r);
  std::optional<s3_failure> read_expectations(conn& c, payload_expectations& e, std::uint64_t limit);
  std::optional<s3_failure> check_payload(const payload_expectations& e, payload_sink& s);
  std::optional<s3_failure> read_metadata(conn& c, metadata_list& out);
  std::optional<s3_failure> resolve_object(const request& r, std::string_view bucket_name, std::string_view key,
                                           std::shared_ptr<bucket>& b, object_view& ov, bool& need_md5,
                                           std::optional<std::uint64_t>& synthetic_index);
  asio::awaitable<std::optional<s3_failure>> load_object(const request& r, std::string_view bucket_name,
                                                         std::string_view key, object_view& ov, bool want_md5);

  // ---- operations ----

  reply list_buckets(const request& r);
  reply bucket_location(const request& r);
  asio::awaitable<reply> create_bucket(conn& c, request& r);
  asio::awaitable<reply> list_objects(conn& c, request& r, bool v2);
  reply list_uploads(const request& r);
  asio::awaitable<reply> delete_objects(conn& c, request& r);
  asio::awaitable<reply> get_object(conn& c, request& r, bool head);
  asio::awaitable<reply> put_object(conn& c, request& r);
  asio::awaitable<reply> copy_object(conn& c, request& r);
  asio::awaitable<reply> create_upload(conn& c, request& r);
  asio::awaitable<reply> upload_part(conn& c, request& r, bool copy);
  asio::awaitable<reply> complete_upload(conn& c, request& r);
  reply abort_upload(const request& r);
  reply list_parts(const request& r);
  reply delete_object(const request& r);
  asio::awaitable<reply> admin(conn& c, request& r);
  asio::awaitable<reply> admin_expected(request& r, const std::shared_ptr<synthetic_bucket>& sb, bool tsv);
  asio::awaitable<reply> admin_verify(request& r);
  reply admin_stats(const request& r);

  // Counts new keys against store::limits::max_objects. The count is exact without races; two writers
  // racing on one new key may leave it off by one, which only moves a limit nobody should reach.
  void store_record(writable_bucket& wb, const std::string& key, object_record rec, bool reserved) {
    if (wb.put(key, std::move(rec)) != reserved) {
      if (reserved)
        st.release_object();
      else
        (void)st.reserve_object();
    }
  }
  void record_object(writable_bucket& wb, const std::string& key, object_record rec, bool reserved) {
    if (!rec.origin && rec.md5) rec.origin = st.find_origin(key, rec.size, *rec.md5, cfg.origin_hash_limit);
    store_record(wb, key, std::move(rec), reserved);
  }
};

// ---------------------------------------------------------------------------------------------
// Accepting, sessions, reading and writing.

asio::awaitable<void> server::impl::accept_loop() {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(asio::make_strand(ioc), tok);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      spdlog::warn("accept: {}", ec.message());
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await t.async_wait(tok);
      continue;
    }
    if (connections.load(std::memory_order_relaxed) >= cfg.max_connections) {
      refused.fetch_add(1, std::memory_order_relaxed);
      error_code ignored;
      sock.close(ignored);
      continue;
    }
    connections.fetch_add(1, std::memory_order_relaxed);
    connections_total.fetch_add(1, std::memory_order_relaxed);
    auto ex = sock.get_executor();
    asio::co_spawn(ex, session(std::move(sock)), [this](std::exception_ptr e) {
      connections.fetch_sub(1, std::memory_order_relaxed);
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        spdlog::error("connection failed: {}", x.what());
      } catch (...) {
        spdlog::error("connection failed with an unknown exception");
      }
    });
  }
}

asio::awaitable<void> server::impl::session(tcp::socket sock) {
  error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  conn c(std::move(sock));
  for (;;) {
    c.parser.emplace();
    c.sent_continue = false;
    auto& p = c.p();
    p.header_limit(static_cast<std::uint32_t>(cfg.header_limit));
    // aws-chunked framing adds under 1% to a body; our own limits apply to the decoded size.
    p.body_limit(cfg.max_object_size + cfg.max_object_size / 64 + (1 << 20));
    c.stream.expires_after(cfg.idle_timeout);
    auto [rec, n] = co_await bhttp::async_read_header(c.stream, c.buffer, p, tok);
    if (rec) {
      if (rec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
          rec != bhttp::error::end_of_stream && rec != bhttp::error::partial_message) {
        // A malformed or oversized head: say so, then close (the stream position is unknown).
        request r;
        r.id = "0";
        reply rep = error(r, rec == bhttp::error::header_limit ? 431 : 400, "BadRequest", rec.message());
        rep.close = true;
        co_await write_reply(c, r, rep, false);
      }
      break;
    }
    c.stream.expires_never();
    if (p.chunked())
      c.body_left.reset();
    else
      c.body_left = p.content_length().value_or(0);
    bool keep = co_await serve(c);
    if (!keep) break;
  }
  c.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

// Returns when the transfer it guards made no progress for the idle timeout (one timer wait per
// idle period, not one per read or write: that costs a syscall each).
asio::awaitable<void> server::impl::watchdog(conn& c) {
  for (;;) {
    const auto deadline = c.progress + cfg.idle_timeout;
    if (std::chrono::steady_clock::now() >= deadline) co_return;
    c.watchdog.expires_at(deadline);
    auto [ec] = co_await c.watchdog.async_wait(tok);
    (void)ec;
  }
}

asio::awaitable<error_code> server::impl::read_raw(conn& c, request& r, body_sink& sink) {
  std::uint64_t& left = *c.body_left;
  // What Beast read past the head.
  if (left > 0 && c.buffer.size() > 0) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, c.buffer.size()));
    const auto* data = static_cast<const std::byte*>(c.buffer.data().data());
    r.bytes_in += n;
    left -= n;
    const bool ok = sink.consume(std::span<const std::byte>(data, n));
    c.buffer.consume(n);
    if (!ok) co_return asio::error::message_size;
  }
  auto& sock = c.stream.socket();
  while (left > 0) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, c.io.size()));
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(c.io.data(), want), tok);
    if (ec) co_return ec;
    c.progress = std::chrono::steady_clock::now();
    r.bytes_in += n;
    left -= n;
    if (!sink.consume(std::span<const std::byte>(reinterpret_cast<const std::byte*>(c.io.data()), n)))
      co_return asio::error::message_size;
  }
  co_return error_code{};
}

asio::awaitable<error_code> server::impl::read_body(conn& c, request& r, body_sink& sink) {
  if (c.body_done()) co_return error_code{};
  if (!c.sent_continue && iequals(c.header("expect"), "100-continue")) {
    c.sent_continue = true;
    static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
    c.stream.expires_after(cfg.idle_timeout);
    auto [ec, n] = co_await asio::async_write(c.stream, asio::buffer(cont.data(), cont.size()), tok);
    c.stream.expires_never();
    if (ec) co_return ec;
  }
  if (c.body_left) {
    c.progress = std::chrono::steady_clock::now();
    auto res = co_await (read_raw(c, r, sink) || watchdog(c));
    c.watchdog.cancel();
    if (res.index() == 1) co_return asio::error::timed_out;
    co_return std::get<0>(res);
  }
  // Chunked transfer-encoding: Beast decodes it.
  auto& p = c.p();
  while (!p.is_done()) {
    p.get().body().data = c.io.data();
    p.get().body().size = c.io.size();
    c.stream.expires_after(cfg.idle_timeout);
    auto [ec, n] = co_await bhttp::async_read(c.stream, c.buffer, p, tok);
    c.stream.expires_never();
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) co_return ec;
    const std::size_t got = c.io.size() - p.get().body().size;
    r.bytes_in += got;
    if (got > 0 && !sink.consume(std::span<const std::byte>(reinterpret_cast<const std::byte*>(c.io.data()), got)))
      co_return asio::error::message_size;
  }
  co_return error_code{};
}

asio::awaitable<error_code> server::impl::write_raw(conn& c, const std::string& head, reply& rep, std::uint64_t& sent) {
  auto& sock = c.stream.socket();
  const bool generated = rep.gen != nullptr;
  if (rep.head || !generated) {
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::const_buffer()};
    if (!rep.head) bufs[1] = asio::buffer(rep.body);
    auto [ec, n] = co_await asio::async_write(sock, bufs, tok);
    sent += n;
    co_return ec;
  }
  const std::uint64_t seed = rep.gen->content_seed(rep.gen_index);
  std::uint64_t off = rep.gen_offset, left = rep.gen_length;
  bool first = true;
  while (left > 0 || first) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, c.io.size()));
    fill(seed, off, std::span<char>(c.io.data(), n));
    std::array<asio::const_buffer, 2> bufs{asio::const_buffer(), asio::buffer(c.io.data(), n)};
    if (first) bufs[0] = asio::buffer(head);
    auto [ec, wrote] = co_await asio::async_write(sock, bufs, tok);
    c.progress = std::chrono::steady_clock::now();
    sent += wrote;
    first = false;
    off += n;
    left -= n;
    if (ec) co_return ec;
  }
  co_return error_code{};
}

asio::awaitable<error_code> server::impl::write_reply(conn& c, const request& r, reply& rep, bool keep_alive) {
  std::string h;
  h.reserve(512 + rep.headers.size() * 64);
  h.append("HTTP/1.1 ").append(std::to_string(rep.status)).append(" ");
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(rep.status));
  h.append(reason.data(), reason.size()).append("\r\n");
  h.append("Server: synthetic-s3\r\nDate: ").append(date_now()).append("\r\n");
  h.append("x-amz-request-id: ").append(r.id).append("\r\nx-amz-id-2: ").append(r.id).append("\r\n");
  for (const auto& [k, v] : rep.headers) h.append(k).append(": ").append(v).append("\r\n");
  const bool generated = rep.gen != nullptr;
  const std::uint64_t length = rep.head ? rep.head_length : generated ? rep.gen_length : rep.body.size();
  if (!rep.head && !generated && !rep.body.empty()) h.append("Content-Type: ").append(rep.content_type).append("\r\n");
  if (rep.status != 204 && rep.status != 304)
    h.append("Content-Length: ").append(std::to_string(length)).append("\r\n");
  if (!keep_alive) h.append("Connection: close\r\n");
  h.append("\r\n");

  std::uint64_t sent = 0;
  c.progress = std::chrono::steady_clock::now();
  auto res = co_await (write_raw(c, h, rep, sent) || watchdog(c));
  c.watchdog.cancel();
  bytes_out.fetch_add(sent, std::memory_order_relaxed);
  if (res.index() == 1) co_return asio::error::timed_out;
  co_return std::get<0>(res);
}

asio::awaitable<bool> server::impl::serve(conn& c) {
  const auto t0 = std::chrono::steady_clock::now();
  auto& m = c.p().get();
  request r;
  r.method = m.method();
  r.method_text = std::string(m.method_string());
  r.target = std::string(m.target());
  char idbuf[24];
  const auto idn = std::to_chars(idbuf, idbuf + sizeof idbuf, id_base + next_id.fetch_add(1), 16).ptr - idbuf;
  r.id.assign(idbuf, static_cast<std::size_t>(idn));
  std::transform(r.id.begin(), r.id.end(), r.id.begin(), [](char ch) { return static_cast<char>(std::toupper(ch)); });
  requests.fetch_add(1, std::memory_order_relaxed);

  reply rep;
  bool parsed = true;
  {
    std::string_view t = r.target;
    if (t.starts_with("http://") || t.starts_with("https://")) {  // absolute-form
      t.remove_prefix(t.find("//") + 2);
      const auto slash = t.find('/');
      t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
    }
    const auto qm = t.find('?');
    r.raw_path = std::string(t.substr(0, qm));
    r.raw_query = qm == std::string_view::npos ? std::string() : std::string(t.substr(qm + 1));
    auto path = s3::uri_decode(r.raw_path, false);
    if (!path || path->empty() || path->front() != '/') {
      parsed = false;
    } else {
      const std::string_view ps = std::string_view(*path).substr(1);
      const auto slash = ps.find('/');
      r.bucket = std::string(ps.substr(0, slash));
      if (slash != std::string_view::npos) r.key = std::string(ps.substr(slash + 1));
    }
    std::string_view qs = r.raw_query;
    while (parsed && !qs.empty()) {
      const auto amp = qs.find('&');
      const std::string_view item = qs.substr(0, amp);
      qs = amp == std::string_view::npos ? std::string_view{} : qs.substr(amp + 1);
      if (item.empty()) continue;
      const auto eq = item.find('=');
      auto k = s3::uri_decode(item.substr(0, eq), true);
      auto v = s3::uri_decode(eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1), true);
      if (!k || !v || r.query.size() >= 64) {
        parsed = false;
        break;
      }
      r.query.emplace_back(std::move(*k), std::move(*v));
    }
  }
  if (!parsed) {
    rep = error(r, 400, "InvalidURI", "Couldn't parse the specified URI.");
  } else if (r.key.size() > max_key_bytes) {
    rep = error(r, 400, "KeyTooLongError", "Your key is too long");
  } else if (auto bad = cfg.verify_signatures && !r.raw_path.starts_with("/_synthetic/")
                            ? verify_signature(c, r)
                            : std::optional<s3_failure>{}) {
    rep = error(r, *bad);
  } else {
    rep = co_await dispatch(c, r);
  }
  op_counts[static_cast<std::size_t>(r.kind)].fetch_add(1, std::memory_order_relaxed);

  if (r.b && r.b->latency.count() > 0) {
    c.timer.expires_after(r.b->latency);
    co_await c.timer.async_wait(tok);
  }

  auto& p = c.p();
  bool keep = p.get().keep_alive() && !rep.close;
  if (!c.body_done()) {
    // The handler did not read the body (an early error). Read a small one to keep the connection;
    // a client still waiting for 100 Continue will not send it, and a big one is not worth reading.
    if (c.sent_continue || !c.has_header("expect")) {
      if (c.body_left && *c.body_left <= drain_limit) {
        null_sink drop;
        if (co_await read_body(c, r, drop)) keep = false;
      } else {
        keep = false;
      }
    } else {
      keep = false;
    }
  }
  bytes_in.fetch_add(r.bytes_in, std::memory_order_relaxed);
  if (rep.status >= 500)
    status_5xx.fetch_add(1, std::memory_order_relaxed);
  else if (rep.status >= 400)
    status_4xx.fetch_add(1, std::memory_order_relaxed);
  const error_code wec = co_await write_reply(c, r, rep, keep);
  if (cfg.log_requests) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
    spdlog::info("{} {} {} {} {}{} in={} out={} {}us", r.id, op_names[static_cast<std::size_t>(r.kind)], r.method_text,
                 r.target, rep.status, rep.error_code.empty() ? "" : " " + rep.error_code, r.bytes_in,
                 rep.head  ? 0
                 : rep.gen ? rep.gen_length
                           : rep.body.size(),
                 us.count());
  }
  co_return keep && !wec;
}

// ---------------------------------------------------------------------------------------------
// Dispatch.

asio::awaitable<reply> server::impl::dispatch(conn& c, request& r) {
  using bhttp::verb;
  const verb m = r.method;
  if (r.raw_path.starts_with("/_synthetic/")) {
    r.kind = op::admin;
    co_return co_await admin(c, r);
  }
  if (r.bucket.empty()) {
    if (m == verb::get) {
      r.kind = op::list_buckets;
      co_return list_buckets(r);
    }
    co_return error(r, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
  }
  static constexpr std::array<std::string_view, 28> unsupported = {"acl",
                                                                   "policy",
                                                                   "cors",
                                                                   "lifecycle",
                                                                   "tagging",
                                                                   "website",
                                                                   "logging",
                                                                   "notification",
                                                                   "replication",
                                                                   "encryption",
                                                                   "object-lock",
                                                                   "retention",
                                                                   "legal-hold",
                                                                   "restore",
                                                                   "select",
                                                                   "torrent",
                                                                   "attributes",
                                                                   "accelerate",
                                                                   "requestPayment",
                                                                   "analytics",
                                                                   "inventory",
                                                                   "metrics",
                                                                   "intelligent-tiering",
                                                                   "ownershipControls",
                                                                   "publicAccessBlock",
                                                                   "versions",
                                                                   "policyStatus",
                                                                   "renameObject"};
  for (const auto& s : unsupported)
    if (r.has(s)) co_return not_implemented(r, "The ?" + std::string(s) + " subresource");

  r.b = st.find(r.bucket);
  if (r.key.empty()) {
    switch (m) {
      case verb::put:
        r.kind = op::create_bucket;
        co_return co_await create_bucket(c, r);
      case verb::head:
        r.kind = op::head_bucket;
        if (!r.b) co_return no_such_bucket(r);
        {
          reply rep;
          rep.head = true;
          rep.headers.emplace_back("x-amz-bucket-region", cfg.region);
          co_return rep;
        }
      case verb::delete_: {
        r.kind = op::delete_bucket;
        if (auto f = st.remove(r.bucket)) co_return error(r, *f);
        reply rep;
        rep.status = 204;
        co_return rep;
      }
      case verb::get:
        if (!r.b) co_return no_such_bucket(r);
        if (r.has("location")) {
          r.kind = op::bucket_location;
          co_return bucket_location(r);
        }
        if (r.has("versioning")) {
          r.kind = op::bucket_versioning;
          xml_writer x("VersioningConfiguration");
          co_return xml_reply(x.finish());
        }
        if (r.has("uploads")) {
          r.kind = op::list_uploads;
          co_return list_uploads(r);
        }
        if (r.q("list-type") == "2") {
          r.kind = op::list_objects_v2;
          co_return co_await list_objects(c, r, true);
        }
        r.kind = op::list_objects_v1;
        co_return co_await list_objects(c, r, false);
      case verb::post:
        if (r.has("delete")) {
          r.kind = op::delete_objects;
          co_return co_await delete_objects(c, r);
        }
        break;
      default:
        break;
    }
    co_return error(r, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
  }
  if (!r.b) co_return no_such_bucket(r);
  switch (m) {
    case verb::get:
      if (r.has("uploadId")) {
        r.kind = op::list_parts;
        co_return list_parts(r);
      }
      r.kind = op::get_object;
      co_return co_await get_object(c, r, false);
    case verb::head:
      r.kind = op::head_object;
      co_return co_await get_object(c, r, true);
    case verb::put:
      if (r.has("uploadId") || r.has("partNumber")) {
        const bool copy = c.has_header("x-amz-copy-source");
        r.kind = copy ? op::upload_part_copy : op::upload_part;
        co_return co_await upload_part(c, r, copy);
      }
      if (c.has_header("x-amz-copy-source")) {
        r.kind = op::copy_object;
        co_return co_await copy_object(c, r);
      }
      r.kind = op::put_object;
      co_return co_await put_object(c, r);
    case verb::post:
      if (r.has("uploads")) {
        r.kind = op::create_upload;
        co_return co_await create_upload(c, r);
      }
      if (r.has("uploadId")) {
        r.kind = op::complete_upload;
        co_return co_await complete_upload(c, r);
      }
      break;
    case verb::delete_:
      if (r.has("uploadId")) {
        r.kind = op::abort_upload;
        co_return abort_upload(r);
      }
      r.kind = op::delete_object;
      co_return delete_object(r);
    default:
      break;
  }
  co_return error(r, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
}

// ---------------------------------------------------------------------------------------------
// Checks.

std::optional<s3_failure> server::impl::verify_signature(conn& c, const request& r) {
  const auto& m = c.p().get();
  std::string credential, signed_headers, signature, amz_date, payload_hash;
  std::string_view exclude;
  const std::string_view auth = c.header("authorization");
  if (!auth.empty()) {
    constexpr std::string_view algo = "AWS4-HMAC-SHA256 ";
    if (!auth.starts_with(algo)) return s3_failure{400, "InvalidArgument", "Unsupported Authorization Type"};
    std::string_view rest = auth.substr(algo.size());
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view f = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      const auto eq = f.find('=');
      if (eq == std::string_view::npos) continue;
      const std::string_view k = f.substr(0, eq), v = f.substr(eq + 1);
      if (k == "Credential")
        credential = v;
      else if (k == "SignedHeaders")
        signed_headers = v;
      else if (k == "Signature")
        signature = v;
    }
    amz_date = std::string(c.header("x-amz-date"));
    payload_hash = std::string(c.header("x-amz-content-sha256"));
    if (payload_hash.empty())
      return s3_failure{400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"};
  } else if (r.q("X-Amz-Algorithm") == "AWS4-HMAC-SHA256") {
    credential = std::string(r.q("X-Amz-Credential").value_or(""));
    signed_headers = std::string(r.q("X-Amz-SignedHeaders").value_or(""));
    signature = std::string(r.q("X-Amz-Signature").value_or(""));
    amz_date = std::string(r.q("X-Amz-Date").value_or(""));
    payload_hash = std::string(c.header("x-amz-content-sha256"));
    if (payload_hash.empty()) payload_hash = std::string(s3::unsigned_payload);
    exclude = "X-Amz-Signature";
  } else {
    return s3_failure{403, "AccessDenied", "Access Denied: --verify-signatures refuses unsigned requests"};
  }
  if (credential.empty() || signed_headers.empty() || signature.empty())
    return s3_failure{400, "AuthorizationHeaderMalformed", "Credential, SignedHeaders and Signature are required"};
  // Credential = ID/DATE/REGION/SERVICE/aws4_request
  std::vector<std::string_view> parts;
  for (std::string_view s = credential;;) {
    const auto slash = s.find('/');
    parts.push_back(s.substr(0, slash));
    if (slash == std::string_view::npos) break;
    s.remove_prefix(slash + 1);
  }
  if (parts.size() != 5 || parts[4] != "aws4_request" || parts[3] != "s3")
    return s3_failure{400, "AuthorizationHeaderMalformed", "The credential '" + credential + "' is malformed"};
  if (parts[0] != cfg.access_key)
    return s3_failure{403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."};
  if (parts[2] != cfg.region)
    return s3_failure{400, "AuthorizationHeaderMalformed",
                      "The authorization header is malformed; the region '" + std::string(parts[2]) +
                          "' is wrong; expecting '" + cfg.region + "'"};
  if (amz_date.size() < 8 || amz_date.substr(0, 8) != parts[1])
    return s3_failure{403, "SignatureDoesNotMatch", "The credential date does not match x-amz-date"};

  s3::sigv4::header_fields headers;
  for (const auto& f : m) headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  std::vector<std::string> signed_list;
  for (std::string_view s = signed_headers;;) {
    const auto semi = s.find(';');
    signed_list.emplace_back(s.substr(0, semi));
    if (semi == std::string_view::npos) break;
    s.remove_prefix(semi + 1);
  }
  auto query = s3::sigv4::parse_query(r.raw_query);
  if (!exclude.empty()) std::erase_if(query, [&](const auto& p) { return p.first == exclude; });
  const std::string creq = s3::sigv4::canonical_request(r.method_text, s3::sigv4::canonical_uri(r.raw_path), query,
                                                        headers, signed_list, payload_hash);
  const std::string scope = s3::sigv4::credential_scope(parts[1], parts[2], parts[3]);
  const std::string sts = s3::sigv4::string_to_sign(amz_date, scope, creq);
  const auto key = s3::sigv4::signing_key(cfg.secret_key, parts[1], parts[2], parts[3]);
  const std::string expected = s3::sigv4::signature(key, sts);
  if (expected.size() != signature.size() || CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) != 0)
    return s3_failure{403, "SignatureDoesNotMatch",
                      "The request signature we calculated does not match the signature you provided. Check your "
                      "key and signing method."};
  return std::nullopt;
}

std::optional<s3_failure> server::impl::read_expectations(conn& c, payload_expectations& e, std::uint64_t limit) {
  if (c.has_header("content-md5")) {
    auto d = util::base64_decode(trim(c.header("content-md5")));
    if (!d || d->size() != 16) return s3_failure{400, "InvalidDigest", "The Content-MD5 you specified was invalid."};
    util::md5_digest md5{};
    std::copy(d->begin(), d->end(), md5.begin());
    e.content_md5 = md5;
  }
  const std::string_view sha = trim(c.header("x-amz-content-sha256"));
  if (sha.starts_with("STREAMING-")) {
    e.chunked = true;
  } else if (is_hex64(sha)) {
    if (cfg.verify_payload_hash) e.sha256_hex = std::string(sha);
  } else if (!sha.empty() && sha != s3::unsigned_payload) {
    return s3_failure{400, "InvalidArgument",
                      "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-... or a "
                      "lower-case hex SHA-256"};
  }
  const std::string enc = to_lower(c.header("content-encoding"));
  if (enc.find("aws-chunked") != std::string::npos) e.chunked = true;
  if (e.chunked) {
    const std::string_view dl = trim(c.header("x-amz-decoded-content-length"));
    std::uint64_t n = 0;
    if (!dl.empty()) {
      if (!parse_uint(dl, n)) return s3_failure{400, "InvalidArgument", "Bad x-amz-decoded-content-length"};
      e.decoded_length = n;
    }
  }
  if (c.has_header("x-amz-checksum-crc32c")) {
    e.crc32c = decode_crc32c(c.header("x-amz-checksum-crc32c"));
    if (!e.crc32c) return s3_failure{400, "InvalidRequest", "Value for x-amz-checksum-crc32c header is invalid."};
  }
  if (to_lower(c.header("x-amz-trailer")).find("x-amz-checksum-crc32c") != std::string::npos)
    e.crc32c_in_trailer = true;

  const auto& m = c.p().get();
  const bool has_length = m.find(bhttp::field::content_length) != m.end();
  const bool chunked_te = c.p().chunked();
  if (!has_length && !chunked_te)
    return s3_failure{411, "MissingContentLength", "You must provide the Content-Length HTTP header."};
  const std::uint64_t claimed =
      e.decoded_length.value_or(has_length && !e.chunked ? c.p().content_length().value_or(0) : 0);
  if (claimed > limit)
    return s3_failure{400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size."};
  return std::nullopt;
}

std::optional<s3_failure> server::impl::check_payload(const payload_expectations& e, payload_sink& s) {
  if (s.too_large()) return s3_failure{400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"};
  if (s.decode_failed()) return s3_failure{400, "InvalidRequest", "Bad aws-chunked body: " + s.decoder().error()};
  if (!s.complete() || (e.decoded_length && *e.decoded_length != s.size()))
    return s3_failure{400, "IncompleteBody",
                      "The request body terminated unexpectedly or does not match x-amz-decoded-content-length"};
  if (e.sha256_hex && util::to_hex(s.sha256()) != *e.sha256_hex)
    return s3_failure{400, "XAmzContentSHA256Mismatch",
                      "The provided 'x-amz-content-sha256' header does not match what was computed."};
  std::optional<std::uint32_t> crc = e.crc32c;
  if (e.crc32c_in_trailer || e.chunked) {
    for (const auto& [k, v] : s.decoder().trailers()) {
      if (k != "x-amz-checksum-crc32c") continue;
      crc = decode_crc32c(v);
      if (!crc) return s3_failure{400, "InvalidRequest", "Value for x-amz-checksum-crc32c trailer is invalid."};
    }
    if (e.crc32c_in_trailer && !crc)
      return s3_failure{400, "IncompleteBody",
                        "The x-amz-checksum-crc32c trailer announced by x-amz-trailer is missing"};
  }
  if (crc && *crc != s.crc().value())
    return s3_failure{400, "BadDigest", "The CRC32C you specified did not match the calculated checksum."};
  return std::nullopt;
}

std::optional<s3_failure> server::impl::read_metadata(conn& c, metadata_list& out) {
  std::size_t total = 0;
  for (const auto& f : c.p().get()) {
    const std::string_view name = f.name_string();
    if (!istarts_with(name, "x-amz-meta-")) continue;
    std::string n = to_lower(name.substr(11));
    total += n.size() + f.value().size();
    out.emplace_back(std::move(n), std::string(f.value()));
  }
  if (total > max_metadata_bytes)
    return s3_failure{400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size."};
  return std::nullopt;
}

// The object as it stands, MD5 included when want_md5 (hashing a synthetic object if needed).
asio::awaitable<std::optional<s3_failure>> server::impl::load_object(const request& r, std::string_view bucket_name,
                                                                     std::string_view key, object_view& ov,
                                                                     bool want_md5) {
  (void)r;
  auto b = st.find(bucket_name);
  if (!b) co_return s3_failure{404, "NoSuchBucket", "The specified bucket does not exist"};
  if (b->synthetic) {
    auto& sb = *b->synthetic;
    const auto i = sb.index_of(key);
    if (!i) co_return s3_failure{404, "NoSuchKey", "The specified key does not exist."};
    ov.size = sb.size(*i);
    ov.mtime = sb.spec().mtime;
    ov.gen = b->synthetic;
    ov.gen_index = *i;
    auto tag = sb.etag(*i);
    if (!tag || want_md5) {
      ov.md5 = sb.cached_md5(*i);
      if (!ov.md5) {
        util::md5_digest d{};
        auto work = [&] { d = sb.compute_md5(*i); };
        co_await hash_work(ov.size, work);
        ov.md5 = d;
      }
      if (!tag) tag = sb.etag(*i).value_or(hex(*ov.md5));
    }
    ov.etag = std::move(*tag);
    co_return std::nullopt;
  }
  auto rec = b->writable->get(key);
  if (!rec) co_return s3_failure{404, "NoSuchKey", "The specified key does not exist."};
  ov.size = rec->size;
  ov.etag = rec->etag;
  ov.mtime = rec->last_modified;
  ov.content_type = rec->content_type;
  ov.metadata = std::move(rec->metadata);
  ov.md5 = rec->md5;
  if (rec->origin) {
    ov.gen = rec->origin->bucket;
    ov.gen_index = rec->origin->index;
  }
  co_return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Buckets.

reply server::impl::list_buckets(const request& r) {
  (void)r;
  xml_writer x("ListAllMyBucketsResult");
  x.open("Owner").element("ID", owner_id).element("DisplayName", "synthetic").close("Owner").open("Buckets");
  for (const auto& b : st.buckets())
    x.open("Bucket").element("Name", b->name).element("CreationDate", iso8601(b->created)).close("Bucket");
  x.close("Buckets");
  return xml_reply(x.finish());
}

reply server::impl::bucket_location(const request& r) {
  (void)r;
  std::string body =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint "
      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  if (cfg.region != "us-east-1") append_escaped(body, cfg.region);
  body += "</LocationConstraint>";
  return xml_reply(std::move(body));
}

asio::awaitable<reply> server::impl::create_bucket(conn& c, request& r) {
  if (!valid_bucket_name(r.bucket)) co_return error(r, 400, "InvalidBucketName", "The specified bucket is not valid.");
  string_sink body(cfg.max_xml_body);  // CreateBucketConfiguration: read and ignored
  if (auto ec = co_await read_body(c, r, body)) {
    reply rep = error(r, 400, body.too_large ? "MaxMessageLengthExceeded" : "IncompleteBody", ec.message());
    rep.close = true;
    co_return rep;
  }
  switch (st.create_writable(r.bucket)) {
    case store::create_result::created: {
      r.b = st.find(r.bucket);
      reply rep;
      rep.headers.emplace_back("Location", "/" + r.bucket);
      co_return rep;
    }
    case store::create_result::exists:
      co_return error(r, 409, "BucketAlreadyOwnedByYou",
                      "Your previous request to create the named bucket succeeded and you already own it.");
    case store::create_result::too_many:
      co_return error(r, 400, "TooManyBuckets", "You have attempted to create more buckets than allowed");
  }
  co_return error(r, 500, "InternalError", "unreachable");
}

namespace {

struct synthetic_cursor {
  explicit synthetic_cursor(const synthetic_bucket& sb) : b(sb) {}
  const synthetic_bucket& b;
  std::uint64_t i = 0;
  std::string k;
  void load() {
    if (i < b.count()) k = b.key(i);
  }
  void seek(std::string_view lb) {
    i = b.lower_bound(lb);
    load();
  }
  bool valid() const { return i < b.count(); }
  const std::string& key() const { return k; }
  void next() {
    ++i;
    load();
  }
  std::pair<std::string, std::uint64_t> item() const { return {k, i}; }
};

struct written_item {
  std::string key;
  std::uint64_t size = 0;
  std::string etag;
  std::chrono::system_clock::time_point mtime;
};

struct writable_cursor {
  explicit writable_cursor(const writable_bucket::map_type& map) : m(map), it(map.end()) {}
  const writable_bucket::map_type& m;
  writable_bucket::map_type::const_iterator it;
  void seek(std::string_view lb) { it = m.lower_bound(lb); }
  bool valid() const { return it != m.end(); }
  const std::string& key() const { return it->first; }
  void next() { ++it; }
  written_item item() const { return {it->first, it->second.size, it->second.etag, it->second.last_modified}; }
};

}  // namespace

asio::awaitable<reply> server::impl::list_objects(conn& c, request& r, bool v2) {
  (void)c;
  list_query q;
  q.prefix = std::string(r.q("prefix").value_or(""));
  q.delimiter = std::string(r.q("delimiter").value_or(""));
  if (auto mk = r.q("max-keys")) {
    std::size_t n = 0;
    if (!parse_uint(*mk, n))
      co_return error(r, 400, "InvalidArgument", "Provided max-keys not an integer or within integer range");
    q.max_keys = std::min<std::size_t>(n, 1000);
  }
  const auto enc = r.q("encoding-type");
  if (enc && *enc != "url") co_return error(r, 400, "InvalidArgument", "Invalid Encoding Method specified in Request");
  const bool url = enc.has_value();
  std::optional<std::string> token;
  if (v2) {
    if (auto t = r.q("continuation-token")) {
      token = decode_token(*t);
      if (!token || token->empty())
        co_return error(r, 400, "InvalidArgument", "The continuation token provided is incorrect");
      q.after = *token;
    } else {
      q.after = std::string(r.q("start-after").value_or(""));
    }
  } else {
    q.after = std::string(r.q("marker").value_or(""));
  }
  auto text = [url](std::string_view s) { return url ? s3::uri_encode(s, false) : std::string(s); };

  xml_writer x("ListBucketResult");
  x.element("Name", r.bucket).element("Prefix", text(q.prefix));
  if (!v2) x.element("Marker", text(q.after));
  x.element("MaxKeys", q.max_keys);
  if (!q.delimiter.empty()) x.element("Delimiter", text(q.delimiter));
  if (url) x.element("EncodingType", "url");

  auto finish = [&](bool truncated, const std::string& last, std::size_t count) {
    x.element("IsTruncated", truncated ? "true" : "false");
    if (v2) {
      x.element("KeyCount", count);
      if (auto t = r.q("continuation-token")) x.element("ContinuationToken", *t);
      if (truncated) x.element("NextContinuationToken", encode_token(last));
      if (auto sa = r.q("start-after")) x.element("StartAfter", text(*sa));
    } else if (truncated) {
      x.element("NextMarker", text(last));
    }
  };
  const bool owner = !v2 || r.q("fetch-owner") == "true";
  auto contents = [&](std::string_view key, std::string_view etag, std::uint64_t size,
                      std::chrono::system_clock::time_point mtime) {
    x.open("Contents").element("Key", text(key)).element("LastModified", iso8601(mtime));
    x.element("ETag", quote_etag(etag)).element("Size", size);
    if (owner) x.open("Owner").element("ID", owner_id).element("DisplayName", "synthetic").close("Owner");
    x.element("StorageClass", "STANDARD").close("Contents");
  };
  auto prefixes = [&](const std::vector<std::string>& ps) {
    for (const auto& p : ps) x.open("CommonPrefixes").element("Prefix", text(p)).close("CommonPrefixes");
  };

  if (r.b->synthetic) {
    auto& sb = *r.b->synthetic;
    synthetic_cursor cur{sb};
    auto page = list_page(cur, q);
    // ETags that need an MD5 not computed yet: hash them across the pool, then render.
    std::vector<std::uint64_t> todo;
    for (const auto& [key, i] : page.items)
      if (!sb.etag(i)) todo.push_back(i);
    auto work = [&](std::size_t k) { sb.compute_md5(todo[k]); };
    co_await parallel_for(todo.size(), work);
    const auto mtime = sb.spec().mtime;
    for (const auto& [key, i] : page.items) contents(key, sb.etag(i).value_or(""), sb.size(i), mtime);
    prefixes(page.prefixes);
    finish(page.truncated, page.last, page.items.size() + page.prefixes.size());
  } else {
    auto page = r.b->writable->with_objects([&](const writable_bucket::map_type& m) {
      writable_cursor cur{m};
      return list_page(cur, q);
    });
    for (const auto& it : page.items) contents(it.key, it.etag, it.size, it.mtime);
    prefixes(page.prefixes);
    finish(page.truncated, page.last, page.items.size() + page.prefixes.size());
  }
  co_return xml_reply(x.finish());
}

reply server::impl::list_uploads(const request& r) {
  const std::string prefix(r.q("prefix").value_or(""));
  const std::string key_marker(r.q("key-marker").value_or(""));
  const std::string id_marker(r.q("upload-id-marker").value_or(""));
  std::size_t max = 1000;
  if (auto mu = r.q("max-uploads"); mu && (!parse_uint(*mu, max) || max > 1000)) max = 1000;
  auto ups = st.uploads_of(r.bucket);
  std::sort(ups.begin(), ups.end(), [](const auto& a, const auto& b) {
    return std::tie(a->key, a->initiated, a->id) < std::tie(b->key, b->initiated, b->id);
  });
  xml_writer x("ListMultipartUploadsResult");
  x.element("Bucket", r.bucket).element("KeyMarker", key_marker).element("UploadIdMarker", id_marker);
  x.element("Prefix", prefix).element("MaxUploads", max);
  std::size_t n = 0;
  bool truncated = false;
  std::string next_key, next_id;
  std::string body;
  for (const auto& up : ups) {
    if (!up->key.starts_with(prefix)) continue;
    if (!key_marker.empty() &&
        (up->key < key_marker || (up->key == key_marker && (id_marker.empty() || up->id <= id_marker))))
      continue;
    if (n == max) {
      truncated = true;
      break;
    }
    ++n;
    next_key = up->key;
    next_id = up->id;
  }
  if (truncated) x.element("NextKeyMarker", next_key).element("NextUploadIdMarker", next_id);
  x.element("IsTruncated", truncated ? "true" : "false");
  n = 0;
  for (const auto& up : ups) {
    if (!up->key.starts_with(prefix)) continue;
    if (!key_marker.empty() &&
        (up->key < key_marker || (up->key == key_marker && (id_marker.empty() || up->id <= id_marker))))
      continue;
    if (n++ == max) break;
    x.open("Upload").element("Key", up->key).element("UploadId", up->id);
    x.open("Initiator").element("ID", owner_id).element("DisplayName", "synthetic").close("Initiator");
    x.open("Owner").element("ID", owner_id).element("DisplayName", "synthetic").close("Owner");
    x.element("StorageClass", "STANDARD").element("Initiated", iso8601(up->initiated)).close("Upload");
  }
  return xml_reply(x.finish());
}

asio::awaitable<reply> server::impl::delete_objects(conn& c, request& r) {
  payload_expectations e;
  if (auto f = read_expectations(c, e, cfg.max_xml_body)) co_return error(r, *f);
  string_sink body(cfg.max_xml_body);
  if (auto ec = co_await read_body(c, r, body)) {
    reply rep = error(r, 400, body.too_large ? "MaxMessageLengthExceeded" : "IncompleteBody", ec.message());
    rep.close = true;
    co_return rep;
  }
  if (e.content_md5 && util::md5(body.text) != *e.content_md5)
    co_return error(r, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
  auto req = parse_delete_request(body.text);
  if (!req) co_return error(r, req.error());
  xml_writer x("DeleteResult");
  for (const auto& key : req->keys) {
    if (r.b->synthetic) {
      x.open("Error").element("Key", key).element("Code", "AccessDenied");
      x.element("Message", "Synthetic buckets are read-only").close("Error");
      continue;
    }
    if (r.b->writable->erase(key)) st.release_object();
    if (!req->quiet) x.open("Deleted").element("Key", key).close("Deleted");
  }
  co_return xml_reply(x.finish());
}

// ---------------------------------------------------------------------------------------------
// Objects.

asio::awaitable<reply> server::impl::get_object(conn& c, request& r, bool head) {
  object_view ov;
  auto f = co_await load_object(r, r.bucket, r.key, ov, false);
  if (f) co_return error(r, *f);
  if (auto pn = r.q("partNumber"); pn && *pn != "1")
    co_return not_implemented(r, "GetObject with partNumber other than 1");

  reply rep;
  rep.head = head;
  const std::string tag = quote_etag(ov.etag);
  if (c.has_header("if-match") && !etag_matches(c.header("if-match"), ov.etag)) {
    auto e = error(r, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
    e.headers.emplace_back("ETag", tag);
    co_return e;
  }
  if (c.has_header("if-none-match") && etag_matches(c.header("if-none-match"), ov.etag)) {
    rep.status = 304;
    rep.head = true;
    rep.headers.emplace_back("ETag", tag);
    rep.headers.emplace_back("Last-Modified", http_date(ov.mtime));
    co_return rep;
  }
  byte_range range{0, ov.size == 0 ? 0 : ov.size - 1};
  const auto rs = c.has_header("range") ? parse_range(c.header("range"), ov.size, range) : range_status::none;
  if (rs == range_status::unsatisfiable) {
    auto e = error(r, 416, "InvalidRange", "The requested range is not satisfiable");
    e.headers.emplace_back("Content-Range", "bytes */" + std::to_string(ov.size));
    co_return e;
  }
  const std::uint64_t length = ov.size == 0 ? 0 : range.last - range.first + 1;
  if (!head && !ov.gen && length > 0)
    co_return not_implemented(r, "Reading a written object (synthetic-s3 keeps records, not bodies)");

  rep.headers.emplace_back("ETag", tag);
  rep.headers.emplace_back("Last-Modified", http_date(ov.mtime));
  rep.headers.emplace_back("Accept-Ranges", "bytes");
  rep.headers.emplace_back("Content-Type", ov.content_type);
  for (const auto& [k, v] : ov.metadata) rep.headers.emplace_back("x-amz-meta-" + k, v);
  if (rs == range_status::ok) {
    rep.status = 206;
    rep.headers.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                  std::to_string(range.last) + "/" + std::to_string(ov.size));
  }
  if (head) {
    rep.head_length = length;
  } else if (length > 0) {
    rep.gen = ov.gen;
    rep.gen_index = ov.gen_index;
    rep.gen_offset = range.first;
    rep.gen_length = length;
  }
  co_return rep;
}

asio::awaitable<reply> server::impl::put_object(conn& c, request& r) {
  if (r.b->synthetic) co_return read_only(r);
  payload_expectations e;
  if (auto f = read_expectations(c, e, cfg.max_object_size)) co_return error(r, *f);
  metadata_list meta;
  if (auto f = read_metadata(c, meta)) co_return error(r, *f);
  payload_sink body(e.chunked, e.sha256_hex.has_value(), cfg.max_object_size, nullptr);
  if (auto ec = co_await read_body(c, r, body)) {
    if (body.too_large()) {
      reply rep = error(r, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
      rep.close = true;
      co_return rep;
    }
    reply rep = error(r, 400, body.decode_failed() ? "InvalidRequest" : "IncompleteBody",
                      body.decode_failed() ? body.decoder().error() : ec.message());
    rep.close = true;
    co_return rep;
  }
  if (auto f = check_payload(e, body)) co_return error(r, *f);
  const util::md5_digest md5 = body.md5();
  if (e.content_md5 && *e.content_md5 != md5)
    co_return error(r, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
  auto wb = r.b->writable;
  const bool existed = wb->contains(r.key);
  if (!existed && !st.reserve_object())
    co_return error(r, 503, "SlowDown", "synthetic-s3 holds its maximum number of object records");
  object_record rec;
  rec.size = body.size();
  rec.md5 = md5;
  rec.crc32c = body.crc().value();
  rec.etag = hex(md5);
  rec.how = "put";
  rec.content_type = c.has_header("content-type") ? std::string(c.header("content-type")) : "binary/octet-stream";
  rec.metadata = std::move(meta);
  rec.last_modified = std::chrono::system_clock::now();
  reply rep;
  rep.headers.emplace_back("ETag", quote_etag(rec.etag));
  record_object(*wb, r.key, std::move(rec), !existed);
  co_return rep;
}

asio::awaitable<reply> server::impl::copy_object(conn& c, request& r) {
  if (r.b->synthetic) co_return read_only(r);
  const auto src = parse_copy_source(c.header("x-amz-copy-source"));
  if (!src)
    co_return error(r, 400, "InvalidArgument",
                    "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
  object_view ov;
  auto f = co_await load_object(r, src->first, src->second, ov, true);
  if (f) co_return error(r, *f);
  if (c.has_header("x-amz-copy-source-if-match") && !etag_matches(c.header("x-amz-copy-source-if-match"), ov.etag))
    co_return error(r, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
  if (c.has_header("x-amz-copy-source-if-none-match") &&
      etag_matches(c.header("x-amz-copy-source-if-none-match"), ov.etag))
    co_return error(r, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
  if (ov.size > cfg.max_copy_size)
    co_return error(r, 400, "InvalidRequest",
                    "The specified copy source is larger than the maximum allowable size for a copy source: " +
                        std::to_string(cfg.max_copy_size));
  const bool replace = iequals(trim(c.header("x-amz-metadata-directive")), "REPLACE");
  if (!replace && src->first == r.bucket && src->second == r.key)
    co_return error(r, 400, "InvalidRequest",
                    "This copy request is illegal because it is trying to copy an object to itself without changing "
                    "the object's metadata, storage class, website redirect location or encryption attributes.");
  object_record rec;
  rec.size = ov.size;
  rec.md5 = ov.md5;
  rec.etag = ov.md5 ? hex(*ov.md5) : ov.etag;
  rec.how = "copy";
  rec.last_modified = std::chrono::system_clock::now();
  if (ov.gen) rec.origin = origin_ref{ov.gen, ov.gen_index};
  if (replace) {
    if (auto mf = read_metadata(c, rec.metadata)) co_return error(r, *mf);
    rec.content_type = c.has_header("content-type") ? std::string(c.header("content-type")) : "binary/octet-stream";
  } else {
    rec.metadata = ov.metadata;
    rec.content_type = ov.content_type;
  }
  auto wb = r.b->writable;
  const bool existed = wb->contains(r.key);
  if (!existed && !st.reserve_object())
    co_return error(r, 503, "SlowDown", "synthetic-s3 holds its maximum number of object records");
  xml_writer x("CopyObjectResult");
  x.element("LastModified", iso8601(rec.last_modified)).element("ETag", quote_etag(rec.etag));
  record_object(*wb, r.key, std::move(rec), !existed);
  co_return xml_reply(x.finish());
}

asio::awaitable<reply> server::impl::create_upload(conn& c, request& r) {
  if (r.b->synthetic) co_return read_only(r);
  metadata_list meta;
  if (auto f = read_metadata(c, meta)) co_return error(r, *f);
  std::string ct = c.has_header("content-type") ? std::string(c.header("content-type")) : "binary/octet-stream";
  auto up = st.create_upload(r.bucket, r.key, std::move(ct), std::move(meta));
  if (!up) co_return error(r, 503, "SlowDown", "synthetic-s3 holds its maximum number of multipart uploads");
  xml_writer x("InitiateMultipartUploadResult");
  x.element("Bucket", r.bucket).element("Key", r.key).element("UploadId", up->id);
  co_return xml_reply(x.finish());
}

asio::awaitable<reply> server::impl::upload_part(conn& c, request& r, bool copy) {
  int number = 0;
  const auto pn = r.q("partNumber");
  if (!pn || !parse_uint(*pn, number) || number < 1 || number > 10000)
    co_return error(r, 400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive");
  auto up = st.find_upload(r.q("uploadId").value_or(""));
  if (!up || up->bucket != r.bucket || up->key != r.key)
    co_return error(r, 404, "NoSuchUpload",
                    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
                    "aborted or completed.");
  if (!copy) {
    payload_expectations e;
    if (auto f = read_expectations(c, e, cfg.max_object_size)) co_return error(r, *f);
    auto recv = up->begin_part(number);
    payload_sink body(e.chunked, e.sha256_hex.has_value(), cfg.max_object_size, recv.get());
    auto ec = co_await read_body(c, r, body);
    std::optional<s3_failure> f;
    if (ec) {
      f = s3_failure{400,
                     body.too_large()       ? "EntityTooLarge"
                     : body.decode_failed() ? "InvalidRequest"
                                            : "IncompleteBody",
                     body.decode_failed() ? body.decoder().error() : ec.message()};
    } else {
      f = check_payload(e, body);
    }
    const util::md5_digest md5 = recv->md5();
    if (!f && e.content_md5 && *e.content_md5 != md5)
      f = s3_failure{400, "BadDigest", "The Content-MD5 you specified did not match what we received."};
    if (f) {
      up->cancel_part(*recv);
      reply rep = error(r, *f);
      rep.close = static_cast<bool>(ec);
      co_return rep;
    }
    if (up->finish_part(*recv, md5)) {
      auto fold = [&] { up->fold_pending(); };
      co_await hash_work(up->pending_bytes(), fold);
    }
    reply rep;
    rep.headers.emplace_back("ETag", quote_etag(hex(md5)));
    co_return rep;
  }

  const auto src = parse_copy_source(c.header("x-amz-copy-source"));
  if (!src)
    co_return error(r, 400, "InvalidArgument",
                    "Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
  object_view ov;
  auto f = co_await load_object(r, src->first, src->second, ov, false);
  if (f) co_return error(r, *f);
  if (c.has_header("x-amz-copy-source-if-match") && !etag_matches(c.header("x-amz-copy-source-if-match"), ov.etag))
    co_return error(r, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
  byte_range range{0, ov.size == 0 ? 0 : ov.size - 1};
  if (c.has_header("x-amz-copy-source-range")) {
    // Only "bytes=first-last", within the object.
    const std::string_view h = trim(c.header("x-amz-copy-source-range"));
    const auto dash = h.find('-');
    std::uint64_t a = 0, b = 0;
    if (!h.starts_with("bytes=") || dash == std::string_view::npos || !parse_uint(h.substr(6, dash - 6), a) ||
        !parse_uint(h.substr(dash + 1), b) || b < a)
      co_return error(r, 400, "InvalidArgument",
                      "The x-amz-copy-source-range value must be of the form bytes=first-last");
    if (b >= ov.size) co_return error(r, 400, "InvalidRange", "The requested range is not satisfiable");
    range = {a, b};
  }
  const std::uint64_t length = ov.size == 0 ? 0 : range.last - range.first + 1;
  if (length > cfg.max_object_size) co_return error(r, 400, "EntityTooLarge", "The part is larger than 5 GiB");
  if (!ov.gen && length > 0)
    co_return not_implemented(r, "UploadPartCopy from a written object (synthetic-s3 keeps records, not bodies)");
  std::optional<content_range> cr;
  if (ov.gen) cr = content_range{ov.gen, ov.gen_index, range.first, length};
  auto recv = up->begin_part(number, cr);
  util::md5_digest md5{};
  bool more = false;
  auto work = [&] {
    if (cr) {
      auto sink = [&](std::span<const std::byte> b) { recv->update(b); };
      generate_into(cr->bucket->content_seed(cr->index), cr->offset, cr->length, sink);
    }
    md5 = recv->md5();
    more = up->finish_part(*recv, md5);
    if (more) up->fold_pending();
  };
  co_await hash_work(length + up->pending_bytes(), work);
  (void)more;
  xml_writer x("CopyPartResult");
  x.element("LastModified", iso8601(std::chrono::system_clock::now())).element("ETag", quote_etag(hex(md5)));
  co_return xml_reply(x.finish());
}

asio::awaitable<reply> server::impl::complete_upload(conn& c, request& r) {
  string_sink body(cfg.max_xml_body);
  if (auto ec = co_await read_body(c, r, body)) {
    reply rep = error(r, 400, body.too_large ? "MaxMessageLengthExceeded" : "IncompleteBody", ec.message());
    rep.close = true;
    co_return rep;
  }
  auto up = st.find_upload(r.q("uploadId").value_or(""));
  if (!up || up->bucket != r.bucket || up->key != r.key)
    co_return error(r, 404, "NoSuchUpload",
                    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
                    "aborted or completed.");
  auto parts = parse_complete_request(body.text);
  if (!parts) co_return error(r, parts.error());
  auto rec = up->complete(*parts, cfg.min_part_size);
  if (!rec) co_return error(r, rec.error());
  if (r.b->synthetic) co_return read_only(r);
  auto wb = r.b->writable;
  const bool existed = wb->contains(r.key);
  if (!existed && !st.reserve_object())
    co_return error(r, 503, "SlowDown", "synthetic-s3 holds its maximum number of object records");
  const std::string etag = rec->etag;
  st.remove_upload(up->id);
  if (!rec->origin && rec->md5) {
    // Proving equality with a synthetic object may hash it: off the io thread.
    auto find = [&] { rec->origin = st.find_origin(r.key, rec->size, *rec->md5, cfg.origin_hash_limit); };
    co_await hash_work(std::min(rec->size, cfg.origin_hash_limit), find);
  }
  store_record(*wb, r.key, std::move(*rec), !existed);
  xml_writer x("CompleteMultipartUploadResult");
  x.element("Location", "/" + r.bucket + "/" + s3::uri_encode(r.key, false));
  x.element("Bucket", r.bucket).element("Key", r.key).element("ETag", quote_etag(etag));
  co_return xml_reply(x.finish());
}

reply server::impl::abort_upload(const request& r) {
  auto up = st.find_upload(r.q("uploadId").value_or(""));
  if (!up || up->bucket != r.bucket || up->key != r.key)
    return error(r, 404, "NoSuchUpload", "The specified upload does not exist.");
  st.remove_upload(up->id);
  reply rep;
  rep.status = 204;
  return rep;
}

reply server::impl::list_parts(const request& r) {
  auto up = st.find_upload(r.q("uploadId").value_or(""));
  if (!up || up->bucket != r.bucket || up->key != r.key)
    return error(r, 404, "NoSuchUpload", "The specified upload does not exist.");
  std::size_t max = 1000;
  if (auto mp = r.q("max-parts"); mp && (!parse_uint(*mp, max) || max > 1000)) max = 1000;
  int marker = 0;
  if (auto pm = r.q("part-number-marker"); pm && !parse_uint(*pm, marker)) marker = 0;
  xml_writer x("ListPartsResult");
  x.element("Bucket", r.bucket).element("Key", r.key).element("UploadId", up->id);
  x.open("Initiator").element("ID", owner_id).element("DisplayName", "synthetic").close("Initiator");
  x.open("Owner").element("ID", owner_id).element("DisplayName", "synthetic").close("Owner");
  x.element("StorageClass", "STANDARD").element("PartNumberMarker", static_cast<std::uint64_t>(marker));
  const auto parts = up->parts();
  std::size_t n = 0;
  bool truncated = false;
  int last = marker;
  for (const auto& [num, p] : parts) {
    if (num <= marker) continue;
    if (n == max) {
      truncated = true;
      break;
    }
    ++n;
    last = num;
  }
  x.element("NextPartNumberMarker", static_cast<std::uint64_t>(last)).element("MaxParts", max);
  x.element("IsTruncated", truncated ? "true" : "false");
  n = 0;
  for (const auto& [num, p] : parts) {
    if (num <= marker) continue;
    if (n++ == max) break;
    x.open("Part").element("PartNumber", static_cast<std::uint64_t>(num));
    x.element("LastModified", iso8601(p.last_modified)).element("ETag", quote_etag(hex(p.md5)));
    x.element("Size", p.size).close("Part");
  }
  return xml_reply(x.finish());
}

reply server::impl::delete_object(const request& r) {
  if (r.b->synthetic) return read_only(r);
  if (r.b->writable->erase(r.key)) st.release_object();
  reply rep;
  rep.status = 204;
  return rep;
}

// ---------------------------------------------------------------------------------------------
// Admin: /_synthetic/records, /_synthetic/expected, /_synthetic/verify, /_synthetic/stats.

asio::awaitable<reply> server::impl::admin(conn& c, request& r) {
  (void)c;
  if (r.method != bhttp::verb::get) co_return error(r, 405, "MethodNotAllowed", "Admin endpoints take GET");
  const std::string_view what = std::string_view(r.raw_path).substr(std::string_view("/_synthetic/").size());
  const bool tsv = r.q("format") == "tsv";
  if (what == "stats") co_return admin_stats(r);
  if (what == "verify") co_return co_await admin_verify(r);
  const std::string name(r.q("bucket").value_or(""));
  auto b = st.find(name);
  if (what != "records" && what != "expected")
    co_return error(r, 404, "NoSuchAdminEndpoint", "Known: records, expected, verify, stats");
  if (!b) co_return error(r, 404, "NoSuchBucket", "No bucket '" + name + "' (give ?bucket=NAME)");
  if (what == "expected") {
    if (!b->synthetic) co_return error(r, 400, "InvalidArgument", "expected takes a synthetic bucket");
    co_return co_await admin_expected(r, b->synthetic, tsv);
  }
  if (!b->writable) co_return error(r, 400, "InvalidArgument", "records takes a writable bucket");
  reply rep;
  rep.content_type = tsv ? "text/tab-separated-values" : "application/json";
  b->writable->with_objects([&](const writable_bucket::map_type& m) {
    if (tsv) {
      for (const auto& [k, rec] : m)
        rep.body += tsv_escape(k) + "\t" + std::to_string(rec.size) + "\t" + (rec.md5 ? hex(*rec.md5) : "-") + "\t" +
                    rec.etag + "\n";
      return;
    }
    boost::json::array arr;
    arr.reserve(m.size());
    for (const auto& [k, rec] : m) {
      boost::json::object o;
      o["key"] = k;
      o["size"] = rec.size;
      o["md5"] = rec.md5 ? boost::json::value(hex(*rec.md5)) : boost::json::value(nullptr);
      o["crc32c"] = rec.crc32c ? boost::json::value(*rec.crc32c) : boost::json::value(nullptr);
      o["etag"] = rec.etag;
      o["parts"] = rec.parts;
      o["how"] = rec.how;
      o["content_type"] = rec.content_type;
      boost::json::object meta;
      for (const auto& [mk, mv] : rec.metadata) meta[mk] = mv;
      o["metadata"] = std::move(meta);
      o["last_modified"] = iso8601(rec.last_modified);
      o["readable"] = rec.origin.has_value() || rec.size == 0;
      arr.push_back(std::move(o));
    }
    boost::json::object top;
    top["bucket"] = name;
    top["count"] = m.size();
    top["objects"] = std::move(arr);
    rep.body = boost::json::serialize(top);
    rep.body += '\n';
  });
  co_return rep;
}

asio::awaitable<reply> server::impl::admin_expected(request& r, const std::shared_ptr<synthetic_bucket>& sb, bool tsv) {
  const std::uint64_t n = sb->count();
  if (n > 10'000'000) co_return error(r, 400, "InvalidArgument", "expected lists at most 10M keys");
  std::vector<util::md5_digest> md5s(n);
  auto work = [&](std::size_t i) { md5s[i] = sb->compute_md5(i); };
  co_await parallel_for(n, work);
  reply rep;
  rep.content_type = tsv ? "text/tab-separated-values" : "application/json";
  if (tsv) {
    rep.body.reserve(n * 64);
    for (std::uint64_t i = 0; i < n; ++i)
      rep.body += tsv_escape(sb->key(i)) + "\t" + std::to_string(sb->size(i)) + "\t" + hex(md5s[i]) + "\t" +
                  sb->etag(i).value_or(hex(md5s[i])) + "\n";
    co_return rep;
  }
  boost::json::array arr;
  arr.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    boost::json::object o;
    o["key"] = sb->key(i);
    o["size"] = sb->size(i);
    o["md5"] = hex(md5s[i]);
    o["etag"] = sb->etag(i).value_or(hex(md5s[i]));
    arr.push_back(std::move(o));
  }
  boost::json::object top;
  top["bucket"] = sb->spec().name;
  top["count"] = n;
  top["objects"] = std::move(arr);
  rep.body = boost::json::serialize(top);
  rep.body += '\n';
  co_return rep;
}

// Every key of a synthetic source against the records of a writable bucket (key = prefix + source key).
asio::awaitable<reply> server::impl::admin_verify(request& r) {
  const std::string src_name(r.q("source").value_or("")), dst_name(r.q("bucket").value_or(""));
  const std::string prefix(r.q("prefix").value_or(""));
  auto src = st.find(src_name);
  auto dst = st.find(dst_name);
  if (!src || !src->synthetic || !dst || !dst->writable)
    co_return error(r, 400, "InvalidArgument", "verify takes ?source=SYNTHETIC&bucket=WRITABLE[&prefix=P]");
  auto& sb = *src->synthetic;
  const std::uint64_t n = sb.count();
  if (n > 10'000'000) co_return error(r, 400, "InvalidArgument", "verify checks at most 10M keys");
  std::vector<util::md5_digest> md5s(n);
  auto work = [&](std::size_t i) { md5s[i] = sb.compute_md5(i); };
  co_await parallel_for(n, work);
  std::uint64_t ok = 0, missing = 0, wrong_size = 0, wrong_md5 = 0, unknown_md5 = 0, extra = 0;
  boost::json::array problems;
  auto problem = [&](std::string key, std::string_view what) {
    if (problems.size() < 100) problems.push_back(boost::json::object{{"key", std::move(key)}, {"problem", what}});
  };
  dst->writable->with_objects([&](const writable_bucket::map_type& m) {
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::string key = prefix + sb.key(i);
      auto it = m.find(key);
      if (it == m.end()) {
        ++missing;
        problem(key, "missing");
      } else if (it->second.size != sb.size(i)) {
        ++wrong_size;
        problem(key, "size differs");
      } else if (!it->second.md5) {
        ++unknown_md5;
        problem(key, "md5 unknown");
      } else if (*it->second.md5 != md5s[i]) {
        ++wrong_md5;
        problem(key, "md5 differs");
      } else {
        ++ok;
      }
    }
    for (auto it = m.lower_bound(prefix); it != m.end() && it->first.starts_with(prefix); ++it) {
      const auto idx = sb.index_of(std::string_view(it->first).substr(prefix.size()));
      if (!idx) {
        ++extra;
        problem(it->first, "extra");
      }
    }
  });
  boost::json::object top{{"source", src_name},
                          {"bucket", dst_name},
                          {"prefix", prefix},
                          {"expected", n},
                          {"ok", ok},
                          {"missing", missing},
                          {"size_differs", wrong_size},
                          {"md5_differs", wrong_md5},
                          {"md5_unknown", unknown_md5},
                          {"extra", extra},
                          {"match", ok == n && extra == 0}};
  top["problems"] = std::move(problems);
  reply rep;
  rep.content_type = "application/json";
  rep.body = boost::json::serialize(top) + "\n";
  co_return rep;
}

reply server::impl::admin_stats(const request& r) {
  (void)r;
  boost::json::object o;
  o["uptime_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  o["threads"] = threads;
  o["connections"] = connections.load();
  o["connections_total"] = connections_total.load();
  o["connections_refused"] = refused.load();
  o["requests"] = requests.load();
  o["bytes_in"] = bytes_in.load();
  o["bytes_out"] = bytes_out.load();
  o["status_4xx"] = status_4xx.load();
  o["status_5xx"] = status_5xx.load();
  o["multipart_buffered_bytes"] = st.budget().used.load();
  boost::json::object ops;
  for (std::size_t i = 0; i < op_counts.size(); ++i)
    if (auto v = op_counts[i].load()) ops[op_names[i]] = v;
  o["operations"] = std::move(ops);
  boost::json::array buckets;
  for (const auto& b : st.buckets()) {
    boost::json::object bo{{"name", b->name}};
    if (b->synthetic) {
      bo["keys"] = b->synthetic->count();
      bo["bytes"] = b->synthetic->total_bytes();
      bo["md5_computed"] = b->synthetic->md5_computed();
    } else {
      bo["records"] = b->writable->size();
    }
    buckets.push_back(std::move(bo));
  }
  o["buckets"] = std::move(buckets);
  reply rep;
  rep.content_type = "application/json";
  rep.body = boost::json::serialize(o) + "\n";
  return rep;
}

// ---------------------------------------------------------------------------------------------

server::server(store& s, server_config cfg) : impl_(std::make_unique<impl>(s, std::move(cfg))) {}

server::~server() {
  stop();
  impl_->pool.join();
}

boost::system::result<std::uint16_t, std::string> server::listen() {
  auto& s = *impl_;
  error_code ec;
  const auto addr = asio::ip::make_address(s.cfg.address, ec);
  if (ec)
    return boost::system::result<std::uint16_t, std::string>(boost::system::in_place_error,
                                                             "bad address " + s.cfg.address);
  const tcp::endpoint ep(addr, s.cfg.port);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    s.acceptor.close(ignored);
    return boost::system::result<std::uint16_t, std::string>(
        boost::system::in_place_error,
        "cannot listen on " + s.cfg.address + ":" + std::to_string(s.cfg.port) + ": " + ec.message());
  }
  asio::co_spawn(s.ioc, s.accept_loop(), asio::detached);
  return s.acceptor.local_endpoint().port();
}

void server::run() {
  auto& s = *impl_;
  asio::signal_set signals(s.ioc, SIGINT, SIGTERM);
  signals.async_wait([this](const error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping", sig);
    stop();
  });
  std::vector<std::thread> extra;
  for (unsigned i = 1; i < s.threads; ++i) extra.emplace_back([&s] { s.ioc.run(); });
  s.ioc.run();
  for (auto& t : extra) t.join();
}

void server::stop() {
  auto& s = *impl_;
  asio::post(s.ioc, [&s] {
    error_code ignored;
    s.acceptor.close(ignored);
  });
  s.ioc.stop();
}

}  // namespace ferry::synthetic
