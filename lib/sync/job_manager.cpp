#include "sync/job_manager.hpp"

#include "store/local_endpoint.hpp"
#include "store/s3_endpoint.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>

namespace ferry::sync {

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

struct job_manager::job {
  mutable std::mutex mu;
  job_snapshot snap;
  std::unique_ptr<store::endpoint> src, dst;
  std::shared_ptr<transfer::byte_budget> budget;
  engine_config cfg;
  transfer::integrity_sink* integrity = nullptr;
  bool fallback_logged = false;  // on the job's strand

  job_snapshot snapshot() const {
    std::lock_guard lock(mu);
    return snap;
  }
  void start() {
    std::lock_guard lock(mu);
    snap.state = job_state::running;
    snap.started_at = std::chrono::system_clock::now();
  }
  void add_listed(const std::vector<store::object_info>& objects) {
    std::lock_guard lock(mu);
    snap.objects_total += objects.size();
    for (const auto& o : objects) snap.bytes_total += o.size;
  }
  void object_done(const transfer::copy_outcome& o) {
    std::lock_guard lock(mu);
    ++snap.objects_done;
    snap.bytes_done += o.record.size;
    if (o.server_side)
      ++snap.server_side;
    else
      ++snap.streamed;
    if (o.fell_back) ++snap.fallbacks;
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

asio::awaitable<void> copy_one(job& j, store::object_info obj) {
  auto ex = co_await asio::this_coro::executor;
  const transfer::copy_context ctx{*j.src, *j.dst, *j.budget, j.cfg.transfer, j.snap.mode};
  for (int attempt = 1;; ++attempt) {
    if (attempt > 1) {
      // The source may have changed (that is often why the last attempt failed): copy what is
      // there now.
      auto fresh = co_await j.src->stat(obj.key);
      if (!fresh) {
        j.object_failed(obj.key, "source: " + fresh.error().to_string());
        co_return;
      }
      obj.size = fresh->size;
      obj.etag = fresh->etag;
      obj.mtime = fresh->mtime;
    }
    auto out = co_await transfer::copy_object(ctx, obj);
    if (out.fell_back && !j.fallback_logged) {
      j.fallback_logged = true;  // once per job; the count is in the job's copy.fallbacks
      spdlog::info("job {}: server-side copy refused ({}); falling back to streaming for such objects", j.snap.id,
                   out.refusal);
    }
    spdlog::debug("job {}: {} {} {} ({} bytes, md5 {}, method {}){}{}", j.snap.id, obj.key,
                  transfer::to_string(out.record.result), out.server_side ? "server-side" : "streamed", out.record.size,
                  out.record.md5, out.record.method, out.record.error.empty() ? "" : ": ", out.record.error);
    if (out.verified()) {
      if (j.integrity) j.integrity->record(out.record);
      j.object_done(out);
      co_return;
    }
    if (!out.retryable || attempt >= j.cfg.object_attempts) {
      if (j.integrity) j.integrity->record(out.record);
      j.object_failed(obj.key, out.record.error +
                                   (attempt > 1 ? " (after " + std::to_string(attempt) + " attempts)" : std::string()));
      co_return;
    }
    // Each request was already retried with backoff; this retries the whole object (a
    // mismatch, a source cut mid-stream, a source that changed), so a short pause is enough.
    asio::steady_timer pause(ex, std::chrono::milliseconds(250 * attempt));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

// Copies one listing page with at most `object_concurrency` objects in flight. Runs on the
// job's strand, so the shared cursor needs no lock.
asio::awaitable<void> copy_page(job& j, const std::vector<store::object_info>& objects) {
  if (objects.empty()) co_return;
  auto ex = co_await asio::this_coro::executor;
  std::size_t next = 0;
  std::size_t running = 0;
  asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < objects.size()) co_await copy_one(j, objects[next++]);
  };
  const auto workers =
      std::min<std::size_t>(static_cast<std::size_t>(std::max(1, j.cfg.object_concurrency)), objects.size());
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
  auto lister = j->src->list();
  for (;;) {
    auto page = co_await lister->next();
    if (!page) {
      j->finish("listing " + j->snap.source + " failed: " + page.error().to_string());
      spdlog::error("job {} failed: {}", j->snap.id, j->snapshot().error);
      co_return;
    }
    if (page->empty()) break;
    j->add_listed(*page);
    co_await copy_page(*j, *page);
  }
  j->finish();
  auto s = j->snapshot();
  spdlog::info("job {} {}: {} of {} objects copied and verified ({} server-side, {} streamed), {} failed, {} bytes",
               s.id, to_string(s.state), s.objects_done, s.objects_total, s.server_side, s.streamed, s.objects_failed,
               s.bytes_done);
}

}  // namespace

job_manager::job_manager(asio::any_io_executor ex, remote_lookup remotes, engine_config cfg,
                         store::blocking_pool& blocking, transfer::integrity_sink* integrity)
    : ex_(std::move(ex)),
      remotes_(std::move(remotes)),
      cfg_(cfg),
      blocking_(blocking),
      integrity_(integrity),
      budget_(std::make_shared<transfer::byte_budget>(cfg_.memory_budget)) {}

job_manager::~job_manager() = default;

boost::system::result<std::unique_ptr<store::endpoint>, std::string> job_manager::open(const location& loc,
                                                                                       std::string_view role) {
  using R = boost::system::result<std::unique_ptr<store::endpoint>, std::string>;
  if (loc.local) return R(store::make_local_endpoint(loc.path, blocking_, store::local_options{}));
  auto client = remotes_(loc.remote);
  if (!client)
    return R(boost::system::in_place_error,
             std::string(role) + ": no remote named '" + loc.remote + "' in the config (see: ferryctl status)");
  return R(store::make_s3_endpoint(std::move(client), loc.bucket, loc.prefix));
}

boost::system::result<job_snapshot, std::string> job_manager::create(const job_request& req) {
  auto refuse = [](std::string why) {
    return boost::system::result<job_snapshot, std::string>(boost::system::in_place_error, std::move(why));
  };
  if (req.kind != "copy") return refuse("unknown job kind '" + req.kind + "' (this ferryd runs: copy)");
  auto src = parse_location(req.source);
  if (!src) return refuse("source: " + src.error());
  auto dst = parse_location(req.destination);
  if (!dst) return refuse("destination: " + dst.error());
  auto src_ep = open(*src, "source");
  if (!src_ep) return refuse(src_ep.error());
  auto dst_ep = open(*dst, "destination");
  if (!dst_ep) return refuse(dst_ep.error());

  auto j = std::make_shared<job>();
  j->src = std::move(*src_ep);
  j->dst = std::move(*dst_ep);
  j->budget = budget_;
  j->cfg = cfg_;
  j->integrity = integrity_;
  {
    std::lock_guard lock(mu_);
    char id[32];
    std::snprintf(id, sizeof id, "j-%06llu", static_cast<unsigned long long>(next_id_++));
    j->snap.id = id;
    j->snap.name = req.name;
    j->snap.kind = req.kind;
    j->snap.mode = req.mode;
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
