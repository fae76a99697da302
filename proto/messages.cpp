#include "proto/messages.hpp"

#include "proto/detail/dom.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace ferry::proto {

using detail::field_reader;
using detail::text_rule;

void throw_exception_from_error(const error& e, const boost::source_location&) {
  throw std::runtime_error("error " + std::to_string(e.code) + ": " + e.message);
}

std::string_view to_string(job_state s) {
  switch (s) {
    case job_state::queued:
      return "queued";
    case job_state::running:
      return "running";
    case job_state::paused:
      return "paused";
    case job_state::succeeded:
      return "succeeded";
    case job_state::failed:
      return "failed";
    case job_state::cancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<job_state> parse_job_state(std::string_view s) {
  for (auto st : {job_state::queued, job_state::running, job_state::paused, job_state::succeeded, job_state::failed,
                  job_state::cancelled})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

bool is_terminal(job_state s) {
  return s == job_state::succeeded || s == job_state::failed || s == job_state::cancelled;
}

std::string_view to_string(integrity_result r) {
  switch (r) {
    case integrity_result::verified:
      return "verified";
    case integrity_result::mismatch:
      return "mismatch";
    case integrity_result::failed:
      return "failed";
  }
  return "unknown";
}

std::optional<integrity_result> parse_integrity_result(std::string_view s) {
  for (auto r : {integrity_result::verified, integrity_result::mismatch, integrity_result::failed})
    if (to_string(r) == s) return r;
  return std::nullopt;
}

namespace {

template <class T, class F>
result<T> parse_with(std::string_view json, int code, std::string_view what, F&& read) {
  const simdjson::padded_string text(json);
  detail::dom::parser p;
  auto root = detail::parse_dom(p, text, code, what);
  if (!root) return root.error();
  detail::error_slot slot{code, {}};
  field_reader r(*root, std::string(what), slot);
  T v = read(r);
  if (slot.first) return *slot.first;
  return v;
}

void write_optional_time(json_writer& w, std::string_view key, const std::optional<timestamp>& t) {
  w.key(key);
  if (t)
    w.value(format_rfc3339(*t));
  else
    w.null();
}

std::optional<timestamp> read_time(field_reader& r, std::string_view key, bool required) {
  auto s = required ? std::optional<std::string>(r.string(key)) : r.optional_string(key);
  if (!r.ok() || !s) return std::nullopt;
  auto t = parse_rfc3339(*s);
  if (!t) r.fail(key, "expected an RFC 3339 timestamp");
  return t;
}

void write_optional(json_writer& w, std::string_view key, const std::optional<std::uint64_t>& v) {
  w.key(key);
  if (v)
    w.value(*v);
  else
    w.null();
}

void write_strings(json_writer& w, std::string_view key, const std::vector<std::string>& v) {
  w.key(key).begin_array();
  for (const auto& s : v) w.value(s);
  w.end_array();
}

std::string crc32c_hex(std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(v));
  return buf;
}

std::optional<std::uint32_t> parse_crc32c_hex(std::string_view s) {
  if (s.size() != 8) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    unsigned d = 0;
    if (c >= '0' && c <= '9')
      d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      d = static_cast<unsigned>(c - 'A' + 10);
    else
      return std::nullopt;
    v = v << 4 | d;
  }
  return v;
}

// A uint in [lo, hi], or nullopt when absent/null; out of range is an error naming the range.
std::optional<std::uint64_t> read_uint_in(field_reader& r, std::string_view key, std::uint64_t lo, std::uint64_t hi,
                                          std::string_view unit = "") {
  auto v = r.optional_uint(key);
  if (v && (*v < lo || *v > hi)) {
    r.fail(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + std::string(unit) + " (got " +
                    std::to_string(*v) + ")");
    return std::nullopt;
  }
  return v;
}

// The options members of job.create params (strict) or of a job object's `options` (lenient:
// limits are the sender's business there, and absent members keep their defaults).
void read_options(field_reader& r, job_options& o, bool strict) {
  const std::size_t items = strict ? max_patterns : SIZE_MAX;
  const std::size_t bytes = strict ? max_pattern_bytes : SIZE_MAX;
  o.delete_extraneous = r.optional_bool("delete").value_or(false);
  o.max_delete = r.optional_uint("max_delete");
  o.force = r.optional_bool("force").value_or(false);
  o.include = r.optional_strings("include", items, bytes, text_rule::any, !strict);
  o.exclude = r.optional_strings("exclude", items, bytes, text_rule::any, !strict);
  o.min_size = r.optional_uint("min_size");
  o.max_size = r.optional_uint("max_size");
  o.min_age = r.optional_uint("min_age");
  o.max_age = r.optional_uint("max_age");
  o.checksum = r.optional_bool("checksum").value_or(false);
  o.size_only = r.optional_bool("size_only").value_or(false);
  o.dry_run = r.optional_bool("dry_run").value_or(false);
  o.interval = strict ? read_uint_in(r, "interval", 1, max_interval_seconds, " seconds") : r.optional_uint("interval");
  // What a bwlimit means is ratelimit's to parse (ferryd answers invalid_params with its reason).
  o.bwlimit = r.optional_string("bwlimit", strict ? max_bwlimit_bytes : SIZE_MAX, text_rule::no_control);
  o.concurrency = strict ? read_uint_in(r, "concurrency", 1, max_concurrency, "") : r.optional_uint("concurrency");
  // S3's limits on a part.
  o.part_size = strict ? read_uint_in(r, "part_size", 5ull << 20, 5ull << 30, " bytes") : r.optional_uint("part_size");
}

plan_counts read_plan_counts(field_reader& r, std::string_view key) {
  plan_counts c;
  if (!r.has(key)) return c;
  auto o = r.object(key);
  c.objects = o.optional_uint("objects").value_or(0);
  c.bytes = o.optional_uint("bytes").value_or(0);
  return c;
}

job read_job(field_reader& r) {
  job j;
  j.id = r.string("id");
  j.name = r.optional_string("name").value_or("");
  j.kind = r.string("kind");
  j.source = r.string("source");
  j.destination = r.string("destination");
  const std::string state = r.string("state");
  if (r.ok()) {
    if (auto st = parse_job_state(state))
      j.state = *st;
    else
      r.fail("state", "unknown job state '" + state + "'");
  }
  j.created_at = read_time(r, "created_at", true).value_or(timestamp{});
  j.started_at = read_time(r, "started_at", false);
  j.finished_at = read_time(r, "finished_at", false);
  auto o = r.object("objects");
  j.objects.total = o.uint("total");
  j.objects.done = o.uint("done");
  j.objects.failed = o.uint("failed");
  j.objects.skipped = o.uint("skipped");
  auto b = r.object("bytes");
  j.bytes.total = b.uint("total");
  j.bytes.done = b.uint("done");
  j.copy_mode = r.string("copy_mode");
  auto c = r.object("copy");
  j.copy.server_side = c.uint("server_side");
  j.copy.streamed = c.uint("streamed");
  j.copy.fallbacks = c.uint("fallbacks");
  // Fields added with sync and mirror: an older ferryd omits them, which means their defaults.
  if (auto p = r.optional_int64("priority"))
    j.priority = static_cast<int>(
        std::clamp<std::int64_t>(*p, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  if (r.has("options")) {
    auto o = r.object("options");
    read_options(o, j.options, false);
  }
  if (r.has("plan")) {
    auto p = r.object("plan");
    j.plan.to_copy = read_plan_counts(p, "copy");
    j.plan.to_delete = read_plan_counts(p, "delete");
    j.plan.unchanged = read_plan_counts(p, "unchanged");
  }
  j.deleted = r.optional_uint("deleted").value_or(0);
  j.delete_refused = r.optional_string("delete_refused");
  j.passes = r.optional_uint("passes").value_or(0);
  j.last_pass_at = read_time(r, "last_pass_at", false);
  j.next_pass_at = read_time(r, "next_pass_at", false);
  j.error = r.optional_string("error");
  r.array("failures", [&](detail::dom::element e, std::string path) {
    field_reader f(e, std::move(path), *r.slot());
    job_failure jf;
    jf.key = f.string("key");
    jf.error = f.string("error");
    j.failures.push_back(std::move(jf));
  });
  return j;
}

integrity_record_entry read_record(field_reader& r) {
  integrity_record_entry e;
  e.seq = r.uint("seq");
  e.key = r.string("key");
  e.size = r.uint("size");
  e.md5 = r.optional_string("md5").value_or("");
  const std::string crc = r.string("crc32c");
  if (r.ok()) {
    if (auto v = parse_crc32c_hex(crc))
      e.crc32c = *v;
    else
      r.fail("crc32c", "expected 8 hex digits");
  }
  e.sha256 = r.optional_string("sha256").value_or("");
  e.source_etag = r.optional_string("source_etag").value_or("");
  e.destination_etag = r.optional_string("destination_etag").value_or("");
  e.method = r.optional_string("method").value_or("");
  const std::string res = r.string("result");
  if (r.ok()) {
    if (auto v = parse_integrity_result(res))
      e.result = *v;
    else
      r.fail("result", "unknown result '" + res + "'");
  }
  e.error = r.optional_string("error").value_or("");
  e.time = read_time(r, "time", true).value_or(timestamp{});
  return e;
}

void write_options_members(json_writer& w, const job_options& o, bool only_set) {
  if (!only_set || o.delete_extraneous) w.member("delete", o.delete_extraneous);
  if (!only_set || o.max_delete) write_optional(w, "max_delete", o.max_delete);
  if (!only_set || o.force) w.member("force", o.force);
  if (!only_set || !o.include.empty()) write_strings(w, "include", o.include);
  if (!only_set || !o.exclude.empty()) write_strings(w, "exclude", o.exclude);
  if (!only_set || o.min_size) write_optional(w, "min_size", o.min_size);
  if (!only_set || o.max_size) write_optional(w, "max_size", o.max_size);
  if (!only_set || o.min_age) write_optional(w, "min_age", o.min_age);
  if (!only_set || o.max_age) write_optional(w, "max_age", o.max_age);
  if (!only_set || o.checksum) w.member("checksum", o.checksum);
  if (!only_set || o.size_only) w.member("size_only", o.size_only);
  if (!only_set || o.dry_run) w.member("dry_run", o.dry_run);
  if (!only_set || o.interval) write_optional(w, "interval", o.interval);
  if (o.bwlimit)
    w.member("bwlimit", *o.bwlimit);
  else if (!only_set)
    w.key("bwlimit").null();
  if (!only_set || o.concurrency) write_optional(w, "concurrency", o.concurrency);
  if (!only_set || o.part_size) write_optional(w, "part_size", o.part_size);
}

void write_plan_counts(json_writer& w, std::string_view key, const plan_counts& c) {
  w.key(key).begin_object().member("objects", c.objects).member("bytes", c.bytes).end_object();
}

}  // namespace

void write_limit(json_writer& w, const limit_info& l);
limit_info read_limit(field_reader& r);

// --- writers ---

void write_json(json_writer& w, const job_create_params& v) {
  w.begin_object().member("kind", v.kind).member("source", v.source).member("destination", v.destination);
  if (v.name) w.member("name", *v.name);
  if (v.copy_mode) w.member("copy_mode", *v.copy_mode);
  // Only what was set: a ferryd that predates an option then still accepts requests without it.
  if (v.priority) w.member("priority", *v.priority);
  write_options_members(w, v.options, true);
  w.end_object();
}

void write_json(json_writer& w, const job_get_params& v) { w.begin_object().member("id", v.id).end_object(); }
void write_json(json_writer& w, const job_cancel_params& v) { w.begin_object().member("id", v.id).end_object(); }

void write_json(json_writer& w, const job_report_params& v) {
  w.begin_object().member("id", v.id).member("after", v.after).member("limit", v.limit).end_object();
}
void write_json(json_writer& w, const job_list_params&) { w.begin_object().end_object(); }
void write_json(json_writer& w, const daemon_status_params&) { w.begin_object().end_object(); }

void write_json(json_writer& w, const job& v) {
  w.begin_object()
      .member("id", v.id)
      .member("name", v.name)
      .member("kind", v.kind)
      .member("source", v.source)
      .member("destination", v.destination)
      .member("state", to_string(v.state))
      .member("created_at", format_rfc3339(v.created_at));
  write_optional_time(w, "started_at", v.started_at);
  write_optional_time(w, "finished_at", v.finished_at);
  w.key("objects")
      .begin_object()
      .member("total", v.objects.total)
      .member("done", v.objects.done)
      .member("failed", v.objects.failed)
      .member("skipped", v.objects.skipped)
      .end_object();
  w.key("bytes").begin_object().member("total", v.bytes.total).member("done", v.bytes.done).end_object();
  w.member("copy_mode", v.copy_mode);
  w.key("copy")
      .begin_object()
      .member("server_side", v.copy.server_side)
      .member("streamed", v.copy.streamed)
      .member("fallbacks", v.copy.fallbacks)
      .end_object();
  w.member("priority", v.priority);
  w.key("options").begin_object();
  write_options_members(w, v.options, false);
  w.end_object();
  w.key("plan").begin_object();
  write_plan_counts(w, "copy", v.plan.to_copy);
  write_plan_counts(w, "delete", v.plan.to_delete);
  write_plan_counts(w, "unchanged", v.plan.unchanged);
  w.end_object();
  w.member("deleted", v.deleted);
  w.key("delete_refused");
  if (v.delete_refused)
    w.value(*v.delete_refused);
  else
    w.null();
  w.member("passes", v.passes);
  write_optional_time(w, "last_pass_at", v.last_pass_at);
  write_optional_time(w, "next_pass_at", v.next_pass_at);
  w.key("error");
  if (v.error)
    w.value(*v.error);
  else
    w.null();
  w.key("failures").begin_array();
  for (const auto& f : v.failures) w.begin_object().member("key", f.key).member("error", f.error).end_object();
  w.end_array().end_object();
}

void write_json(json_writer& w, const job_list_result& v) {
  w.begin_object().key("jobs").begin_array();
  for (const auto& j : v.jobs) write_json(w, j);
  w.end_array().end_object();
}

void write_json(json_writer& w, const integrity_record_entry& v) {
  w.begin_object()
      .member("seq", v.seq)
      .member("key", v.key)
      .member("size", v.size)
      .member("md5", v.md5)
      .member("crc32c", crc32c_hex(v.crc32c))
      .member("sha256", v.sha256)
      .member("source_etag", v.source_etag)
      .member("destination_etag", v.destination_etag)
      .member("method", v.method)
      .member("result", to_string(v.result))
      .member("error", v.error)
      .member("time", format_rfc3339(v.time))
      .end_object();
}

void write_json(json_writer& w, const job_report_result& v) {
  w.begin_object().key("records").begin_array();
  for (const auto& e : v.records) write_json(w, e);
  w.end_array().member("next_after", v.next_after).member("more", v.more).end_object();
}

void write_json(json_writer& w, const daemon_status& v) {
  w.begin_object()
      .member("version", v.version)
      .member("pid", v.pid)
      .member("uptime_seconds", v.uptime_seconds)
      .key("jobs")
      .begin_object()
      .member("total", v.jobs.total)
      .member("queued", v.jobs.queued)
      .member("running", v.jobs.running)
      .member("succeeded", v.jobs.succeeded)
      .member("failed", v.jobs.failed)
      .member("cancelled", v.jobs.cancelled)
      .member("paused", v.jobs.paused)
      .end_object()
      .key("remotes")
      .begin_array();
  for (const auto& r : v.remotes) w.value(r);
  w.end_array().key("paths").begin_array();
  for (const auto& p : v.paths) {
    w.begin_object().member("remote", p.remote).member("quality", p.quality);
    if (p.min_rtt_ms)
      w.member("min_rtt_ms", *p.min_rtt_ms);
    else
      w.key("min_rtt_ms").null();
    if (p.srtt_ms)
      w.member("srtt_ms", *p.srtt_ms);
    else
      w.key("srtt_ms").null();
    w.member("throughput_bps", p.throughput_bps)
        .member("error_rate", p.error_rate)
        .member("throttle_rate", p.throttle_rate)
        .member("concurrency_limit", p.concurrency_limit)
        .member("in_flight", p.in_flight)
        .member("part_size", p.part_size)
        .end_object();
  }
  w.end_array().key("bandwidth");
  write_limit(w, v.bandwidth);
  w.end_object();
}

// --- params parsers (strict) ---

result<job_create_params> parse_job_create_params(std::string_view json) {
  return parse_with<job_create_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({"kind",      "source",  "destination", "name",     "copy_mode",   "priority", "delete",  "max_delete",
            "force",     "include", "exclude",     "min_size", "max_size",    "min_age",  "max_age", "checksum",
            "size_only", "dry_run", "interval",    "bwlimit",  "concurrency", "part_size"});
    job_create_params p;
    p.kind = r.string("kind", 64, text_rule::no_control);
    if (r.ok() && p.kind != kind_copy && p.kind != kind_sync && p.kind != kind_mirror)
      r.fail("kind", "unknown job kind '" + p.kind + "' (known: copy, sync, mirror)");
    p.source = r.string("source", max_location_bytes, text_rule::no_control, false);
    p.destination = r.string("destination", max_location_bytes, text_rule::no_control, false);
    p.name = r.optional_string("name", max_name_bytes, text_rule::no_control);
    p.copy_mode = r.optional_string("copy_mode", 16, text_rule::no_control);
    if (r.ok() && p.copy_mode && *p.copy_mode != "auto" && *p.copy_mode != "server" && *p.copy_mode != "stream")
      r.fail("copy_mode", "unknown copy mode '" + *p.copy_mode + "' (known: auto, server, stream)");
    if (auto pr = r.optional_int64("priority")) {
      if (*pr < min_priority || *pr > max_priority)
        r.fail("priority", "must be between " + std::to_string(min_priority) + " and " + std::to_string(max_priority) +
                               " (got " + std::to_string(*pr) + ")");
      else
        p.priority = static_cast<int>(*pr);
    }
    // Which options suit which kind (delete with copy, interval without mirror, checksum with
    // size_only, ...) is the job manager's to refuse: this parser checks only types and limits.
    read_options(r, p.options, true);
    return p;
  });
}

result<job_cancel_params> parse_job_cancel_params(std::string_view json) {
  return parse_with<job_cancel_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({"id"});
    job_cancel_params p;
    p.id = r.string("id", max_job_id_bytes, text_rule::no_control, false);
    return p;
  });
}

