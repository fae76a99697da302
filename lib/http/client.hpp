#pragma once
// lib/http: a coroutine HTTP/1.1 client with one keep-alive connection pool per origin
// (scheme, host, port). Knows nothing of S3. Beast stays out of this header (pimpl) so that
// anything may include it cheaply.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include "ratelimit/limiter.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::http {

namespace asio = boost::asio;
using boost::system::error_code;
template <class T>
using result = boost::system::result<T>;

// Header fields in send order; names compare case-insensitively.
struct header_list {
  std::vector<std::pair<std::string, std::string>> items;

  // Replaces every field with this name, or appends one.
  void set(std::string_view name, std::string value);
  void add(std::string_view name, std::string value);
  void erase(std::string_view name);
  // The first field with this name.
  std::optional<std::string_view> get(std::string_view name) const;
};

// Where a pool connects: "http" or "https", a host name or address, a port.
struct origin {
  std::string scheme;
  std::string host;
  std::uint16_t port = 0;

  bool tls() const { return scheme == "https"; }
  std::string host_header() const;  // "host" or "host:port" when the port is not the default
  friend bool operator==(const origin&, const origin&) = default;
};

// Parses "https://host[:port]" (a path, if any, is ignored).
result<origin> parse_origin(std::string_view url);

struct timeouts {
  std::chrono::milliseconds connect{10'000};  // TCP connect, per resolved address
  std::chrono::milliseconds tls_handshake{10'000};
  std::chrono::milliseconds first_byte{60'000};  // request fully sent -> response head read
  std::chrono::milliseconds idle{60'000};        // no progress on one socket read or write
  std::chrono::milliseconds keepalive{30'000};   // a pooled idle connection older than this is closed
  std::chrono::milliseconds pool_wait{120'000};  // waiting for a free slot when max_connections are leased
};

struct tls_config {
  bool verify_peer = true;  // never off in production; tests turn it off only to prove it matters
  std::string ca_file;      // PEM bundle added to the system store ("" = none); see ca_file_from_env()
};

// AWS_CA_BUNDLE, as the AWS SDKs honour it ("" when unset).
std::string ca_file_from_env();

// True for a TLS peer-verification failure ("certificate verify failed", hostname mismatch):
// a configuration problem, never worth retrying.
bool is_certificate_error(const error_code& ec);

struct pool_config {
  std::size_t max_connections = 256;  // per origin; a request waits for a free slot
  timeouts timeout;
  tls_config tls;
  std::size_t max_header_bytes = 64 * 1024;
};

// Fills the buffer with the next request body bytes; returns how many (0 = end of body).
// Called only while the previous call's bytes have been written: backpressure is built in.
using body_source = std::function<asio::awaitable<result<std::size_t>>(std::span<char>)>;

// What one exchange measured, for the network-quality monitor: reported once, when the response
// body is complete, the response is dropped, or the exchange failed.
struct exchange_report {
  bool reused = false;                                 // on a pooled connection (no connect, no handshake)
  std::optional<std::chrono::nanoseconds> connect;     // TCP connect of a new connection
  std::optional<std::chrono::nanoseconds> tls;         // its TLS handshake
  std::optional<std::chrono::nanoseconds> first_byte;  // request fully written -> response head read
  std::uint64_t sent_body_bytes = 0;
  std::chrono::nanoseconds send_time{};  // writing the body (throttle waits excluded)
  std::uint64_t received_body_bytes = 0;
  std::chrono::nanoseconds receive_time{};  // waiting on socket reads of the body (throttle waits excluded)
  unsigned status = 0;                      // 0: no response head
  error_code ec;                            // the transport failure, if any
};
using exchange_observer = std::function<void(const exchange_report&)>;

struct request {
  std::string method;                // "GET", "PUT", ...
  std::string target;                // origin-form, already percent-encoded: "/bucket/key?x=y"
  header_list headers;               // Host and Content-Length are set by the client
  std::string body;                  // an in-memory body, used when `source` is empty
  body_source source;                // a streaming body of exactly `content_length` bytes
  std::uint64_t content_length = 0;  // for `source`; ignored for `body`
  bool idempotent = true;            // may be resent once on a fresh connection if a reused one fails
                                     // before any response byte (streaming bodies only if none was read)
  ratelimit::throttle throttle;      // bandwidth caps: body bytes written pass `up`, read pass `down`
  exchange_observer observer;        // called once with what the exchange measured
};

class connection;  // internal

// A response head plus its body, read on demand. Holds the connection until the body has been
// read to the end (then the connection returns to its pool) or the response is destroyed
// (then the connection is closed, unless the body was complete).
class response {
 public:
  response();
  response(response&&) noexcept;
  response& operator=(response&&) noexcept;
  ~response();

  unsigned status() const;
  const header_list& headers() const;
  // Content-Length when the server sent one.
  std::optional<std::uint64_t> content_length() const;

  // Reads up to buf.size() body bytes; 0 means the body is complete.
  asio::awaitable<result<std::size_t>> read_some(std::span<char> buf);
  // Reads the rest of the body; fails with asio::error::message_size if it exceeds `limit` bytes.
  asio::awaitable<result<std::string>> read_all(std::size_t limit);

  struct impl;
  explicit response(std::unique_ptr<impl>);

 private:
  std::unique_ptr<impl> impl_;
};

struct pool_stats {
  std::size_t open = 0;       // connections open (idle + leased)
  std::size_t idle = 0;       // pooled, ready for reuse
  std::uint64_t created = 0;  // connections ever opened
  std::uint64_t reused = 0;   // requests sent on a pooled connection
};

// A connection pool for one origin. Thread-safe; share it through shared_ptr.
class pool : public std::enable_shared_from_this<pool> {
 public:
  pool(asio::any_io_executor ex, origin o, pool_config cfg);
  ~pool();
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // Sends the request and reads the response head. Errors: transport and TLS failures,
  // timeouts (asio::error::timed_out), a malformed response.
  asio::awaitable<result<response>> send(request req);

  const origin& where() const;
  pool_stats stats() const;
  // Closes idle connections older than the keepalive timeout (also done on every send).
  void reap_idle();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;  // shared with responses that still hold a connection
};

// Pools by origin, created on first use with the same config.
class client {
 public:
  client(asio::any_io_executor ex, pool_config cfg);
  std::shared_ptr<pool> pool_for(const origin& o);
  // Every pool's counters added up.
  pool_stats stats() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace ferry::http
