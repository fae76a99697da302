#include "transfer/copier.hpp"

#include "s3/client.hpp"
#include "util/hash.hpp"
#include "util/text.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>
#include <vector>

namespace ferry::transfer {

namespace {

constexpr std::uint64_t mib = 1024 * 1024;
constexpr std::uint64_t min_part = 5 * mib;
constexpr std::uint64_t max_part = 5ull * 1024 * mib;
constexpr std::uint64_t max_parts = 10'000;
constexpr std::uint64_t max_single_put = 5ull * 1024 * mib;
constexpr std::uint64_t max_copy_object = 5ull * 1024 * mib;

std::string md5_base64_of_hex(std::string_view hex) {
  auto raw = util::from_hex(hex);
  return raw ? util::base64_encode(*raw) : std::string();
}

copy_outcome start_outcome(const store::object_info& o) {
  copy_outcome out;
  out.record.key = o.key;
  out.record.size = o.size;
  out.record.source_etag = o.etag;
  out.record.time = std::chrono::system_clock::now();
  return out;
}

copy_outcome fail(copy_outcome o, std::string why, bool retryable, verdict v = verdict::failed) {
  o.record.result = v;
  o.record.error = std::move(why);
  o.retryable = retryable;
  return o;
}

// Worth copying the whole object again: what a request retry cannot fix but a fresh start can
// (bytes corrupted in transit, a source that changed since it was listed).
bool object_retryable(const store::error& e) {
  return e.retryable || e.code == "BadDigest" || e.code == "XAmzContentSHA256Mismatch" ||
         e.code == "PreconditionFailed" || e.http_status == 412 || e.code == "SourceChanged";
}

copy_outcome fail(copy_outcome o, std::string_view what, const store::error& e) {
  o.transient = e.retryable && (s3::is_throttling(e) || e.http_status >= 500 || (e.http_status == 0 && e.transport));
  return fail(std::move(o), std::string(what) + ": " + e.to_string(), object_retryable(e));
}

// A server answer that means "not here, not this way": stream instead (auto mode).
bool is_refusal(const store::error& e) {
  return e.code == "NotImplemented" || e.code == "AccessDenied" || e.code == "InvalidRequest" || e.http_status == 501;
}

// Feeds a reader's bytes to an upload while hashing them: the upload pulls, so both sockets
// apply backpressure to each other and nothing is buffered beyond one chunk.
struct hashing_pump {
  hashing_pump(store::object_reader& r, std::uint64_t n, bool with_sha256) : in(r), size(n) {
    if (with_sha256) sha.emplace();
  }

  store::object_reader& in;
  std::uint64_t size;
  std::uint64_t done = 0;
  util::md5_hasher md5;
  util::crc32c_hasher crc;
  std::optional<util::sha256_hasher> sha;
  std::optional<store::error> read_error;

  http::body_source source() {
    return [this](std::span<char> buf) -> asio::awaitable<http::result<std::size_t>> {
      if (done == size) co_return std::size_t{0};
      auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - done));
      auto n = co_await in.read_some(buf.first(want));
      if (!n) {
        read_error = n.error();
        co_return http::error_code(asio::error::connection_aborted);
      }
      if (*n == 0) {
        read_error = s3::local_error(
            "SourceTruncated", "source ended after " + std::to_string(done) + " of " + std::to_string(size) + " bytes");
        read_error->retryable = true;
        co_return http::error_code(asio::error::eof);
      }
      md5.update(std::string_view(buf.data(), *n));
      crc.update(std::string_view(buf.data(), *n));
      if (sha) sha->update(std::string_view(buf.data(), *n));
      done += *n;
      co_return *n;
    };
  }
};

