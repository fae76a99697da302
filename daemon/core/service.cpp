#include "core/service.hpp"

#include "core/metrics.hpp"
#include "ratelimit/limiter.hpp"
#include "util/metrics.hpp"

#include "control/server.hpp"
#include "proto/messages.hpp"
#include "s3/credentials.hpp"
#include "state/state_db.hpp"
#include "store/blocking.hpp"
#include "sync/job_manager.hpp"
#include "util/failure.hpp"
#include "util/hash.hpp"
#include "util/units.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace ferry::daemon {

namespace asio = boost::asio;
namespace {

// Bytes/s through each gate over the last second, from the buckets' byte counters.
class bandwidth_meter {
 public:
  void sample(const ratelimit::limits& l, const std::vector<sync::job_snapshot>& jobs) {
    std::vector<std::shared_ptr<ratelimit::gate>> gates{l.global()};
    for (const auto& j : jobs)
      if (auto g = l.find_job(j.id)) gates.push_back(std::move(g));
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    std::map<const ratelimit::gate*, entry> next;
    for (const auto& g : gates) {
      entry e{g, now, g->bucket(ratelimit::direction::up).bytes(), g->bucket(ratelimit::direction::down).bytes(), 0, 0};
      if (auto it = last_.find(g.get()); it != last_.end() && it->second.gate.lock() == g) {
        const double s = std::chrono::duration<double>(now - it->second.at).count();
        if (s > 0) {
          e.up_bps = static_cast<std::uint64_t>(static_cast<double>(e.up - std::min(e.up, it->second.up)) / s);
          e.down_bps = static_cast<std::uint64_t>(static_cast<double>(e.down - std::min(e.down, it->second.down)) / s);
        }
      }
      next.emplace(g.get(), std::move(e));
    }
    last_ = std::move(next);
  }
  std::pair<std::uint64_t, std::uint64_t> rates(const ratelimit::gate* g) const {
    std::lock_guard lock(mu_);
    auto it = last_.find(g);
    return it == last_.end() ? std::pair<std::uint64_t, std::uint64_t>{}
                             : std::pair{it->second.up_bps, it->second.down_bps};
  }

 private:
  struct entry {
    std::weak_ptr<ratelimit::gate> gate;
    std::chrono::steady_clock::time_point at;
    std::uint64_t up = 0, down = 0;
    std::uint64_t up_bps = 0, down_bps = 0;
  };
  mutable std::mutex mu_;
  std::map<const ratelimit::gate*, entry> last_;
};

proto::job_state to_proto(sync::job_state s) {
  switch (s) {
    case sync::job_state::queued:
      return proto::job_state::queued;
    case sync::job_state::running:
      return proto::job_state::running;
    case sync::job_state::paused:
      return proto::job_state::paused;
    case sync::job_state::succeeded:
      return proto::job_state::succeeded;
    case sync::job_state::failed:
      return proto::job_state::failed;
    case sync::job_state::cancelled:
      return proto::job_state::cancelled;
  }
  return proto::job_state::failed;
}

proto::timestamp to_proto(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t);
}

