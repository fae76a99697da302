#include "sync/job_manager.hpp"

#include "s3/client.hpp"
#include "store/local_endpoint.hpp"
#include "store/local_watch.hpp"
#include "store/s3_endpoint.hpp"
#include "sync/job_options.hpp"
#include "sync/planner.hpp"
#include "sync/progress.hpp"
#include "util/hash.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <set>

namespace ferry::sync {

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

namespace {

using clock = std::chrono::system_clock;
constexpr std::size_t delete_batch = 1000;
constexpr auto persist_every = std::chrono::seconds(2);

bool terminal(job_state s) { return s == job_state::succeeded || s == job_state::failed || s == job_state::cancelled; }

}  // namespace

struct job_manager::job {
  mutable std::mutex mu;
  job_snapshot snap;  // under mu
  job_request req;    // fixed once created
  location dst_loc;
  std::unique_ptr<store::endpoint> src, dst;
  std::shared_ptr<ratelimit::gate> gate;  // the job's own cap (--bwlimit/--schedule, limits.set)
  filter flt;
  engine_config cfg;
  std::shared_ptr<transfer::byte_budget> budget;
  scheduler* sched = nullptr;
  std::shared_ptr<scheduler::job_handle> slot;
  state::async_state_db* db = nullptr;
  std::unique_ptr<state_journal> journal;
  asio::strand<asio::any_io_executor> strand;
  std::atomic<bool> cancelled{false};
  std::atomic<bool> stopping{false};  // ferryd is shutting down, or the job pausing: stop, do not end
  std::atomic<bool> pausing{false};   // job.pause: end the run as "paused"
  std::atomic<bool> active{false};    // its coroutine is running
  // On the strand: the mirror's wait between passes, woken early by cancel().
  asio::steady_timer* pause = nullptr;
  store::local_watcher* watcher = nullptr;
  bool fallback_logged = false;                 // on the strand
  std::chrono::steady_clock::time_point saved;  // last periodic save, on the strand

  explicit job(asio::any_io_executor ex) : strand(asio::make_strand(ex)) {}

