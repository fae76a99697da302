#pragma once
// The control protocol's methods and their params/results as C++ values, shared by ferryd and
// ferryctl. PROTOCOL.md is the reference; this header is its mirror. simdjson stays out of here.
//
// Serialise with to_json(x) (compact JSON text, no newline) or write_json(w, x) to embed x in a
// larger document. Parse with parse_<type>(json): params parsers are strict (unknown fields are
// refused, error code invalid_params); result parsers are lenient (unknown fields are ignored, so
// an older ferryctl can read a newer ferryd) and fail with code internal_error.
#include "proto/error.hpp"
#include "proto/json_writer.hpp"
#include "proto/time.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::proto {

namespace method {
inline constexpr std::string_view job_create = "job.create";
inline constexpr std::string_view job_get = "job.get";
inline constexpr std::string_view job_list = "job.list";
inline constexpr std::string_view job_cancel = "job.cancel";
inline constexpr std::string_view job_report = "job.report";
inline constexpr std::string_view job_pause = "job.pause";
inline constexpr std::string_view job_resume = "job.resume";
inline constexpr std::string_view job_delete = "job.delete";
inline constexpr std::string_view daemon_status = "daemon.status";
inline constexpr std::string_view remote_list = "remote.list";
inline constexpr std::string_view daemon_reload = "daemon.reload";
inline constexpr std::string_view remote_test = "remote.test";
inline constexpr std::string_view job_events = "job.events";
inline constexpr std::string_view daemon_metrics = "daemon.metrics";
inline constexpr std::string_view limits_get = "limits.get";
inline constexpr std::string_view limits_set = "limits.set";
}  // namespace method

// Notifications ferryd pushes (no id, no reply).
namespace notification {
inline constexpr std::string_view job_event = "job.event";  // one per interval of a job.events subscription
}  // namespace notification

// Limits on what a client may send (bytes of UTF-8).
inline constexpr std::size_t max_name_bytes = 256;
inline constexpr std::size_t max_location_bytes = 4096;
inline constexpr std::size_t max_job_id_bytes = 128;
inline constexpr std::size_t max_patterns = 64;  // include, exclude: each
inline constexpr std::size_t max_pattern_bytes = 1024;

// job.create's priority: a job's weight in sharing transfer slots.
inline constexpr int min_priority = 1;
inline constexpr int max_priority = 100;
inline constexpr int default_priority = 10;
// job.create's interval (seconds between a mirror's passes).
inline constexpr std::uint64_t max_interval_seconds = 604800;  // a week
inline constexpr std::uint64_t default_interval_seconds = 60;
// job.events' interval between events.
inline constexpr std::uint64_t min_event_interval_ms = 100;
inline constexpr std::uint64_t max_event_interval_ms = 60000;
inline constexpr std::uint64_t default_event_interval_ms = 1000;
// A job's bwlimit (timetable text) and fixed settings.
inline constexpr std::size_t max_bwlimit_bytes = 4096;
inline constexpr std::uint64_t max_concurrency = 4096;
// job.report's limit (records per page).
inline constexpr std::uint64_t max_report_limit = 10000;
inline constexpr std::uint64_t default_report_limit = 1000;

// Job kinds job.create accepts.
inline constexpr std::string_view kind_copy = "copy";      // every source object to the destination
inline constexpr std::string_view kind_sync = "sync";      // only what differs; optionally delete extras
inline constexpr std::string_view kind_mirror = "mirror";  // a sync repeated every `interval` until cancelled

// paused: stopped by job.pause until job.resume (kept across restarts); not terminal.
enum class job_state { queued, running, paused, succeeded, failed, cancelled };
std::string_view to_string(job_state s);
std::optional<job_state> parse_job_state(std::string_view s);
// succeeded, failed, cancelled: the job will not change any more.
bool is_terminal(job_state s);

// What an object's integrity check concluded (see job.report).
enum class integrity_result { verified, mismatch, failed };
std::string_view to_string(integrity_result r);
std::optional<integrity_result> parse_integrity_result(std::string_view s);

// --- params ---

