#pragma once
// The fault proxy: an HTTP/1.1 relay between a client under test (ferryd, ferry's S3 client, rclone) and one
// plain-HTTP server (s3rver, bench/synthetic-s3). Per request it injects, by rule and share, one fault:
// latency, an S3 error answered in the server's place, a reset or a clean close part way through a body, a
// stall, a flipped bit, a wrong Content-Length or a slow trickle. Per connection it emulates a network path:
// every chunk, each way, is forwarded after a one-way delay (plus jitter, order kept), and all traffic can be
// stalled. It frames messages itself (Content-Length, chunked, HEAD, 1xx, bodies until EOF) so keep-alive
// connections stay in step; it records every request. It speaks no TLS (neither side).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry::test {

// What a rule does to a request it fires on.
enum class fault_kind {
  latency,               // hold the request `duration` before it goes upstream
  status,                // answer `status` with an S3 XML <Error> (`code`) instead; the server never sees it
  reset,                 // relay `bytes` body bytes, then reset (RST) both connections
  truncate,              // response: relay the head (full Content-Length) and `bytes` body bytes, then close (FIN)
  stall,                 // stop relaying `duration`, before the head or after `after_bytes` body bytes
  flip_bit,              // flip the lowest bit of body byte `offset`
  wrong_content_length,  // response: Content-Length + `delta` in the head, the real body, then close
  trickle,               // relay the body at `bytes_per_second`
};

// Whose body a body fault acts on. automatic: the request's if it has one, else the response's.
enum class fault_direction { automatic, request, response };

// One fault and its parameters (only those of its kind matter). Made with the factories below.
struct fault_action {
  fault_kind kind = fault_kind::latency;
  fault_direction direction = fault_direction::automatic;
  std::chrono::milliseconds duration{0};       // latency, stall
  unsigned status = 503;                       // status
  std::string code{};                          // status: empty = SlowDown (503), InternalError (500), InjectedFault
  std::uint64_t bytes = 0;                     // reset, truncate: body bytes relayed first (at most length - 1)
  std::optional<std::uint64_t> after_bytes{};  // stall: body bytes relayed first; nullopt: stall before the head
  std::uint64_t offset = 0;                    // flip_bit: body offset
  std::int64_t delta = 0;                      // wrong_content_length
  std::uint64_t bytes_per_second = 0;          // trickle

  static fault_action latency(std::chrono::milliseconds d);
  static fault_action error(unsigned status, std::string code = {});
  static fault_action slow_down() { return error(503, "SlowDown"); }
  static fault_action internal_error() { return error(500, "InternalError"); }
  static fault_action reset_after(std::uint64_t bytes, fault_direction dir = fault_direction::automatic);
  static fault_action truncate_after(std::uint64_t bytes);
  static fault_action stall_for(std::chrono::milliseconds d, std::optional<std::uint64_t> after_bytes = {},
                                fault_direction dir = fault_direction::response);
  static fault_action flip_bit_at(std::uint64_t offset, fault_direction dir = fault_direction::automatic);
  static fault_action wrong_content_length(std::int64_t delta);
  static fault_action trickle(std::uint64_t bytes_per_second, fault_direction dir = fault_direction::automatic);
};

// Which requests a rule applies to (every set predicate must hold), how often, and what it does.
// Response-side faults apply only to a 2xx final response that has what they need (a body long enough, a
// Content-Length); otherwise the firing is taken back: not counted, `times` not spent.
struct fault_rule {
  std::string name{};                    // for stats; empty: "rule N"
  std::vector<std::string> methods{};    // e.g. {"GET", "PUT"}; empty: any
  std::string target_contains{};         // substring of the target as sent ("/bucket/key?query", percent-encoded)
  std::string target_regex{};            // ECMAScript, searched in the target
  bool objects_only = false;             // path-style "/bucket/KEY..." with a key, and not a listing (list-type)
  double share = 1.0;                    // probability of firing on a matching request (seeded RNG)
  std::optional<std::uint64_t> times{};  // most firings in all; nullopt: unlimited
  fault_action action{};
};

struct fault_proxy_options {
  std::string upstream_host = "127.0.0.1";  // a name or address, resolved once at construction
  std::uint16_t upstream_port = 0;
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 0;  // 0: any free port
  std::vector<fault_rule> rules{};
  std::uint64_t seed = 1;               // of the share draws: the same requests in the same order fire the same way
  std::chrono::microseconds delay{0};   // one-way, each direction (RTT = 2 x delay)
  std::chrono::microseconds jitter{0};  // uniform in [-jitter, +jitter], added to delay (order is kept)
  std::size_t queue_limit = 8 << 20;    // bytes waiting per direction per connection before reads pause
  std::size_t max_records = 100'000;    // the most recent requests kept for stats()
};

// One request the proxy saw.
struct request_record {
  std::uint64_t id = 0;  // 0, 1, 2... in arrival order (across connections)
  std::string method{};
  std::string target{};               // as sent: "/bucket/key?query", percent-encoded
  bool copy_source = false;           // it carried x-amz-copy-source (CopyObject, UploadPartCopy)
  unsigned status = 0;                // the final response's status (an injected one too); 0: none yet or never
  std::optional<fault_kind> fault{};  // the fault injected into this exchange, if any
  std::optional<std::size_t> rule{};  // its index in the rule list of the time
};

struct fault_stats {
  std::vector<std::string> rule_names;  // the current rules
  std::vector<std::uint64_t> fired;     // per current rule: faults injected since set_rules
  std::uint64_t requests = 0;           // requests seen in all
  std::uint64_t connections = 0;        // client connections accepted in all
  std::vector<request_record> records;  // the most recent max_records requests, oldest first
};

// Listens (options.listen_address:listen_port) and serves on its own thread until destroyed, which closes
// every connection (the cancellation path of every relay). The constructor throws boost::system::system_error
// if it cannot resolve the upstream or listen, std::invalid_argument for a bad rule. Thread-safe.
class fault_proxy {
 public:
  explicit fault_proxy(fault_proxy_options options);
  fault_proxy(const fault_proxy&) = delete;
  fault_proxy& operator=(const fault_proxy&) = delete;
  ~fault_proxy();

  std::uint16_t port() const;
  // "http://ADDRESS:PORT": the endpoint to give the client instead of the server's.
  std::string endpoint() const;

  // Replaces the rules (counts and `times` start afresh); requests already decided keep their fault.
  // Throws std::invalid_argument for a bad rule.
  void set_rules(std::vector<fault_rule> rules);
  // Restarts the share draws from `seed`.
  void set_seed(std::uint64_t seed);
  // The network path from now on (chunks already queued keep their due time).
  void set_delay(std::chrono::microseconds one_way, std::chrono::microseconds jitter = {});
  // Stops all relaying for `duration` now, or (every > 0) for `duration` out of every `every`; 0 ends it.
  void set_stall(std::chrono::milliseconds duration, std::chrono::milliseconds every = {});

  fault_stats stats() const;
  // Faults injected by rule `index` of the current list (0 if there is none).
  std::uint64_t fired(std::size_t index) const;
  // stats().records.
  std::vector<request_record> requests() const;

  struct state;

 private:
  std::unique_ptr<state> state_;
};

// "latency", "status", ... (the names of the JSON rule schema).
const char* to_string(fault_kind kind);
// Why `rule` is unusable (an empty string if it is fine).
std::string validate(const fault_rule& rule);

}  // namespace ferry::test