  job_snapshot snapshot() const {
    std::lock_guard lock(mu);
    return snap;
  }
  template <class F>
  void update(F&& f) {
    std::lock_guard lock(mu);
    f(snap);
  }
  bool is_mirror() const { return req.kind == "mirror"; }
  void object_failed(std::string key, std::string error) {
    std::lock_guard lock(mu);
    ++snap.objects_failed;
    ++snap.lifetime.failed;
    if (snap.failures.size() < cfg.max_reported_failures) snap.failures.push_back({std::move(key), std::move(error)});
  }
  state::job_record record() const { return record_of(snapshot()); }
  static state::job_record record_of(const job_snapshot& s) {
    state::job_record r;
    r.id = s.id;
    r.name = s.name;
    r.kind = s.kind;
    r.state = std::string(to_string(s.state));
    r.source = s.source;
    r.destination = s.destination;
    r.mode = s.mode;
    r.created_at = s.created_at;
    r.started_at = s.started_at;
    r.finished_at = s.finished_at;
    r.objects_total = s.objects_total;
    r.objects_done = s.objects_done;
    r.objects_failed = s.objects_failed;
    r.objects_skipped = s.objects_skipped;
    r.bytes_total = s.bytes_total;
    r.bytes_done = s.bytes_done;
    r.server_side = s.server_side;
    r.streamed = s.streamed;
    r.fallbacks = s.fallbacks;
    r.error = s.error;
    r.priority = static_cast<std::uint64_t>(s.priority);
    r.options = encode_job_options(s.options);
    r.deleted = s.deleted;
    r.passes = s.passes;
    r.last_pass_at = s.last_pass_at;
    r.plan_copy_objects = s.plan.copy_objects;
    r.plan_copy_bytes = s.plan.copy_bytes;
    r.plan_delete_objects = s.plan.delete_objects;
    r.plan_delete_bytes = s.plan.delete_bytes;
    r.plan_unchanged_objects = s.plan.unchanged_objects;
    r.plan_unchanged_bytes = s.plan.unchanged_bytes;
    r.delete_refused = s.delete_refused;
    return r;
  }
};

namespace {

using job = job_manager::job;

asio::awaitable<void> save(job& j, state::durability d) {
  auto rec = j.record();  // named: GCC 12 destroys a temporary argument of a coroutine twice
  auto r = co_await j.db->put_job(std::move(rec), d);
  if (!r) spdlog::error("job {}: saving its state: {}", j.snap.id, r.error().message);
}

// Records the verdict with the object's new state in one batch: the object counts only once both
// are on disk.
asio::awaitable<bool> record_verdict(job& j, const store::object_info& obj, const transfer::copy_outcome& out,
                                     std::uint32_t attempts) {
  state::state_batch b;
  if (out.verified()) {
    b.put_object_state(j.snap.id, obj.key, verified_state(obj, out.record.destination_etag, attempts));
  } else {
    auto s = state_of(obj, state::object_phase::failed);
    s.attempts = attempts;
    s.error = out.record.error;
    b.put_object_state(j.snap.id, obj.key, s);
  }
  b.record_integrity(j.snap.id, out.record);
  auto r = co_await j.db->write(std::move(b), j.cfg.progress_durability);
  if (!r) spdlog::error("job {}: recording the verdict of {}: {}", j.snap.id, obj.key, r.error().message);
  co_return r.has_value();
}

asio::awaitable<void> copy_one(job& j, store::object_info obj) {
  auto ex = co_await asio::this_coro::executor;
  transfer::copy_context ctx{*j.src, *j.dst, *j.budget, j.cfg.transfer, j.snap.mode};
  ctx.journal = j.journal.get();
  ctx.cancelled = &j.cancelled;
  ctx.stopping = &j.stopping;
  j.update([](job_snapshot& s) { ++s.in_flight; });
  struct in_flight_guard {
    job& j;
    ~in_flight_guard() {
      j.update([](job_snapshot& s) { --s.in_flight; });
    }
  } guard{j};
  // Whole-object retries after transient failures, besides the object's attempts.
  constexpr int max_transient_retries = 20;
  int transient = 0;
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
      obj.last_modified = fresh->last_modified;
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
    // Throttling, 5xx, resets and timeouts are the server's or the network's state, not the object's:
    // they cost no attempt, up to max_transient_retries more tries with a backoff growing to 20 s (so an
    // endpoint down for minutes delays objects rather than failing them).
    if (!out.verified() && out.transient && transient < max_transient_retries && !j.cancelled.load() &&
        !j.stopping.load()) {
      ++transient;
      --attempt;
      j.update([](job_snapshot& s) { ++s.lifetime.object_retries; });
      const auto backoff = std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(250 * (1 << std::min(transient, 7))), std::chrono::seconds(20));
      asio::steady_timer pause(ex, backoff);
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    const bool last = out.verified() || !out.retryable || attempt >= j.cfg.object_attempts || j.cancelled.load();
    if (out.record.result == transfer::verdict::mismatch) j.update([](job_snapshot& s) { ++s.lifetime.mismatch; });
    if (!last) {
      j.update([](job_snapshot& s) { ++s.lifetime.object_retries; });
      // Each request was already retried with backoff; this retries the whole object (a
      // mismatch, a source cut mid-stream, a source that changed), so a short pause is enough.
      asio::steady_timer pause(ex, std::chrono::milliseconds(250 * attempt));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (j.cancelled.load() && !out.verified()) co_return;  // not a failure of the object
    const bool recorded = co_await record_verdict(j, obj, out, static_cast<std::uint32_t>(attempt));
    if (out.verified() && recorded) {
      j.update([&](job_snapshot& s) {
        ++s.objects_done;
        s.bytes_done += out.record.size;
        ++s.lifetime.copied;
        s.lifetime.bytes += out.record.size;
        if (out.server_side)
          ++s.server_side;
        else
          ++s.streamed;
        if (out.fell_back) ++s.fallbacks;
      });
    } else if (out.verified()) {
      j.object_failed(obj.key, "copied and verified, but the verdict could not be recorded (state database)");
    } else {
      j.object_failed(obj.key, out.record.error +
                                   (attempt > 1 ? " (after " + std::to_string(attempt) + " attempts)" : std::string()));
    }
    co_return;
  }
}

// The content MD5 of an object for --checksum: its MD5 ETag, or the hash of its bytes when it is a
// local file. "" when neither is available.
asio::awaitable<std::string> content_md5(store::endpoint& ep, const store::object_info& o) {
  if (auto m = listed_md5(o); !m.empty()) co_return m;
  if (!ep.is_local()) co_return std::string();
  auto md5 = co_await transfer::read_md5(ep, o.key);
  co_return md5 ? std::move(*md5) : std::string();
}

// For a mirror's incremental pass: the record keeps the source as it was when copied.
bool same_as_record(const store::object_info& src, const store::object_info& rec) {
  if (src.size != rec.size) return false;
  if (!src.etag.empty() || !rec.etag.empty()) return src.etag == rec.etag;
  return src.last_modified && rec.last_modified &&
         std::chrono::floor<std::chrono::seconds>(*src.last_modified) ==
             std::chrono::floor<std::chrono::seconds>(*rec.last_modified);
}

struct pass_outcome {
  std::string error;  // the pass failed as a whole (a listing, the state database)
};

// Objects planned for copying, waiting for or holding a transfer slot; on the job's strand.
struct copy_window {
  std::size_t outstanding = 0;
  asio::steady_timer* waiter = nullptr;
  void wake() {
    if (waiter) waiter->cancel();
  }
};

asio::awaitable<void> run_copy_task(job& j, copy_window& w, store::object_info obj) {
  auto ticket = co_await j.sched->acquire(j.slot, obj.size);
  if (ticket && !j.cancelled.load()) co_await copy_one(j, std::move(obj));
  --w.outstanding;
  w.wake();
  if (std::chrono::steady_clock::now() - j.saved > persist_every) {
    j.saved = std::chrono::steady_clock::now();
    co_await save(j, state::durability::wal);
  }
}

asio::awaitable<void> wait_window(copy_window& w, std::size_t below) {
  auto ex = co_await asio::this_coro::executor;
  while (w.outstanding >= below) {
    asio::steady_timer t(ex, asio::steady_timer::time_point::max());
    w.waiter = &t;
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    w.waiter = nullptr;
  }
}

// Deletes `keys` at the destination in batches, and forgets them in the mirror's record.
asio::awaitable<void> delete_extraneous(job& j, std::vector<std::string> keys) {
  for (std::size_t at = 0; at < keys.size() && !j.cancelled.load(); at += delete_batch) {
    std::vector<std::string> batch(
        keys.begin() + static_cast<std::ptrdiff_t>(at),
        keys.begin() + static_cast<std::ptrdiff_t>(std::min(keys.size(), at + delete_batch)));
    auto r = co_await j.dst->remove_many(batch);
    if (!r) {
      for (const auto& k : batch) j.object_failed(k, "deleting: " + r.error().to_string());
      continue;
    }
    std::set<std::string> failed;
    for (const auto& [k, e] : *r) {
      failed.insert(k);
      j.object_failed(k, "deleting: " + e.to_string());
    }
    state::state_batch forget;
    std::uint64_t n = 0;
    for (const auto& k : batch) {
      if (failed.count(k)) continue;
      ++n;
      state::object_state gone;
      gone.phase = state::object_phase::pending;  // not verified: the record lister skips it
      gone.updated_at = clock::now();
      forget.put_object_state(j.snap.id, k, gone);
    }
    if (!forget.empty()) (void)co_await j.db->write(std::move(forget), j.cfg.progress_durability);
    j.update([&](job_snapshot& s) { s.deleted += n; });
    spdlog::info("job {}: deleted {} object(s) at {}", j.snap.id, n, j.snap.destination);
  }
}

// One pass: plan by merge-joining the listings, copy, then delete. `full`: list the destination
// (always for copy and sync; for a mirror, its first pass and every Nth, else its record).
asio::awaitable<pass_outcome> run_pass(job& j, bool full) {
  const auto now = clock::now();
  const auto& o = j.req.options;
  j.update([](job_snapshot& s) {
    s.objects_total = s.objects_done = s.objects_failed = s.objects_skipped = 0;
    s.bytes_total = s.bytes_done = 0;
    s.plan = {};
    s.failures.clear();
    s.delete_refused.clear();
  });
  const bool incremental = j.is_mirror() && !full;
  std::unique_ptr<store::lister> dst_list = incremental ? make_record_lister(*j.db, j.snap.id) : j.dst->list();
  merge_join mj(j.src->list(), std::move(dst_list));
  const compare_options cmp{o.checksum, o.size_only};
  const bool may_delete = o.delete_extraneous && j.req.kind != "copy";

  copy_window w;
  std::vector<std::string> deletions;
  std::uint64_t dst_objects = 0;
  state::state_batch records;  // mirror: unchanged objects found on a full pass
  std::size_t record_count = 0;
  std::string error;
  const std::size_t window = static_cast<std::size_t>(std::max(1, j.cfg.object_concurrency));
  while (!j.cancelled.load()) {
    auto next = co_await mj.next();
    if (!next) {
      error = "listing failed: " + next.error().to_string();
      break;
    }
    if (!*next) break;
    auto& p = **next;
    if (p.dst) ++dst_objects;
    if (!p.src) {
      if (!may_delete || !j.flt.admits(*p.dst, now)) continue;  // an excluded object is never deleted
      deletions.push_back(p.dst->key);
      j.update([&](job_snapshot& s) {
        ++s.plan.delete_objects;
        s.plan.delete_bytes += p.dst->size;
      });
      continue;
    }
    if (!j.flt.admits(*p.src, now)) continue;
    bool same = false;
    if (p.dst) {
      if (incremental) {
        same = same_as_record(*p.src, *p.dst);
      } else {
        const auto d = compare_listed(*p.src, *p.dst, cmp);
        same = d == difference::same;
        if (d == difference::needs_detail) {
          auto exact = co_await j.src->stat(p.src->key);
          std::string sm, dm;
          if (o.checksum) {
            sm = co_await content_md5(*j.src, *p.src);
            dm = co_await content_md5(*j.dst, *p.dst);
          }
          same = exact && compare_exact(*exact, *p.dst, sm, dm);
        }
        if (same && j.is_mirror()) {
          records.put_object_state(j.snap.id, p.src->key, verified_state(*p.src, p.dst->etag, 0));
          ++record_count;
        }
      }
    }
    j.update([&](job_snapshot& s) {
      ++s.objects_total;
      s.bytes_total += p.src->size;
      if (same) {
        ++s.plan.unchanged_objects;
        s.plan.unchanged_bytes += p.src->size;
        ++s.objects_done;
        ++s.objects_skipped;
        ++s.lifetime.skipped;
        s.bytes_done += p.src->size;
      } else {
        ++s.plan.copy_objects;
        s.plan.copy_bytes += p.src->size;
      }
    });
    if (record_count >= delete_batch) {
      (void)co_await j.db->write(std::move(records), j.cfg.progress_durability);
      records = state::state_batch();
      record_count = 0;
    }
    if (same || o.dry_run) continue;
    co_await wait_window(w, window);
    ++w.outstanding;
    asio::co_spawn(j.strand, run_copy_task(j, w, std::move(*p.src)), [&j](std::exception_ptr e) {
      if (e) spdlog::error("job {}: an object task stopped by a bug", j.snap.id);
    });
  }
  co_await wait_window(w, 1);
  if (!records.empty()) (void)co_await j.db->write(std::move(records), j.cfg.progress_durability);
  if (!error.empty() || j.cancelled.load()) co_return pass_outcome{error};

  if (!deletions.empty()) {
    // 10% of the destination, rounded up: deleting one object of a small bucket is allowed.
    const std::uint64_t cap = o.max_delete ? *o.max_delete : std::max<std::uint64_t>(1, (dst_objects + 9) / 10);
    if (deletions.size() > cap && !o.force) {
      const std::string why = "refusing to delete " + std::to_string(deletions.size()) + " of " +
                              std::to_string(dst_objects) + " destination objects: more than --max-delete " +
                              std::to_string(cap) + (o.max_delete ? "" : " (10% of the destination)") +
                              "; nothing was deleted (raise --max-delete or pass --force)";
      j.update([&](job_snapshot& s) { s.delete_refused = why; });
      spdlog::warn("job {}: {}", j.snap.id, why);
    } else if (!o.dry_run) {
      co_await delete_extraneous(j, std::move(deletions));
    }
  }
  co_return pass_outcome{};
}

asio::awaitable<void> finish(job& j, job_state st, std::string error) {
  const auto finished = clock::now();
  auto ended = [&](job_snapshot& s) {
    s.state = st;
    s.error = error;
    s.finished_at = finished;
    s.next_pass_at.reset();
  };
  j.sched->cancel(j.slot);
  // On disk before anyone is told: a job reported ended is never found running after a crash.
  auto view = j.snapshot();
  ended(view);
  auto rec = job::record_of(view);
  auto saved = co_await j.db->put_job(std::move(rec), state::durability::fsync);
  if (!saved) spdlog::error("job {}: saving its state: {}", view.id, saved.error().message);
  j.update(ended);
  const auto s = j.snapshot();
  spdlog::info(
      "job {} {}: {} of {} objects done ({} unchanged, {} server-side, {} streamed), {} failed, {} deleted{}{}", s.id,
      to_string(s.state), s.objects_done, s.objects_total, s.objects_skipped, s.server_side, s.streamed,
      s.objects_failed, s.deleted, s.error.empty() ? "" : ": ", s.error);
}

// Waits for the mirror's next pass: the interval, or sooner a change under a local source.
asio::awaitable<void> wait_next_pass(job& j, std::chrono::seconds interval) {
  auto ex = co_await asio::this_coro::executor;
  const auto deadline = std::chrono::steady_clock::now() + interval;
  if (j.watcher) {
    while (!j.cancelled.load()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) co_return;
      auto changed = co_await j.watcher->wait_change(j.cfg.watch_settle, left);
      if (!changed) {
        if (j.cancelled.load()) co_return;
        spdlog::warn("job {}: watching {} failed ({}); passes now run every {} s", j.snap.id, j.snap.source,
                     changed.error().to_string(), interval.count());
        j.watcher = nullptr;
        break;
      }
      if (*changed) {
        spdlog::info("job {}: change under {}, starting a pass", j.snap.id, j.snap.source);
        co_return;
      }
    }
  }
  asio::steady_timer t(ex, deadline);
  j.pause = &t;
  if (!j.cancelled.load()) co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  j.pause = nullptr;
}

asio::awaitable<void> run_job(std::shared_ptr<job> jp) {
  job& j = *jp;
  j.update([](job_snapshot& s) {
    s.state = job_state::running;
    if (!s.started_at) s.started_at = clock::now();
    s.finished_at.reset();
    s.error.clear();
  });
  j.saved = std::chrono::steady_clock::now();
  co_await save(j, state::durability::fsync);
  spdlog::info("job {} started: {} {} -> {}{}", j.snap.id, j.snap.kind, j.snap.source, j.snap.destination,
               j.req.options.dry_run ? " (dry run)" : "");

  std::unique_ptr<store::local_watcher> watcher;
  if (j.is_mirror() && j.src->is_local()) {
    auto w = store::local_watcher::start(j.strand, j.snap.source);
    if (w) {
      watcher = std::move(*w);
      j.watcher = watcher.get();
    } else {
      spdlog::warn("job {}: cannot watch {} ({}); passes run every interval only", j.snap.id, j.snap.source,
                   w.error().to_string());
    }
  }
  const auto interval = j.req.options.interval.value_or(j.cfg.mirror_interval);
  for (std::uint64_t pass = 0;; ++pass) {
    const bool full = !j.is_mirror() || pass == 0 || j.cfg.mirror_full_every <= 1 ||
                      (pass % static_cast<std::uint64_t>(j.cfg.mirror_full_every)) == 0;
    auto out = co_await run_pass(j, full);
    j.update([&](job_snapshot& s) {
      ++s.passes;
      s.last_pass_at = clock::now();
    });
    if (j.cancelled.load()) break;
    if (!j.is_mirror() || j.req.options.dry_run) {
      const auto s = j.snapshot();
      std::string err = out.error;
      if (err.empty() && !s.delete_refused.empty() && !j.req.options.dry_run) err = s.delete_refused;
      const bool ok = err.empty() && s.objects_failed == 0;
      co_await finish(j, ok ? job_state::succeeded : job_state::failed, std::move(err));
      co_return;
    }
    if (!out.error.empty()) spdlog::error("job {}: pass failed: {}", j.snap.id, out.error);
    j.update([&](job_snapshot& s) {
      s.error = out.error;
      s.next_pass_at = clock::now() + interval;
    });
    co_await save(j, state::durability::fsync);
    const auto s = j.snapshot();
    spdlog::info("job {}: pass {} done: {} copied, {} unchanged, {} failed, {} deleted in all; next pass within {} s",
                 s.id, s.passes, s.plan.copy_objects, s.plan.unchanged_objects, s.objects_failed, s.deleted,
                 interval.count());
    co_await wait_next_pass(j, interval);
    if (j.cancelled.load()) break;
  }
  j.watcher = nullptr;
  if (j.pausing.load()) {
    j.update([](job_snapshot& s) {
      s.state = job_state::paused;
      s.next_pass_at.reset();
    });
    co_await save(j, state::durability::fsync);
    spdlog::info("job {} paused", j.snap.id);
    co_return;
  }
  if (j.stopping.load()) {
    co_await save(j, state::durability::fsync);  // still "running": the next start resumes it
    co_return;
  }
  std::string no_error;  // named, not {}: see save()
  co_await finish(j, job_state::cancelled, std::move(no_error));
}

}  // namespace

