#include "control/server.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ferry::control {

using asio::local::stream_protocol;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using stop_channel = asio::experimental::concurrent_channel<void(error_code)>;

// After an error that ends a connection, the client may still be sending (a request over the
// limit): keep reading for a moment so it can finish writing and read our error line, rather
// than getting EPIPE/ECONNRESET.
constexpr auto linger_time = 1s;
constexpr std::size_t linger_bytes = 64u << 20;

std::string errno_text(int e) { return std::strerror(e); }

// Creates the missing directories above `path` with `mode` (umask notwithstanding) and, when
// given, `group` (so that its members can reach the socket).
boost::system::result<void, std::string> make_parent_dirs(const std::filesystem::path& dir, unsigned mode,
                                                          std::optional<gid_t> group) {
  if (dir.empty()) return {};
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return dir.string() + " exists and is not a directory";
    return {};
  }
  if (errno != ENOENT) return "cannot use " + dir.string() + ": " + errno_text(errno);
  if (auto r = make_parent_dirs(dir.parent_path(), mode, group); !r) return r;
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST)
    return "cannot create " + dir.string() + ": " + errno_text(errno);
  if (::chmod(dir.c_str(), mode) != 0) return "cannot chmod " + dir.string() + ": " + errno_text(errno);
  if (group && ::chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0)
    return "cannot give " + dir.string() + " to control_group: " + errno_text(errno);
  return {};
}

// Removes a socket file left behind by a ferryd that died; refuses if one still listens on it,
// or if the file is not a socket.
boost::system::result<void, std::string> remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return "cannot use " + path + ": " + errno_text(errno);
  }
  if (!S_ISSOCK(st.st_mode)) return path + " exists and is not a socket; not removing it";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return "socket(): " + errno_text(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::close(fd);
  // EAGAIN: a listener whose backlog is full is still a listener.
  if (rc == 0 || err == EAGAIN) return "another process is listening on " + path + " (is ferryd already running?)";
  if (err != ECONNREFUSED && err != ENOENT) return "cannot probe " + path + ": " + errno_text(err);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return "cannot remove stale socket " + path + ": " + errno_text(errno);
  spdlog::info("control: removed stale socket {}", path);
  return {};
}

// Runs a handler with its exceptions turned into internal_error (`||` would otherwise wait for the
// other branch: it only completes early on success).
asio::awaitable<handler_result> guarded(const handler& h, const proto::request& req) {
  try {
    co_return co_await h(req);
  } catch (const boost::system::system_error& e) {
    // Cancelled by the timeout or stop(): the caller reports that.
    if (e.code() != asio::error::operation_aborted)
      spdlog::error("control: handler of {} failed: {}", req.method, e.what());
  } catch (const std::exception& e) {
    spdlog::error("control: handler of {} failed: {}", req.method, e.what());
  } catch (...) {
    spdlog::error("control: handler of {} failed with an unknown exception", req.method);
  }
  co_return proto::error{proto::code::internal_error, "internal error"};
}

}  // namespace

authorizer group_authorizer(gid_t group) {
  const uid_t self = ::geteuid();
  return [self, group](const peer& p) -> std::optional<std::string> {
    if (p.uid == 0 || p.uid == self || p.gid == group) return std::nullopt;
    // The peer's supplementary groups are those of its user in the group database.
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwuid_r(p.uid, &pw, buf.data(), buf.size(), &found) == 0 && found) {
      int n = 256;
      std::vector<gid_t> groups(static_cast<std::size_t>(n));
      if (::getgrouplist(pw.pw_name, p.gid, groups.data(), &n) >= 0) {
        for (int i = 0; i < n; ++i)
          if (groups[static_cast<std::size_t>(i)] == group) return std::nullopt;
      }
    }
    return "uid " + std::to_string(p.uid) + " is neither root, ferryd's uid " + std::to_string(self) +
           ", nor a member of control_group (gid " + std::to_string(group) + ")";
  };
}

authorizer default_authorizer() {
  const uid_t self = ::geteuid();
  return [self](const peer& p) -> std::optional<std::string> {
    if (p.uid == 0 || p.uid == self) return std::nullopt;
    return "uid " + std::to_string(p.uid) + " is neither root nor ferryd's uid " + std::to_string(self);
  };
}