// How a job selects, compares and deletes objects: job.create's optional params, and the job
// object's `options` (the same names on the wire; `delete_extraneous` is "delete"). Unset
// optionals mean ferryd's default. Which options suit which kind is ferryd's to check.
struct job_options {
  bool delete_extraneous = false;           // sync/mirror: delete destination objects the source lacks
  std::optional<std::uint64_t> max_delete;  // refuse a pass's deletions beyond this; unset: 10% of the destination
  bool force = false;                       // delete even beyond max_delete
  std::vector<std::string> include;         // glob patterns; at most max_patterns each
  std::vector<std::string> exclude;
  std::optional<std::uint64_t> min_size, max_size;  // bytes
  std::optional<std::uint64_t> min_age, max_age;    // seconds since the source object last changed
  bool checksum = false;                            // compare content hashes, not times
  bool size_only = false;                           // equal sizes mean unchanged
  bool dry_run = false;                             // plan only: change nothing
  std::optional<std::uint64_t> interval;            // mirror: seconds between passes; unset: default
  std::optional<std::string> bwlimit;               // the job's cap: a rate or a timetable (rclone's syntax)
  std::optional<std::uint64_t> concurrency;         // fixed requests in flight per endpoint; unset: adaptive
  std::optional<std::uint64_t> part_size;           // fixed multipart part size in bytes; unset: adaptive
  friend bool operator==(const job_options&, const job_options&) = default;
};

struct job_create_params {
  std::string kind{kind_copy};
  std::string source;  // "REMOTE:BUCKET[/PREFIX]" or an absolute path (see location.hpp)
  std::string destination;
  std::optional<std::string> name;
  std::optional<std::string> copy_mode;  // "auto" (default), "server" or "stream"
  std::optional<int> priority;           // min_priority..max_priority; unset: default_priority
  job_options options;                   // flattened into params on the wire; defaults are not sent
  friend bool operator==(const job_create_params&, const job_create_params&) = default;
};

struct job_get_params {
  std::string id;
  friend bool operator==(const job_get_params&, const job_get_params&) = default;
};

struct job_cancel_params {
  std::string id;
  friend bool operator==(const job_cancel_params&, const job_cancel_params&) = default;
};

// job.pause, job.resume and job.delete take the job's id, as job.get does.
using job_pause_params = job_get_params;
using job_resume_params = job_get_params;
using job_delete_params = job_get_params;

// One page of a job's integrity records: those with seq > after, at most `limit`.
struct job_report_params {
  std::string id;
  std::uint64_t after = 0;
  std::uint64_t limit = default_report_limit;  // 1..max_report_limit
  friend bool operator==(const job_report_params&, const job_report_params&) = default;
};

struct job_list_params {
  friend bool operator==(const job_list_params&, const job_list_params&) = default;
};

struct remote_list_params {
  friend bool operator==(const remote_list_params&, const remote_list_params&) = default;
};

// Reaches the remote with one signed request: a HEAD of `bucket` (default: a bucket name no one
// uses, whose 404 proves the endpoint answers and accepts the credentials' signature).
struct remote_test_params {
  std::string name;
  std::optional<std::string> bucket;
  friend bool operator==(const remote_test_params&, const remote_test_params&) = default;
};

struct daemon_status_params {
  friend bool operator==(const daemon_status_params&, const daemon_status_params&) = default;
};

// A subscription to one job's progress: the reply is the job object; then job.event
// notifications follow every `interval_ms` until the job ends (the last has final = true) or the
// client sends another request or closes the connection.
struct job_events_params {
  std::string id;
  std::uint64_t interval_ms = default_event_interval_ms;  // min_event_interval_ms..max_event_interval_ms
  friend bool operator==(const job_events_params&, const job_events_params&) = default;
};

// limits.get (params {}) and limits.set: the global cap, or one job's with `job`. bwlimit is a
// rate ("10M", "10M:2M" for upload:download, "off") or a timetable ("Mon-08:00,512K 19:00,10M 23:00,off").
struct limits_set_params {
  std::optional<std::string> job;
  std::string bwlimit;
  friend bool operator==(const limits_set_params&, const limits_set_params&) = default;
};

// --- results ---

struct object_counts {
  std::uint64_t total = 0;  // known so far; grows while the source is being listed
  std::uint64_t done = 0;   // finished successfully: copied and verified, or skipped
  std::uint64_t failed = 0;
  std::uint64_t skipped = 0;  // of `done`, those already identical at the destination
  friend bool operator==(const object_counts&, const object_counts&) = default;
};

struct byte_counts {
  std::uint64_t total = 0;  // sizes of the objects in objects.total
  std::uint64_t done = 0;   // of those, copied or skipped so far (objects in flight count partly)
  friend bool operator==(const byte_counts&, const byte_counts&) = default;
};

// How the objects done were copied.
struct copy_counts {
  std::uint64_t server_side = 0;  // by the server (CopyObject / UploadPartCopy): no bytes through ferry
  std::uint64_t streamed = 0;     // through ferry
  std::uint64_t fallbacks = 0;    // server-side copy refused, then streamed (counted in streamed too)
  friend bool operator==(const copy_counts&, const copy_counts&) = default;
};

struct plan_counts {
  std::uint64_t objects = 0;
  std::uint64_t bytes = 0;
  friend bool operator==(const plan_counts&, const plan_counts&) = default;
};

