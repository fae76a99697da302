#include "state/schema.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <utility>

namespace ferry::state {

std::string_view to_string(error_kind k) {
  switch (k) {
    case error_kind::invalid_argument:
      return "invalid_argument";
    case error_kind::bad_value:
      return "bad_value";
    case error_kind::no_space:
      return "no_space";
    case error_kind::io_error:
      return "io_error";
    case error_kind::corruption:
      return "corruption";
    case error_kind::busy:
      return "busy";
    case error_kind::other:
      return "other";
  }
  return "unknown";
}

void throw_exception_from_error(const error& e, const boost::source_location&) { throw std::runtime_error(e.message); }

std::string_view to_string(object_phase p) {
  switch (p) {
    case object_phase::pending:
      return "pending";
    case object_phase::in_flight:
      return "in_flight";
    case object_phase::parts_done:
      return "parts_done";
    case object_phase::completed:
      return "completed";
    case object_phase::verified:
      return "verified";
    case object_phase::failed:
      return "failed";
  }
  return "unknown";
}

std::optional<object_phase> parse_object_phase(std::string_view s) {
  for (auto p : {object_phase::pending, object_phase::in_flight, object_phase::parts_done, object_phase::completed,
                 object_phase::verified, object_phase::failed})
    if (to_string(p) == s) return p;
  return std::nullopt;
}

namespace schema {
namespace {

error invalid(std::string message) { return {error_kind::invalid_argument, std::move(message)}; }
error bad(std::string_view what, std::string_view why) {
  return {error_kind::bad_value, fmt::format("stored {} does not decode: {}", what, why)};
}

void put_be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void put_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
// Length-prefixed: callers have checked that sizes fit the limits, far below 2^32.
void put_lp(std::string& out, std::string_view s) {
  put_be32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Reads a varint from the front of `in` and advances it; false when malformed or truncated.
bool get_varint(std::string_view& in, std::uint64_t& v) {
  v = 0;
  for (int i = 0; i < 10; ++i) {
    if (in.empty()) return false;
    auto b = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    if (i == 9 && b > 1) return false;  // more than 64 bits
    v |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

std::uint64_t time_to_number(time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(ns));
}
time_point number_to_time(std::uint64_t v) {
  std::chrono::nanoseconds ns(static_cast<std::int64_t>(v));
  return time_point(std::chrono::duration_cast<time_point::duration>(ns));
}

// Stored numbers of other folders' enums, fixed here so reordering those enums cannot change
// what a stored value means.
std::uint64_t mode_number(transfer::copy_mode m) {
  switch (m) {
    case transfer::copy_mode::automatic:
      return 0;
    case transfer::copy_mode::server:
      return 1;
    case transfer::copy_mode::stream:
      return 2;
  }
  return 0;
}
constexpr transfer::copy_mode number_modes[] = {transfer::copy_mode::automatic, transfer::copy_mode::server,
                                                transfer::copy_mode::stream};
std::uint64_t verdict_number(transfer::verdict v) {
  switch (v) {
    case transfer::verdict::verified:
      return 0;
    case transfer::verdict::mismatch:
      return 1;
    case transfer::verdict::failed:
      return 2;
  }
  return 2;
}
constexpr transfer::verdict number_verdicts[] = {transfer::verdict::verified, transfer::verdict::mismatch,
                                                 transfer::verdict::failed};

class value_writer {
 public:
  value_writer() { out_.push_back(static_cast<char>(value_version)); }
  void number(std::uint32_t tag, std::uint64_t v) {
    scratch_.clear();
    put_varint(scratch_, v);
    text(tag, scratch_);
  }
  void text(std::uint32_t tag, std::string_view v) {
    put_varint(out_, tag);
    put_varint(out_, v.size());
    out_.append(v);
  }
  void time(std::uint32_t tag, time_point t) { number(tag, time_to_number(t)); }
  void time(std::uint32_t tag, const std::optional<time_point>& t) {
    if (t) time(tag, *t);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_, scratch_;
};

// One field of a value being decoded: its payload and how to read it as each type.
struct field {
  std::string_view what;  // the record type, for messages
  std::uint64_t tag;
  std::string_view bytes;

  result<std::uint64_t> number() const {
    std::string_view in = bytes;
    std::uint64_t v = 0;
    if (!get_varint(in, v) || !in.empty()) return bad(what, fmt::format("field {} is not a number", tag));
    return v;
  }
  template <class T>
  result<T> bounded(std::uint64_t max) const {
    auto v = number();
    if (!v) return v.error();
    if (*v > max) return bad(what, fmt::format("field {} out of range ({})", tag, *v));
    return static_cast<T>(*v);
  }
  result<time_point> time() const {
    auto v = number();
    if (!v) return v.error();
    return number_to_time(*v);
  }
  std::string text() const { return std::string(bytes); }
};

// Checks the version byte and calls on_field(field) -> result<void> for each field in order.
template <class F>
result<void> for_each_field(std::string_view in, std::string_view what, F&& on_field) {
  if (in.empty()) return bad(what, "empty value");
  auto version = static_cast<std::uint8_t>(in.front());
  if (version != value_version)
    return bad(what, fmt::format("unknown value version {} (this ferryd reads version {})", version, value_version));
  in.remove_prefix(1);
  while (!in.empty()) {
    std::uint64_t tag = 0, size = 0;
    if (!get_varint(in, tag) || tag == 0) return bad(what, "malformed field tag");
    if (!get_varint(in, size)) return bad(what, fmt::format("malformed length of field {}", tag));
    if (size > in.size()) return bad(what, fmt::format("field {} truncated", tag));
    field f{what, tag, in.substr(0, size)};
    in.remove_prefix(size);
    if (auto r = on_field(f); !r) return r;
  }
  return {};
}

// Assigns a decoded value, or returns its error from the enclosing lambda.
#define FERRY_STATE_ASSIGN(dst, expr) \
  do {                                \
    auto r_ = (expr);                 \
    if (!r_) return r_.error();       \
    dst = std::move(*r_);             \
  } while (0)

}  // namespace

result<void> check_job_id(std::string_view job) {
  if (job.empty()) return invalid("empty job id");
  if (job.size() > max_job_id) return invalid(fmt::format("job id longer than {} bytes", max_job_id));
  if (job.find('\0') != std::string_view::npos) return invalid("job id contains a NUL byte");
  return {};
}

result<void> check_object_key(std::string_view key) {
  if (key.empty()) return invalid("empty object key");
  if (key.size() > max_object_key) return invalid(fmt::format("object key longer than {} bytes", max_object_key));
  return {};
}

result<void> check_name(std::string_view what, std::string_view name) {
  if (name.empty()) return invalid(fmt::format("empty {}", what));
  if (name.size() > max_name) return invalid(fmt::format("{} longer than {} bytes", what, max_name));
  return {};
}

std::string job_key(std::string_view job) { return std::string(job); }

std::string job_prefix(std::string_view job) {
  std::string k(job);
  k.push_back('\0');
  return k;
}

std::string object_key(std::string_view job, std::string_view key) { return job_prefix(job).append(key); }

std::string part_object_prefix(std::string_view job, std::string_view key) {
  auto k = job_prefix(job);
  put_lp(k, key);
  return k;
}

std::string part_upload_prefix(std::string_view job, std::string_view key, std::string_view upload_id) {
  auto k = part_object_prefix(job, key);
  put_lp(k, upload_id);
  return k;
}

std::string part_key(std::string_view job, std::string_view key, std::string_view upload_id, std::uint32_t number) {
  auto k = part_upload_prefix(job, key, upload_id);
  put_be32(k, number);
  return k;
}

std::string integrity_key(std::string_view job, std::string_view key) { return object_key(job, key); }

std::string integrity_log_key(std::string_view job, std::uint64_t seq) {
  auto k = job_prefix(job);
  put_be64(k, seq);
  return k;
}

std::string cursor_key(std::string_view job, std::string_view name) { return job_prefix(job).append(name); }

std::string upload_key(const upload_record& u) {
  auto k = job_prefix(u.job);
  put_lp(k, u.endpoint);
  put_lp(k, u.bucket);
  put_lp(k, u.key);
  k.append(u.upload_id);
  return k;
}

result<std::string_view> object_key_suffix(std::string_view job, std::string_view stored_key) {
  if (stored_key.size() <= job.size() || stored_key.substr(0, job.size()) != job || stored_key[job.size()] != '\0')
    return error{error_kind::bad_value, "objects key outside its job's prefix"};
  return stored_key.substr(job.size() + 1);
}

result<std::uint64_t> integrity_log_seq(std::string_view job, std::string_view stored_key) {
  if (stored_key.size() != job.size() + 1 + 8 || stored_key.substr(0, job.size()) != job ||
      stored_key[job.size()] != '\0')
    return error{error_kind::bad_value, "integrity_log key is not JOB \\0 be64(seq)"};
  std::uint64_t v = 0;
  for (char c : stored_key.substr(job.size() + 1)) v = (v << 8) | static_cast<std::uint8_t>(c);
  return v;
}

std::string encode(const job_record& v) {
  value_writer w;
  w.text(1, v.id);
  w.text(2, v.name);
  w.text(3, v.kind);
  w.text(4, v.state);
  w.text(5, v.source);
  w.text(6, v.destination);
  w.number(7, mode_number(v.mode));
  w.time(8, v.created_at);
  w.time(9, v.started_at);
  w.time(10, v.finished_at);
  w.number(11, v.objects_total);
  w.number(12, v.objects_done);
  w.number(13, v.objects_failed);
  w.number(14, v.objects_skipped);
  w.number(15, v.bytes_total);
  w.number(16, v.bytes_done);
  w.number(17, v.server_side);
  w.number(18, v.streamed);
  w.number(19, v.fallbacks);
  w.number(21, v.priority);
  w.text(22, v.options);
  w.number(23, v.deleted);
  w.number(24, v.passes);
  w.time(25, v.last_pass_at);
  w.number(26, v.plan_copy_objects);
  w.number(27, v.plan_copy_bytes);
  w.number(28, v.plan_delete_objects);
  w.number(29, v.plan_delete_bytes);
  w.number(30, v.plan_unchanged_objects);
  w.number(31, v.plan_unchanged_bytes);
  w.text(32, v.delete_refused);
  w.text(20, v.error);  // last: fields are found by tag, not by place
  return w.take();
}

result<job_record> decode_job(std::string_view bytes) {
  job_record v;
  auto r = for_each_field(bytes, "job record", [&](const field& f) -> result<void> {
    switch (f.tag) {
      case 1:
        v.id = f.text();
        break;
      case 2:
        v.name = f.text();
        break;
      case 3:
        v.kind = f.text();
        break;
      case 4:
        v.state = f.text();
        break;
      case 5:
        v.source = f.text();
        break;
      case 6:
        v.destination = f.text();
        break;
      case 7: {
        std::size_t n = 0;
        FERRY_STATE_ASSIGN(n, f.bounded<std::size_t>(std::size(number_modes) - 1));
        v.mode = number_modes[n];
        break;
      }
      case 8:
        FERRY_STATE_ASSIGN(v.created_at, f.time());
        break;
      case 9:
        FERRY_STATE_ASSIGN(v.started_at, f.time());
        break;
      case 10:
        FERRY_STATE_ASSIGN(v.finished_at, f.time());
        break;
      case 11:
        FERRY_STATE_ASSIGN(v.objects_total, f.number());
        break;
      case 12:
        FERRY_STATE_ASSIGN(v.objects_done, f.number());
        break;
      case 13:
        FERRY_STATE_ASSIGN(v.objects_failed, f.number());
        break;
      case 14:
        FERRY_STATE_ASSIGN(v.objects_skipped, f.number());
        break;
      case 15:
        FERRY_STATE_ASSIGN(v.bytes_total, f.number());
        break;
      case 16:
        FERRY_STATE_ASSIGN(v.bytes_done, f.number());
        break;
      case 17:
        FERRY_STATE_ASSIGN(v.server_side, f.number());
        break;
      case 18:
        FERRY_STATE_ASSIGN(v.streamed, f.number());
        break;
      case 19:
        FERRY_STATE_ASSIGN(v.fallbacks, f.number());
        break;
      case 20:
        v.error = f.text();
        break;
      case 21:
        FERRY_STATE_ASSIGN(v.priority, f.number());
        break;
      case 22:
        v.options = f.text();
        break;
      case 23:
        FERRY_STATE_ASSIGN(v.deleted, f.number());
        break;
      case 24:
        FERRY_STATE_ASSIGN(v.passes, f.number());
        break;
      case 25:
        FERRY_STATE_ASSIGN(v.last_pass_at, f.time());
        break;
      case 26:
        FERRY_STATE_ASSIGN(v.plan_copy_objects, f.number());
        break;
      case 27:
        FERRY_STATE_ASSIGN(v.plan_copy_bytes, f.number());
        break;
      case 28:
        FERRY_STATE_ASSIGN(v.plan_delete_objects, f.number());
        break;
      case 29:
        FERRY_STATE_ASSIGN(v.plan_delete_bytes, f.number());
        break;
      case 30:
        FERRY_STATE_ASSIGN(v.plan_unchanged_objects, f.number());
        break;
      case 31:
        FERRY_STATE_ASSIGN(v.plan_unchanged_bytes, f.number());
        break;
      case 32:
        v.delete_refused = f.text();
        break;
      default:
        break;  // a field added by a later ferryd
    }
    return {};
  });
  if (!r) return r.error();
  return v;
}

std::string encode(const object_state& v) {
  value_writer w;
  w.number(1, static_cast<std::uint64_t>(v.phase));
  w.number(2, v.size);
  w.text(3, v.source_etag);
  w.time(4, v.source_mtime);
  w.text(5, v.upload_id);
  w.number(6, v.part_size);
  w.text(7, v.destination_etag);
  w.number(8, v.attempts);
  w.text(9, v.error);
  w.time(10, v.updated_at);
  return w.take();
}

result<object_state> decode_object_state(std::string_view bytes) {
  object_state v;
  auto r = for_each_field(bytes, "object state", [&](const field& f) -> result<void> {
    switch (f.tag) {
      case 1:
        FERRY_STATE_ASSIGN(v.phase, f.bounded<object_phase>(static_cast<std::uint64_t>(object_phase::failed)));
        break;
      case 2:
        FERRY_STATE_ASSIGN(v.size, f.number());
        break;
      case 3:
        v.source_etag = f.text();
        break;
      case 4:
        FERRY_STATE_ASSIGN(v.source_mtime, f.time());
        break;
      case 5:
        v.upload_id = f.text();
        break;
      case 6:
        FERRY_STATE_ASSIGN(v.part_size, f.number());
        break;
      case 7:
        v.destination_etag = f.text();
        break;
      case 8:
        FERRY_STATE_ASSIGN(v.attempts, f.bounded<std::uint32_t>(UINT32_MAX));
        break;
      case 9:
        v.error = f.text();
        break;
      case 10:
        FERRY_STATE_ASSIGN(v.updated_at, f.time());
        break;
      default:
        break;
    }
    return {};
  });
  if (!r) return r.error();
  return v;
}

std::string encode(const part_record& v) {
  value_writer w;
  w.number(1, v.number);
  w.number(2, v.size);
  w.text(3, v.etag);
  w.text(4, v.md5);
  w.number(5, v.crc32c);
  return w.take();
}

result<part_record> decode_part(std::string_view bytes) {
  part_record v;
  auto r = for_each_field(bytes, "part record", [&](const field& f) -> result<void> {
    switch (f.tag) {
      case 1:
        FERRY_STATE_ASSIGN(v.number, f.bounded<std::uint32_t>(UINT32_MAX));
        break;
      case 2:
        FERRY_STATE_ASSIGN(v.size, f.number());
        break;
      case 3:
        v.etag = f.text();
        break;
      case 4:
        v.md5 = f.text();
        break;
      case 5:
        FERRY_STATE_ASSIGN(v.crc32c, f.bounded<std::uint32_t>(UINT32_MAX));
        break;
      default:
        break;
    }
    return {};
  });
  if (!r) return r.error();
  return v;
}

std::string encode(const upload_record& v) {
  value_writer w;
  w.text(1, v.job);
  w.text(2, v.endpoint);
  w.text(3, v.bucket);
  w.text(4, v.key);
  w.text(5, v.upload_id);
  w.time(6, v.created_at);
  w.text(7, v.object);
  return w.take();
}

result<upload_record> decode_upload(std::string_view bytes) {
  upload_record v;
  auto r = for_each_field(bytes, "upload record", [&](const field& f) -> result<void> {
    switch (f.tag) {
      case 1:
        v.job = f.text();
        break;
      case 2:
        v.endpoint = f.text();
        break;
      case 3:
        v.bucket = f.text();
        break;
      case 4:
        v.key = f.text();
        break;
      case 5:
        v.upload_id = f.text();
        break;
      case 6:
        FERRY_STATE_ASSIGN(v.created_at, f.time());
        break;
      case 7:
        v.object = f.text();
        break;
      default:
        break;
    }
    return {};
  });
  if (!r) return r.error();
  return v;
}

std::string encode(const transfer::integrity_record& v) {
  value_writer w;
  w.text(1, v.key);
  w.number(2, v.size);
  w.text(3, v.md5);
  w.number(4, v.crc32c);
  w.text(5, v.sha256);
  w.text(6, v.source_etag);
  w.text(7, v.destination_etag);
  w.text(8, v.method);
  w.number(9, verdict_number(v.result));
  w.text(10, v.error);
  w.time(11, v.time);
  return w.take();
}

result<transfer::integrity_record> decode_integrity(std::string_view bytes) {
  transfer::integrity_record v;
  auto r = for_each_field(bytes, "integrity record", [&](const field& f) -> result<void> {
    switch (f.tag) {
      case 1:
        v.key = f.text();
        break;
      case 2:
        FERRY_STATE_ASSIGN(v.size, f.number());
        break;
      case 3:
        v.md5 = f.text();
        break;
      case 4:
        FERRY_STATE_ASSIGN(v.crc32c, f.bounded<std::uint32_t>(UINT32_MAX));
        break;
      case 5:
        v.sha256 = f.text();
        break;
      case 6:
        v.source_etag = f.text();
        break;
      case 7:
        v.destination_etag = f.text();
        break;
      case 8:
        v.method = f.text();
        break;
      case 9: {
        std::size_t n = 0;
        FERRY_STATE_ASSIGN(n, f.bounded<std::size_t>(std::size(number_verdicts) - 1));
        v.result = number_verdicts[n];
        break;
      }
      case 10:
        v.error = f.text();
        break;
      case 11:
        FERRY_STATE_ASSIGN(v.time, f.time());
        break;
      default:
        break;
    }
    return {};
  });
  if (!r) return r.error();
  return v;
}

std::string encode_number(std::uint64_t v) {
  value_writer w;
  w.number(1, v);
  return w.take();
}

std::string encode_text(std::string_view v) {
  value_writer w;
  w.text(1, v);
  return w.take();
}

result<std::uint64_t> decode_number(std::string_view bytes) {
  std::optional<std::uint64_t> v;
  auto r = for_each_field(bytes, "number", [&](const field& f) -> result<void> {
    if (f.tag == 1) FERRY_STATE_ASSIGN(v, f.number());
    return {};
  });
  if (!r) return r.error();
  if (!v) return bad("number", "field 1 missing");
  return *v;
}

result<std::string> decode_text(std::string_view bytes) {
  std::string v;
  auto r = for_each_field(bytes, "text", [&](const field& f) -> result<void> {
    if (f.tag == 1) v = f.text();
    return {};
  });
  if (!r) return r.error();
  return v;
}

#undef FERRY_STATE_ASSIGN

}  // namespace schema
}  // namespace ferry::state