result<job_report_params> parse_job_report_params(std::string_view json) {
  return parse_with<job_report_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({"id", "after", "limit"});
    job_report_params p;
    p.id = r.string("id", max_job_id_bytes, text_rule::no_control, false);
    p.after = r.optional_uint("after").value_or(0);
    p.limit = read_uint_in(r, "limit", 1, max_report_limit).value_or(default_report_limit);
    return p;
  });
}

result<job_get_params> parse_job_get_params(std::string_view json) {
  return parse_with<job_get_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({"id"});
    job_get_params p;
    p.id = r.string("id", max_job_id_bytes, text_rule::no_control, false);
    return p;
  });
}

result<job_list_params> parse_job_list_params(std::string_view json) {
  return parse_with<job_list_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({});
    return job_list_params{};
  });
}

result<daemon_status_params> parse_daemon_status_params(std::string_view json) {
  return parse_with<daemon_status_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({});
    return daemon_status_params{};
  });
}

// --- result parsers (lenient) ---

result<job> parse_job(std::string_view json) {
  return parse_with<job>(json, code::internal_error, "result", [](field_reader& r) { return read_job(r); });
}

result<job_list_result> parse_job_list_result(std::string_view json) {
  return parse_with<job_list_result>(json, code::internal_error, "result", [](field_reader& r) {
    job_list_result v;
    r.array("jobs", [&](detail::dom::element e, std::string path) {
      field_reader jr(e, std::move(path), *r.slot());
      v.jobs.push_back(read_job(jr));
    });
    return v;
  });
}