// What the current (or latest) pass decided once its listings were compared.
struct job_plan {
  plan_counts to_copy;    // "copy": new or changed at the source
  plan_counts to_delete;  // "delete": only at the destination, and deletion asked for
  plan_counts unchanged;  // identical on both sides
  friend bool operator==(const job_plan&, const job_plan&) = default;
};

struct job_failure {
  std::string key;
  std::string error;
  friend bool operator==(const job_failure&, const job_failure&) = default;
};

// The job object: what job.create, job.get and job.list return.
struct job {
  std::string id;    // "j-000001"
  std::string name;  // as given to job.create, "" if none
  std::string kind;
  std::string source;
  std::string destination;
  job_state state = job_state::queued;
  timestamp created_at{};
  std::optional<timestamp> started_at;
  std::optional<timestamp> finished_at;
  object_counts objects;
  byte_counts bytes;
  std::string copy_mode = "auto";  // as given to job.create
  copy_counts copy;
  int priority = default_priority;
  job_options options;
  job_plan plan;
  std::uint64_t deleted = 0;                  // objects deleted at the destination, all passes
  std::optional<std::string> delete_refused;  // why a pass's deletions were refused (max_delete)
  std::uint64_t passes = 0;                   // completed passes
  std::optional<timestamp> last_pass_at;      // end of the latest completed pass
  std::optional<timestamp> next_pass_at;      // mirror: when the next pass starts
  std::optional<std::string> error;           // why the job as a whole failed
  std::vector<job_failure> failures;          // the first failed objects (at most max_failures_listed)
  friend bool operator==(const job&, const job&) = default;
};

// How many failures a job object lists at most; objects.failed has the full count.
inline constexpr std::size_t max_failures_listed = 100;

struct job_list_result {
  std::vector<job> jobs;  // oldest first
  friend bool operator==(const job_list_result&, const job_list_result&) = default;
};

// One integrity verdict, as job.report lists it.
struct integrity_record_entry {
  std::uint64_t seq = 0;  // 1, 2, ... in the order recorded (gaps possible)
  std::string key;        // the destination key
  std::uint64_t size = 0;
  std::string md5;           // lowercase hex, "" if not computed (server-side copy)
  std::uint32_t crc32c = 0;  // on the wire: 8 lowercase hex digits
  std::string sha256;        // lowercase hex, "" if not computed
  std::string source_etag, destination_etag;
  std::string method;  // how the verdict was reached, e.g. "etag=md5", "multipart-etag", "local-md5"
  integrity_result result = integrity_result::failed;
  std::string error;  // why, when not verified; "" otherwise
  timestamp time{};
  friend bool operator==(const integrity_record_entry&, const integrity_record_entry&) = default;
};

struct job_report_result {
  std::vector<integrity_record_entry> records;  // in seq order
  std::uint64_t next_after = 0;                 // `after` for the next page
  bool more = false;                            // more records follow (as of this read)
  friend bool operator==(const job_report_result&, const job_report_result&) = default;
};

struct job_counts {
  std::uint64_t total = 0;
  std::uint64_t queued = 0;
  std::uint64_t running = 0;
  std::uint64_t paused = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::uint64_t cancelled = 0;
  friend bool operator==(const job_counts&, const job_counts&) = default;
};

// A remote as configured; never its secrets.
struct remote_info {
  std::string name;
  std::string endpoint;
  std::string region;
  bool path_style = false;
  std::string credentials;  // "static", "env", "profile:NAME" or "systemd:NAME"
  std::uint64_t max_connections = 0;
  friend bool operator==(const remote_info&, const remote_info&) = default;
};

struct remote_list_result {
  std::vector<remote_info> remotes;  // by name
  friend bool operator==(const remote_list_result&, const remote_list_result&) = default;
};

struct remote_test_result {
  std::string name;
  bool reachable = false;        // the endpoint answered over HTTP(S)
  bool credentials_ok = false;   // ... and did not refuse the signature or the key
  std::uint64_t latency_ms = 0;  // the request's round trip, connection set-up included
  std::string detail;            // what the server said, or why nothing was said
  friend bool operator==(const remote_test_result&, const remote_test_result&) = default;
};

// One job.event notification's params.
struct job_event {
  proto::job job;                            // the job object as job.get returns it
  std::uint64_t rate_bps = 0;                // bytes/s over the last few seconds
  std::optional<std::uint64_t> eta_seconds;  // at that rate, when bytes.total is known
  bool final = false;                        // the job has ended (or was paused): no more events
  friend bool operator==(const job_event&, const job_event&) = default;
};

// daemon.metrics (params {}): the Prometheus text exposition (format 0.0.4).
struct daemon_metrics_result {
  std::string text;
  friend bool operator==(const daemon_metrics_result&, const daemon_metrics_result&) = default;
};

