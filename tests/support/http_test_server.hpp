#pragma once
// A small in-process HTTP/1.1 server (plain or TLS) on 127.0.0.1, port 0, for client tests.
// It runs its own io_context on its own thread; the handler is called there, one request at a time.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace ferry::test {

struct http_test_request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::size_t connection_index = 0;  // 0-based, in accept order
  std::size_t request_index = 0;     // 0-based position on its connection

  // The first header with this name (case-insensitive).
  std::optional<std::string> header(std::string_view name) const;
};

struct http_test_response {
  enum class action {
    respond,  // send the response below
    drop,     // close the connection without a response (a server that lost a keep-alive race)
    stall,    // never answer (until the server is destroyed)
  };
  action act = action::respond;
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool chunked = false;  // Transfer-Encoding: chunked in chunk_size pieces, else Content-Length
  std::size_t chunk_size = 64 * 1024;
  bool close = false;                      // send Connection: close and close after the response
  std::chrono::milliseconds delay{0};      // wait this long before answering
  std::optional<std::size_t> stall_after;  // send only this many bytes of the response, then stall
};

using http_test_handler = std::function<http_test_response(const http_test_request&)>;

class http_test_server {
 public:
  struct options {
    bool tls = false;
    std::string cert_file;  // PEM, for tls
    std::string key_file;   // PEM, for tls
    std::size_t max_body = 64 * 1024 * 1024;
    std::chrono::milliseconds keepalive_idle{0};  // > 0: close a keep-alive connection idle this long
  };

  explicit http_test_server(http_test_handler handler, options opts);
  explicit http_test_server(http_test_handler handler) : http_test_server(std::move(handler), options{}) {}
  ~http_test_server();
  http_test_server(const http_test_server&) = delete;
  http_test_server& operator=(const http_test_server&) = delete;

  std::uint16_t port() const;
  // "http://host:port" or "https://host:port".
  std::string url(std::string_view host = "127.0.0.1") const;

  std::size_t connections_accepted() const;
  std::size_t requests_handled() const;
  std::size_t max_open_connections() const;  // the most connections open at the same time

  // Closes every connection that is waiting for its next request; returns how many (bounded wait).
  std::size_t close_idle_connections();

  struct state;

 private:
  std::shared_ptr<state> state_;
};

// Runs `aw` on `ioc` with `threads` threads until it completes or `limit` passes (then nullopt, and
// the io_context is stopped): a test that hangs fails instead. Exceptions from `aw` are rethrown.
template <class T>
std::optional<T> run_bounded(boost::asio::io_context& ioc, boost::asio::awaitable<T> aw,
                             std::chrono::milliseconds limit = std::chrono::seconds(30), unsigned threads = 1) {
  // Shared, so a coroutine that outlives a timed-out call writes into live memory.
  struct outcome {
    std::optional<T> value;
    std::exception_ptr error;
  };
  auto out = std::make_shared<outcome>();
  ioc.restart();
  boost::asio::co_spawn(ioc, std::move(aw), [out, &ioc](std::exception_ptr e, T v) {
    if (e) {
      out->error = e;
    } else {
      out->value.emplace(std::move(v));
    }
    ioc.stop();
  });
  std::vector<std::thread> extra;
  for (unsigned i = 1; i < threads; ++i) extra.emplace_back([&] { ioc.run_for(limit); });
  ioc.run_for(limit);
  ioc.stop();
  for (auto& t : extra) t.join();
  if (out->error) std::rethrow_exception(out->error);
  return std::move(out->value);
}

}  // namespace ferry::test