std::string check_request(const job_request& r) {
  if (r.kind != "copy" && r.kind != "sync" && r.kind != "mirror")
    return "unknown job kind '" + r.kind + "' (kinds: copy, sync, mirror)";
  const auto& o = r.options;
  if (o.delete_extraneous && r.kind == "copy") return "--delete needs a sync or mirror job (a copy never deletes)";
  if ((o.max_delete || o.force) && !o.delete_extraneous) return "--max-delete and --force go with --delete";
  if (o.interval && r.kind != "mirror") return "--interval is for mirror jobs";
  if (o.interval && o.interval->count() < 1) return "--interval must be at least 1 s";
  if (o.checksum && o.size_only) return "--checksum and --size-only exclude each other: choose one";
  if (r.priority < 1 || r.priority > 100) return "priority must be 1..100";
  if (!o.bwlimit.empty())
    if (auto tt = ratelimit::timetable::parse(o.bwlimit); !tt) return "--bwlimit/--schedule: " + tt.error();
  if (o.concurrency && (*o.concurrency < 1 || *o.concurrency > 4096)) return "--concurrency must be 1..4096";
  if (o.part_size && (*o.part_size < (5ull << 20) || *o.part_size > (5ull << 30)))
    return "--part-size must be between 5 MiB and 5 GiB (S3's limits)";
  if (auto f = filter::compile(o.filter); !f) return f.error();
  return {};
}

