#include "core/metrics.hpp"

#include "s3/client.hpp"
#include "util/metrics.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include <atomic>
#include <charconv>

namespace ferry::daemon {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

std::string render_metrics(const metrics_sources& src) {
  util::prometheus_writer w;
  using state = sync::job_state;
  const state states[] = {state::queued,    state::running, state::paused,
                          state::succeeded, state::failed,  state::cancelled};

  w.family("ferry_jobs", "gauge", "Jobs ferryd knows, by state.");
  for (auto st : states) {
    std::size_t n = 0;
    for (const auto& j : src.jobs) n += j.state == st ? 1 : 0;
    w.sample("ferry_jobs", {{"state", sync::to_string(st)}}, static_cast<double>(n));
  }

  w.family("ferry_job_info", "gauge", "One sample per job: its kind, name and state (value 1).");
  for (const auto& j : src.jobs)
    w.sample("ferry_job_info", {{"job", j.id}, {"name", j.name}, {"kind", j.kind}, {"state", sync::to_string(j.state)}},
             1);

  // Counters since this ferryd started, over all passes; the totals add up every job.
  w.family("ferry_job_objects_total", "counter",
           "Objects finished by a job since ferryd started: verified (copied, bytes checked), skipped (already "
           "identical), failed, mismatch (verification found different bytes; retried or failed).");
  sync::job_snapshot::lifetime_counts sum;
  std::uint64_t in_flight = 0;
  for (const auto& j : src.jobs) {
    const auto& c = j.lifetime;
    w.sample("ferry_job_objects_total", {{"job", j.id}, {"result", "verified"}}, static_cast<double>(c.copied));
    w.sample("ferry_job_objects_total", {{"job", j.id}, {"result", "skipped"}}, static_cast<double>(c.skipped));
    w.sample("ferry_job_objects_total", {{"job", j.id}, {"result", "failed"}}, static_cast<double>(c.failed));
    w.sample("ferry_job_objects_total", {{"job", j.id}, {"result", "mismatch"}}, static_cast<double>(c.mismatch));
    sum.copied += c.copied;
    sum.skipped += c.skipped;
    sum.failed += c.failed;
    sum.mismatch += c.mismatch;
    sum.bytes += c.bytes;
    sum.object_retries += c.object_retries;
    in_flight += j.in_flight;
  }
  w.family("ferry_job_bytes_copied_total", "counter", "Bytes of the objects a job copied since ferryd started.");
  for (const auto& j : src.jobs)
    w.sample("ferry_job_bytes_copied_total", {{"job", j.id}}, static_cast<double>(j.lifetime.bytes));
  w.family("ferry_job_object_retries_total", "counter",
           "Whole-object retries (after a verification mismatch, a changed source, a failed stream).");
  for (const auto& j : src.jobs)
    w.sample("ferry_job_object_retries_total", {{"job", j.id}}, static_cast<double>(j.lifetime.object_retries));
  w.family("ferry_job_objects_in_flight", "gauge", "Objects a job is copying now.");
  for (const auto& j : src.jobs)
    w.sample("ferry_job_objects_in_flight", {{"job", j.id}}, static_cast<double>(j.in_flight));
  w.family("ferry_job_pass_objects", "gauge", "The current (or last) pass: objects known, done, failed.");
  for (const auto& j : src.jobs) {
    w.sample("ferry_job_pass_objects", {{"job", j.id}, {"count", "total"}}, static_cast<double>(j.objects_total));
    w.sample("ferry_job_pass_objects", {{"job", j.id}, {"count", "done"}}, static_cast<double>(j.objects_done));
    w.sample("ferry_job_pass_objects", {{"job", j.id}, {"count", "failed"}}, static_cast<double>(j.objects_failed));
  }
  w.family("ferry_job_pass_bytes", "gauge", "The current (or last) pass: bytes known and done.");
  for (const auto& j : src.jobs) {
    w.sample("ferry_job_pass_bytes", {{"job", j.id}, {"count", "total"}}, static_cast<double>(j.bytes_total));
    w.sample("ferry_job_pass_bytes", {{"job", j.id}, {"count", "done"}}, static_cast<double>(j.bytes_done));
  }

  w.family("ferry_objects_total", "counter", "All jobs: objects finished since ferryd started, by result.");
  w.sample("ferry_objects_total", {{"result", "verified"}}, static_cast<double>(sum.copied));
  w.sample("ferry_objects_total", {{"result", "skipped"}}, static_cast<double>(sum.skipped));
  w.sample("ferry_objects_total", {{"result", "failed"}}, static_cast<double>(sum.failed));
  w.sample("ferry_objects_total", {{"result", "mismatch"}}, static_cast<double>(sum.mismatch));
  w.family("ferry_bytes_copied_total", "counter", "All jobs: bytes of the objects copied since ferryd started.");
  w.sample("ferry_bytes_copied_total", {}, static_cast<double>(sum.bytes));
  w.family("ferry_objects_in_flight", "gauge", "All jobs: objects being copied now.");
  w.sample("ferry_objects_in_flight", {}, static_cast<double>(in_flight));

  w.family("ferry_s3_requests_total", "counter", "S3 requests sent to a remote (each attempt counts).");
  for (const auto& [name, c] : src.remotes)
    w.sample("ferry_s3_requests_total", {{"remote", name}}, static_cast<double>(c->stats().requests.load()));
  w.family("ferry_s3_retries_total", "counter", "S3 requests retried, by the failure that caused the retry.");
  for (const auto& [name, c] : src.remotes)
    for (std::size_t i = 0; i < netmon::error_class_count; ++i)
      w.sample("ferry_s3_retries_total",
               {{"remote", name}, {"reason", netmon::to_string(static_cast<netmon::error_class>(i))}},
               static_cast<double>(c->stats().retries_by_reason[i].load()));
  w.family("ferry_s3_errors_total", "counter", "S3 requests that failed (retried or not), by failure.");
  for (const auto& [name, c] : src.remotes)
    for (std::size_t i = 0; i < netmon::error_class_count; ++i)
      w.sample("ferry_s3_errors_total",
               {{"remote", name}, {"reason", netmon::to_string(static_cast<netmon::error_class>(i))}},
               static_cast<double>(c->stats().errors_by_reason[i].load()));
  w.family("ferry_s3_throttles_total", "counter", "Throttling answers (503 SlowDown, 429 and the like).");
  for (const auto& [name, c] : src.remotes)
    w.sample("ferry_s3_throttles_total", {{"remote", name}}, static_cast<double>(c->stats().throttled.load()));
  w.family("ferry_s3_request_duration_seconds", "histogram",
           "Time from sending a request to its response head, per S3 operation (each attempt).");
  for (const auto& [name, c] : src.remotes)
    for (std::size_t i = 0; i < s3::operations.size(); ++i) {
      const auto h = c->stats().latency[i].read();
      if (h.count == 0) continue;
      w.histogram("ferry_s3_request_duration_seconds", {{"remote", name}, {"op", s3::operations[i]}}, h);
    }
  w.family("ferry_http_connections", "gauge", "Connections to a remote: open (leased and idle) and idle.");
  for (const auto& [name, c] : src.remotes) {
    const auto s = c->http().stats();
    w.sample("ferry_http_connections", {{"remote", name}, {"state", "open"}}, static_cast<double>(s.open));
    w.sample("ferry_http_connections", {{"remote", name}, {"state", "idle"}}, static_cast<double>(s.idle));
  }
  w.family("ferry_http_connections_created_total", "counter", "Connections ever opened to a remote.");
  for (const auto& [name, c] : src.remotes)
    w.sample("ferry_http_connections_created_total", {{"remote", name}},
             static_cast<double>(c->http().stats().created));
  // The network-quality monitor and the controller, per remote.
  std::vector<std::pair<std::string, netmon::snapshot>> paths;
  for (const auto& [name, c] : src.remotes) paths.emplace_back(name, c->path());
  w.family("ferry_path_rtt_seconds", "gauge",
           "Round-trip time to a remote: the windowed minimum (5 min) and the smoothed time to first byte.");
  for (const auto& [name, p] : paths) {
    if (p.min_rtt)
      w.sample("ferry_path_rtt_seconds", {{"remote", name}, {"kind", "min"}},
               std::chrono::duration<double>(*p.min_rtt).count());
    if (p.srtt)
      w.sample("ferry_path_rtt_seconds", {{"remote", name}, {"kind", "smoothed"}},
               std::chrono::duration<double>(*p.srtt).count());
  }
  w.family("ferry_path_throughput_bytes_per_second", "gauge",
           "Throughput to and from a remote over the last 5 s: all connections (total) and one connection.");
  for (const auto& [name, p] : paths) {
    w.sample("ferry_path_throughput_bytes_per_second", {{"remote", name}, {"scope", "total"}}, p.throughput);
    w.sample("ferry_path_throughput_bytes_per_second", {{"remote", name}, {"scope", "connection"}}, p.conn_throughput);
  }
  w.family("ferry_path_error_ratio", "gauge",
           "Share of a remote's requests that failed (any reason) or were throttled, last 60 s.");
  for (const auto& [name, p] : paths) {
    w.sample("ferry_path_error_ratio", {{"remote", name}, {"kind", "error"}}, p.error_rate);
    w.sample("ferry_path_error_ratio", {{"remote", name}, {"kind", "throttle"}}, p.throttle_rate);
  }
  w.family("ferry_path_quality", "gauge", "The path's grade (value 1 on the current one).");
  for (const auto& [name, p] : paths)
    w.sample("ferry_path_quality", {{"remote", name}, {"grade", netmon::to_string(p.quality)}}, 1);
  w.family("ferry_concurrency_limit", "gauge", "Data requests allowed in flight to a remote (the adaptive limit).");
  for (const auto& [name, c] : src.remotes)
    w.sample("ferry_concurrency_limit", {{"remote", name}}, static_cast<double>(c->concurrency_limit()));
  w.family("ferry_requests_in_flight", "gauge", "Data requests in flight to a remote.");
  for (const auto& [name, c] : src.remotes)
    w.sample("ferry_requests_in_flight", {{"remote", name}}, static_cast<double>(c->data_requests_in_flight()));
  w.family("ferry_concurrency_decisions_total", "counter",
           "Changes of a remote's concurrency limit, and of them backoffs.");
  for (const auto& [name, c] : src.remotes) {
    w.sample("ferry_concurrency_decisions_total", {{"remote", name}, {"kind", "all"}},
             static_cast<double>(c->controller().decisions()));
    w.sample("ferry_concurrency_decisions_total", {{"remote", name}, {"kind", "backoff"}},
             static_cast<double>(c->controller().backoffs()));
  }
  w.family("ferry_part_size_bytes", "gauge", "The latest multipart part size advised for uploads to a remote.");
  for (const auto& [name, c] : src.remotes)
    w.sample("ferry_part_size_bytes", {{"remote", name}}, static_cast<double>(c->last_advised_part_size()));
  std::string out = w.take();
  if (src.more) src.more(out);
  return out;
}

// ---- the HTTP listener ----

namespace {

constexpr std::size_t max_request_head = 8192;
constexpr auto request_timeout = std::chrono::seconds(5);
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool is_loopback(const asio::ip::address& a) {
  if (a.is_loopback()) return true;
  return a.is_v6() && a.to_v6().is_v4_mapped() &&
         asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
}

std::string http_response(std::string_view status, std::string_view type, std::string_view body) {
  return fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{}",
      status, type, body.size(), body);
}

}  // namespace

