#include "proto/messages.hpp"

#include "proto/detail/dom.hpp"

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
  for (auto st : {job_state::queued, job_state::running, job_state::succeeded, job_state::failed, job_state::cancelled})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

bool is_terminal(job_state s) {
  return s == job_state::succeeded || s == job_state::failed || s == job_state::cancelled;
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

}  // namespace

// --- writers ---

void write_json(json_writer& w, const job_create_params& v) {
  w.begin_object().member("kind", v.kind).member("source", v.source).member("destination", v.destination);
  if (v.name) w.member("name", *v.name);
  if (v.copy_mode) w.member("copy_mode", *v.copy_mode);
  w.end_object();
}

void write_json(json_writer& w, const job_get_params& v) { w.begin_object().member("id", v.id).end_object(); }
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
      .end_object()
      .key("remotes")
      .begin_array();
  for (const auto& r : v.remotes) w.value(r);
  w.end_array().end_object();
}

// --- params parsers (strict) ---

result<job_create_params> parse_job_create_params(std::string_view json) {
  return parse_with<job_create_params>(json, code::invalid_params, "params", [](field_reader& r) {
    r.only({"kind", "source", "destination", "name", "copy_mode"});
    job_create_params p;
    p.kind = r.string("kind", 64, text_rule::no_control);
    if (r.ok() && p.kind != kind_copy) r.fail("kind", "unknown job kind '" + p.kind + "' (known: copy)");
    p.source = r.string("source", max_location_bytes, text_rule::no_control, false);
    p.destination = r.string("destination", max_location_bytes, text_rule::no_control, false);
    p.name = r.optional_string("name", max_name_bytes, text_rule::no_control);
    p.copy_mode = r.optional_string("copy_mode", 16, text_rule::no_control);
    if (r.ok() && p.copy_mode && *p.copy_mode != "auto" && *p.copy_mode != "server" && *p.copy_mode != "stream")
      r.fail("copy_mode", "unknown copy mode '" + *p.copy_mode + "' (known: auto, server, stream)");
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
    r.array("remotes", [&](detail::dom::element e, std::string path) {
      std::string_view s;
      if (e.get_string().get(s) != simdjson::SUCCESS) {
        r.slot()->fail(std::move(path), "expected a string, got " + std::string(detail::type_name(e)));
        return;
      }
      v.remotes.emplace_back(s);
    });
    return v;
  });
}

}  // namespace ferry::proto
