#include "core/service.hpp"

#include "control/server.hpp"
#include "proto/messages.hpp"
#include "s3/credentials.hpp"
#include "store/blocking.hpp"
#include "sync/job_manager.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <unistd.h>

#include <stdexcept>
#include <thread>

namespace ferry::daemon {

namespace asio = boost::asio;
namespace {

proto::job_state to_proto(sync::job_state s) {
  switch (s) {
    case sync::job_state::queued:
      return proto::job_state::queued;
    case sync::job_state::running:
      return proto::job_state::running;
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
  if (!s.error.empty()) j.error = s.error;
  for (const auto& f : s.failures) {
    if (j.failures.size() >= proto::max_failures_listed) break;
    j.failures.push_back({f.key, f.error});
  }
  return j;
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
  store::blocking_pool blocking{4};
  std::map<std::string, std::shared_ptr<s3::client>> remotes;
  sync::job_manager jobs;
  control::server server;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  explicit impl(daemon_config c)
      : cfg(std::move(c)),
        threads(cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency())),
        io(static_cast<int>(threads)),
        jobs(
            io.get_executor(), [this](std::string_view name) { return remote(name); }, cfg.engine, blocking),
        server(io.get_executor(), control_config()) {
    const auto env = s3::process_env();
    for (const auto& [name, r] : cfg.remotes) {
      auto creds = s3::resolve_credentials(r.credentials, env);
      if (!creds) throw std::runtime_error("remote '" + name + "': " + creds.error().message);
      auto http = std::make_shared<http::client>(io.get_executor(), pool_config_for(cfg, r));
      remotes.emplace(name, std::make_shared<s3::client>(std::move(http), r, std::move(*creds)));
      spdlog::info("remote {}: {} (region {}, {}, key {})", name, r.endpoint, r.region,
                   r.path_style ? "path-style" : "virtual-hosted", s3::redacted(remotes.at(name)->creds()));
    }
    register_methods();
  }

  control::server_config control_config() const {
    control::server_config sc;
    sc.socket_path = cfg.socket;
    return sc;
  }

  std::shared_ptr<s3::client> remote(std::string_view name) const {
    auto it = remotes.find(std::string(name));
    return it == remotes.end() ? nullptr : it->second;
  }

  void register_methods() {
    server.add_method(
        std::string(proto::method::job_create),
        [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
          auto p = proto::parse_job_create_params(req.params);
          if (!p) co_return p.error();
          sync::job_request jr{
              p->kind, p->source, p->destination, p->name.value_or(""),
              transfer::parse_copy_mode(p->copy_mode.value_or("auto")).value_or(transfer::copy_mode::automatic)};
          auto created = jobs.create(jr);
          // The kind was checked by the params parser; what is left is where.
          if (!created) co_return proto::error{proto::code::bad_location, created.error()};
          co_return proto::to_json(to_proto(*created));
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
    server.add_method(std::string(proto::method::daemon_status),
                      [this](const proto::request& req) -> asio::awaitable<control::handler_result> {
                        auto p = proto::parse_daemon_status_params(req.params);
                        if (!p) co_return p.error();
                        co_return proto::to_json(status());
                      });
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
    for (const auto& [name, r] : remotes) st.remotes.push_back(name);
    return st;
  }
};

service::service(daemon_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

service::~service() = default;

void service::stop() {
  // Requests in flight on the control socket get the server's grace period; then the loop ends.
  impl_->server.stop();
  asio::co_spawn(
      impl_->io,
      [d = impl_.get()]() -> asio::awaitable<void> {
        co_await d->server.async_wait_stopped();
        d->io.stop();
      },
      asio::detached);
}

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
  spdlog::info("ferryd {} ready: {} io threads, {} remotes, control socket {}", FERRY_VERSION, d.threads,
               d.remotes.size(), d.cfg.socket);
  sd_notify(0, "READY=1");

  std::vector<std::thread> pool;
  for (unsigned i = 1; i < d.threads; ++i) pool.emplace_back([&d] { d.io.run(); });
  d.io.run();
  for (auto& t : pool) t.join();
  sd_notify(0, "STOPPING=1");
  spdlog::info("ferryd stopped");
  return 0;
}

}  // namespace ferry::daemon