struct metrics_listener::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor e, std::function<std::string()> r)
      : ex(std::move(e)), strand(asio::make_strand(ex)), acceptor(strand), render(std::move(r)) {}

  asio::any_io_executor ex;
  asio::strand<asio::any_io_executor> strand;
  tcp::acceptor acceptor;
  std::function<std::string()> render;
  std::atomic<unsigned short> bound_port{0};

  asio::awaitable<void> serve(tcp::socket sock) {
    asio::steady_timer timer(sock.get_executor(), request_timeout);
    std::string head;
    auto r =
        co_await (asio::async_read_until(sock, asio::dynamic_buffer(head, max_request_head), "\r\n\r\n", use_tuple) ||
                  timer.async_wait(use_tuple));
    // Too slow, too large, or gone: close without an answer.
    if (r.index() != 0 || std::get<0>(std::get<0>(r))) {
      boost::system::error_code ec;
      sock.close(ec);
      co_return;
    }
    std::string reply;
    const std::string_view line(head.data(), head.find("\r\n"));
    if (line.starts_with("GET /metrics ") || line.starts_with("GET /metrics?"))
      reply = http_response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render());
    else if (line.starts_with("GET ") || line.starts_with("HEAD "))
      reply = http_response("404 Not Found", "text/plain", "ferryd serves only /metrics here\n");
    else
      reply = http_response("405 Method Not Allowed", "text/plain", "GET /metrics\n");
    timer.expires_after(request_timeout);
    co_await (asio::async_write(sock, asio::buffer(reply), use_tuple) || timer.async_wait(use_tuple));
    boost::system::error_code ec;
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    asio::steady_timer backoff(strand);
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(asio::make_strand(ex), use_tuple);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        spdlog::warn("metrics listener: accept failed: {}", ec.message());
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(use_tuple);
        continue;
      }
      auto exec = sock.get_executor();
      asio::co_spawn(exec, serve(std::move(sock)), asio::detached);
    }
  }
};

