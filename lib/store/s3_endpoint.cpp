#include "store/s3_endpoint.hpp"

#include "s3/retry.hpp"
#include "store/order_check.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace ferry::store {

namespace {

// S3's limit on a key's length, in bytes.
constexpr std::size_t max_s3_key_bytes = 1024;
// Servers may answer empty truncated pages; this many in a row is a broken listing, not a slow one.
constexpr int max_empty_pages = 1000;
// The user-metadata name rclone keeps the mtime under.
constexpr std::string_view mtime_meta = "mtime";
// S3's limits: part numbers, and keys per DeleteObjects request.
constexpr int max_part_number = 10000;
constexpr std::size_t max_delete_batch = 1000;

error fail(std::string code, std::string message) {
  auto e = s3::local_error(std::move(code), std::move(message));
  e.retryable = false;
  return e;
}

// HEAD answers a bare 404 ("NotFound"); GET says "NoSuchKey". Callers see one code.
error normalize_not_found(error e) {
  if (e.http_status == 404 && (e.code == "NotFound" || e.code == "NoSuchKey")) e.code = "NoSuchKey";
  return e;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::chrono::system_clock::time_point> mtime_of(const s3::object_metadata& m,
                                                              std::string_view last_modified) {
  if (auto it = m.user.find(std::string(mtime_meta)); it != m.user.end())
    if (auto t = parse_rclone_mtime(it->second)) return t;
  return s3::parse_http_date(last_modified);
}

s3::object_metadata with_mtime(const write_options& opts) {
  s3::object_metadata m = opts.metadata;
  if (opts.mtime) m.user[std::string(mtime_meta)] = format_rclone_mtime(*opts.mtime);
  return m;
}

class s3_lister final : public lister {
 public:
  s3_lister(list_page_fn fetch, std::string prefix, std::string where)
      : fetch_(std::move(fetch)), prefix_(std::move(prefix)), where_(std::move(where)) {}

  asio::awaitable<result<std::vector<object_info>>> next() override {
    std::vector<object_info> out;
    for (int empty = 0; !done_;) {
      s3::list_params p;
      p.prefix = prefix_;
      p.continuation_token = token_;
      auto page = co_await fetch_(p);
      if (!page) co_return page.error();
      if (page->is_truncated && (page->next_continuation_token.empty() || page->next_continuation_token == token_))
        co_return fail("InvalidResponse", where_ + ": truncated listing page without a new continuation token");
      // State advances only once the whole page is accepted, so a failed next() may be retried.
      order_check order = order_;
      out.reserve(page->objects.size());
      for (auto& o : page->objects) {
        if (!o.key.starts_with(prefix_))
          co_return fail("InvalidResponse", where_ + ": listing returned key '" + o.key + "' outside the prefix");
        if (auto ok = order.next(o.key, where_); !ok) co_return ok.error();
        if (o.key.size() == prefix_.size()) continue;  // a "folder" marker named like the prefix
        object_info info;
        info.key = o.key.substr(prefix_.size());
        info.size = o.size;
        info.etag = std::move(o.etag);
        info.last_modified = parse_iso8601(o.last_modified);
        out.push_back(std::move(info));
      }
      if (page->is_truncated) {
        token_ = std::move(page->next_continuation_token);
      } else {
        done_ = true;
      }
      order_ = std::move(order);
      if (!out.empty()) break;
      if (++empty >= max_empty_pages)
        co_return fail("InvalidResponse", where_ + ": too many empty listing pages in a row");
    }
    co_return out;
  }

 private:
  list_page_fn fetch_;
  std::string prefix_, where_;
  std::string token_;
  bool done_ = false;
  order_check order_;
};

class s3_reader final : public object_reader {
 public:
  s3_reader(object_info info, s3::object_stream stream, std::uint64_t body_bytes)
      : info_(std::move(info)), stream_(std::move(stream)), remaining_(body_bytes) {}

  const object_info& info() const override { return info_; }

  asio::awaitable<result<std::size_t>> read_some(std::span<char> buf) override {
    if (done_ || buf.empty()) co_return std::size_t{0};
    auto n = co_await stream_.read_some(buf);
    if (!n) co_return s3::transport_error(n.error(), "GetObject " + info_.key + ": reading the body");
    if (*n == 0) {
      if (remaining_ != 0) {
        auto e = s3::local_error(
            "IncompleteBody", "GetObject " + info_.key + ": body ended " + std::to_string(remaining_) + " bytes early");
        e.retryable = true;
        co_return e;
      }
      done_ = true;
      co_return std::size_t{0};
    }
    if (*n > remaining_) co_return fail("InvalidResponse", "GetObject " + info_.key + ": body longer than announced");
    remaining_ -= *n;
    co_return *n;
  }

 private:
  object_info info_;
  s3::object_stream stream_;
  std::uint64_t remaining_;
  bool done_ = false;
};

class s3_multipart final : public multipart_writer {
 public:
  s3_multipart(std::shared_ptr<s3::client> client, std::string bucket, std::string key, std::string upload_id)
      : client_(std::move(client)), bucket_(std::move(bucket)), key_(std::move(key)), id_(std::move(upload_id)) {}

  const std::string& id() const override { return id_; }

  asio::awaitable<result<std::string>> write_part(int part_number, std::uint64_t /*offset*/,
                                                  std::shared_ptr<const std::string> data,
                                                  std::string content_md5) override {
    if (!data) co_return fail("InvalidArgument", "write_part without data");
    auto b = s3::body::shared(std::move(data));
    auto put = co_await client_->upload_part(bucket_, key_, id_, part_number, std::move(b), content_md5);
    if (!put) co_return put.error();
    co_return std::move(put->etag);
  }

  asio::awaitable<result<write_result>> complete(const std::vector<s3::part_info>& parts) override {
    auto etag = co_await client_->complete_multipart_upload(bucket_, key_, id_, parts);
    if (!etag) co_return etag.error();
    co_return write_result{std::move(*etag)};
  }

  asio::awaitable<result<void>> abort() override {
    auto r = co_await client_->abort_multipart_upload(bucket_, key_, id_);
    if (!r && r.error().code != "NoSuchUpload") co_return r.error();  // already gone is what we wanted
    co_return result<void>();
  }

  asio::awaitable<result<std::vector<s3::part_info>>> uploaded_parts() override {
    list_parts_fn fetch = [client = client_, bucket = bucket_, key = key_, id = id_](int marker) {
      return client->list_parts(bucket, key, id, marker);
    };
    std::string where = "ListParts " + key_ + " (upload " + id_ + ")";
    co_return co_await list_all_parts(std::move(fetch), std::move(where));
  }

 private:
  std::shared_ptr<s3::client> client_;
  std::string bucket_, key_, id_;
};

class s3_endpoint final : public endpoint {
 public:
  s3_endpoint(std::shared_ptr<s3::client> client, std::string bucket, std::string prefix)
      : client_(std::move(client)), bucket_(std::move(bucket)), prefix_(std::move(prefix)) {
    if (!prefix_.empty() && prefix_.back() != '/') prefix_ += '/';
    target_ = s3_target{client_, bucket_, prefix_};
  }

  const s3_target* s3() const override { return &target_; }

  std::string describe() const override { return client_->config().name + ":" + bucket_ + "/" + prefix_; }
  bool is_local() const override { return false; }

  std::unique_ptr<lister> list() override {
    auto fetch = [client = client_, bucket = bucket_](const s3::list_params& p) {
      return client->list_objects_v2(bucket, p);
    };
    return make_s3_lister(std::move(fetch), prefix_, describe());
  }

  asio::awaitable<result<object_info>> stat(std::string_view key_in) override {
    std::string key(key_in);
    auto full = full_key(key);
    if (!full) co_return full.error();
    auto head = co_await client_->head_object(bucket_, *full);
    if (!head) co_return normalize_not_found(head.error());
    object_info info;
    info.key = std::move(key);
    info.size = head->size;
    info.etag = std::move(head->etag);
    info.mtime = mtime_of(head->metadata, head->last_modified);
    info.last_modified = s3::parse_http_date(head->last_modified);
    info.metadata = std::move(head->metadata);
    co_return info;
  }

  asio::awaitable<result<std::unique_ptr<object_reader>>> read(std::string_view key_in, std::optional<byte_range> range,
                                                               std::string_view if_match) override {
    std::string key(key_in);
    auto full = full_key(key);
    if (!full) co_return full.error();
    if (range && range->last < range->first) co_return fail("InvalidRange", "read " + key + ": empty range");
    s3::get_params p;
    if (range) p.range = std::make_pair(range->first, range->last);
    p.if_match = std::string(if_match);
    auto got = co_await client_->get_object(bucket_, *full, p);
    if (!got) co_return normalize_not_found(got.error());

    const auto where = "GetObject " + key;
    auto length = got->response.content_length();
    if (!length) co_return fail("InvalidResponse", where + ": no Content-Length");
    object_info info;
    info.key = key;
    info.etag = got->head.etag;
    info.mtime = mtime_of(got->head.metadata, got->head.last_modified);
    info.last_modified = s3::parse_http_date(got->head.last_modified);
    info.metadata = got->head.metadata;
    if (got->response.status() == 206) {
      auto header = got->response.headers().get("Content-Range");
      auto cr = header ? parse_content_range(*header) : std::nullopt;
      if (!cr) co_return fail("InvalidResponse", where + ": 206 without a valid Content-Range");
      // The server may shorten a range that runs past the end, never move or lengthen it.
      if (!range || cr->first != range->first || cr->last != std::min(range->last, cr->total - 1) ||
          *length != cr->last - cr->first + 1)
        co_return fail("InvalidResponse",
                       where + ": Content-Range '" + std::string(*header) + "' does not answer the range asked for");
      info.size = cr->total;
    } else {
      info.size = *length;
      // A server that ignores Range sends the whole object: only acceptable if that is what was asked.
      if (range && (range->first != 0 || range->last + 1 < *length))
        co_return fail("RangeNotHonoured", where + ": the server answered a range request with the whole object");
    }
    std::unique_ptr<object_reader> reader = std::make_unique<s3_reader>(std::move(info), std::move(*got), *length);
    co_return reader;
  }

  asio::awaitable<result<write_result>> write(std::string_view key_in, http::body_source body, std::uint64_t size,
                                              const write_options& opts) override {
    std::string key(key_in);
    auto full = full_key(key);
    if (!full) co_return full.error();
    s3::put_params p{opts.content_md5, opts.checksum_crc32c, with_mtime(opts)};
    auto b = s3::body::streamed(std::move(body), size);
    auto put = co_await client_->put_object(bucket_, *full, std::move(b), p);
    if (!put) co_return put.error();
    co_return write_result{std::move(put->etag)};
  }

  asio::awaitable<result<std::unique_ptr<multipart_writer>>> begin_multipart(std::string_view key_in,
                                                                             const write_options& opts) override {
    std::string key(key_in);
    auto full = full_key(key);
    if (!full) co_return full.error();
    const auto meta = with_mtime(opts);
    auto id = co_await client_->create_multipart_upload(bucket_, *full, meta);
    if (!id) co_return id.error();
    std::unique_ptr<multipart_writer> w =
        std::make_unique<s3_multipart>(client_, bucket_, std::move(*full), std::move(*id));
    co_return w;
  }

  asio::awaitable<result<std::unique_ptr<multipart_writer>>> resume_multipart(std::string_view key_in,
                                                                              std::string upload_id) override {
    std::string key(key_in);
    auto full = full_key(key);
    if (!full) co_return full.error();
    if (upload_id.empty()) co_return fail("InvalidArgument", "resuming an upload of " + key + " without its id");
    std::unique_ptr<multipart_writer> w =
        std::make_unique<s3_multipart>(client_, bucket_, std::move(*full), std::move(upload_id));
    co_return w;
  }

  asio::awaitable<result<void>> abort_multipart(std::string_view key_in, std::string upload_id) override {
    std::string key(key_in);
    auto full = full_key(key);
    if (!full) co_return full.error();
    if (upload_id.empty()) co_return fail("InvalidArgument", "aborting an upload of " + key + " without its id");
    auto r = co_await client_->abort_multipart_upload(bucket_, *full, upload_id);
    if (!r && r.error().code != "NoSuchUpload") co_return r.error();  // already gone is what we wanted
    co_return result<void>();
  }

  asio::awaitable<result<void>> remove(std::string_view key_in) override {
    std::string key(key_in);
    auto full = full_key(key);
    if (!full) co_return full.error();
    auto r = co_await client_->delete_object(bucket_, *full);
    if (!r && r.error().http_status != 404) co_return r.error();  // gone already: the goal
    co_return result<void>();
  }

  asio::awaitable<result<std::vector<std::pair<std::string, error>>>> remove_many(
      std::vector<std::string> keys) override {
    delete_batch_fn del = [client = client_, bucket = bucket_](const std::vector<std::string>& batch) {
      return client->delete_objects(bucket, batch);
    };
    std::string prefix = prefix_;
    co_return co_await delete_in_batches(std::move(del), std::move(prefix), std::move(keys));
  }

 private:
  result<std::string> full_key(std::string_view key) const {
    if (key.empty()) return fail("InvalidKey", "empty key");
    if (prefix_.size() + key.size() > max_s3_key_bytes)
      return fail("InvalidKey", "key longer than S3's 1024 bytes: " + prefix_ + std::string(key));
    return prefix_ + std::string(key);
  }

  std::shared_ptr<s3::client> client_;
  std::string bucket_, prefix_;
  s3_target target_;
};

}  // namespace

std::unique_ptr<endpoint> make_s3_endpoint(std::shared_ptr<s3::client> client, std::string bucket, std::string prefix) {
  return std::make_unique<s3_endpoint>(std::move(client), std::move(bucket), std::move(prefix));
}

std::unique_ptr<lister> make_s3_lister(list_page_fn fetch, std::string prefix, std::string where) {
  return std::make_unique<s3_lister>(std::move(fetch), std::move(prefix), std::move(where));
}

asio::awaitable<result<std::vector<s3::part_info>>> list_all_parts(list_parts_fn fetch, std::string where) {
  std::vector<s3::part_info> out;
  int marker = 0;
  for (;;) {
    auto page = co_await fetch(marker);
    if (!page) co_return page.error();
    for (auto& p : page->parts) {
      // Ascending and within S3's numbers: at most 10,000 parts, whatever the server sends.
      const int after = out.empty() ? marker : std::max(marker, out.back().part_number);
      if (p.part_number <= after || p.part_number > max_part_number)
        co_return fail("InvalidResponse", where + ": part " + std::to_string(p.part_number) + " out of order");
      out.push_back(std::move(p));
    }
    if (!page->is_truncated) break;
    const int next = page->next_part_number_marker;
    if (next <= marker || next >= max_part_number)
      co_return fail("InvalidResponse", where + ": truncated page whose next part-number marker (" +
                                            std::to_string(next) + ") does not advance");
    marker = next;
  }
  co_return out;
}

asio::awaitable<result<std::vector<std::pair<std::string, error>>>> delete_in_batches(delete_batch_fn del,
                                                                                      std::string prefix,
                                                                                      std::vector<std::string> keys) {
  std::vector<std::pair<std::string, error>> failed;
  std::vector<std::string> batch;
  batch.reserve(std::min(keys.size(), max_delete_batch));
  for (std::size_t i = 0; i < keys.size();) {
    batch.clear();
    for (; i < keys.size() && batch.size() < max_delete_batch; ++i) {
      auto& key = keys[i];
      if (key.empty()) {
        failed.emplace_back(std::move(key), fail("InvalidKey", "empty key"));
      } else if (prefix.size() + key.size() > max_s3_key_bytes) {
        auto e = fail("InvalidKey", "key longer than S3's 1024 bytes: " + prefix + key);
        failed.emplace_back(std::move(key), std::move(e));
      } else {
        batch.push_back(prefix + key);
      }
    }
    if (batch.empty()) continue;
    auto r = co_await del(batch);
    if (!r) co_return r.error();
    for (auto& f : r->errors) {
      if (f.code == "NoSuchKey") continue;  // gone already: the goal
      std::string key = f.key.starts_with(prefix) ? f.key.substr(prefix.size()) : f.key;
      auto e = s3::local_error(f.code.empty() ? "InternalError" : std::move(f.code),
                               "DeleteObjects " + f.key + ": " + f.message);
      e.retryable = s3::is_retryable_code(e.code, 0);
      failed.emplace_back(std::move(key), std::move(e));
    }
  }
  co_return failed;
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s) {
  using namespace std::chrono;
  // "2026-11-23T16:30:00" is 19 characters; a fraction and a zone follow.
  if (s.size() < 20 || s.size() > 64) return std::nullopt;
  const auto digits = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (i >= s.size() || s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':') return std::nullopt;
  const auto year = digits(0, 4), mon = digits(5, 2), day = digits(8, 2);
  const auto hh = digits(11, 2), mm = digits(14, 2), ss = digits(17, 2);
  if (!year || !mon || !day || !hh || !mm || !ss || *hh > 23 || *mm > 59 || *ss > 60) return std::nullopt;
  const year_month_day ymd{std::chrono::year(*year), month(static_cast<unsigned>(*mon)),
                           std::chrono::day(static_cast<unsigned>(*day))};
  if (!ymd.ok()) return std::nullopt;
  std::size_t pos = 19;
  std::int64_t nanos = 0;
  if (s[pos] == '.') {
    const auto start = ++pos;
    for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos)
      if (pos - start < 9) nanos = nanos * 10 + (s[pos] - '0');
    if (pos == start) return std::nullopt;
    for (auto n = std::min<std::size_t>(pos - start, 9); n < 9; ++n) nanos *= 10;
  }
  const auto zone = s.substr(pos);
  minutes offset{0};
  if (zone != "Z" && zone != "z") {
    // "+HH:MM" or "-HH:MM"
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':') return std::nullopt;
    const auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
    if (!oh || !om || *oh > 23 || *om > 59) return std::nullopt;
    offset = hours(*oh) + minutes(*om);
    if (zone[0] == '-') offset = -offset;
  }
  const auto local = sys_days(ymd) + hours(*hh) + minutes(*mm) + seconds(*ss) + nanoseconds(nanos);
  return time_point_cast<system_clock::duration>(local - offset);
}