// Reads exactly `size` bytes from a reader into memory (a staged part or small object).
asio::awaitable<store::result<std::string>> read_exactly(store::object_reader& in, std::uint64_t size) {
  std::string buf(static_cast<std::size_t>(size), '\0');
  std::size_t got = 0;
  while (got < buf.size()) {
    auto n = co_await in.read_some(std::span<char>(buf.data() + got, buf.size() - got));
    if (!n) co_return n.error();
    if (*n == 0) {
      auto e = s3::local_error("SourceTruncated",
                               "source ended after " + std::to_string(got) + " of " + std::to_string(size) + " bytes");
      e.retryable = true;
      co_return e;
    }
    got += *n;
  }
  char extra;
  auto tail = co_await in.read_some(std::span<char>(&extra, 1));
  if (tail && *tail != 0) {
    auto e = s3::local_error("SourceChanged", "source is longer than the " + std::to_string(size) + " bytes expected");
    e.retryable = true;
    co_return e;
  }
  co_return buf;
}

http::body_source buffer_source(std::shared_ptr<const std::string> data) {
  return [data, offset = std::size_t{0}](std::span<char> buf) mutable -> asio::awaitable<http::result<std::size_t>> {
    std::size_t n = std::min(buf.size(), data->size() - offset);
    std::memcpy(buf.data(), data->data() + offset, n);
    offset += n;
    co_return n;
  };
}

// The destination's verdict on a single-part write of bytes whose MD5 is `md5_hex`.
asio::awaitable<copy_outcome> judge_single(const copy_context& ctx, copy_outcome out, const std::string& md5_hex,
                                           const store::write_result& written) {
  out.record.destination_etag = written.etag;
  if (ctx.destination.is_local()) {
    out.record.method = "local-md5";  // the local writer compared the MD5 before renaming
  } else if (etag_is_md5(written.etag)) {
    if (util::ascii_lower(written.etag) != md5_hex)
      co_return fail(std::move(out), "destination ETag " + written.etag + " != MD5 of the bytes sent " + md5_hex, true,
                     verdict::mismatch);
    out.record.method = "etag=md5";
  } else {
    // Not an MD5 (SSE-KMS, some gateways): the server checked our Content-MD5; confirm the size.
    auto st = co_await ctx.destination.stat(out.record.key);
    if (!st) co_return fail(std::move(out), "checking the destination", st.error());
    if (st->size != out.record.size)
      co_return fail(
          std::move(out),
          "destination holds " + std::to_string(st->size) + " bytes, expected " + std::to_string(out.record.size), true,
          verdict::mismatch);
    out.record.method = "content-md5+size";
  }
  out.record.result = verdict::verified;
  co_return out;
}

store::write_options write_options_from(const store::object_info& src_info, const store::object_info& listed) {
  store::write_options w;
  w.metadata = src_info.metadata;
  w.mtime = src_info.mtime ? src_info.mtime : listed.mtime;
  return w;
}

// Local source: hash in a first pass (the page cache makes the second read cheap), then stream with
// Content-MD5, and check the file did not change in between.
asio::awaitable<copy_outcome> stream_local_single(const copy_context& ctx, const store::object_info& obj) {
  auto out = start_outcome(obj);
  auto first = co_await ctx.source.read(obj.key, std::nullopt, "");
  if (!first) co_return fail(std::move(out), "reading the source", first.error());
  util::md5_hasher md5;
  std::uint64_t n = 0;
  std::vector<char> chunk(256 * 1024);
  for (;;) {
    auto r = co_await (*first)->read_some(chunk);
    if (!r) co_return fail(std::move(out), "reading the source", r.error());
    if (*r == 0) break;
    md5.update(std::string_view(chunk.data(), *r));
    n += *r;
  }
  const auto info = (*first)->info();
  first->reset();
  if (n != info.size) co_return fail(std::move(out), "source file changed size while being read", true);
  const std::string md5_hex = util::to_hex(md5.finish());

  auto second = co_await ctx.source.read(obj.key, std::nullopt, "");
  if (!second) co_return fail(std::move(out), "reading the source", second.error());
  hashing_pump pump(**second, info.size, ctx.config.sha256);
  auto opts = write_options_from((*second)->info(), obj);
  opts.content_md5 = md5_base64_of_hex(md5_hex);
  http::body_source body = pump.source();  // named: GCC 12 mis-destroys temporaries passed to coroutines
  auto written = co_await ctx.destination.write(obj.key, std::move(body), info.size, opts);
  out.bytes = pump.done;
  out.record.size = info.size;
  out.record.md5 = util::to_hex(pump.md5.finish());
  out.record.crc32c = pump.crc.value();
  if (pump.sha) out.record.sha256 = util::to_hex(pump.sha->finish());
  if (pump.read_error) co_return fail(std::move(out), "reading the source", *pump.read_error);
  if (!written) co_return fail(std::move(out), "writing the destination", written.error());
  if (out.record.md5 != md5_hex)
    co_return fail(std::move(out), "source file changed between the hashing pass and the copy", true);
  auto after = co_await ctx.source.stat(obj.key);
  if (!after || after->size != info.size || after->mtime != info.mtime)
    co_return fail(std::move(out), "source file changed while it was copied", true);
  co_return co_await judge_single(ctx, std::move(out), md5_hex, *written);
}