job_manager::job_manager(asio::any_io_executor ex, remote_lookup remotes, engine_config cfg,
                         store::blocking_pool& blocking, state::state_db& db)
    : ex_(ex),
      remotes_(std::move(remotes)),
      cfg_(cfg),
      blocking_(blocking),
      db_(db, blocking),
      budget_(std::make_shared<transfer::byte_budget>(cfg_.memory_budget)),
      scheduler_(ex, cfg_.lanes) {}

job_manager::~job_manager() {
  std::lock_guard lock(mu_);
  for (auto& [id, j] : jobs_) j->cancelled = true;
}

boost::system::result<std::unique_ptr<store::endpoint>, std::string> job_manager::open(const location& loc,
                                                                                       std::string_view role,
                                                                                       const s3::request_options& ro) {
  using R = boost::system::result<std::unique_ptr<store::endpoint>, std::string>;
  if (loc.local) return R(store::make_local_endpoint(loc.path, blocking_, store::local_options{}));
  auto client = remotes_(loc.remote);
  if (!client)
    return R(boost::system::in_place_error,
             std::string(role) + ": no remote named '" + loc.remote + "' in the config (see: ferryctl status)");
  // The job's view: its caps and fixed concurrency on every request; pools and measurements shared.
  return R(store::make_s3_endpoint(client->with(ro), loc.bucket, loc.prefix));
}