// One client. Touched only on its strand (the socket's executor), except `id` (immutable).
struct connection {
  explicit connection(stream_protocol::socket s)
      : socket(std::move(s)), timer(socket.get_executor()), handler_timer(socket.get_executor()) {}

  stream_protocol::socket socket;
  asio::steady_timer timer;          // the read or write deadline; cancelled to interrupt it
  asio::steady_timer handler_timer;  // the handler deadline; cancelled at a hard stop
  std::uint64_t id = 0;
  peer who;
  bool reading = false;   // waiting for the next request: stop() may close at once
  bool stopping = false;  // stop() was called: finish the current request, then close
  bool cut_off = false;   // the grace period after stop() is over: no more writes
};

struct server::impl : std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor e, server_config c)
      : ex(std::move(e)), accept_ex(asio::make_strand(ex)), acceptor(accept_ex), cfg(std::move(c)) {}

  asio::any_io_executor ex;
  asio::any_io_executor accept_ex;  // a strand: the acceptor and the socket file
  stream_protocol::acceptor acceptor;
  server_config cfg;
  std::unordered_map<std::string, handler> handlers;  // fixed once started
  std::unordered_map<std::string, subscribe_handler> subscriptions;
  authorizer authorize = default_authorizer();
  std::atomic<bool> started{false};
  dev_t sock_dev = 0;
  ino_t sock_ino = 0;

  mutable std::mutex mu;  // guards everything below
  std::map<std::uint64_t, std::shared_ptr<connection>> conns;
  std::uint64_t next_id = 1;
  bool stopping = false;
  bool accepting = false;
  std::uint64_t accepted = 0, refused = 0;
  std::condition_variable cv;
  std::vector<std::shared_ptr<stop_channel>> waiters;
  std::shared_ptr<asio::steady_timer> grace;  // the stop_grace timer, on accept_ex

  bool stopped_locked() const { return stopping && !accepting && conns.empty(); }

  void notify_if_stopped_locked() {
    if (!stopped_locked()) return;
    // Nothing left to cut off: let the io_context run out of work now rather than after stop_grace.
    if (grace) asio::post(accept_ex, [g = grace] { g->cancel(); });
    cv.notify_all();
    for (auto& w : waiters) w->try_send(error_code{});
    waiters.clear();
  }

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> run_connection(std::shared_ptr<connection> c, std::optional<proto::error> refuse);
  // The reply line ("" for a notification) and, for a subscribing method, its events.
  struct dispatched {
    std::string reply;
    std::optional<subscription> events;
  };
  asio::awaitable<dispatched> dispatch(connection& c, std::string_view line);
  asio::awaitable<bool> run_subscription(connection& c, subscription& s, std::string& buf);
  asio::awaitable<bool> write(connection& c, std::string_view data);
  asio::awaitable<void> linger_close(connection& c);
  void close_acceptor();
  void remove_socket_file();
  void begin_stop();
};

server::server(asio::any_io_executor ex, server_config cfg)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(cfg))) {}

server::~server() { stop(); }

void server::add_method(std::string_view method, handler h) {
  if (impl_->started) throw std::logic_error("control::server::add_method after start()");
  impl_->handlers[std::string(method)] = std::move(h);
}

void server::add_subscription(std::string_view method, subscribe_handler h) {
  if (impl_->started) throw std::logic_error("control::server::add_subscription after start()");
  impl_->subscriptions[std::string(method)] = std::move(h);
}

void server::set_authorizer(authorizer a) {
  if (impl_->started) throw std::logic_error("control::server::set_authorizer after start()");
  impl_->authorize = std::move(a);
}

const server_config& server::config() const { return impl_->cfg; }

server_stats server::stats() const {
  std::lock_guard lk(impl_->mu);
  return {impl_->accepted, impl_->refused, impl_->conns.size()};
}

