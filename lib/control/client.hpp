#pragma once
// The synchronous control-socket client ferryctl uses: one connection, one request at a time,
// every step bounded by a deadline. Plain POSIX sockets; no io_context.
#include <boost/system/result.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace ferry::control {

struct call_error {
  enum class kind {
    unreachable,  // cannot connect: ferryd is not running, wrong path, no permission on the socket
    transport,    // the connection failed or timed out mid-call, or ferryd sent something malformed
    rpc,          // ferryd answered with a JSON-RPC error (`code`, `message`)
    interrupted,  // the abort flag was raised (Ctrl-C)
  };
  kind what = kind::transport;
  int code = 0;         // the JSON-RPC error code for kind::rpc
  std::string message;  // ready to print
};

template <class T>
using call_result = boost::system::result<T, call_error>;

struct client_options {
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
  std::chrono::milliseconds call_timeout = std::chrono::seconds(30);  // one request and its response
  // When set and raised while waiting (a signal interrupted the wait), the call fails with
  // kind::interrupted. Install the signal handler without SA_RESTART.
  const std::atomic<bool>* abort = nullptr;
};

class client {
 public:
  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  ~client();

  // Connects to ferryd at `socket_path`. The error message names the path and suggests the fix.
  static call_result<client> connect(const std::string& socket_path, client_options opts = {});

  // Sends one request and returns the result as JSON text, exactly as received. After a transport
  // error the connection is closed and every later call fails.
  call_result<std::string> call(std::string_view method, std::string_view params_json);

  // After a call that subscribed (job.events): waits up to `timeout` for the next notification of
  // `method` and returns its params as JSON text. Lines of other kinds are skipped.
  call_result<std::string> next_notification(std::string_view method, std::chrono::milliseconds timeout);

 private:
  client();
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Throws std::runtime_error with the message (result<T>::value()); tests only.
[[noreturn]] void throw_exception_from_error(const call_error& e, const boost::source_location& loc);

}  // namespace ferry::control