boost::system::result<std::shared_ptr<job_manager::job>, std::string> job_manager::prepare(const job_request& req) {
  using R = boost::system::result<std::shared_ptr<job>, std::string>;
  auto refuse = [](std::string why) { return R(boost::system::in_place_error, std::move(why)); };
  if (auto why = check_request(req); !why.empty()) return refuse(why);
  auto src = parse_location(req.source);
  if (!src) return refuse("source: " + src.error());
  auto dst = parse_location(req.destination);
  if (!dst) return refuse("destination: " + dst.error());
  auto flt = filter::compile(req.options.filter);
  if (!flt) return refuse(flt.error());
  // Every job has a gate of its own (unlimited without --bwlimit) so that limits.set can cap it later.
  ratelimit::timetable tt;
  if (!req.options.bwlimit.empty()) {
    auto parsed = ratelimit::timetable::parse(req.options.bwlimit);
    if (!parsed) return refuse("--bwlimit/--schedule: " + parsed.error());
    tt = std::move(*parsed);
  }
  auto gate = std::make_shared<ratelimit::gate>(std::move(tt));
  s3::request_options ro;
  ro.throttle = cfg_.limits ? cfg_.limits->throttle_for(gate) : ratelimit::throttle{gate};
  ro.concurrency = req.options.concurrency;
  auto src_ep = open(*src, "source", ro);
  if (!src_ep) return refuse(src_ep.error());
  auto dst_ep = open(*dst, "destination", ro);
  if (!dst_ep) return refuse(dst_ep.error());

  auto j = std::make_shared<job>(ex_);
  j->gate = std::move(gate);
  j->req = req;
  j->dst_loc = *dst;
  j->src = std::move(*src_ep);
  j->dst = std::move(*dst_ep);
  j->flt = std::move(*flt);
  j->budget = budget_;
  j->cfg = cfg_;
  if (req.options.part_size) {
    j->cfg.transfer.part_size = *req.options.part_size;
    j->cfg.transfer.adaptive_part_size = false;
  }
  j->sched = &scheduler_;
  j->db = &db_;
  j->snap.name = req.name;
  j->snap.kind = req.kind;
  j->snap.mode = req.mode;
  j->snap.priority = req.priority;
  if (req.kind == "mirror" && !j->req.options.interval) j->req.options.interval = cfg_.mirror_interval;
  j->snap.options = j->req.options;
  j->snap.source = src->to_string();
  j->snap.destination = dst->to_string();
  j->snap.created_at = clock::now();
  return j;
}

