#pragma once
// Jobs: what ferryd has been asked to do, and how far each has got. A pass merge-joins the
// source's listing with the destination's (or, for a mirror, with what it copied before), copies
// what is missing or changed through the scheduler's size lanes, and deletes what only the
// destination has when asked. Every job, object verdict and multipart part is kept in lib/state,
// so after a crash restore() resumes every unfinished job where it stopped.
#include "ratelimit/limiter.hpp"
#include "state/async_state.hpp"
#include "store/endpoint.hpp"
#include "sync/filter.hpp"
#include "sync/location.hpp"
#include "sync/scheduler.hpp"
#include "transfer/budget.hpp"
#include "transfer/copier.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ferry::s3 {
class client;
struct request_options;
}  // namespace ferry::s3
namespace ferry::store {
class blocking_pool;
}

namespace ferry::sync {

namespace asio = boost::asio;

// paused: stopped by job.pause, kept as it is (also across restarts) until job.resume.
enum class job_state { queued, running, paused, succeeded, failed, cancelled };
std::string_view to_string(job_state s);
std::optional<job_state> parse_job_state(std::string_view s);

struct object_failure {
  std::string key;
  std::string error;
};

struct job_options {
  bool delete_extraneous = false;           // sync/mirror --delete
  std::optional<std::uint64_t> max_delete;  // default: 10% of the destination's objects (at least 1)
  bool force = false;                       // delete beyond max_delete
  filter_options filter;
  bool checksum = false, size_only = false, dry_run = false;
  std::optional<std::chrono::seconds> interval;  // mirror: between passes
  std::string bwlimit;                           // the job's own cap (ratelimit::timetable text); "" = none
  std::optional<std::size_t> concurrency;        // fixed requests in flight per endpoint (else adaptive)
  std::optional<std::uint64_t> part_size;        // fixed multipart part size (else adaptive)
};

// What a pass found: objects and bytes to copy, to delete, and already identical.
struct plan_counts {
  std::uint64_t copy_objects = 0, copy_bytes = 0;
  std::uint64_t delete_objects = 0, delete_bytes = 0;
  std::uint64_t unchanged_objects = 0, unchanged_bytes = 0;
};

// A consistent copy of one job's state, for replies. Object and byte counts are the current (or
// last) pass's; deleted and passes add up over all passes.
struct job_snapshot {
  std::string id, name, kind;
  std::string source, destination;
  transfer::copy_mode mode = transfer::copy_mode::automatic;
  int priority = 10;
  job_options options;
  job_state state = job_state::queued;
  std::chrono::system_clock::time_point created_at;
  std::optional<std::chrono::system_clock::time_point> started_at, finished_at;
  std::uint64_t objects_total = 0, objects_done = 0, objects_failed = 0, objects_skipped = 0;
  std::uint64_t bytes_total = 0, bytes_done = 0;
  std::uint64_t server_side = 0, streamed = 0, fallbacks = 0;  // how objects were copied
  plan_counts plan;
  std::uint64_t deleted = 0;
  std::string delete_refused;  // why the last pass deleted nothing (max_delete)
  std::uint64_t passes = 0;
  std::optional<std::chrono::system_clock::time_point> last_pass_at, next_pass_at;
  std::string error;                     // job-level failure (listing failed, unknown remote...)
  std::vector<object_failure> failures;  // the first engine_config::max_reported_failures
  // Since this ferryd started, over all passes (metrics: counters never go back).
  struct lifetime_counts {
    std::uint64_t copied = 0;    // copied and verified
    std::uint64_t skipped = 0;   // found identical
    std::uint64_t failed = 0;    // gave up on
    std::uint64_t mismatch = 0;  // verification found different bytes (then retried or failed)
    std::uint64_t bytes = 0;     // bytes of the objects copied
    std::uint64_t object_retries = 0;
  } lifetime;
  std::uint64_t in_flight = 0;  // objects being copied now
};

struct job_request {
  std::string kind = "copy";        // copy | sync | mirror
  std::string source, destination;  // "REMOTE:BUCKET[/PREFIX]" or an absolute path
  std::string name;                 // optional, for the operator
  transfer::copy_mode mode = transfer::copy_mode::automatic;
  int priority = 10;  // 1..100: weight of the job's share of transfer slots
  job_options options;
};

struct engine_config {
  int object_concurrency = 64;  // objects a job plans ahead of the transfers (its window)
  int object_attempts = 3;      // tries per object (a verification mismatch counts) before it fails
  std::size_t max_reported_failures = 100;
  std::uint64_t memory_budget = 256ull << 20;  // in-flight bytes of all jobs together
  transfer::transfer_config transfer;
  // Objects in flight per size lane, all jobs together.
  lane_config lanes{
      .small_below = 1ull << 20, .large_from = 64ull << 20, .small_slots = 32, .medium_slots = 8, .large_slots = 4};
  std::chrono::seconds mirror_interval{60};
  int mirror_full_every = 10;                   // a mirror lists the destination too on every Nth pass (drift)
  std::chrono::milliseconds watch_settle{500};  // local-source mirror: quiet time after a change
  state::durability progress_durability = state::durability::wal;  // object verdicts and parts
  // Bandwidth caps: the global gate every transfer passes, and where jobs' own gates are registered
  // (limits.set changes them at runtime). Null: no caps.
  std::shared_ptr<ratelimit::limits> limits;
};

// What is wrong with the request's kind and options ("" when nothing is), for the operator; the
// locations are checked when the job is created.
std::string check_request(const job_request& r);

// Resolves a remote's name to its client; nullptr when no such remote is configured.
using remote_lookup = std::function<std::shared_ptr<s3::client>(std::string_view)>;

class job_manager {
 public:
  // `blocking` runs filesystem and RocksDB work off the io threads. Both it and `db` must
  // outlive the manager.
  job_manager(asio::any_io_executor ex, remote_lookup remotes, engine_config cfg, store::blocking_pool& blocking,
              state::state_db& db);
  ~job_manager();