std::string format_rclone_mtime(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
  const bool negative = ns < 0;
  // Magnitude first, so a time before 1970 prints as "-1.5", not "-2.500000000".
  const auto mag = negative ? -static_cast<unsigned long long>(ns) : static_cast<unsigned long long>(ns);
  std::string out = (negative ? "-" : "") + std::to_string(mag / 1'000'000'000ull);
  if (const auto frac = mag % 1'000'000'000ull; frac != 0) {
    std::string digits = std::to_string(frac);
    digits.insert(0, 9 - digits.size(), '0');
    while (digits.back() == '0') digits.pop_back();
    out += '.';
    out += digits;
  }
  return out;
}

std::optional<std::chrono::system_clock::time_point> parse_rclone_mtime(std::string_view s) {
  using namespace std::chrono;
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  const auto dot = s.find('.');
  const auto whole = s.substr(0, dot);
  // Beyond the year 2255 nanoseconds overflow 64 bits; no real mtime is there.
  constexpr std::uint64_t max_seconds = 9'000'000'000;
  auto secs = parse_u64(whole);
  if (!secs || *secs > max_seconds) return std::nullopt;
  std::uint64_t nanos = 0;
  if (dot != std::string_view::npos) {
    const auto frac = s.substr(dot + 1);
    if (frac.empty() || frac.size() > 30) return std::nullopt;
    for (std::size_t i = 0; i < frac.size(); ++i) {
      if (frac[i] < '0' || frac[i] > '9') return std::nullopt;
      if (i < 9) nanos = nanos * 10 + static_cast<std::uint64_t>(frac[i] - '0');
    }
    for (auto i = std::min<std::size_t>(frac.size(), 9); i < 9; ++i) nanos *= 10;
  }
  auto total = nanoseconds(static_cast<std::int64_t>(*secs) * 1'000'000'000 + static_cast<std::int64_t>(nanos));
  if (negative) total = -total;
  return system_clock::time_point(duration_cast<system_clock::duration>(total));
}

std::optional<content_range> parse_content_range(std::string_view s) {
  constexpr std::string_view unit = "bytes ";
  if (!s.starts_with(unit)) return std::nullopt;
  s.remove_prefix(unit.size());
  const auto dash = s.find('-');
  const auto slash = s.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) return std::nullopt;
  auto first = parse_u64(s.substr(0, dash));
  auto last = parse_u64(s.substr(dash + 1, slash - dash - 1));
  auto total = parse_u64(s.substr(slash + 1));
  if (!first || !last || !total || *first > *last || *last >= *total) return std::nullopt;
  return content_range{*first, *last, *total};
}

}  // namespace ferry::store