void job_manager::launch(std::shared_ptr<job> j) {
  // limits.get/set find the job's cap under its id.
  if (j->gate && cfg_.limits) cfg_.limits->attach_job(j->snap.id, j->gate);
  // A local destination's multipart write is a temp file that does not outlive a crash: nothing to
  // resume or abort there.
  if (j->dst && !j->dst_loc.local) {
    const upload_target target{j->dst_loc.remote, j->dst_loc.bucket, j->dst_loc.prefix};
    j->journal = std::make_unique<state_journal>(db_, j->snap.id, target, cfg_.progress_durability);
  }
  j->slot = scheduler_.join(j->snap.id, j->snap.priority);
  {
    std::lock_guard lock(mu_);
    jobs_[j->snap.id] = j;
  }
  j->active = true;
  asio::co_spawn(j->strand, run_job(j), [j](std::exception_ptr e) {
    j->active = false;
    if (!e) return;
    j->update([](job_snapshot& s) {
      s.state = job_state::failed;
      s.error = "internal error: the job stopped unexpectedly (a bug; see the log)";
      s.finished_at = clock::now();
    });
    spdlog::error("job {}: stopped by an exception", j->snap.id);
  });
}

asio::awaitable<boost::system::result<job_snapshot, std::string>> job_manager::set_bwlimit(std::string id,
                                                                                           std::string bwlimit) {
  using R = boost::system::result<job_snapshot, std::string>;
  auto j = find(id);
  if (!j) co_return R(boost::system::in_place_error, "no job '" + id + "' (list them: ferryctl jobs)");
  auto tt = ratelimit::timetable::parse(bwlimit);
  if (!tt) co_return R(boost::system::in_place_error, tt.error());
  if (terminal(j->snapshot().state)) co_return R(boost::system::in_place_error, "job " + id + " has ended");
  const std::string text = tt->is_constant() && tt->at(0, 0) == ratelimit::bandwidth{} ? "" : tt->to_string();
  if (j->gate) j->gate->set_timetable(std::move(*tt));
  j->update([&](job_snapshot& s) { s.options.bwlimit = text; });
  // Kept with the job: a restart applies it again.
  auto rec = j->record();
  auto saved = co_await db_.put_job(std::move(rec), state::durability::fsync);
  if (!saved) co_return R(boost::system::in_place_error, "saving the job failed: " + saved.error().message);
  spdlog::info("job {}: bandwidth cap now {}", id, text.empty() ? "off" : text);
  co_return j->snapshot();
}