boost::system::result<void, std::string> server::start() {
  auto& s = *impl_;
  if (s.started) return "control server already started";
  const std::string& path = s.cfg.socket_path;
  if (path.empty()) return std::string("the control socket path is empty");
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return "control socket path too long (" + std::to_string(path.size()) + " bytes, at most " +
           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + "): " + path;
  if (auto r = make_parent_dirs(std::filesystem::path(path).parent_path(), s.cfg.dir_mode, s.cfg.socket_group); !r)
    return r;
  if (auto r = remove_stale_socket(path); !r) return r;

  error_code ec;
  const stream_protocol::endpoint ep(path);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (ec) {
    error_code ignored;
    s.acceptor.close(ignored);
    return "cannot bind control socket " + path + ": " + ec.message();
  }
  // Before listen(): until then nobody can connect, so there is no window with looser permissions.
  struct stat st {};
  if (::chmod(path.c_str(), s.cfg.socket_mode) != 0 ||
      (s.cfg.socket_group && ::chown(path.c_str(), static_cast<uid_t>(-1), *s.cfg.socket_group) != 0) ||
      ::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    s.acceptor.close(ec);
    ::unlink(path.c_str());
    return "cannot chmod control socket " + path + ": " + errno_text(e);
  }
  s.sock_dev = st.st_dev;
  s.sock_ino = st.st_ino;
  s.acceptor.listen(stream_protocol::acceptor::max_listen_connections, ec);
  if (ec) {
    s.acceptor.close(ec);
    ::unlink(path.c_str());
    return "cannot listen on control socket " + path + ": " + ec.message();
  }
  {
    std::lock_guard lk(s.mu);
    if (s.stopping) {
      s.acceptor.close(ec);
      ::unlink(path.c_str());
      return std::string("control server stopped before it started");
    }
    s.accepting = true;
    s.started = true;
  }
  asio::co_spawn(s.accept_ex, s.accept_loop(), asio::detached);
  spdlog::info("control: listening on {}", path);
  return {};
}

void server::stop() { impl_->begin_stop(); }

asio::awaitable<void> server::async_wait_stopped() {
  auto ch = std::make_shared<stop_channel>(co_await asio::this_coro::executor, 1);
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->stopped_locked()) co_return;
    impl_->waiters.push_back(ch);
  }
  co_await ch->async_receive(use_tuple);
}

bool server::wait_stopped_for(std::chrono::milliseconds timeout) {
  std::unique_lock lk(impl_->mu);
  return impl_->cv.wait_for(lk, timeout, [&] { return impl_->stopped_locked(); });
}

void server::impl::close_acceptor() {
  error_code ec;
  acceptor.close(ec);
}

void server::impl::remove_socket_file() {
  // Only if it is still ours: a new ferryd may have replaced it.
  struct stat st {};
  if (::lstat(cfg.socket_path.c_str(), &st) == 0 && st.st_dev == sock_dev && st.st_ino == sock_ino)
    ::unlink(cfg.socket_path.c_str());
}

void server::impl::begin_stop() {
  std::vector<std::shared_ptr<connection>> live;
  {
    std::lock_guard lk(mu);
    if (stopping) return;
    stopping = true;
    for (auto& [id, c] : conns) live.push_back(c);
    notify_if_stopped_locked();
  }
  // Now rather than on the acceptor's strand: the caller may stop the io_context right away.
  if (started) remove_socket_file();
  for (auto& c : live) {
    asio::post(c->socket.get_executor(), [c] {
      c->stopping = true;
      if (c->reading) c->timer.cancel();
    });
  }
  asio::post(accept_ex, [self = shared_from_this(), any_live = !live.empty()] {
    self->close_acceptor();
    if (!any_live) return;
    // Terminal step: whatever is still running after the grace period is cut off.
    auto timer = std::make_shared<asio::steady_timer>(self->accept_ex, self->cfg.stop_grace);
    {
      std::lock_guard lk(self->mu);
      if (self->stopped_locked()) return;
      self->grace = timer;
    }
    timer->async_wait([self](error_code ec) {
      if (ec) return;
      std::vector<std::shared_ptr<connection>> rest;
      {
        std::lock_guard lk(self->mu);
        for (auto& [id, c] : self->conns) rest.push_back(c);
      }
      for (auto& c : rest) {
        asio::post(c->socket.get_executor(), [c] {
          c->cut_off = true;
          c->timer.cancel();
          c->handler_timer.cancel();
          error_code ec;
          c->socket.cancel(ec);
        });
      }
    });
  });
}