result<job_report_result> parse_job_report_result(std::string_view json) {
  return parse_with<job_report_result>(json, code::internal_error, "result", [](field_reader& r) {
    job_report_result v;
    r.array("records", [&](detail::dom::element e, std::string path) {
      field_reader rr(e, std::move(path), *r.slot());
      v.records.push_back(read_record(rr));
    });
    v.next_after = r.uint("next_after");
    v.more = r.boolean("more");
    return v;
  });
}

void write_json(json_writer& w, const remote_list_params&) { w.begin_object().end_object(); }

void write_json(json_writer& w, const remote_test_params& v) {
  w.begin_object().member("name", v.name);
  if (v.bucket) w.member("bucket", *v.bucket);
  w.end_object();
}

void write_json(json_writer& w, const remote_list_result& v) {
  w.begin_object().key("remotes").begin_array();
  for (const auto& r : v.remotes)
    w.begin_object()
        .member("name", r.name)
        .member("endpoint", r.endpoint)
        .member("region", r.region)
        .member("path_style", r.path_style)
        .member("credentials", r.credentials)
        .member("max_connections", r.max_connections)
        .end_object();
  w.end_array().end_object();
}

void write_json(json_writer& w, const remote_test_result& v) {
  w.begin_object()
      .member("name", v.name)
      .member("reachable", v.reachable)
      .member("credentials_ok", v.credentials_ok)
      .member("latency_ms", v.latency_ms)
      .member("detail", v.detail)
      .end_object();
}