asio::awaitable<boost::system::result<job_snapshot, std::string>> job_manager::create(job_request req) {
  using R = boost::system::result<job_snapshot, std::string>;
  auto j = prepare(req);
  if (!j) co_return R(boost::system::in_place_error, j.error());
  auto id = co_await db_.next_job_id();
  if (!id) co_return R(boost::system::in_place_error, "the state database refused a new job: " + id.error().message);
  (*j)->snap.id = *id;
  // On disk before the caller hears of it: a job acknowledged is a job that survives a crash.
  auto rec = (*j)->record();
  auto saved = co_await db_.put_job(std::move(rec), state::durability::fsync);
  if (!saved) co_return R(boost::system::in_place_error, "saving the job failed: " + saved.error().message);
  auto snap = (*j)->snapshot();
  launch(std::move(*j));
  co_return snap;
}

asio::awaitable<boost::system::result<std::size_t, std::string>> job_manager::restore() {
  using R = boost::system::result<std::size_t, std::string>;
  auto untracked = [](state::state_db& db) { return db.untracked_uploads(); };
  auto orphans = co_await db_.run(std::move(untracked));
  if (!orphans) co_return R(boost::system::in_place_error, "reading the upload registry: " + orphans.error().message);
  for (const auto& u : *orphans) {
    if (auto client = remotes_(u.endpoint)) {
      auto r = co_await client->abort_multipart_upload(u.bucket, u.key, u.upload_id);
      if (!r && r.error().code != "NoSuchUpload") {
        spdlog::warn("aborting ferry's stale upload {} of {}:{}/{}: {} (kept; retried at the next start)", u.upload_id,
                     u.endpoint, u.bucket, u.key, r.error().to_string());
        continue;
      }
      spdlog::info("aborted ferry's stale multipart upload of {}:{}/{} (job {})", u.endpoint, u.bucket, u.key, u.job);
    }
    (void)co_await db_.remove_upload(u);
  }

  auto records = co_await db_.list_jobs();
  if (!records) co_return R(boost::system::in_place_error, "reading the jobs: " + records.error().message);
  std::size_t resumed = 0;
  for (const auto& r : *records) {
    job_request req;
    req.kind = r.kind;
    req.source = r.source;
    req.destination = r.destination;
    req.name = r.name;
    req.mode = r.mode;
    req.priority = static_cast<int>(std::clamp<std::uint64_t>(r.priority, 1, 100));
    auto opts = decode_job_options(r.options);
    if (opts) req.options = std::move(*opts);
    const auto st = parse_job_state(r.state).value_or(job_state::failed);
    auto prepared = opts ? prepare(req) : decltype(prepare(req))(boost::system::in_place_error, opts.error());
    std::shared_ptr<job> j;
    if (prepared) {
      j = std::move(*prepared);
    } else {
      j = std::make_shared<job>(ex_);
      j->req = req;
      j->cfg = cfg_;
      j->db = &db_;
    }
    auto& s = j->snap;
    s.id = r.id;
    s.name = r.name;
    s.kind = r.kind;
    s.source = r.source;
    s.destination = r.destination;
    s.mode = r.mode;
    s.priority = req.priority;
    s.options = req.options;
    s.state = st;
    s.created_at = r.created_at;
    s.started_at = r.started_at;
    s.finished_at = r.finished_at;
    s.objects_total = r.objects_total;
    s.objects_done = r.objects_done;
    s.objects_failed = r.objects_failed;
    s.objects_skipped = r.objects_skipped;
    s.bytes_total = r.bytes_total;
    s.bytes_done = r.bytes_done;
    s.server_side = r.server_side;
    s.streamed = r.streamed;
    s.fallbacks = r.fallbacks;
    s.error = r.error;
    s.deleted = r.deleted;
    s.passes = r.passes;
    s.last_pass_at = r.last_pass_at;
    s.plan = {r.plan_copy_objects, r.plan_copy_bytes,        r.plan_delete_objects,
              r.plan_delete_bytes, r.plan_unchanged_objects, r.plan_unchanged_bytes};
    s.delete_refused = r.delete_refused;
    if (terminal(st) || (st == job_state::paused && prepared)) {
      std::lock_guard lock(mu_);
      jobs_[s.id] = j;
      continue;
    }
    if (!prepared) {
      // Cannot run any more (a remote removed from the config, say): say so and keep the record.
      s.state = job_state::failed;
      s.error = "cannot resume after a restart: " + prepared.error();
      s.finished_at = clock::now();
      spdlog::error("job {}: {}", s.id, s.error);
      auto rec = j->record();
      (void)co_await db_.put_job(std::move(rec), state::durability::fsync);
      std::lock_guard lock(mu_);
      jobs_[s.id] = j;
      continue;
    }
    spdlog::info("job {}: resuming after a restart ({} {} -> {})", s.id, s.kind, s.source, s.destination);
    launch(std::move(j));
    ++resumed;
  }
  co_return resumed;
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

std::shared_ptr<job_manager::job> job_manager::find(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(std::string(id));
  return it == jobs_.end() ? nullptr : it->second;
}

void job_manager::interrupt(const std::shared_ptr<job>& j) {
  if (j->slot) scheduler_.cancel(j->slot);
  asio::post(j->strand, [j] {
    if (j->pause) j->pause->cancel();
    if (j->watcher) j->watcher->close();
  });
}

std::optional<job_snapshot> job_manager::cancel(std::string_view id) {
  auto j = find(id);
  if (!j) return std::nullopt;
  if (terminal(j->snapshot().state) || j->cancelled.exchange(true)) return j->snapshot();
  spdlog::info("job {}: cancel requested", j->snap.id);
  interrupt(j);
  return j->snapshot();
}

boost::system::result<job_snapshot, std::string> job_manager::pause(std::string_view id) {
  using R = boost::system::result<job_snapshot, std::string>;
  auto j = find(id);
  if (!j) return R(boost::system::in_place_error, "no job '" + std::string(id) + "'");
  const auto st = j->snapshot().state;
  if (terminal(st) || st == job_state::paused || !j->active.load() || j->cancelled.load()) return j->snapshot();
  spdlog::info("job {}: pause requested", j->snap.id);
  j->pausing = true;
  j->stopping = true;
  j->cancelled = true;
  interrupt(j);
  return j->snapshot();
}

boost::system::result<job_snapshot, std::string> job_manager::resume(std::string_view id) {
  using R = boost::system::result<job_snapshot, std::string>;
  auto j = find(id);
  if (!j) return R(boost::system::in_place_error, "no job '" + std::string(id) + "'");
  const auto st = j->snapshot().state;
  if (st != job_state::paused)
    return R(boost::system::in_place_error,
             "job " + j->snap.id + " is " + std::string(to_string(st)) +
                 (j->pausing.load() ? " (still pausing: try again in a moment)" : ", not paused: nothing to resume"));
  if (j->active.load() || !j->src)
    return R(boost::system::in_place_error, "job " + j->snap.id + " is still stopping: try again in a moment");
  j->pausing = false;
  j->stopping = false;
  j->cancelled = false;
  spdlog::info("job {}: resumed", j->snap.id);
  launch(j);
  return j->snapshot();
}

asio::awaitable<boost::system::result<job_snapshot, std::string>> job_manager::remove(std::string id) {
  using R = boost::system::result<job_snapshot, std::string>;
  auto j = find(id);
  if (!j) co_return R(boost::system::in_place_error, "no job '" + id + "'");
  const auto st = j->snapshot().state;
  if ((!terminal(st) && st != job_state::paused) || j->active.load())
    co_return R(boost::system::in_place_error, "job " + id + " is " + std::string(to_string(st)) +
                                                   ": cancel or pause it first (ferryctl cancel " + id + ")");
  {
    std::lock_guard lock(mu_);
    jobs_.erase(id);
  }
  auto r = co_await db_.delete_job(id);
  if (!r) co_return R(boost::system::in_place_error, "deleting the job's records failed: " + r.error().message);
  spdlog::info("job {} deleted", id);
  co_return j->snapshot();
}

asio::awaitable<void> job_manager::shutdown(std::chrono::milliseconds grace) {
  std::vector<std::shared_ptr<job>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, j] : jobs_) all.push_back(j);
  }
  for (const auto& j : all) {
    if (!j->active.load()) continue;
    j->stopping = true;
    j->cancelled = true;
    interrupt(j);
  }
  auto ex = co_await asio::this_coro::executor;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    const auto busy = std::count_if(all.begin(), all.end(), [](const auto& j) { return j->active.load(); });
    if (busy == 0) co_return;
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::warn("{} job(s) still busy after {} ms; their state resumes them at the next start", busy, grace.count());
      co_return;
    }
    asio::steady_timer t(ex, std::chrono::milliseconds(50));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<boost::system::result<state::state_db::integrity_page, std::string>> job_manager::report(
    std::string id, std::uint64_t after_seq, std::size_t limit) {
  using R = boost::system::result<state::state_db::integrity_page, std::string>;
  auto page = co_await db_.integrity_records(std::move(id), after_seq, limit);
  if (!page) co_return R(boost::system::in_place_error, "reading the integrity records: " + page.error().message);
  co_return std::move(*page);
}

}  // namespace ferry::sync