// S3 source whose ETag is an MD5: that MD5 travels as Content-MD5 and the bytes stream through,
// so the destination itself rejects anything that differs from what the source stored.
asio::awaitable<copy_outcome> stream_s3_single(const copy_context& ctx, const store::object_info& obj) {
  auto out = start_outcome(obj);
  auto in = co_await ctx.source.read(obj.key, std::nullopt, obj.etag);
  if (!in) co_return fail(std::move(out), "reading the source", in.error());
  const auto& info = (*in)->info();
  if (info.size != obj.size || (!obj.etag.empty() && util::ascii_lower(info.etag) != util::ascii_lower(obj.etag)))
    co_return fail(std::move(out), "source changed since it was listed", true);
  hashing_pump pump(**in, info.size, ctx.config.sha256);
  auto opts = write_options_from(info, obj);
  opts.content_md5 = md5_base64_of_hex(obj.etag);
  http::body_source body = pump.source();  // named: GCC 12 mis-destroys temporaries passed to coroutines
  auto written = co_await ctx.destination.write(obj.key, std::move(body), info.size, opts);
  out.bytes = pump.done;
  out.record.md5 = util::to_hex(pump.md5.finish());
  out.record.crc32c = pump.crc.value();
  if (pump.sha) out.record.sha256 = util::to_hex(pump.sha->finish());
  if (pump.read_error) co_return fail(std::move(out), "reading the source", *pump.read_error);
  if (!written) co_return fail(std::move(out), "writing the destination", written.error());
  if (out.record.md5 != util::ascii_lower(obj.etag))
    co_return fail(std::move(out),
                   "bytes read do not match the source ETag (read " + out.record.md5 + ", ETag " + obj.etag + ")", true,
                   verdict::mismatch);
  const std::string sent_md5 = out.record.md5;
  co_return co_await judge_single(ctx, std::move(out), sent_md5, *written);
}

// S3 source without an MD5 ETag (multipart, SSE-KMS): stage the object in budgeted memory, hash
// it, then send it with Content-MD5.
asio::awaitable<copy_outcome> staged_single(const copy_context& ctx, const store::object_info& obj) {
  auto out = start_outcome(obj);
  auto lease = co_await ctx.budget.acquire(obj.size);
  auto in = co_await ctx.source.read(obj.key, std::nullopt, obj.etag);
  if (!in) co_return fail(std::move(out), "reading the source", in.error());
  const auto info = (*in)->info();
  auto bytes = co_await read_exactly(**in, info.size);
  if (!bytes) co_return fail(std::move(out), "reading the source", bytes.error());
  in->reset();
  auto data = std::make_shared<const std::string>(std::move(*bytes));
  const auto digest = util::md5(*data);
  out.record.md5 = util::to_hex(digest);
  out.record.crc32c = util::crc32c(*data);
  if (ctx.config.sha256) out.record.sha256 = util::to_hex(util::sha256(*data));
  out.bytes = data->size();
  auto opts = write_options_from(info, obj);
  opts.content_md5 = util::base64_encode(digest);
  http::body_source body = buffer_source(data);
  auto written = co_await ctx.destination.write(obj.key, std::move(body), data->size(), opts);
  if (!written) co_return fail(std::move(out), "writing the destination", written.error());
  const std::string sent_md5 = out.record.md5;
  co_return co_await judge_single(ctx, std::move(out), sent_md5, *written);
}