void write_json(json_writer& w, const daemon_reload_result& v) {
  w.begin_object().member("summary", v.summary).end_object();
}

result<daemon_reload_result> parse_daemon_reload_result(std::string_view json) {
  return parse_with<daemon_reload_result>(json, code::internal_error, "result", [](field_reader& r) {
    daemon_reload_result v;
    v.summary = r.string("summary");
    return v;
  });
}

result<remote_list_params> parse_remote_list_params(std::string_view json) {
  return parse_with<remote_list_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({});
    return remote_list_params{};
  });
}

result<remote_test_params> parse_remote_test_params(std::string_view json) {
  return parse_with<remote_test_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({"name", "bucket"});
    remote_test_params p;
    p.name = r.string("name", max_name_bytes, text_rule::no_control, false);
    p.bucket = r.optional_string("bucket", 63, text_rule::no_control);
    return p;
  });
}

result<remote_list_result> parse_remote_list_result(std::string_view json) {
  return parse_with<remote_list_result>(json, code::internal_error, "result", [](field_reader& r) {
    remote_list_result v;
    r.array("remotes", [&](detail::dom::element e, std::string path) {
      field_reader rr(e, std::move(path), *r.slot());
      remote_info i;
      i.name = rr.string("name");
      i.endpoint = rr.string("endpoint");
      i.region = rr.string("region");
      i.path_style = rr.boolean("path_style");
      i.credentials = rr.string("credentials");
      i.max_connections = rr.uint("max_connections");
      v.remotes.push_back(std::move(i));
    });
    return v;
  });
}