proto::job to_proto(const sync::job_snapshot& s) {
  proto::job j;
  j.id = s.id;
  j.name = s.name;
  j.kind = s.kind;
  j.source = s.source;
  j.destination = s.destination;
  j.state = to_proto(s.state);
  j.created_at = to_proto(s.created_at);
  if (s.started_at) j.started_at = to_proto(*s.started_at);
  if (s.finished_at) j.finished_at = to_proto(*s.finished_at);
  j.objects = {s.objects_total, s.objects_done, s.objects_failed, s.objects_skipped};
  j.bytes = {s.bytes_total, s.bytes_done};
  j.copy_mode = std::string(transfer::to_string(s.mode));
  j.copy = {s.server_side, s.streamed, s.fallbacks};
  j.priority = s.priority;
  const auto& o = s.options;
  j.options.delete_extraneous = o.delete_extraneous;
  j.options.max_delete = o.max_delete;
  j.options.force = o.force;
  j.options.include = o.filter.include;
  j.options.exclude = o.filter.exclude;
  j.options.min_size = o.filter.min_size;
  j.options.max_size = o.filter.max_size;
  if (o.filter.min_age) j.options.min_age = static_cast<std::uint64_t>(o.filter.min_age->count());
  if (o.filter.max_age) j.options.max_age = static_cast<std::uint64_t>(o.filter.max_age->count());
  j.options.checksum = o.checksum;
  j.options.size_only = o.size_only;
  j.options.dry_run = o.dry_run;
  if (o.interval) j.options.interval = static_cast<std::uint64_t>(o.interval->count());
  if (!o.bwlimit.empty()) j.options.bwlimit = o.bwlimit;
  if (o.concurrency) j.options.concurrency = *o.concurrency;
  j.options.part_size = o.part_size;
  j.plan.to_copy = {s.plan.copy_objects, s.plan.copy_bytes};
  j.plan.to_delete = {s.plan.delete_objects, s.plan.delete_bytes};
  j.plan.unchanged = {s.plan.unchanged_objects, s.plan.unchanged_bytes};
  j.deleted = s.deleted;
  if (!s.delete_refused.empty()) j.delete_refused = s.delete_refused;
  j.passes = s.passes;
  if (s.last_pass_at) j.last_pass_at = to_proto(*s.last_pass_at);
  if (s.next_pass_at) j.next_pass_at = to_proto(*s.next_pass_at);
  if (!s.error.empty()) j.error = s.error;
  for (const auto& f : s.failures) {
    if (j.failures.size() >= proto::max_failures_listed) break;
    j.failures.push_back({f.key, f.error});
  }
  return j;
}

sync::job_request to_request(const proto::job_create_params& p) {
  sync::job_request r;
  r.kind = p.kind;
  r.source = p.source;
  r.destination = p.destination;
  r.name = p.name.value_or("");
  r.mode = transfer::parse_copy_mode(p.copy_mode.value_or("auto")).value_or(transfer::copy_mode::automatic);
  r.priority = p.priority.value_or(proto::default_priority);
  const auto& o = p.options;
  r.options.delete_extraneous = o.delete_extraneous;
  r.options.max_delete = o.max_delete;
  r.options.force = o.force;
  r.options.filter.include = o.include;
  r.options.filter.exclude = o.exclude;
  r.options.filter.min_size = o.min_size;
  r.options.filter.max_size = o.max_size;
  if (o.min_age) r.options.filter.min_age = std::chrono::seconds(*o.min_age);
  if (o.max_age) r.options.filter.max_age = std::chrono::seconds(*o.max_age);
  r.options.checksum = o.checksum;
  r.options.size_only = o.size_only;
  r.options.dry_run = o.dry_run;
  if (o.interval) r.options.interval = std::chrono::seconds(*o.interval);
  r.options.bwlimit = o.bwlimit.value_or("");
  if (o.concurrency) r.options.concurrency = static_cast<std::size_t>(*o.concurrency);
  r.options.part_size = o.part_size;
  return r;
}

proto::integrity_result to_proto(transfer::verdict v) {
  switch (v) {
    case transfer::verdict::verified:
      return proto::integrity_result::verified;
    case transfer::verdict::mismatch:
      return proto::integrity_result::mismatch;
    case transfer::verdict::failed:
      return proto::integrity_result::failed;
  }
  return proto::integrity_result::failed;
}

proto::integrity_record_entry to_proto(const state::integrity_entry& e) {
  proto::integrity_record_entry r;
  r.seq = e.seq;
  r.key = e.record.key;
  r.size = e.record.size;
  r.md5 = e.record.md5;
  r.crc32c = e.record.crc32c;
  r.sha256 = e.record.sha256;
  r.source_etag = e.record.source_etag;
  r.destination_etag = e.record.destination_etag;
  r.method = e.record.method;
  r.result = to_proto(e.record.result);
  r.error = e.record.error;
  r.time = to_proto(e.record.time);
  return r;
}

std::unique_ptr<state::state_db> open_state(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("state_dir " + dir + ": " + ec.message());
  auto db = state::state_db::open(dir);
  if (!db) throw std::runtime_error("state_dir " + dir + ": " + db.error().message);
  return std::move(*db);
}

http::pool_config pool_config_for(const daemon_config& cfg, const s3::remote_config& r) {
  http::pool_config p;
  p.max_connections = r.max_connections;
  p.timeout = cfg.timeouts;
  p.tls.ca_file = r.ca_file.empty() ? http::ca_file_from_env() : r.ca_file;
  return p;
}

}  // namespace

