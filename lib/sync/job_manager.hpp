#pragma once
// Jobs: what ferryd has been asked to do, and how far each has got. A job lists its source,
// copies every object through lib/transfer with bounded concurrency, and counts verdicts.
// In memory for now; lib/state will make jobs survive restarts.
#include "s3/client.hpp"
#include "store/endpoint.hpp"
#include "sync/location.hpp"
#include "transfer/budget.hpp"
#include "transfer/copier.hpp"

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

namespace ferry::store {
class blocking_pool;
}

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
  transfer::copy_mode mode = transfer::copy_mode::automatic;
  job_state state = job_state::queued;
  std::chrono::system_clock::time_point created_at;
  std::optional<std::chrono::system_clock::time_point> started_at, finished_at;
  std::uint64_t objects_total = 0, objects_done = 0, objects_failed = 0, objects_skipped = 0;
  std::uint64_t bytes_total = 0, bytes_done = 0;
  std::uint64_t server_side = 0, streamed = 0, fallbacks = 0;  // how objects were copied
  std::string error;                                           // job-level failure (listing failed, unknown remote...)
  std::vector<object_failure> failures;                        // the first engine_config::max_reported_failures
};

struct job_request {
  std::string kind = "copy";
  std::string source, destination;  // "REMOTE:BUCKET[/PREFIX]" or an absolute path
  std::string name;                 // optional, for the operator
  transfer::copy_mode mode = transfer::copy_mode::automatic;
};

struct engine_config {
  int object_concurrency = 16;  // objects in flight per job
  int object_attempts = 3;      // tries per object (a verification mismatch counts) before it fails
  std::size_t max_reported_failures = 100;
  std::uint64_t memory_budget = 256ull << 20;  // in-flight bytes of all jobs together
  transfer::transfer_config transfer;
};

// Resolves a remote's name to its client; nullptr when no such remote is configured.
using remote_lookup = std::function<std::shared_ptr<s3::client>(std::string_view)>;

class job_manager {
 public:
  // `blocking` runs local filesystem work off the io threads; `integrity` (optional) receives
  // every object's final verdict. Both must outlive the manager.
  job_manager(asio::any_io_executor ex, remote_lookup remotes, engine_config cfg, store::blocking_pool& blocking,
              transfer::integrity_sink* integrity = nullptr);
  ~job_manager();

  // Validates the request (kind, locations, remotes) and starts the job. The error text is
  // for the operator: what is wrong and how to fix it.
  boost::system::result<job_snapshot, std::string> create(const job_request& req);
  std::optional<job_snapshot> get(std::string_view id) const;
  std::vector<job_snapshot> list() const;

  struct job;

 private:
  boost::system::result<std::unique_ptr<store::endpoint>, std::string> open(const location& loc, std::string_view role);

  asio::any_io_executor ex_;
  remote_lookup remotes_;
  engine_config cfg_;
  store::blocking_pool& blocking_;
  transfer::integrity_sink* integrity_;
  std::shared_ptr<transfer::byte_budget> budget_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<job>> jobs_;
  std::uint64_t next_id_ = 1;
};

}  // namespace ferry::sync