result<remote_test_result> parse_remote_test_result(std::string_view json) {
  return parse_with<remote_test_result>(json, code::internal_error, "result", [](field_reader& r) {
    remote_test_result v;
    v.name = r.string("name");
    v.reachable = r.boolean("reachable");
    v.credentials_ok = r.boolean("credentials_ok");
    v.latency_ms = r.uint("latency_ms");
    v.detail = r.string("detail");
    return v;
  });
}

result<daemon_status> parse_daemon_status(std::string_view json) {
  return parse_with<daemon_status>(json, code::internal_error, "result", [](field_reader& r) {
    daemon_status v;
    v.version = r.string("version");
    v.pid = r.int64("pid");
    v.uptime_seconds = r.uint("uptime_seconds");
    auto j = r.object("jobs");
    v.jobs.total = j.uint("total");
    v.jobs.queued = j.uint("queued");
    v.jobs.running = j.uint("running");
    v.jobs.succeeded = j.uint("succeeded");
    v.jobs.failed = j.uint("failed");
    v.jobs.cancelled = j.uint("cancelled");
    v.jobs.paused = j.uint("paused");
    r.array("remotes", [&](detail::dom::element e, std::string path) {
      std::string_view s;
      if (e.get_string().get(s) != simdjson::SUCCESS) {
        r.slot()->fail(std::move(path), "expected a string, got " + std::string(detail::type_name(e)));
        return;
      }
      v.remotes.emplace_back(s);
    });
    // Added with netmon and caps: an older ferryd omits them.
    if (r.has("paths"))
      r.array("paths", [&](detail::dom::element e, std::string path) {
        field_reader pr(e, std::move(path), *r.slot());
        path_info p;
        p.remote = pr.string("remote");
        p.quality = pr.string("quality");
        p.min_rtt_ms = pr.optional_double("min_rtt_ms");
        p.srtt_ms = pr.optional_double("srtt_ms");
        p.throughput_bps = pr.uint("throughput_bps");
        p.error_rate = pr.optional_double("error_rate").value_or(0);
        p.throttle_rate = pr.optional_double("throttle_rate").value_or(0);
        p.concurrency_limit = pr.uint("concurrency_limit");
        p.in_flight = pr.uint("in_flight");
        p.part_size = pr.uint("part_size");
        v.paths.push_back(std::move(p));
      });
    if (r.has("bandwidth")) {
      auto b = r.object("bandwidth");
      v.bandwidth = read_limit(b);
    }
    return v;
  });
}

