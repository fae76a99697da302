#pragma once
// Jobs: what ferryd has been asked to do, and how far each has got. A job lists its source,
// copies every object through lib/transfer with bounded concurrency, and counts verdicts.
// In memory for now; lib/state will make jobs survive restarts.
#include "s3/client.hpp"
#include "sync/location.hpp"

#include <boost/asio/any_io_executor.hpp>
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

namespace ferry::sync {

namespace asio = boost::asio;

enum class job_state { queued, running, succeeded, failed, cancelled };
std::string_view to_string(job_state s);

struct object_failure {
  std::string key;
  std::string error;
};

// A consistent copy of one job's state, for replies.
struct job_snapshot {
  std::string id, name, kind;
  std::string source, destination;
  job_state state = job_state::queued;
  std::chrono::system_clock::time_point created_at;
  std::optional<std::chrono::system_clock::time_point> started_at, finished_at;
  std::uint64_t objects_total = 0, objects_done = 0, objects_failed = 0, objects_skipped = 0;
  std::uint64_t bytes_total = 0, bytes_done = 0;
  std::string error;                     // job-level failure (listing failed, unknown remote...)
  std::vector<object_failure> failures;  // the first engine_config::max_reported_failures
};

struct job_request {
  std::string kind = "copy";
  std::string source, destination;  // "REMOTE:BUCKET[/PREFIX]"
  std::string name;                 // optional, for the operator
};

struct engine_config {
  int object_concurrency = 16;  // objects in flight per job
  int object_attempts = 3;      // tries per object before it counts as failed
  std::size_t max_reported_failures = 100;
};

// Resolves a remote's name to its client; nullptr when no such remote is configured.
using remote_lookup = std::function<std::shared_ptr<s3::client>(std::string_view)>;

class job_manager {
 public:
  job_manager(asio::any_io_executor ex, remote_lookup remotes, engine_config cfg);
  ~job_manager();

  // Validates the request (kind, locations, remotes) and starts the job. The error text is
  // for the operator: what is wrong and how to fix it.
  boost::system::result<job_snapshot, std::string> create(const job_request& req);
  std::optional<job_snapshot> get(std::string_view id) const;
  std::vector<job_snapshot> list() const;

  struct job;

 private:
  asio::any_io_executor ex_;
  remote_lookup remotes_;
  engine_config cfg_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<job>> jobs_;
  std::uint64_t next_id_ = 1;
};

}  // namespace ferry::sync
