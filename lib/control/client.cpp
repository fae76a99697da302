#include "control/client.hpp"

#include "proto/rpc.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ferry::control {

using clock = std::chrono::steady_clock;

void throw_exception_from_error(const call_error& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

struct client::impl {
  int fd = -1;
  std::string path;
  client_options opts;
  std::string buf;  // bytes read past the last response line
  std::int64_t next_id = 1;

  ~impl() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  bool aborted() const { return opts.abort && opts.abort->load(); }

  call_error fail(call_error::kind k, std::string msg) {
    if (k != call_error::kind::rpc) close();
    return call_error{k, 0, std::move(msg)};
  }

  // Waits until fd is ready for `events` or the deadline passes. 0 on success, else an errno
  // (ETIMEDOUT, EINTR when aborted).
  int wait(short events, clock::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
      if (left <= 0) return ETIMEDOUT;
      pollfd p{fd, events, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
      if (rc > 0) return 0;
      if (rc < 0 && errno != EINTR) return errno;
      if (aborted()) return EINTR;
    }
  }

  // 0 or an errno.
  int send_all(std::string_view data, clock::time_point deadline) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) {
        if (aborted()) return EINTR;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (int e = wait(POLLOUT, deadline)) return e;
        continue;
      }
      return n < 0 ? errno : EPIPE;
    }
    return 0;
  }

  // Reads one line (without '\n') into `line`. 0, an errno, or EMSGSIZE / ECONNRESET (EOF).
  int read_line(std::string& line, clock::time_point deadline) {
    std::size_t scanned = 0;
    for (;;) {
      const auto nl = buf.find('\n', scanned);
      if (nl != std::string::npos) {
        line.assign(buf, 0, nl);
        buf.erase(0, nl + 1);
        return 0;
      }
      scanned = buf.size();
      if (buf.size() > proto::max_response_bytes) return EMSGSIZE;
      char chunk[64 * 1024];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n > 0) {
        buf.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return ECONNRESET;
      if (errno == EINTR) {
        if (aborted()) return EINTR;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (int e = wait(POLLIN, deadline)) return e;
        continue;
      }
      return errno;
    }
  }
};

client::client() : impl_(std::make_unique<impl>()) {}
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;
client::~client() = default;

call_result<client> client::connect(const std::string& socket_path, client_options opts) {
  auto unreachable = [&](std::string why) {
    return call_error{
        call_error::kind::unreachable, 0,
        "cannot reach ferryd at " + socket_path + ": " + why + " — is ferryd running? (--socket/FERRY_SOCKET)"};
  };
  sockaddr_un addr{};
  if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path)
    return unreachable("not a usable socket path (empty, or longer than " + std::to_string(sizeof addr.sun_path - 1) +
                       " bytes)");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());

  client c;
  c.impl_->path = socket_path;
  c.impl_->opts = opts;
  c.impl_->fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.impl_->fd < 0) return unreachable(std::strerror(errno));
  // A blocking AF_UNIX connect waits for room in the listener's backlog for up to SO_SNDTIMEO:
  // that bounds it when ferryd is alive but not accepting.
  const auto ms = std::max<long long>(1, opts.connect_timeout.count());
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  ::setsockopt(c.impl_->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int rc;
  do {
    rc = ::connect(c.impl_->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR && !c.impl_->aborted());
  if (rc != 0) {
    if (errno == EINTR) return call_error{call_error::kind::interrupted, 0, "interrupted"};
    if (errno == EAGAIN) return unreachable("ferryd is not accepting connections (timed out)");
    return unreachable(std::strerror(errno));
  }
  return c;
}

call_result<std::string> client::call(std::string_view method, std::string_view params_json) {
  auto& s = *impl_;
  using k = call_error::kind;
  if (s.fd < 0) return call_error{k::transport, 0, "not connected to ferryd (the connection failed earlier)"};
  const auto deadline = clock::now() + s.opts.call_timeout;
  const std::int64_t id = s.next_id++;
  const std::string line = proto::request_line(id, method, params_json);
  if (line.size() - 1 > proto::max_request_bytes)
    return call_error{k::transport, 0, "request too large (more than 1 MiB)"};

  auto transport = [&](int e, std::string_view during) {
    if (e == EINTR) return s.fail(k::interrupted, "interrupted");
    std::string why = e == ETIMEDOUT    ? "timed out after " + std::to_string(s.opts.call_timeout.count()) + " ms"
                      : e == ECONNRESET ? std::string("ferryd closed the connection")
                      : e == EMSGSIZE   ? std::string("response too large")
                                        : std::string(std::strerror(e));
    return s.fail(k::transport,
                  "lost connection to ferryd at " + s.path + " while " + std::string(during) + ": " + why);
  };

  const int send_err = s.send_all(line, deadline);
  std::string reply;
  if (send_err != 0) {
    // ferryd may have refused us (permission, too many connections) with an error line first.
    if (send_err == EINTR || s.read_line(reply, std::min(deadline, clock::now() + std::chrono::milliseconds(500))))
      return transport(send_err, "sending");
  } else if (const int e = s.read_line(reply, deadline)) {
    return transport(e, "waiting for the response");
  }

  auto resp = proto::parse_response(reply);
  if (!resp) return s.fail(k::transport, resp.error().message);
  const bool id_matches = std::holds_alternative<std::int64_t>(resp->id) && std::get<std::int64_t>(resp->id) == id;
  if (!resp->outcome) {
    // A null id: an error about the connection itself (refused, request too large); it stays no longer usable.
    if (!id_matches) s.close();
    const auto& e = resp->outcome.error();
    return call_error{k::rpc, e.code, e.message};
  }
  if (!id_matches)
    return s.fail(k::transport, "malformed response from ferryd: unexpected id " + proto::to_json(resp->id));
  return std::move(*resp->outcome);
}

call_result<std::string> client::next_notification(std::string_view method, std::chrono::milliseconds timeout) {
  auto& s = *impl_;
  using k = call_error::kind;
  if (s.fd < 0) return call_error{k::transport, 0, "not connected to ferryd (the connection failed earlier)"};
  const auto deadline = clock::now() + timeout;
  for (;;) {
    std::string line;
    if (const int e = s.read_line(line, deadline)) {
      if (e == EINTR) return s.fail(k::interrupted, "interrupted");
      if (e == ETIMEDOUT)
        return s.fail(k::transport,
                      "no event from ferryd at " + s.path + " for " + std::to_string(timeout.count()) + " ms");
      return s.fail(k::transport, "lost connection to ferryd at " + s.path + " while waiting for events: " +
                                      (e == ECONNRESET ? std::string("ferryd closed the connection")
                                                       : std::string(std::strerror(e))));
    }
    auto n = proto::parse_request(line);  // a notification is a request without an id
    if (!n) return s.fail(k::transport, "malformed event from ferryd: " + n.error().err.message);
    if (n->is_notification() && n->method == method) return std::move(n->params);
  }
}

}  // namespace ferry::control
