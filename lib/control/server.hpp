#pragma once
// lib/control: the Unix-socket JSON-RPC server that ferryd exposes to ferryctl
// (proto/PROTOCOL.md). It frames lines, checks peers, applies limits and timeouts, and
// dispatches each request to a registered handler; it knows nothing about jobs.
#include "proto/error.hpp"
#include "proto/rpc.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::control {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Who is at the other end of a connection (SO_PEERCRED, taken at accept time).
struct peer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// std::nullopt allows the peer; a string refuses it with that reason (logged; the client gets
// permission_denied and is disconnected).
using authorizer = std::function<std::optional<std::string>(const peer&)>;

// Allows root and the daemon's own effective uid.
authorizer default_authorizer();
// Allows root, the daemon's own effective uid, and members of `group`: the peer's primary gid, or a
// supplementary group of the peer's user (looked up when it connects).
authorizer group_authorizer(gid_t group);

// A handler's answer: the result as JSON text (proto::to_json, proto::json_writer), or an error.
using handler_result = proto::result<std::string>;

// Runs one method. Runs on the connection's strand; must honour cancellation (a handler that runs
// past server_config::handler_timeout is cancelled and the client gets internal_error).
// Exceptions become internal_error. The request outlives the returned awaitable.
using handler = std::function<asio::awaitable<handler_result>(const proto::request&)>;

// A subscription's events: each call of `next` waits for the next notification and returns its
// params as JSON text, or nullopt when there are no more. It is cancelled (through the coroutine's
// cancellation slot) when the client closes the connection, sends another request, or the server
// stops; it must not wait without a bound of its own.
struct subscription {
  std::string method;  // the notifications' method, e.g. "job.event"
  std::function<asio::awaitable<std::optional<std::string>>()> next;
};

// A subscribing method's answer: the reply's result JSON and the events that follow it on the
// same connection; or an error (then nothing follows).
struct subscribed {
  std::string result;
  subscription events;
};
using subscribe_handler = std::function<asio::awaitable<proto::result<subscribed>>(const proto::request&)>;

struct server_config {
  std::string socket_path = "/run/ferry/ferryd.sock";
  unsigned socket_mode = 0660;                               // the socket file
  unsigned dir_mode = 0750;                                  // parent directories the server creates
  std::optional<gid_t> socket_group;                         // the socket's (and those directories') group
  std::size_t max_request_bytes = proto::max_request_bytes;  // one line, excluding '\n'
  std::size_t max_connections = 64;                          // more are told "unavailable" and closed
  std::chrono::milliseconds idle_timeout = 5min;             // for a complete request line to arrive
  std::chrono::milliseconds write_timeout = 10s;             // for one response to be written
  std::chrono::milliseconds handler_timeout = 60s;           // for one handler to answer
  std::chrono::milliseconds stop_grace = 2s;                 // for in-flight requests after stop()
};

struct server_stats {
  std::uint64_t accepted = 0;  // connections accepted, refused ones included
  std::uint64_t refused = 0;   // by the authorizer or the connection limit
  std::size_t open = 0;        // connections open now
};

class server {
 public:
  server(asio::any_io_executor ex, server_config cfg);
  // Calls stop(); connections still running finish on their own (within stop_grace).
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Registers (or replaces) the handler of `method`. Only before start().
  void add_method(std::string_view method, handler h);
  // Registers a method whose reply is followed by notifications (a subscription). While one runs,
  // its connection carries only its events; a request line from the client ends it. Only before start().
  void add_subscription(std::string_view method, subscribe_handler h);
  // Replaces default_authorizer(). Only before start().
  void set_authorizer(authorizer a);

  // Creates the socket (see server_config) and starts accepting. The error says what to fix:
  // path too long, another ferryd listening, a non-socket file in the way, permissions.
  boost::system::result<void, std::string> start();

  // Stops accepting, removes the socket file, closes idle connections at once and the others after
  // their current request (or after stop_grace). Thread-safe, idempotent, returns immediately.
  void stop();
  // Completes once stop() was called and every connection has ended.
  asio::awaitable<void> async_wait_stopped();
  // The same, blocking; never call it from an io_context thread. False on timeout.
  bool wait_stopped_for(std::chrono::milliseconds timeout);

  server_stats stats() const;
  const server_config& config() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace ferry::control