struct service::impl {
  daemon_config cfg;
  unsigned threads;
  asio::io_context io;
  // Before `blocking`: the pool's threads finish their RocksDB calls before the database closes.
  std::unique_ptr<state::state_db> db;
  store::blocking_pool blocking{4};
  mutable std::mutex remotes_mu;  // remotes and cfg.remotes change on reload
  std::mutex reload_mu;           // one reload at a time (SIGHUP and daemon.reload)
  std::map<std::string, std::shared_ptr<s3::client>> remotes;
  std::shared_ptr<ratelimit::limits> limits;
  bandwidth_meter meter;  // measured rates of the caps, sampled each second
  sync::job_manager jobs;
  control::server server;
  metrics_listener metrics_http;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  explicit impl(daemon_config c)
      : cfg(std::move(c)),
        threads(cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency())),
        io(static_cast<int>(threads)),
        db(open_state(cfg.state_dir)),
        limits(std::make_shared<ratelimit::limits>(timetable_of(cfg.bwlimit))),
        jobs(
            io.get_executor(), [this](std::string_view name) { return remote(name); }, engine_config(), blocking, *db),
        server(io.get_executor(), control_config()),
        metrics_http(io.get_executor(), [this] { return metrics_text(); }) {
    for (const auto& [name, r] : cfg.remotes) {
      auto client = make_client(name, r);
      if (!client) throw std::runtime_error(client.error());
      remotes.emplace(name, std::move(*client));
    }
    if (cfg.control_gid) server.set_authorizer(control::group_authorizer(*cfg.control_gid));
    register_methods();
  }

  // The config's bwlimit (load_config checked that it parses).
  static ratelimit::timetable timetable_of(const std::string& text) {
    auto tt = ratelimit::timetable::parse(text);
    if (!tt) throw std::runtime_error("bwlimit: " + tt.error());
    return std::move(*tt);
  }

  sync::engine_config engine_config() const {
    auto e = cfg.engine;
    e.limits = limits;
    return e;
  }

  control::server_config control_config() const {
    control::server_config sc;
    sc.socket_path = cfg.socket;
    sc.socket_group = cfg.control_gid;
    return sc;
  }

  boost::system::result<std::shared_ptr<s3::client>, std::string> make_client(const std::string& name,
                                                                              const s3::remote_config& r) {
    auto creds = s3::resolve_credentials(r.credentials, s3::process_env());
    if (!creds) return util::failure("remote '" + name + "': " + creds.error().message);
    auto http = std::make_shared<http::client>(io.get_executor(), pool_config_for(cfg, r));
    auto client =
        std::make_shared<s3::client>(std::move(http), r, std::move(*creds), s3::client::clock_fn{}, cfg.tuning);
    spdlog::info("remote {}: {} (region {}, {}, key {})", name, r.endpoint, r.region,
                 r.path_style ? "path-style" : "virtual-hosted", s3::redacted(client->creds()));
    return client;
  }

  std::shared_ptr<s3::client> remote(std::string_view name) const {
    std::lock_guard lock(remotes_mu);
    auto it = remotes.find(std::string(name));
    return it == remotes.end() ? nullptr : it->second;
  }

  static bool same_remote(const s3::remote_config& a, const s3::remote_config& b) {
    return a.endpoint == b.endpoint && a.region == b.region && a.path_style == b.path_style &&
           a.credentials.access_key_id == b.credentials.access_key_id &&
           a.credentials.secret_access_key == b.credentials.secret_access_key &&
           a.credentials.session_token == b.credentials.session_token && a.credentials.source == b.credentials.source &&
           a.ca_file == b.ca_file && a.max_connections == b.max_connections &&
           a.retry.max_attempts == b.retry.max_attempts;
  }

  // SIGHUP and daemon.reload: the config file again. Remotes (added, changed, removed) and the log
  // level apply at once; jobs keep running (a job already started keeps the client it has). A bad
  // file changes nothing. Settings that need a restart are named in the summary.
  boost::system::result<std::string, std::string> reload() {
    std::lock_guard one_at_a_time(reload_mu);
    if (cfg.path.empty()) return util::failure("ferryd was not started from a config file: nothing to reload");
    auto next = load_config(cfg.path);
    if (!next) return util::failure(next.error());
    std::map<std::string, std::shared_ptr<s3::client>> fresh;
    std::vector<std::string> added, changed, removed;
    {
      std::lock_guard lock(remotes_mu);
      for (const auto& [name, r] : next->remotes) {
        auto old = cfg.remotes.find(name);
        if (old != cfg.remotes.end() && same_remote(old->second, r)) {
          fresh.emplace(name, remotes.at(name));
          continue;
        }
        (old == cfg.remotes.end() ? added : changed).push_back(name);
      }
      for (const auto& [name, r] : cfg.remotes)
        if (!next->remotes.count(name)) removed.push_back(name);
    }
    for (const auto& group : {added, changed})
      for (const auto& name : group) {
        auto client = make_client(name, next->remotes.at(name));
        if (!client) return util::failure(client.error());
        fresh.emplace(name, std::move(*client));
      }
    {
      std::lock_guard lock(remotes_mu);
      remotes = std::move(fresh);
      cfg.remotes = next->remotes;
    }
    spdlog::default_logger()->set_level(spdlog::level::from_str(next->log_level));
    // The file was parsed, so its bwlimit parses too.
    if (next->bwlimit != cfg.bwlimit) limits->global()->set_timetable(timetable_of(next->bwlimit));
    auto list = [](const std::vector<std::string>& v) {
      std::string out;
      for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
      return out.empty() ? std::string("none") : out;
    };
    std::vector<std::string> restart;
    if (next->socket != cfg.socket) restart.push_back("socket");
    if (next->state_dir != cfg.state_dir) restart.push_back("state_dir");
    if (next->threads != cfg.threads) restart.push_back("threads");
    if (next->control_group != cfg.control_group) restart.push_back("control_group");
    std::string summary = "log level " + next->log_level + "; bwlimit " + next->bwlimit +
                          "; remotes added: " + list(added) + "; changed: " + list(changed) +
                          "; removed: " + list(removed);
    if (!restart.empty()) summary += "; needs a restart to apply: " + list(restart);
    summary += " ([transfer], [sync], [state], [http] apply at the next start)";
    cfg.log_level = next->log_level;
    cfg.bwlimit = next->bwlimit;
    spdlog::info("config reloaded from {}: {}", cfg.path, summary);
    return boost::system::result<std::string, std::string>(boost::system::in_place_value, std::move(summary));
  }

  void register_methods() {
    server.add_method(std::string(proto::method::job_create),
                      [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
                        auto p = proto::parse_job_create_params(req.params);
                        if (!p) co_return p.error();
                        auto request = to_request(*p);
                        if (auto why = sync::check_request(request); !why.empty())
                          co_return proto::error{proto::code::invalid_params, why};
                        auto created = co_await jobs.create(std::move(request));
                        // Types and limits were checked by the params parser; what is left is the job's sense.
                        if (!created) co_return proto::error{proto::code::bad_location, created.error()};
                        co_return proto::to_json(to_proto(*created));
                      });
    server.add_method(
        std::string(proto::method::job_cancel),
        [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
          auto p = proto::parse_job_cancel_params(req.params);
          if (!p) co_return p.error();
          auto j = jobs.cancel(p->id);
          if (!j)
            co_return proto::error{proto::code::job_not_found, "no job '" + p->id + "' (list them: ferryctl jobs)"};
          co_return proto::to_json(to_proto(*j));
        });
    // job.pause, job.resume: a job that cannot do it now gets invalid_params with the reason.
    for (const auto m : {proto::method::job_pause, proto::method::job_resume}) {
      server.add_method(
          std::string(m), [this, m](const proto::request& req) -> asio::awaitable<control::handler_result> {
            auto p = proto::parse_job_get_params(req.params);
            if (!p) co_return p.error();
            if (!jobs.get(p->id))
              co_return proto::error{proto::code::job_not_found, "no job '" + p->id + "' (list them: ferryctl jobs)"};
            auto j = m == proto::method::job_pause ? jobs.pause(p->id) : jobs.resume(p->id);
            if (!j) co_return proto::error{proto::code::invalid_params, j.error()};
            co_return proto::to_json(to_proto(*j));
          });
    }
    server.add_method(
        std::string(proto::method::job_delete),
        [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
          auto p = proto::parse_job_get_params(req.params);
          if (!p) co_return p.error();
          if (!jobs.get(p->id))
            co_return proto::error{proto::code::job_not_found, "no job '" + p->id + "' (list them: ferryctl jobs)"};
          auto j = co_await jobs.remove(p->id);
          if (!j) co_return proto::error{proto::code::invalid_params, j.error()};
          co_return proto::to_json(to_proto(*j));
        });
    server.add_method(
        std::string(proto::method::job_report),
        [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
          auto p = proto::parse_job_report_params(req.params);
          if (!p) co_return p.error();
          if (!jobs.get(p->id))
            co_return proto::error{proto::code::job_not_found, "no job '" + p->id + "' (list them: ferryctl jobs)"};
          auto page = co_await jobs.report(p->id, p->after, static_cast<std::size_t>(p->limit));
          if (!page) co_return proto::error{proto::code::internal_error, page.error()};
          proto::job_report_result r;
          for (const auto& e : page->entries) r.records.push_back(to_proto(e));
          r.next_after = page->next_after;
          r.more = page->more;
          co_return proto::to_json(r);
        });
    server.add_method(
        std::string(proto::method::job_get),
        [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
          auto p = proto::parse_job_get_params(req.params);
          if (!p) co_return p.error();
          auto j = jobs.get(p->id);
          if (!j)
            co_return proto::error{proto::code::job_not_found, "no job '" + p->id + "' (list them: ferryctl jobs)"};
          co_return proto::to_json(to_proto(*j));
        });
    server.add_method(std::string(proto::method::job_list),
                      [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
                        auto p = proto::parse_job_list_params(req.params);
                        if (!p) co_return p.error();
                        proto::job_list_result r;
                        for (const auto& s : jobs.list()) r.jobs.push_back(to_proto(s));
                        co_return proto::to_json(r);
                      });
    server.add_method(std::string(proto::method::remote_list),
                      [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
                        auto p = proto::parse_remote_list_params(req.params);
                        if (!p) co_return p.error();
                        proto::remote_list_result r;
                        std::lock_guard lock(remotes_mu);
                        for (const auto& [name, rc] : cfg.remotes) {
                          const auto& src = rc.credentials.source;
                          r.remotes.push_back({name, rc.endpoint, rc.region, rc.path_style,
                                               src.empty() ? "static" : src, rc.max_connections});
                        }
                        co_return proto::to_json(r);
                      });
    server.add_method(std::string(proto::method::remote_test),
                      [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
                        auto p = proto::parse_remote_test_params(req.params);
                        if (!p) co_return p.error();
                        auto client = remote(p->name);
                        if (!client)
                          co_return proto::error{
                              proto::code::bad_location,
                              "no remote named '" + p->name + "' in the config (list them: ferryctl remotes)"};
                        co_return proto::to_json(co_await test_remote(*client, p->name, p->bucket));
                      });
    server.add_method(std::string(proto::method::daemon_reload),
                      [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
                        auto p = proto::parse_daemon_status_params(req.params);  // {} too
                        if (!p) co_return p.error();
                        auto r = reload();
                        if (!r) co_return proto::error{proto::code::invalid_params, r.error()};
                        co_return proto::to_json(proto::daemon_reload_result{*r});
                      });
    server.add_method(std::string(proto::method::limits_get),
                      [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
                        auto p = proto::parse_daemon_status_params(req.params);  // {}
                        if (!p) co_return p.error();
                        co_return proto::to_json(limits_now());
                      });
    server.add_method(
        std::string(proto::method::limits_set),
        [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
          auto p = proto::parse_limits_set_params(req.params);
          if (!p) co_return p.error();
          if (p->job) {
            if (!jobs.get(*p->job))
              co_return proto::error{proto::code::job_not_found, "no job '" + *p->job + "' (list them: ferryctl jobs)"};
            auto r = co_await jobs.set_bwlimit(*p->job, p->bwlimit);
            if (!r) co_return proto::error{proto::code::invalid_params, "bwlimit: " + r.error()};
          } else {
            auto tt = ratelimit::timetable::parse(p->bwlimit);
            if (!tt) co_return proto::error{proto::code::invalid_params, "bwlimit: " + tt.error()};
            spdlog::info("global bandwidth cap now {} (until ferryd restarts or reloads its config)", tt->to_string());
            limits->global()->set_timetable(std::move(*tt));
          }
          co_return proto::to_json(limits_now());
        });
    server.add_method(std::string(proto::method::daemon_metrics),
                      [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
                        auto p = proto::parse_daemon_status_params(req.params);  // {}
                        if (!p) co_return p.error();
                        co_return proto::to_json(proto::daemon_metrics_result{metrics_text()});
                      });
    server.add_subscription(
        std::string(proto::method::job_events),
        [this](const proto::request& req) -> asio::awaitable<proto::result<control::subscribed>> {
          auto p = proto::parse_job_events_params(req.params);
          if (!p) co_return p.error();
          auto j = jobs.get(p->id);
          if (!j)
            co_return proto::error{proto::code::job_not_found, "no job '" + p->id + "' (list them: ferryctl jobs)"};
          co_return control::subscribed{proto::to_json(to_proto(*j)), job_events(*p)};
        });
    server.add_method(std::string(proto::method::daemon_status),
                      [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
                        auto p = proto::parse_daemon_status_params(req.params);
                        if (!p) co_return p.error();
                        co_return proto::to_json(status());
                      });
  }

  proto::limit_info limit_of(const std::string& scope, const ratelimit::gate& g) const {
    proto::limit_info l;
    l.scope = scope;
    l.bwlimit = g.current_timetable().to_string();
    l.up_bps = g.bucket(ratelimit::direction::up).rate();
    l.down_bps = g.bucket(ratelimit::direction::down).rate();
    const auto r = meter.rates(&g);
    l.rate_up_bps = r.first;
    l.rate_down_bps = r.second;
    return l;
  }

  proto::limits_result limits_now() const {
    proto::limits_result r;
    r.global = limit_of("global", *limits->global());
    for (const auto& j : jobs.list()) {
      if (j.state != sync::job_state::queued && j.state != sync::job_state::running &&
          j.state != sync::job_state::paused)
        continue;
      auto g = limits->find_job(j.id);
      if (!g || g->current_timetable() == ratelimit::timetable{}) continue;
      r.jobs.push_back(limit_of(j.id, *g));
    }
    return r;
  }

  std::string metrics_text() const {
    metrics_sources src;
    src.jobs = jobs.list();
    {
      std::lock_guard lock(remotes_mu);
      src.remotes = remotes;
    }
    src.more = [this](std::string& out) {
      util::prometheus_writer w;
      const auto l = limits_now();
      std::vector<proto::limit_info> all{l.global};
      all.insert(all.end(), l.jobs.begin(), l.jobs.end());
      w.family("ferry_bandwidth_cap_bytes_per_second", "gauge",
               "The cap in force (0: none), global and per job with a cap of its own.");
      for (const auto& i : all) {
        w.sample("ferry_bandwidth_cap_bytes_per_second", {{"scope", i.scope}, {"direction", "up"}},
                 static_cast<double>(i.up_bps));
        w.sample("ferry_bandwidth_cap_bytes_per_second", {{"scope", i.scope}, {"direction", "down"}},
                 static_cast<double>(i.down_bps));
      }
      w.family("ferry_bandwidth_rate_bytes_per_second", "gauge", "Bytes/s through the cap's gate, last second.");
      for (const auto& i : all) {
        w.sample("ferry_bandwidth_rate_bytes_per_second", {{"scope", i.scope}, {"direction", "up"}},
                 static_cast<double>(i.rate_up_bps));
        w.sample("ferry_bandwidth_rate_bytes_per_second", {{"scope", i.scope}, {"direction", "down"}},
                 static_cast<double>(i.rate_down_bps));
      }
      out += w.take();
    };
    return render_metrics(src);
  }

  // job.events: one event per interval with the job and its recent rate, until it ends or pauses.
  control::subscription job_events(const proto::job_events_params& p) {
    struct progress {
      std::string id;
      std::chrono::milliseconds interval;
      std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> samples;  // bytes done
      bool over = false;
    };
    auto st = std::make_shared<progress>(progress{p.id, std::chrono::milliseconds(p.interval_ms), {}, false});
    if (auto j = jobs.get(p.id)) st->samples.emplace_back(std::chrono::steady_clock::now(), j->bytes_done);
    control::subscription sub;
    sub.method = std::string(proto::notification::job_event);
    sub.next = [this, st]() -> asio::awaitable<std::optional<std::string>> {
      if (st->over) co_return std::nullopt;
      asio::steady_timer timer(co_await asio::this_coro::executor, st->interval);
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return std::nullopt;
      auto j = jobs.get(st->id);
      if (!j) co_return std::nullopt;  // deleted meanwhile
      const auto now = std::chrono::steady_clock::now();
      // A new mirror pass restarts the byte count: start the rate afresh.
      if (!st->samples.empty() && j->bytes_done < st->samples.back().second) st->samples.clear();
      st->samples.emplace_back(now, j->bytes_done);
      while (st->samples.size() > 2 && now - st->samples.front().first > std::chrono::seconds(5))
        st->samples.pop_front();
      proto::job_event e;
      e.job = to_proto(*j);
      const double span = std::chrono::duration<double>(now - st->samples.front().first).count();
      if (span > 0)
        e.rate_bps = static_cast<std::uint64_t>(static_cast<double>(j->bytes_done - st->samples.front().second) / span);
      if (e.rate_bps > 0 && j->bytes_total >= j->bytes_done)
        e.eta_seconds = (j->bytes_total - j->bytes_done) / e.rate_bps;
      e.final = j->state != sync::job_state::queued && j->state != sync::job_state::running;
      st->over = e.final;
      co_return proto::to_json(e);
    };
    return sub;
  }

  // One signed HEAD of a bucket: its answer says whether the endpoint is reachable and whether it
  // accepted the signature. By default a bucket no one uses: its 404 proves both without touching data.
  static asio::awaitable<proto::remote_test_result> test_remote(s3::client& client, std::string name,
                                                                std::optional<std::string> bucket) {
    proto::remote_test_result r;
    r.name = std::move(name);
    const std::string b = bucket.value_or("ferry-remote-test-no-such-bucket");
    const auto began = std::chrono::steady_clock::now();
    auto head = co_await client.head_bucket(b);
    r.latency_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began).count());
    if (head) {
      r.reachable = r.credentials_ok = true;
      r.detail = "bucket " + b + " is there";
    } else if (head.error().http_status == 0) {
      r.detail = "unreachable: " + head.error().to_string();
    } else {
      r.reachable = true;
      const auto status = head.error().http_status;
      r.credentials_ok = status != 401 && status != 403;
      r.detail = status == 404 ? (bucket ? "no bucket " + b : "reachable; the signature was accepted")
                               : head.error().to_string();
    }
    co_return r;
  }

  proto::daemon_status status() const {
    proto::daemon_status st;
    st.version = FERRY_VERSION;
    st.pid = ::getpid();
    st.uptime_seconds = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count());
    for (const auto& s : jobs.list()) {
      ++st.jobs.total;
      switch (s.state) {
        case sync::job_state::queued:
          ++st.jobs.queued;
          break;
        case sync::job_state::running:
          ++st.jobs.running;
          break;
        case sync::job_state::paused:
          ++st.jobs.paused;
          break;
        case sync::job_state::succeeded:
          ++st.jobs.succeeded;
          break;
        case sync::job_state::failed:
          ++st.jobs.failed;
          break;
        case sync::job_state::cancelled:
          ++st.jobs.cancelled;
          break;
      }
    }
    std::map<std::string, std::shared_ptr<s3::client>> rs;
    {
      std::lock_guard lock(remotes_mu);
      rs = remotes;
    }
    for (const auto& [name, c] : rs) {
      st.remotes.push_back(name);
      const auto p = c->path();
      proto::path_info i;
      i.remote = name;
      i.quality = std::string(netmon::to_string(p.quality));
      auto ms = [](netmon::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
      if (p.min_rtt) i.min_rtt_ms = ms(*p.min_rtt);
      if (p.srtt) i.srtt_ms = ms(*p.srtt);
      i.throughput_bps = static_cast<std::uint64_t>(p.throughput);
      i.error_rate = p.error_rate;
      i.throttle_rate = p.throttle_rate;
      i.concurrency_limit = c->concurrency_limit();
      i.in_flight = c->data_requests_in_flight();
      i.part_size = c->last_advised_part_size();
      st.paths.push_back(std::move(i));
    }
    st.bandwidth = limit_of("global", *limits->global());
    return st;
  }
};

