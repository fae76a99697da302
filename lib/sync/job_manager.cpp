#include "sync/job_manager.hpp"

#include "transfer/object_copy.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>

namespace ferry::sync {

std::string_view to_string(job_state s) {
  switch (s) {
    case job_state::queued: return "queued";
    case job_state::running: return "running";
    case job_state::succeeded: return "succeeded";
    case job_state::failed: return "failed";
    case job_state::cancelled: return "cancelled";
  }
  return "unknown";
}

struct job_manager::job {
  mutable std::mutex mu;
  job_snapshot snap;
  location source, destination;
  std::shared_ptr<s3::client> src, dst;
  engine_config cfg;

  job_snapshot snapshot() const {
    std::lock_guard lock(mu);
    return snap;
  }
  void start() {
    std::lock_guard lock(mu);
    snap.state = job_state::running;
    snap.started_at = std::chrono::system_clock::now();
  }
  void add_listed(const std::vector<s3::object_summary>& objects) {
    std::lock_guard lock(mu);
    snap.objects_total += objects.size();
    for (const auto& o : objects) snap.bytes_total += o.size;
  }
  void object_done(std::uint64_t bytes) {
    std::lock_guard lock(mu);
    ++snap.objects_done;
    snap.bytes_done += bytes;
  }
  void object_failed(std::string key, std::string error) {
    std::lock_guard lock(mu);
    ++snap.objects_failed;
    if (snap.failures.size() < cfg.max_reported_failures) snap.failures.push_back({std::move(key), std::move(error)});
  }
  // A job with failed objects has failed: the operator must look at them.
  void finish(std::string error = {}) {
    std::lock_guard lock(mu);
    snap.error = std::move(error);
    snap.finished_at = std::chrono::system_clock::now();
    snap.state = snap.error.empty() && snap.objects_failed == 0 ? job_state::succeeded : job_state::failed;
  }
};

namespace {

using job = job_manager::job;

asio::awaitable<void> copy_one(job& j, const s3::object_summary& obj) {
  const std::string dst_key = j.destination.prefix + obj.key.substr(j.source.prefix.size());
  transfer::object_location from{j.src.get(), j.source.bucket, obj.key};
  transfer::object_location to{j.dst.get(), j.destination.bucket, dst_key};
  auto ex = co_await asio::this_coro::executor;
  for (int attempt = 1;; ++attempt) {
    auto out = co_await transfer::stream_copy(from, to);
    if (out.verified) {
      spdlog::debug("job {}: {} -> {} verified ({} bytes, md5 {})", j.snap.id, obj.key, dst_key, out.bytes, out.md5_hex);
      j.object_done(out.bytes);
      co_return;
    }
    if (!out.retryable || attempt >= j.cfg.object_attempts) {
      spdlog::debug("job {}: {} failed: {}", j.snap.id, obj.key, out.error);
      j.object_failed(obj.key, out.error);
      co_return;
    }
    // The client already retried each request with backoff; this is the whole-object retry
    // (a mismatch, a source cut mid-stream), so a short pause is enough.
    asio::steady_timer pause(ex, std::chrono::milliseconds(250 * attempt));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

// Copies one listing page with at most `object_concurrency` objects in flight. Runs on the
// job's strand, so the shared cursor needs no lock.
asio::awaitable<void> copy_page(job& j, const std::vector<s3::object_summary>& objects) {
  if (objects.empty()) co_return;
  auto ex = co_await asio::this_coro::executor;
  std::size_t next = 0;
  std::size_t running = 0;
  asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < objects.size()) co_await copy_one(j, objects[next++]);
  };
  const auto workers = std::min<std::size_t>(static_cast<std::size_t>(std::max(1, j.cfg.object_concurrency)),
                                              objects.size());
  for (std::size_t i = 0; i < workers; ++i) {
    ++running;
    asio::co_spawn(ex, worker(), [&](std::exception_ptr e) {
      if (e) spdlog::error("job {}: object worker stopped by a bug", j.snap.id);
      if (--running == 0) all_done.cancel();
    });
  }
  co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> run_copy(std::shared_ptr<job> j) {
  j->start();
  spdlog::info("job {} started: copy {} -> {}", j->snap.id, j->snap.source, j->snap.destination);
  std::string token;
  do {
    s3::list_params p;
    p.prefix = j->source.prefix;
    p.continuation_token = token;
    auto page = co_await j->src->list_objects_v2(j->source.bucket, p);
    if (!page) {
      j->finish("listing " + j->source.to_string() + " failed: " + page.error().to_string());
      spdlog::error("job {} failed: {}", j->snap.id, j->snapshot().error);
      co_return;
    }
    if (page->is_truncated && page->next_continuation_token.empty()) {
      j->finish("listing " + j->source.to_string() + ": server said the listing continues but sent no token");
      co_return;
    }
    j->add_listed(page->objects);
    co_await copy_page(*j, page->objects);
    token = page->is_truncated ? page->next_continuation_token : std::string();
  } while (!token.empty());
  j->finish();
  auto s = j->snapshot();
  spdlog::info("job {} {}: {} of {} objects copied and verified, {} failed, {} bytes", s.id, to_string(s.state),
               s.objects_done, s.objects_total, s.objects_failed, s.bytes_done);
}

}  // namespace

job_manager::job_manager(asio::any_io_executor ex, remote_lookup remotes, engine_config cfg)
    : ex_(std::move(ex)), remotes_(std::move(remotes)), cfg_(cfg) {}

job_manager::~job_manager() = default;

boost::system::result<job_snapshot, std::string> job_manager::create(const job_request& req) {
  auto refuse = [](std::string why) {
    return boost::system::result<job_snapshot, std::string>(boost::system::in_place_error, std::move(why));
  };
  if (req.kind != "copy") return refuse("unknown job kind '" + req.kind + "' (this ferryd runs: copy)");
  auto src = parse_location(req.source);
  if (!src) return refuse("source: " + src.error());
  auto dst = parse_location(req.destination);
  if (!dst) return refuse("destination: " + dst.error());
  auto src_client = remotes_(src->remote);
  if (!src_client) return refuse("source: no remote named '" + src->remote + "' in the config (see: ferryctl status)");
  auto dst_client = remotes_(dst->remote);
  if (!dst_client) return refuse("destination: no remote named '" + dst->remote + "' in the config (see: ferryctl status)");

  auto j = std::make_shared<job>();
  j->source = *src;
  j->destination = *dst;
  j->src = std::move(src_client);
  j->dst = std::move(dst_client);
  j->cfg = cfg_;
  {
    std::lock_guard lock(mu_);
    char id[32];
    std::snprintf(id, sizeof id, "j-%06llu", static_cast<unsigned long long>(next_id_++));
    j->snap.id = id;
    j->snap.name = req.name;
    j->snap.kind = req.kind;
    j->snap.source = src->to_string();
    j->snap.destination = dst->to_string();
    j->snap.created_at = std::chrono::system_clock::now();
    jobs_.emplace(j->snap.id, j);
  }
  auto snap = j->snapshot();
  asio::co_spawn(asio::make_strand(ex_), run_copy(j), [j](std::exception_ptr e) {
    if (e) j->finish("internal error: the job stopped unexpectedly (a bug; see the log)");
  });
  return snap;
}

std::optional<job_snapshot> job_manager::get(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(std::string(id));
  if (it == jobs_.end()) return std::nullopt;
  return it->second->snapshot();
}

std::vector<job_snapshot> job_manager::list() const {
  std::vector<std::shared_ptr<job>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, j] : jobs_) all.push_back(j);
  }
  std::vector<job_snapshot> out;
  for (const auto& j : all) out.push_back(j->snapshot());
  return out;
}

}  // namespace ferry::sync