// Parts in parallel, each from a ranged read (with If-Match on S3) staged in budgeted memory and
// sent with its Content-MD5. The whole-object MD5 is still computed, in part order: a part that
// is read before its predecessors waits for its turn to be hashed (a short wait; parts are taken
// in order). A resumed upload has parts whose bytes never pass through this process: it proves
// itself by the multipart ETag of the stored part MD5s instead, and its CRC32C is combined from
// the parts'.
struct multipart_state {
  std::uint64_t size = 0, part_size = 0;
  int parts = 0;
  int next_part = 0;     // the next part a worker considers
  int next_to_hash = 0;  // the part the whole-object hasher waits for
  bool resumed = false;  // some parts were sent before: no whole-object MD5
  std::string upload_id;
  util::md5_hasher whole_md5;
  std::optional<util::sha256_hasher> whole_sha;
  std::map<int, asio::steady_timer*> waiting_turn;
  std::vector<s3::part_info> done;
  std::vector<bool> have;  // part already at the destination (resume)
  std::vector<util::md5_digest> part_md5;
  std::vector<std::uint32_t> part_crc;
  std::optional<copy_outcome> failure;
  std::uint64_t bytes = 0;
  int sent = 0;  // parts sent by this attempt

  void wake(int part) {
    auto it = waiting_turn.find(part);
    if (it != waiting_turn.end()) it->second->cancel();
  }
  void wake_all() {
    for (auto& [p, t] : waiting_turn) t->cancel();
  }
};

asio::awaitable<void> multipart_worker(const copy_context& ctx, const store::object_info& obj,
                                       store::multipart_writer& writer, multipart_state& st, copy_outcome& base) {
  auto ex = co_await asio::this_coro::executor;
  while (!st.failure && st.next_part < st.parts) {
    const int i = st.next_part++;
    if (st.have[static_cast<std::size_t>(i)]) continue;
    auto failed = [&](copy_outcome o) {
      if (!st.failure) st.failure = std::move(o);
      st.wake_all();
    };
    if (ctx.stopping && ctx.stopping->load()) {
      failed(fail(base, "ferryd is stopping; the upload resumes at the next start", true));
      co_return;
    }
    if (ctx.cancelled && ctx.cancelled->load()) {
      failed(fail(base, "cancelled", false));
      co_return;
    }
    const std::uint64_t offset = static_cast<std::uint64_t>(i) * st.part_size;
    const std::uint64_t len = std::min(st.part_size, st.size - offset);
    auto lease = co_await ctx.budget.acquire(len);
    const store::byte_range range{offset, offset + len - 1};
    const std::string_view match = ctx.source.is_local() ? std::string_view() : std::string_view(obj.etag);
    auto in = co_await ctx.source.read(obj.key, range, match);
    if (!in) {
      failed(fail(base, "reading part " + std::to_string(i + 1) + " of the source", in.error()));
      co_return;
    }
    auto bytes = co_await read_exactly(**in, len);
    in->reset();
    if (!bytes) {
      failed(fail(base, "reading part " + std::to_string(i + 1) + " of the source", bytes.error()));
      co_return;
    }
    auto data = std::make_shared<const std::string>(std::move(*bytes));
    const auto digest = util::md5(*data);
    st.part_md5[static_cast<std::size_t>(i)] = digest;
    st.part_crc[static_cast<std::size_t>(i)] = util::crc32c(*data);

    if (!st.resumed) {
      while (st.next_to_hash != i && !st.failure) {
        asio::steady_timer turn(ex, asio::steady_timer::time_point::max());
        st.waiting_turn[i] = &turn;
        co_await turn.async_wait(asio::as_tuple(asio::use_awaitable));
        st.waiting_turn.erase(i);
      }
      if (st.failure) co_return;
      st.whole_md5.update(std::string_view(*data));
      if (st.whole_sha) st.whole_sha->update(std::string_view(*data));
      ++st.next_to_hash;
      st.wake(st.next_to_hash);
    }

    std::string part_md5 = util::base64_encode(digest);
    auto etag = co_await writer.write_part(i + 1, offset, data, std::move(part_md5));
    if (!etag) {
      failed(fail(base, "writing part " + std::to_string(i + 1), etag.error()));
      co_return;
    }
    const std::string part_hex = util::to_hex(digest);
    if (!ctx.destination.is_local() && etag_is_md5(*etag) && util::ascii_lower(*etag) != part_hex) {
      failed(fail(base, "part " + std::to_string(i + 1) + " ETag " + *etag + " != MD5 of the part " + part_hex, true,
                  verdict::mismatch));
      co_return;
    }
    const std::string part_etag = etag->empty() ? part_hex : *etag;
    if (ctx.journal) {
      journal_part jp{i + 1, len, part_etag, part_hex, st.part_crc[static_cast<std::size_t>(i)]};
      std::string id = st.upload_id;
      if (!co_await ctx.journal->part_done(obj, std::move(id), std::move(jp))) {
        failed(fail(base, "recording part " + std::to_string(i + 1) + " in the state database failed", false));
        co_return;
      }
    }
    st.done[static_cast<std::size_t>(i)] = s3::part_info{i + 1, part_etag, len};
    st.bytes += len;
    ++st.sent;
  }
}

