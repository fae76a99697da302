#pragma once
// An HTTP/1.1 relay between a client under test and one plain-HTTP server on 127.0.0.1, for tests of data
// corrupted in flight: it flips one bit in the body of chosen GET responses, and records every request it
// relays (method, target, status), so a test can also prove which requests a client did or did not make.
// It frames messages itself (Content-Length, chunked, HEAD, 1xx, bodies until EOF), so keep-alive
// connections stay in step; it speaks no TLS.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry::test {

struct corrupting_proxy_options {
  // The server to relay to, on 127.0.0.1.
  std::uint16_t upstream_port = 0;
  // Which responses to corrupt: those to GET requests whose target (as sent, percent-encoded) contains this
  // substring and has no "list-type" (a listing), with status 200 or 206. Empty matches every object GET.
  std::string key_substring{};
  // How many responses to corrupt in all; nullopt: every matching one. 0 makes a recording relay.
  std::optional<std::size_t> times{};
  // Which byte of the body gets its lowest bit flipped; a shorter body passes unchanged (and is not counted).
  std::uint64_t body_offset = 100;
};

// One request the proxy relayed.
struct proxied_request {
  std::string method;
  std::string target;        // as sent: "/bucket/key?query", percent-encoded
  bool copy_source = false;  // it carried x-amz-copy-source (CopyObject, UploadPartCopy)
  unsigned status = 0;       // the final response's status; 0 while none has arrived
  bool corrupted = false;    // a bit of its response body was flipped
};

// Listens on 127.0.0.1, port 0, and serves on its own thread until destroyed (which closes every
// connection: that is the cancellation path of every relay). The constructor throws (a
// boost::system::system_error) if it cannot listen.
class corrupting_proxy {
 public:
  explicit corrupting_proxy(corrupting_proxy_options options);
  corrupting_proxy(const corrupting_proxy&) = delete;
  corrupting_proxy& operator=(const corrupting_proxy&) = delete;
  ~corrupting_proxy();

  std::uint16_t port() const;
  // "http://127.0.0.1:PORT": the endpoint to give the client instead of the server's.
  std::string endpoint() const;
  // Responses corrupted so far.
  std::size_t corrupted() const;
  // Every request relayed so far, in the order they arrived (across connections).
  std::vector<proxied_request> requests() const;

  struct state;

 private:
  std::unique_ptr<state> state_;
};

}  // namespace ferry::test