// --- job.events, daemon.metrics, limits ---

void write_json(json_writer& w, const job_events_params& v) {
  w.begin_object().member("id", v.id).member("interval_ms", v.interval_ms).end_object();
}

result<job_events_params> parse_job_events_params(std::string_view json) {
  return parse_with<job_events_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({"id", "interval_ms"});
    job_events_params p;
    p.id = r.string("id", max_job_id_bytes, text_rule::no_control, false);
    p.interval_ms = read_uint_in(r, "interval_ms", min_event_interval_ms, max_event_interval_ms, " ms")
                        .value_or(default_event_interval_ms);
    return p;
  });
}

void write_json(json_writer& w, const job_event& v) {
  w.begin_object().key("job");
  write_json(w, v.job);
  w.member("rate_bps", v.rate_bps);
  write_optional(w, "eta_seconds", v.eta_seconds);
  w.member("final", v.final).end_object();
}

result<job_event> parse_job_event(std::string_view json) {
  return parse_with<job_event>(json, code::internal_error, "params", [](field_reader& r) {
    job_event v;
    auto j = r.object("job");
    v.job = read_job(j);
    v.rate_bps = r.uint("rate_bps");
    v.eta_seconds = r.optional_uint("eta_seconds");
    v.final = r.boolean("final");
    return v;
  });
}