// Picks up an upload the journal remembers: the parts the destination still holds and the journal
// recorded (same number, size and ETag) need not be sent again. nullopt: start a new upload.
asio::awaitable<std::unique_ptr<store::multipart_writer>> resume_upload(const copy_context& ctx,
                                                                        const store::object_info& obj,
                                                                        multipart_state& st) {
  auto point = co_await ctx.journal->find(obj);
  if (!point || point->upload_id.empty()) co_return nullptr;
  auto forget = [&]() -> asio::awaitable<std::unique_ptr<store::multipart_writer>> {
    std::string id = point->upload_id;
    (void)co_await ctx.destination.abort_multipart(obj.key, id);
    co_await ctx.journal->ended(obj, std::move(id));
    co_return nullptr;
  };
  if (point->part_size != st.part_size) {
    // A different part size (changed config): the stored parts do not line up.
    co_return co_await forget();
  }
  std::string id = point->upload_id;
  auto writer = co_await ctx.destination.resume_multipart(obj.key, std::move(id));
  if (!writer) co_return co_await forget();
  auto uploaded = co_await (*writer)->uploaded_parts();
  if (!uploaded) co_return co_await forget();  // NoSuchUpload (aborted meanwhile), or a local destination
  std::map<int, const s3::part_info*> at_dest;
  for (const auto& p : *uploaded) at_dest[p.part_number] = &p;
  for (const auto& p : point->parts) {
    if (p.number < 1 || p.number > st.parts) continue;
    const auto i = static_cast<std::size_t>(p.number - 1);
    const std::uint64_t len = std::min(st.part_size, st.size - i * st.part_size);
    auto it = at_dest.find(p.number);
    if (it == at_dest.end() || p.size != len || it->second->size != len ||
        util::ascii_lower(it->second->etag) != util::ascii_lower(p.etag))
      continue;
    auto md5 = util::from_hex(p.md5);
    if (!md5 || md5->size() != st.part_md5[i].size()) continue;
    std::copy(md5->begin(), md5->end(), st.part_md5[i].begin());
    st.part_crc[i] = p.crc32c;
    st.have[i] = true;
    st.done[i] = s3::part_info{p.number, p.etag, len};
    st.resumed = true;
  }
  st.upload_id = point->upload_id;
  co_return std::move(*writer);
}