asio::awaitable<void> server::impl::accept_loop() {
  auto self = shared_from_this();
  asio::steady_timer backoff(accept_ex);
  for (;;) {
    // Each connection gets its own strand: a slow one never holds up another.
    auto [ec, sock] = co_await acceptor.async_accept(asio::any_io_executor(asio::make_strand(ex)), use_tuple);
    if (ec) {
      std::lock_guard lk(mu);
      if (stopping || ec == asio::error::operation_aborted || !acceptor.is_open()) break;
    }
    if (ec) {
      // EMFILE and friends: wait a little rather than spin.
      spdlog::warn("control: accept failed: {}", ec.message());
      backoff.expires_after(100ms);
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    auto c = std::make_shared<connection>(std::move(sock));
    std::optional<proto::error> refuse;
    {
      std::lock_guard lk(mu);
      if (stopping) break;  // `c` closes as it goes out of scope
      ++accepted;
      if (conns.size() >= cfg.max_connections) {
        ++refused;
        refuse = proto::error{proto::code::unavailable, "too many connections to ferryd (" +
                                                            std::to_string(cfg.max_connections) + "); try again"};
      }
      c->id = next_id++;
      conns.emplace(c->id, c);
    }
    asio::co_spawn(c->socket.get_executor(), run_connection(c, std::move(refuse)), asio::detached);
  }
  std::lock_guard lk(mu);
  accepting = false;
  notify_if_stopped_locked();
}

asio::awaitable<bool> server::impl::write(connection& c, std::string_view data) {
  if (c.cut_off) co_return false;
  c.timer.expires_after(cfg.write_timeout);
  auto r = co_await (asio::async_write(c.socket, asio::buffer(data), use_tuple) || c.timer.async_wait(use_tuple));
  if (r.index() == 1) {
    spdlog::info("control: connection {}: write timed out or cut off, closing", c.id);
    co_return false;
  }
  auto [ec, n] = std::get<0>(r);
  (void)n;
  co_return !ec;
}

asio::awaitable<void> server::impl::linger_close(connection& c) {
  error_code ec;
  c.socket.shutdown(stream_protocol::socket::shutdown_send, ec);
  std::vector<char> sink(64 * 1024);
  std::size_t total = 0;
  c.timer.expires_after(linger_time);
  while (total < linger_bytes) {
    auto r = co_await (c.socket.async_read_some(asio::buffer(sink), use_tuple) || c.timer.async_wait(use_tuple));
    if (r.index() == 1) break;
    auto [rec, n] = std::get<0>(r);
    if (rec) break;
    total += n;
  }
}

asio::awaitable<server::impl::dispatched> server::impl::dispatch(connection& c, std::string_view line) {
  auto parsed = proto::parse_request(line);
  if (!parsed) {
    spdlog::debug("control: connection {}: bad request: {}", c.id, parsed.error().err.message);
    co_return dispatched{proto::error_line(parsed.error().id, parsed.error().err), {}};
  }
  const proto::request& req = *parsed;
  handler_result r = proto::error{};
  std::optional<subscription> events;
  auto it = handlers.find(req.method);
  auto sub = subscriptions.find(req.method);
  if (it == handlers.end() && sub == subscriptions.end()) {
    r = proto::error{proto::code::method_not_found, "method not found: " + req.method};
  } else {
    // A subscription's start is an ordinary handler: its events are awaited later, one by one.
    handler h = it != handlers.end() ? it->second : handler{};
    if (!h) {
      h = [&sub, &events](const proto::request& q) -> asio::awaitable<handler_result> {
        auto s = co_await sub->second(q);
        if (!s) co_return s.error();
        events = std::move(s->events);
        co_return std::move(s->result);
      };
    }
    c.handler_timer.expires_after(cfg.handler_timeout);
    auto out = co_await (guarded(h, req) || c.handler_timer.async_wait(use_tuple));
    if (out.index() == 0) {
      r = std::move(std::get<0>(out));
      if (r && r->empty()) {
        spdlog::error("control: handler of {} returned an empty result", req.method);
        r = proto::error{proto::code::internal_error, "internal error: empty result"};
      }
    } else if (c.stopping) {
      r = proto::error{proto::code::unavailable, "ferryd is stopping"};
    } else {
      spdlog::error("control: handler of {} timed out after {} ms", req.method, cfg.handler_timeout.count());
      r = proto::error{proto::code::internal_error, "internal error: " + req.method + " timed out"};
    }
  }
  if (!r || !events || !events->next) events.reset();
  // A subscription needs someone to send its events to.
  if (req.is_notification()) co_return dispatched{};
  co_return dispatched{r ? proto::result_line(*req.id, *r) : proto::error_line(*req.id, r.error()), std::move(events)};
}

asio::awaitable<bool> server::impl::run_subscription(connection& c, subscription& s, std::string& buf) {
  // Waiting for an event counts as reading: stop() may end it at once (it cancels `timer`). The
  // client's side is watched with a real read (a readiness wait can report data that is not there):
  // what arrives is kept for the request loop, which answers it once the subscription is over.
  std::array<char, 4096> chunk;
  for (;;) {
    if (c.stopping) co_return true;
    c.reading = true;
    c.timer.expires_at(asio::steady_timer::time_point::max());
    auto r = co_await (s.next() || c.socket.async_read_some(asio::buffer(chunk), use_tuple) ||
                       c.timer.async_wait(use_tuple));
    c.reading = false;
    if (r.index() == 1) {
      auto [ec, n] = std::get<1>(r);
      if (ec) co_return false;  // EOF or a reset: the client is gone
      buf.append(chunk.data(), n);
      co_return true;
    }
    if (r.index() == 2) co_return true;
    auto& params = std::get<0>(r);
    if (!params) co_return true;
    if (!co_await write(c, proto::notification_line(s.method, *params))) co_return false;
  }
}

asio::awaitable<void> server::impl::run_connection(std::shared_ptr<connection> c, std::optional<proto::error> refuse) {
  auto self = shared_from_this();
  ucred cred{};
  socklen_t len = sizeof cred;
  if (!refuse) {
    if (::getsockopt(c->socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      spdlog::warn("control: connection {}: cannot read peer credentials: {}", c->id, errno_text(errno));
      refuse = proto::error{proto::code::permission_denied, "permission denied: peer credentials unavailable"};
    } else {
      c->who = peer{cred.pid, cred.uid, cred.gid};
      std::optional<std::string> reason;
      try {
        reason = authorize ? authorize(c->who) : std::nullopt;
      } catch (const std::exception& e) {
        reason = std::string("authorizer failed: ") + e.what();
      }
      if (reason) {
        spdlog::warn("control: refused connection {} from pid {} uid {} gid {}: {}", c->id, c->who.pid, c->who.uid,
                     c->who.gid, *reason);
        refuse = proto::error{proto::code::permission_denied, "permission denied: " + *reason};
        std::lock_guard lk(mu);
        ++refused;
      } else {
        spdlog::debug("control: connection {} from pid {} uid {} gid {}", c->id, c->who.pid, c->who.uid, c->who.gid);
      }
    }
  } else {
    spdlog::warn("control: refused connection {}: {}", c->id, refuse->message);
  }

  if (refuse) {
    if (co_await write(*c, proto::error_line(nullptr, *refuse))) co_await linger_close(*c);
  } else {
    std::string buf;
    const std::size_t max = cfg.max_request_bytes;
    for (;;) {
      if (c->stopping) break;
      c->reading = true;
      c->timer.expires_after(cfg.idle_timeout);
      auto r = co_await (asio::async_read_until(c->socket, asio::dynamic_buffer(buf, max + 1), '\n', use_tuple) ||
                         c->timer.async_wait(use_tuple));
      c->reading = false;
      if (r.index() == 1) {
        if (!c->stopping) spdlog::debug("control: connection {}: idle, closing", c->id);
        break;
      }
      auto [ec, n] = std::get<0>(r);
      if (ec == asio::error::not_found) {
        spdlog::warn("control: connection {} (pid {} uid {}): request line over {} bytes, closing", c->id, c->who.pid,
                     c->who.uid, max);
        const proto::error e{proto::code::invalid_request,
                             "request too large (more than " + std::to_string(max) + " bytes in one line)"};
        if (co_await write(*c, proto::error_line(nullptr, e))) co_await linger_close(*c);
        break;
      }
      if (ec) break;  // EOF or a reset: the client is gone
      std::string_view line(buf.data(), n - 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      dispatched d;
      if (line.find_first_not_of(" \t") != std::string_view::npos) d = co_await dispatch(*c, line);
      buf.erase(0, n);
      if (!d.reply.empty() && !co_await write(*c, d.reply)) break;
      // Requests the client sent right behind this one end the subscription before it starts.
      if (d.events && buf.empty() && !co_await run_subscription(*c, *d.events, buf)) break;
    }
  }
  error_code ec;
  c->socket.close(ec);
  std::lock_guard lk(mu);
  conns.erase(c->id);
  notify_if_stopped_locked();
}

}  // namespace ferry::control