service::service(daemon_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

service::~service() = default;

void service::stop() {
  // Requests in flight on the control socket get the server's grace period; then the loop ends.
  impl_->server.stop();
  impl_->metrics_http.stop();
  asio::co_spawn(
      impl_->io,
      [d = impl_.get()]() -> asio::awaitable<void> {
        co_await d->server.async_wait_stopped();
        // Jobs pause where they are (their state says running) and resume at the next start.
        co_await d->jobs.shutdown(d->cfg.shutdown_grace);
        d->io.stop();
      },
      asio::detached);
}

namespace {

// systemd: WATCHDOG=1 sent from the event loop itself, so a loop that is stuck stops the pings and
// systemd restarts ferryd (WatchdogSec= in the unit); STATUS= with the jobs and the current rate,
// for `systemctl status`. Ends when the io_context stops.
asio::awaitable<void> notify_systemd(const sync::job_manager& jobs) {
  std::uint64_t usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &usec) > 0 && usec > 0;
  const auto period =
      watchdog ? std::min<std::chrono::microseconds>(std::chrono::microseconds(usec / 2), std::chrono::seconds(5))
               : std::chrono::microseconds(std::chrono::seconds(5));
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::uint64_t last_bytes = 0;
  auto last = std::chrono::steady_clock::now();
  for (;;) {
    timer.expires_after(period);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    if (watchdog) sd_notify(0, "WATCHDOG=1");
    std::size_t running = 0;
    std::uint64_t bytes = 0;
    for (const auto& j : jobs.list()) {
      if (j.state == sync::job_state::running) ++running;
      bytes += j.bytes_done;
    }
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last).count();
    // Counters restart with each mirror pass: a drop is no negative rate.
    const auto rate =
        bytes >= last_bytes && seconds > 0 ? static_cast<std::uint64_t>((bytes - last_bytes) / seconds) : 0;
    last_bytes = bytes;
    last = now;
    sd_notifyf(0, "STATUS=%zu job(s) running, %s/s", running, util::format_bytes(rate).c_str());
  }
}

}  // namespace