asio::awaitable<copy_outcome> multipart_copy(const copy_context& ctx, const store::object_info& obj) {
  auto out = start_outcome(obj);
  auto head = co_await ctx.source.stat(obj.key);
  if (!head) co_return fail(std::move(out), "reading the source", head.error());
  if (head->size != obj.size || (!obj.etag.empty() && util::ascii_lower(head->etag) != util::ascii_lower(obj.etag)))
    co_return fail(std::move(out), "source changed since it was listed", true);

  multipart_state st;
  st.size = obj.size;
  st.part_size = part_size_for(obj.size, ctx.config.part_size);
  if (ctx.config.adaptive_part_size) {
    if (const auto* dst = ctx.destination.s3())
      st.part_size = std::max(
          st.part_size, dst->client->advised_part_size(obj.size, ctx.config.part_size, ctx.config.part_size_ceiling));
    // An upload begun with another size resumes with that one: its parts must line up.
    if (ctx.journal) {
      auto point = co_await ctx.journal->find(obj);
      if (point && !point->upload_id.empty() && point->part_size >= (5ull << 20) &&
          (obj.size + point->part_size - 1) / point->part_size <= 10000)
        st.part_size = point->part_size;
    }
  }
  st.parts = static_cast<int>((obj.size + st.part_size - 1) / st.part_size);
  st.done.resize(static_cast<std::size_t>(st.parts));
  st.have.resize(static_cast<std::size_t>(st.parts));
  st.part_md5.resize(static_cast<std::size_t>(st.parts));
  st.part_crc.resize(static_cast<std::size_t>(st.parts));
  if (ctx.config.sha256) st.whole_sha.emplace();

  std::unique_ptr<store::multipart_writer> writer;
  if (ctx.journal) writer = co_await resume_upload(ctx, obj, st);
  if (!writer) {
    auto begun = co_await ctx.destination.begin_multipart(obj.key, write_options_from(*head, obj));
    if (!begun) co_return fail(std::move(out), "starting the multipart upload", begun.error());
    writer = std::move(*begun);
    st.upload_id = writer->id();
    if (ctx.journal) {
      std::string id = st.upload_id;
      if (!co_await ctx.journal->started(obj, std::move(id), st.part_size)) {
        (void)co_await writer->abort();
        co_return fail(std::move(out), "recording the multipart upload in the state database failed", false);
      }
    }
  }
  auto give_up = [&](copy_outcome f) -> asio::awaitable<copy_outcome> {
    if (ctx.stopping && ctx.stopping->load()) co_return f;  // resumed at the next start
    (void)co_await writer->abort();
    if (ctx.journal) {
      std::string id = st.upload_id;
      co_await ctx.journal->ended(obj, std::move(id));
    }
    co_return f;
  };

  auto ex = co_await asio::this_coro::executor;
  const int workers = std::clamp(ctx.config.part_concurrency, 1, st.parts);
  int running = workers;
  asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
  for (int w = 0; w < workers; ++w) {
    asio::co_spawn(ex, multipart_worker(ctx, obj, *writer, st, out), [&](std::exception_ptr e) {
      if (e && !st.failure) {
        st.failure = fail(out, "internal error in a part worker", false);
        st.wake_all();
      }
      if (--running == 0) all_done.cancel();
    });
  }
  co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  out.bytes = st.bytes;
  std::uint32_t crc = st.parts > 0 ? st.part_crc[0] : 0;
  for (int i = 1; i < st.parts; ++i)
    crc = util::crc32c_combine(crc, st.part_crc[static_cast<std::size_t>(i)],
                               std::min(st.part_size, st.size - static_cast<std::uint64_t>(i) * st.part_size));
  out.record.crc32c = crc;
  if (!st.resumed) {
    out.record.md5 = util::to_hex(st.whole_md5.finish());
    if (st.whole_sha) out.record.sha256 = util::to_hex(st.whole_sha->finish());
  }
  if (st.failure) {
    auto f = std::move(*st.failure);
    f.bytes = st.bytes;
    f.record.crc32c = 0;
    co_return co_await give_up(std::move(f));
  }

  // The ETag S3 gives a multipart object: MD5 of the concatenated part MD5s, "-", part count.
  std::string concat;
  for (const auto& d : st.part_md5) concat.append(reinterpret_cast<const char*>(d.data()), d.size());
  const std::string expected = util::to_hex(util::md5(concat)) + "-" + std::to_string(st.parts);

  if (!st.resumed && etag_is_md5(obj.etag) && out.record.md5 != util::ascii_lower(obj.etag)) {
    auto f = fail(std::move(out),
                  "bytes read do not match the source ETag (read " + out.record.md5 + ", ETag " + obj.etag + ")", true,
                  verdict::mismatch);
    co_return co_await give_up(std::move(f));
  }
  if (ctx.journal) {
    std::string id = st.upload_id;
    co_await ctx.journal->all_parts_sent(obj, std::move(id), st.part_size);
  }
  auto completed = co_await writer->complete(st.done);
  if (ctx.journal) {
    std::string id = st.upload_id;
    co_await ctx.journal->ended(obj, std::move(id));
  }
  if (!completed) co_return fail(std::move(out), "completing the multipart upload", completed.error());
  out.record.destination_etag = completed->etag;

  if (ctx.source.is_local()) {
    auto after = co_await ctx.source.stat(obj.key);
    if (!after || after->size != head->size || after->mtime != head->mtime)
      co_return fail(std::move(out), "source file changed while it was copied", true);
  }
  if (ctx.destination.is_local()) {
    // Read the published file back once: the page cache makes it cheap, and it proves the parts
    // landed where they belong.
    auto back = co_await read_md5(ctx.destination, obj.key);
    if (!back) co_return fail(std::move(out), "re-reading the destination", back.error());
    if (*back != out.record.md5)
      co_return fail(std::move(out), "destination file does not hold the bytes sent", true, verdict::mismatch);
    out.record.method = "local-readback-md5";
  } else if (util::ascii_lower(completed->etag) == expected) {
    out.record.method = st.resumed ? "multipart-etag(resumed)" : "multipart-etag";
  } else {
    co_return fail(std::move(out), "destination ETag " + completed->etag + " != expected " + expected, true,
                   verdict::mismatch);
  }
  out.record.result = verdict::verified;
  co_return out;
}