  // At startup: resumes every job the state holds that had not ended, and aborts the multipart
  // uploads ferry began and no longer tracks. Returns how many jobs were resumed.
  asio::awaitable<boost::system::result<std::size_t, std::string>> restore();

  // Validates the request (kind, locations, remotes, options) and starts the job. The error
  // text is for the operator: what is wrong and how to fix it.
  asio::awaitable<boost::system::result<job_snapshot, std::string>> create(job_request req);
  std::optional<job_snapshot> get(std::string_view id) const;
  std::vector<job_snapshot> list() const;
  // Stops the job: no new objects start, multipart uploads stop and are aborted; the job ends
  // "cancelled". A job already ended is left as it is. nullopt: no such job.
  std::optional<job_snapshot> cancel(std::string_view id);
  // Pauses a queued or running job: no new objects start, multipart uploads stop after the part
  // they are sending and are kept for resume(); the job ends "paused" and stays so across restarts.
  // Pausing a paused or ended job changes nothing. The error text says why it cannot be done.
  boost::system::result<job_snapshot, std::string> pause(std::string_view id);
  // Runs a paused job again from a new pass (verified objects are found identical and skipped).
  boost::system::result<job_snapshot, std::string> resume(std::string_view id);
  // Forgets an ended or paused job and its records (objects, parts, verdicts). Returns the job as
  // it was.
  asio::awaitable<boost::system::result<job_snapshot, std::string>> remove(std::string id);
  // Replaces a job's own bandwidth cap (a rate or a timetable; "off" removes it) at once, for the
  // transfers in flight too, and keeps it with the job.
  asio::awaitable<boost::system::result<job_snapshot, std::string>> set_bwlimit(std::string id, std::string bwlimit);
  // The job's integrity records, oldest first, after `after_seq`.
  asio::awaitable<boost::system::result<state::state_db::integrity_page, std::string>> report(std::string id,
                                                                                              std::uint64_t after_seq,
                                                                                              std::size_t limit);

  // For a graceful stop: every job stops starting objects and its multipart uploads pause, but
  // jobs keep their state ("running"), so the next start resumes them. Waits up to `grace` for
  // the jobs' coroutines to end.
  asio::awaitable<void> shutdown(std::chrono::milliseconds grace);

  struct job;

 private:
  boost::system::result<std::unique_ptr<store::endpoint>, std::string> open(const location& loc, std::string_view role,
                                                                            const s3::request_options& ro);
  boost::system::result<std::shared_ptr<job>, std::string> prepare(const job_request& req);
  void launch(std::shared_ptr<job> j);
  std::shared_ptr<job> find(std::string_view id) const;
  // Stops the job's waits: for a slot, between mirror passes, for a local change.
  void interrupt(const std::shared_ptr<job>& j);

  asio::any_io_executor ex_;
  remote_lookup remotes_;
  engine_config cfg_;
  store::blocking_pool& blocking_;
  state::async_state_db db_;
  std::shared_ptr<transfer::byte_budget> budget_;
  scheduler scheduler_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<job>> jobs_;
};

}  // namespace ferry::sync