metrics_listener::metrics_listener(asio::any_io_executor ex, std::function<std::string()> render)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(render))) {}

metrics_listener::~metrics_listener() { stop(); }

boost::system::result<void, std::string> metrics_listener::start(const std::string& listen, bool allow_remote) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return "metrics listen '" + listen + "': want ADDRESS:PORT, e.g. 127.0.0.1:9464";
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  const auto port_text = std::string_view(listen).substr(colon + 1);
  auto [p, perr] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (perr != std::errc{} || p != port_text.data() + port_text.size() || port > 65535)
    return "metrics listen '" + listen + "': bad port";
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) return "metrics listen '" + listen + "': '" + host + "' is not an IP address";
  if (!allow_remote && !is_loopback(addr))
    return "metrics listen '" + listen + "' is not a loopback address; set [metrics] allow_remote = true to expose it";
  const tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    a.close(ignored);
    return "metrics listen '" + listen + "': " + ec.message();
  }
  impl_->bound_port = a.local_endpoint(ec).port();
  asio::co_spawn(impl_->strand, impl_->accept_loop(), asio::detached);
  const auto bound = a.local_endpoint(ec);
  const std::string shown =
      bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
  spdlog::info("metrics: serving http://{}:{}/metrics", shown, bound.port());
  return {};
}

void metrics_listener::stop() {
  asio::post(impl_->strand, [self = impl_] {
    boost::system::error_code ec;
    self->acceptor.close(ec);
  });
}

unsigned short metrics_listener::port() const { return impl_->bound_port.load(); }

}  // namespace ferry::daemon