// One cap: the global one (scope "global") or a job's (scope = its id).
struct limit_info {
  std::string scope;
  std::string bwlimit = "off";  // as set, canonical
  std::uint64_t up_bps = 0;     // in force now; 0 = unlimited
  std::uint64_t down_bps = 0;
  std::uint64_t rate_up_bps = 0;  // measured, last few seconds
  std::uint64_t rate_down_bps = 0;
  friend bool operator==(const limit_info&, const limit_info&) = default;
};

struct limits_result {
  limit_info global;
  std::vector<limit_info> jobs;  // jobs with a cap of their own that have not ended
  friend bool operator==(const limits_result&, const limits_result&) = default;
};

// daemon.reload (params {}): what the config file changed, in words, for the operator.
struct daemon_reload_result {
  std::string summary;
  friend bool operator==(const daemon_reload_result&, const daemon_reload_result&) = default;
};

// What ferryd measures of the path to one remote (lib/netmon).
struct path_info {
  std::string remote;
  std::string quality = "unknown";      // excellent, good, fair, poor, unknown (too few requests yet)
  std::optional<double> min_rtt_ms;     // windowed minimum round trip
  std::optional<double> srtt_ms;        // smoothed time to first byte
  std::uint64_t throughput_bps = 0;     // all connections, last 5 s
  double error_rate = 0;                // last 60 s
  double throttle_rate = 0;             // last 60 s
  std::uint64_t concurrency_limit = 0;  // adaptive limit on data requests in flight
  std::uint64_t in_flight = 0;
  std::uint64_t part_size = 0;  // latest advised multipart part size (0: none yet)
  friend bool operator==(const path_info&, const path_info&) = default;
};

struct daemon_status {
  std::string version;
  std::int64_t pid = 0;
  std::uint64_t uptime_seconds = 0;
  job_counts jobs;
  std::vector<std::string> remotes;  // names from the config, sorted
  std::vector<path_info> paths;      // one per remote, by name
  limit_info bandwidth;              // the global cap and rate
  friend bool operator==(const daemon_status&, const daemon_status&) = default;
};

void write_json(json_writer& w, const job_create_params& v);
void write_json(json_writer& w, const job_get_params& v);
void write_json(json_writer& w, const job_cancel_params& v);
void write_json(json_writer& w, const job_report_params& v);
void write_json(json_writer& w, const job_list_params& v);
void write_json(json_writer& w, const daemon_status_params& v);
void write_json(json_writer& w, const job& v);
void write_json(json_writer& w, const job_list_result& v);
void write_json(json_writer& w, const integrity_record_entry& v);
void write_json(json_writer& w, const job_report_result& v);
void write_json(json_writer& w, const daemon_status& v);
void write_json(json_writer& w, const remote_list_params& v);
void write_json(json_writer& w, const remote_test_params& v);
void write_json(json_writer& w, const remote_list_result& v);
void write_json(json_writer& w, const remote_test_result& v);
void write_json(json_writer& w, const daemon_reload_result& v);
void write_json(json_writer& w, const job_events_params& v);
void write_json(json_writer& w, const job_event& v);
void write_json(json_writer& w, const daemon_metrics_result& v);
void write_json(json_writer& w, const limits_set_params& v);
void write_json(json_writer& w, const limits_result& v);

template <class T>
std::string to_json(const T& v) {
  json_writer w;
  write_json(w, v);
  return w.take();
}

result<job_create_params> parse_job_create_params(std::string_view json);
result<job_get_params> parse_job_get_params(std::string_view json);
result<job_cancel_params> parse_job_cancel_params(std::string_view json);
result<job_report_params> parse_job_report_params(std::string_view json);
result<job_list_params> parse_job_list_params(std::string_view json);
result<daemon_status_params> parse_daemon_status_params(std::string_view json);
result<job> parse_job(std::string_view json);
result<job_list_result> parse_job_list_result(std::string_view json);
result<job_report_result> parse_job_report_result(std::string_view json);
result<daemon_status> parse_daemon_status(std::string_view json);
result<remote_list_params> parse_remote_list_params(std::string_view json);
result<remote_test_params> parse_remote_test_params(std::string_view json);
result<remote_list_result> parse_remote_list_result(std::string_view json);
result<remote_test_result> parse_remote_test_result(std::string_view json);
result<daemon_reload_result> parse_daemon_reload_result(std::string_view json);
result<job_events_params> parse_job_events_params(std::string_view json);
result<job_event> parse_job_event(std::string_view json);
result<daemon_metrics_result> parse_daemon_metrics_result(std::string_view json);
result<limits_set_params> parse_limits_set_params(std::string_view json);
result<limits_result> parse_limits_result(std::string_view json);

}  // namespace ferry::proto