// Server-side: CopyObject below the multipart threshold, UploadPartCopy at or above it.
// Returns nullopt with `refusal` set when the server refuses (auto mode then streams).
asio::awaitable<std::optional<copy_outcome>> server_copy(const copy_context& ctx, const store::object_info& obj,
                                                         std::string& refusal) {
  auto out = start_outcome(obj);
  out.server_side = true;
  const auto& src = *ctx.source.s3();
  const auto& dst = *ctx.destination.s3();
  const std::string src_key = src.prefix + obj.key, dst_key = dst.prefix + obj.key;
  auto refused_or_fail = [&](const store::error& e, std::string_view what) -> std::optional<copy_outcome> {
    if (is_refusal(e) && ctx.mode == copy_mode::automatic) {
      refusal = e.to_string();
      return std::nullopt;
    }
    return fail(out, what, e);
  };
  if (obj.size < ctx.config.multipart_threshold && obj.size <= max_copy_object) {
    s3::copy_params p;
    p.if_match = obj.etag;
    auto r = co_await dst.client->copy_object(src.bucket, src_key, dst.bucket, dst_key, p);
    if (!r) co_return refused_or_fail(r.error(), "server-side copy");
    out.record.destination_etag = r->etag;
  } else {
    auto head = co_await ctx.source.stat(obj.key);
    if (!head) co_return fail(out, "reading the source", head.error());
    auto id = co_await dst.client->create_multipart_upload(dst.bucket, dst_key, head->metadata);
    if (!id) co_return refused_or_fail(id.error(), "server-side multipart copy");
    const std::uint64_t psize = part_size_for(obj.size, ctx.config.part_size);
    std::vector<s3::part_info> parts;
    for (std::uint64_t off = 0; off < obj.size || parts.empty(); off += psize) {
      const std::uint64_t last = std::min(obj.size, off + psize) - 1;
      const int n = static_cast<int>(parts.size()) + 1;
      auto r = co_await dst.client->upload_part_copy(src.bucket, src_key, dst.bucket, dst_key, *id, n,
                                                     std::pair<std::uint64_t, std::uint64_t>{off, last}, obj.etag);
      if (!r) {
        (void)co_await dst.client->abort_multipart_upload(dst.bucket, dst_key, *id);
        co_return refused_or_fail(r.error(), "server-side part copy");
      }
      parts.push_back({n, r->etag, last - off + 1});
    }
    auto etag = co_await dst.client->complete_multipart_upload(dst.bucket, dst_key, *id, parts);
    if (!etag) co_return fail(out, "completing the server-side copy", etag.error());
    out.record.destination_etag = *etag;
  }
  // No bytes passed through ferry: the verdict is the destination's word, checked by HEAD.
  auto check = co_await ctx.destination.stat(obj.key);
  if (!check) co_return fail(out, "checking the destination", check.error());
  if (check->size != obj.size)
    co_return fail(out,
                   "destination holds " + std::to_string(check->size) + " bytes, expected " + std::to_string(obj.size),
                   true, verdict::mismatch);
  if (etag_is_md5(obj.etag) && etag_is_md5(check->etag)) {
    if (util::ascii_lower(check->etag) != util::ascii_lower(obj.etag))
      co_return fail(out, "destination ETag " + check->etag + " != source ETag " + obj.etag, true, verdict::mismatch);
    out.record.method = "server-copy+etag";
  } else {
    out.record.method = "server-copy+size";
  }
  out.record.destination_etag = check->etag;
  out.record.result = verdict::verified;
  co_return out;
}

}  // namespace