void write_json(json_writer& w, const daemon_metrics_result& v) {
  w.begin_object().member("text", v.text).end_object();
}

result<daemon_metrics_result> parse_daemon_metrics_result(std::string_view json) {
  return parse_with<daemon_metrics_result>(json, code::internal_error, "result", [](field_reader& r) {
    daemon_metrics_result v;
    v.text = r.string("text");
    return v;
  });
}

void write_json(json_writer& w, const limits_set_params& v) {
  w.begin_object();
  if (v.job) w.member("job", *v.job);
  w.member("bwlimit", v.bwlimit).end_object();
}

result<limits_set_params> parse_limits_set_params(std::string_view json) {
  return parse_with<limits_set_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({"job", "bwlimit"});
    limits_set_params p;
    p.job = r.optional_string("job", max_job_id_bytes, text_rule::no_control);
    p.bwlimit = r.string("bwlimit", max_bwlimit_bytes, text_rule::no_control, false);
    return p;
  });
}

void write_limit(json_writer& w, const limit_info& l) {
  w.begin_object()
      .member("scope", l.scope)
      .member("bwlimit", l.bwlimit)
      .member("up_bps", l.up_bps)
      .member("down_bps", l.down_bps)
      .member("rate_up_bps", l.rate_up_bps)
      .member("rate_down_bps", l.rate_down_bps)
      .end_object();
}

limit_info read_limit(field_reader& r) {
  limit_info l;
  l.scope = r.string("scope");
  l.bwlimit = r.string("bwlimit");
  l.up_bps = r.uint("up_bps");
  l.down_bps = r.uint("down_bps");
  l.rate_up_bps = r.uint("rate_up_bps");
  l.rate_down_bps = r.uint("rate_down_bps");
  return l;
}

void write_json(json_writer& w, const limits_result& v) {
  w.begin_object().key("global");
  write_limit(w, v.global);
  w.key("jobs").begin_array();
  for (const auto& j : v.jobs) write_limit(w, j);
  w.end_array().end_object();
}

result<limits_result> parse_limits_result(std::string_view json) {
  return parse_with<limits_result>(json, code::internal_error, "result", [](field_reader& r) {
    limits_result v;
    auto g = r.object("global");
    v.global = read_limit(g);
    r.array("jobs", [&](detail::dom::element e, std::string path) {
      field_reader jr(e, std::move(path), *r.slot());
      v.jobs.push_back(read_limit(jr));
    });
    return v;
  });
}

}  // namespace ferry::proto