int service::run() {
  auto& d = *impl_;
  if (auto started = d.server.start(); !started) {
    spdlog::critical("control socket: {}", started.error());
    return 1;
  }
  asio::signal_set signals(d.io, SIGTERM, SIGINT);
  signals.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping", sig);
    stop();
  });
  asio::signal_set hangup(d.io, SIGHUP);
  std::function<void()> wait_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (auto r = d.reload(); !r) spdlog::error("SIGHUP: config not reloaded (nothing changed): {}", r.error());
      wait_hangup();
    });
  };
  wait_hangup();
  spdlog::info("ferryd {} ready: {} io threads, {} remotes, control socket {}, state {}", FERRY_VERSION, d.threads,
               d.remotes.size(), d.cfg.socket, d.cfg.state_dir);
  // The state is open and the socket listens: ready. Unfinished jobs resume right after.
  if (!d.cfg.metrics.listen.empty()) {
    if (auto m = d.metrics_http.start(d.cfg.metrics.listen, d.cfg.metrics.allow_remote); !m) {
      spdlog::critical("{}", m.error());
      return 1;
    }
  }
  sd_notify(0, "READY=1");
  asio::co_spawn(d.io, notify_systemd(d.jobs), asio::detached);
  // Timetables change rates on the minute; the meter measures the gates' rates.
  asio::co_spawn(
      d.io,
      [&d]() -> asio::awaitable<void> {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        for (;;) {
          timer.expires_after(std::chrono::seconds(1));
          auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
          if (ec) co_return;
          d.limits->tick();
          d.meter.sample(*d.limits, d.jobs.list());
        }
      },
      asio::detached);
  // Jobs a crash or a stop interrupted carry on without being asked.
  asio::co_spawn(
      d.io,
      [&d]() -> asio::awaitable<void> {
        auto resumed = co_await d.jobs.restore();
        if (!resumed)
          spdlog::error("resuming jobs: {}", resumed.error());
        else if (*resumed > 0)
          spdlog::info("resumed {} unfinished job(s)", *resumed);
      },
      asio::detached);

  std::vector<std::thread> pool;
  for (unsigned i = 1; i < d.threads; ++i) pool.emplace_back([&d] { d.io.run(); });
  d.io.run();
  for (auto& t : pool) t.join();
  sd_notify(0, "STOPPING=1");
  spdlog::info("ferryd stopped");
  return 0;
}

}  // namespace ferry::daemon