std::optional<copy_mode> parse_copy_mode(std::string_view s) {
  if (s == "auto") return copy_mode::automatic;
  if (s == "server") return copy_mode::server;
  if (s == "stream") return copy_mode::stream;
  return std::nullopt;
}

std::string_view to_string(copy_mode m) {
  switch (m) {
    case copy_mode::automatic:
      return "auto";
    case copy_mode::server:
      return "server";
    case copy_mode::stream:
      return "stream";
  }
  return "auto";
}

std::string_view to_string(verdict v) {
  switch (v) {
    case verdict::verified:
      return "verified";
    case verdict::mismatch:
      return "mismatch";
    case verdict::failed:
      return "failed";
  }
  return "failed";
}

asio::awaitable<store::result<std::string>> read_md5(store::endpoint& ep, std::string_view key) {
  auto in = co_await ep.read(key, std::nullopt, "");
  if (!in) co_return in.error();
  util::md5_hasher md5;
  std::vector<char> chunk(256 * 1024);
  for (;;) {
    auto n = co_await (*in)->read_some(chunk);
    if (!n) co_return n.error();
    if (*n == 0) break;
    md5.update(std::string_view(chunk.data(), *n));
  }
  co_return util::to_hex(md5.finish());
}

bool etag_is_md5(std::string_view etag) {
  if (etag.size() != 32) return false;
  return std::all_of(etag.begin(), etag.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::uint64_t part_size_for(std::uint64_t object_size, std::uint64_t configured) {
  std::uint64_t p = std::max(configured, min_part);
  const std::uint64_t needed = (object_size + max_parts - 1) / max_parts;
  if (needed > p) p = (needed + mib - 1) / mib * mib;  // whole MiB, as other tools do
  return std::min(p, max_part);
}

bool same_service(const store::s3_target& a, const store::s3_target& b) {
  if (!a.client || !b.client) return false;
  if (a.client == b.client) return true;
  const auto& ca = a.client->config();
  const auto& cb = b.client->config();
  return ca.endpoint == cb.endpoint && ca.region == cb.region && ca.path_style == cb.path_style &&
         a.client->creds().access_key_id == b.client->creds().access_key_id;
}

asio::awaitable<copy_outcome> copy_object(const copy_context& ctx, const store::object_info& obj) {
  const auto* s = ctx.source.s3();
  const auto* d = ctx.destination.s3();
  const bool server_possible = s && d && same_service(*s, *d);
  std::string refusal;
  if (ctx.mode == copy_mode::server && !server_possible) {
    co_return fail(start_outcome(obj), "copy mode 'server' needs source and destination on the same S3 service", false);
  }
  if (server_possible && ctx.mode != copy_mode::stream) {
    auto done = co_await server_copy(ctx, obj, refusal);
    if (done) co_return std::move(*done);
  }
  copy_outcome out;
  if (obj.size >= ctx.config.multipart_threshold || obj.size > max_single_put)
    out = co_await multipart_copy(ctx, obj);
  else if (ctx.source.is_local())
    out = co_await stream_local_single(ctx, obj);
  else if (etag_is_md5(obj.etag))
    out = co_await stream_s3_single(ctx, obj);
  else
    out = co_await staged_single(ctx, obj);
  if (!refusal.empty()) {
    out.fell_back = true;
    out.refusal = std::move(refusal);
  }
  co_return out;
}

}  // namespace ferry::transfer
