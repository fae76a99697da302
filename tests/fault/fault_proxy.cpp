#include "fault/fault_proxy.hpp"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <ctime>
#include <deque>
#include <mutex>
#include <random>
#include <regex>
#include <span>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace ferry::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

fault_action fault_action::latency(std::chrono::milliseconds d) { return {.kind = fault_kind::latency, .duration = d}; }
fault_action fault_action::error(unsigned status, std::string code) {
  return {.kind = fault_kind::status, .status = status, .code = std::move(code)};
}
fault_action fault_action::reset_after(std::uint64_t bytes, fault_direction dir) {
  return {.kind = fault_kind::reset, .direction = dir, .bytes = bytes};
}
fault_action fault_action::truncate_after(std::uint64_t bytes) {
  return {.kind = fault_kind::truncate, .direction = fault_direction::response, .bytes = bytes};
}
fault_action fault_action::stall_for(std::chrono::milliseconds d, std::optional<std::uint64_t> after_bytes,
                                     fault_direction dir) {
  return {.kind = fault_kind::stall, .direction = dir, .duration = d, .after_bytes = after_bytes};
}
fault_action fault_action::flip_bit_at(std::uint64_t offset, fault_direction dir) {
  return {.kind = fault_kind::flip_bit, .direction = dir, .offset = offset};
}
fault_action fault_action::wrong_content_length(std::int64_t delta) {
  return {.kind = fault_kind::wrong_content_length, .direction = fault_direction::response, .delta = delta};
}
fault_action fault_action::trickle(std::uint64_t bytes_per_second, fault_direction dir) {
  return {.kind = fault_kind::trickle, .direction = dir, .bytes_per_second = bytes_per_second};
}

const char* to_string(fault_kind kind) {
  switch (kind) {
    case fault_kind::latency:
      return "latency";
    case fault_kind::status:
      return "status";
    case fault_kind::reset:
      return "reset";
    case fault_kind::truncate:
      return "truncate";
    case fault_kind::stall:
      return "stall";
    case fault_kind::flip_bit:
      return "flip_bit";
    case fault_kind::wrong_content_length:
      return "wrong_content_length";
    case fault_kind::trickle:
      return "trickle";
  }
  return "?";
}

std::string validate(const fault_rule& rule) {
  const fault_action& a = rule.action;
  if (!(rule.share >= 0.0 && rule.share <= 1.0)) return "share must be within [0, 1]";
  if (!rule.target_regex.empty()) {
    try {
      std::regex re(rule.target_regex, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return "target_regex: " + std::string(e.what());
    }
  }
  switch (a.kind) {
    case fault_kind::latency:
    case fault_kind::stall:
      if (a.duration < 0ms) return "duration must not be negative";
      break;
    case fault_kind::status:
      if (a.status < 200 || a.status > 599) return "status must be a final status (200..599)";
      for (char c : a.code) {
        if (!std::isalnum(static_cast<unsigned char>(c))) return "code must be letters and digits";
      }
      break;
    case fault_kind::truncate:
    case fault_kind::wrong_content_length:
      if (a.direction == fault_direction::request) return std::string(to_string(a.kind)) + " acts on responses only";
      break;
    case fault_kind::trickle:
      if (a.bytes_per_second == 0) return "bytes_per_second must be positive";
      break;
    case fault_kind::reset:
    case fault_kind::flip_bit:
      break;
  }
  return {};
}

namespace {

constexpr auto tok = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_head_bytes = 64 * 1024;
constexpr std::size_t max_line_bytes = 4096;  // a chunk-size or trailer line
constexpr std::size_t relay_buffer_bytes = 64 * 1024;
constexpr auto connect_timeout = 10s;
constexpr auto close_linger = 2s;  // after a clean close, how long the client may take to close its side
constexpr auto drain_limit = 2s;   // before a reset, how long the relayed bytes may take to leave

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A message head split into its start line and (lower-cased name, value) headers.
struct head {
  std::string_view start_line;
  std::vector<std::pair<std::string, std::string_view>> headers;

  std::optional<std::string_view> get(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return std::nullopt;
  }
};

head split_head(std::string_view text) {
  head h;
  std::size_t eol = text.find("\r\n");
  h.start_line = text.substr(0, eol);
  std::size_t at = eol == std::string_view::npos ? text.size() : eol + 2;
  while (at < text.size()) {
    std::size_t end = text.find("\r\n", at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    if (std::size_t colon = line.find(':'); colon != std::string_view::npos) {
      h.headers.emplace_back(lower(trim(line.substr(0, colon))), trim(line.substr(colon + 1)));
    }
    at = end + 2;
  }
  return h;
}

// `text` (a whole head) with the value of its Content-Length header(s) replaced.
std::string with_content_length(std::string_view text, std::uint64_t length) {
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find("\r\n", at);
    end = end == std::string_view::npos ? text.size() : end + 2;
    std::string_view line = text.substr(at, end - at);
    std::size_t colon = line.find(':');
    if (at != 0 && colon != std::string_view::npos && lower(trim(line.substr(0, colon))) == "content-length") {
      out.append(line.substr(0, colon + 1)).append(" ").append(std::to_string(length)).append("\r\n");
    } else {
      out.append(line);
    }
    at = end;
  }
  return out;
}

enum class body_kind { none, length, chunked, until_eof };

// How a head's body is framed, from Transfer-Encoding and Content-Length; nullopt if the length is malformed.
std::optional<std::pair<body_kind, std::uint64_t>> body_framing(const head& h, body_kind without_length) {
  if (auto te = h.get("transfer-encoding"); te && lower(*te).find("chunked") != std::string::npos) {
    return std::pair{body_kind::chunked, std::uint64_t{0}};
  }
  if (auto cl = h.get("content-length")) {
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec != std::errc() || end != cl->data() + cl->size()) return std::nullopt;
    return std::pair{n == 0 ? body_kind::none : body_kind::length, n};
  }
  return std::pair{without_length, std::uint64_t{0}};
}

// Path-style "/bucket/key..." with a non-empty key, and no listing query.
bool is_object_target(std::string_view target) {
  const std::size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q);
  if (path.starts_with("http://")) {  // absolute form: drop the authority
    path.remove_prefix(7);
    const std::size_t slash = path.find('/');
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  if (!path.starts_with('/')) return false;
  const std::size_t slash = path.find('/', 1);
  return slash != std::string_view::npos && slash + 1 < path.size() && query.find("list-type") == std::string::npos;
}

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string http_date() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

// An answer in the server's place, shaped like S3's own errors.
std::string error_response(const fault_action& a, std::string_view target, bool head_request, bool close,
                           std::uint64_t id) {
  std::string code = a.code;
  if (code.empty()) code = a.status == 503 ? "SlowDown" : a.status == 500 ? "InternalError" : "InjectedFault";
  const char* reason = a.status == 503 ? "Slow Down" : a.status == 500 ? "Internal Server Error" : "Error";
  const char* message = code == "SlowDown"        ? "Please reduce your request rate."
                        : code == "InternalError" ? "We encountered an internal error. Please try again."
                                                  : "Injected by the ferry fault proxy.";
  const std::string request_id = "FAULT" + std::to_string(id);
  const std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" +
                           message + "</Message><Resource>" + xml_escape(target.substr(0, target.find('?'))) +
                           "</Resource><RequestId>" + request_id + "</RequestId></Error>";
  std::string out = "HTTP/1.1 " + std::to_string(a.status) + " " + reason +
                    "\r\nContent-Type: application/xml\r\nx-amz-request-id: " + request_id +
                    "\r\nDate: " + http_date() +
                    "\r\nContent-Length: " + std::to_string(head_request ? 0 : body.size()) + "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head_request) out += body;
  return out;
}

// What the writer does after a queued piece's bytes.
enum class then_kind { none, eof, reset, close };

// Bytes due to be written at `due` (after `hold` more), optionally paced; or a marker (no bytes).
struct out_item {
  clock_type::time_point due{};
  std::string data{};
  std::chrono::milliseconds hold{0};
  std::uint64_t rate = 0;  // bytes per second; 0: at once
  then_kind then = then_kind::none;
};

// One direction of one connection: where the byte stream is within its current message.
struct stream_state {
  enum class phase { head, length_body, chunk_size, chunk_data, chunk_data_end, trailers, until_eof, passthrough };
  phase at = phase::head;
  std::string line;  // the head so far, or the current chunk-size / trailer line
  std::uint64_t remaining = 0;
  std::uint64_t body_pos = 0;  // body bytes of the current message seen so far
};

}  // namespace

// The rules in force, and their counts (fault_proxy::state holds one: not in the anonymous namespace).
namespace fault_detail {
struct rule_set {
  std::vector<fault_rule> rules;
  std::vector<std::optional<std::regex>> regexes;
  std::vector<std::uint64_t> fired;                // guarded by fault_proxy::state::mutex
  std::vector<std::optional<std::uint64_t>> left;  // `times` left; guarded likewise
};
}  // namespace fault_detail

namespace {

using fault_detail::rule_set;

// A rule that fired on a request: what to do, and whom to tell if it cannot be done after all.
struct decision {
  std::shared_ptr<rule_set> set;
  std::size_t index = 0;
  fault_action action;
  std::uint64_t record = 0;
};

// What the current message of one direction has to suffer, set when its head passes.
struct message_fault {
  std::optional<decision> d;
  std::optional<std::uint64_t> cut_at;  // body bytes relayed before the cut
  then_kind cut_kind = then_kind::none;
  std::optional<std::uint64_t> flip_at;
  std::optional<std::uint64_t> stall_at;
  std::chrono::milliseconds stall_for{0};
  std::uint64_t rate = 0;    // trickle
  bool close_after = false;  // wrong Content-Length: the real body, then close
  bool discard = false;      // the body of a request answered here: swallowed
};

struct direction_state {
  explicit direction_state(const asio::any_io_executor& ex) : space(ex), ready(ex), timer(ex) {}
  std::deque<out_item> queue;
  std::size_t queued = 0;    // bytes in `queue` and being written
  asio::steady_timer space;  // the reader waits here for queue space
  asio::steady_timer ready;  // the writer waits here for items
  asio::steady_timer timer;  // the writer's due, hold and pacing waits
  clock_type::time_point batch_due{}, last_due{}, pace_next{};
  std::chrono::milliseconds pending_hold{0};  // for the next bytes emitted
  stream_state parse;
  message_fault msg;
  bool cut = false;           // nothing more is read or relayed this way
  bool reading_done = false;  // the reader has returned
};

struct pending_request {
  std::uint64_t record = 0;
  std::string method;
  std::optional<decision> response_fault{};  // decided on the request, done on the response
  std::optional<std::string> answer{};       // an answer made here instead of the server's
  bool answer_ready = false;                 // the request (body included) has been consumed
  bool close_after_answer = false;
};

struct connection {
  connection(tcp::socket c, const asio::any_io_executor& ex)
      : client(std::move(c)), upstream(ex), up(ex), down(ex), linger(ex) {}
  tcp::socket client, upstream;
  direction_state up, down;             // client -> upstream, upstream -> client
  std::deque<pending_request> pending;  // requests not yet answered, oldest first
  bool response_in_progress = false;    // a final response head has passed and its body has not ended
  bool dead = false;                    // both sockets closed: every coroutine returns
  bool closing = false;                 // the client has been sent FIN: what it still sends is discarded
  asio::steady_timer linger;
};

}  // namespace

namespace {

std::shared_ptr<rule_set> make_rule_set(std::vector<fault_rule> rules) {
  auto set = std::make_shared<rule_set>();
  for (std::size_t i = 0; i < rules.size(); ++i) {
    fault_rule& r = rules[i];
    if (std::string why = validate(r); !why.empty()) {
      throw std::invalid_argument("fault rule " + std::to_string(i) + ": " + why);
    }
    for (auto& m : r.methods) m = upper(m);
    if (r.name.empty()) r.name = "rule " + std::to_string(i);
    set->regexes.push_back(r.target_regex.empty() ? std::nullopt
                                                  : std::optional<std::regex>(std::regex(r.target_regex)));
    set->left.push_back(r.times);
  }
  set->fired.assign(rules.size(), 0);
  set->rules = std::move(rules);
  return set;
}

}  // namespace

struct fault_proxy::state {
  fault_proxy_options options;
  std::unique_ptr<asio::io_context> ioc = std::make_unique<asio::io_context>(1);
  std::unique_ptr<tcp::acceptor> acceptor = std::make_unique<tcp::acceptor>(*ioc);
  tcp::endpoint upstream;
  std::uint16_t port = 0;
  std::thread thread;

  mutable std::mutex mutex;  // guards what follows up to the atomics
  std::shared_ptr<rule_set> rules;
  std::mt19937_64 rng;
  std::deque<request_record> records;
  std::uint64_t next_id = 0;
  std::uint64_t connections = 0;

  // The network path, read per chunk without the mutex.
  std::atomic<std::int64_t> delay_us{0}, jitter_us{0};
  std::atomic<std::int64_t> stall_origin_ns{0}, stall_duration_ns{0}, stall_every_ns{0};
  std::mt19937_64 jitter_rng{12345};  // io thread only

  ~state() {
    // Sockets and coroutine frames go with the io_context, before the rules and records they may name.
    acceptor.reset();
    ioc.reset();
  }

  // ---- shared bookkeeping (any thread) ----

  std::uint64_t add_record(request_record r) {
    std::lock_guard lock(mutex);
    r.id = next_id++;
    records.push_back(std::move(r));
    while (records.size() > std::max<std::size_t>(options.max_records, 1)) records.pop_front();
    return next_id - 1;
  }

  template <class F>
  void update_record(std::uint64_t id, F&& f) {
    std::lock_guard lock(mutex);
    const std::uint64_t first = next_id - records.size();
    if (id >= first && id < next_id) f(records[id - first]);
  }

  double draw() { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

  // The first rule that matches and fires, counted and recorded as fired.
  std::optional<decision> decide(std::string_view method, std::string_view target, std::uint64_t record) {
    std::lock_guard lock(mutex);
    const auto& set = rules;
    if (!set) return std::nullopt;
    for (std::size_t i = 0; i < set->rules.size(); ++i) {
      const fault_rule& r = set->rules[i];
      if (!r.methods.empty() && std::find(r.methods.begin(), r.methods.end(), method) == r.methods.end()) continue;
      if (!r.target_contains.empty() && target.find(r.target_contains) == std::string_view::npos) continue;
      if (r.objects_only && !is_object_target(target)) continue;
      if (set->regexes[i] && !std::regex_search(target.begin(), target.end(), *set->regexes[i])) continue;
      if (set->left[i] && *set->left[i] == 0) continue;
      if (r.share < 1.0 && !(draw() < r.share)) continue;
      ++set->fired[i];
      if (set->left[i]) --*set->left[i];
      const std::uint64_t first = next_id - records.size();
      if (record >= first && record < next_id) {
        records[record - first].fault = r.action.kind;
        records[record - first].rule = i;
      }
      return decision{set, i, r.action, record};
    }
    return std::nullopt;
  }

  // A fault that could not be done after all: uncounted, its `times` given back.
  void take_back(const decision& d) {
    std::lock_guard lock(mutex);
    if (d.set->fired[d.index] > 0) --d.set->fired[d.index];
    if (d.set->left[d.index]) ++*d.set->left[d.index];
    const std::uint64_t first = next_id - records.size();
    if (d.record >= first && d.record < next_id) {
      records[d.record - first].fault.reset();
      records[d.record - first].rule.reset();
    }
  }

  // When an all-traffic stall that covers `now` ends, if one does.
  std::optional<clock_type::time_point> stall_end(clock_type::time_point now) const {
    const std::int64_t duration = stall_duration_ns.load();
    if (duration <= 0) return std::nullopt;
    const std::int64_t origin = stall_origin_ns.load(), every = stall_every_ns.load();
    const std::int64_t t = now.time_since_epoch().count() - origin;
    if (t < 0) return std::nullopt;
    const std::int64_t phase = every > 0 ? t % every : t;
    if (phase >= duration) return std::nullopt;
    return now + std::chrono::nanoseconds(duration - phase);
  }

  // ---- per connection (io thread only) ----

  clock_type::time_point next_due(direction_state& d, int legs = 1) {
    const auto now = clock_type::now();
    const std::int64_t delay = delay_us.load(), jitter = jitter_us.load();
    auto due = now;
    if (delay > 0 || jitter > 0) {
      std::int64_t us = delay * legs;
      if (jitter > 0) us += std::uniform_int_distribution<std::int64_t>(-jitter, jitter)(jitter_rng);
      due += std::chrono::microseconds(std::max<std::int64_t>(us, 0));
    }
    due = std::max(due, d.last_due);  // jitter never reorders
    d.last_due = due;
    return due;
  }

  // Queues bytes to go out at the batch's due time; returns where they sit (valid until the next emit).
  static char* emit(direction_state& d, std::string_view bytes, std::uint64_t rate = 0) {
    if (bytes.empty()) return nullptr;
    if (!d.queue.empty() && d.pending_hold == 0ms) {
      out_item& back = d.queue.back();
      if (back.due == d.batch_due && back.then == then_kind::none && back.rate == rate) {
        const std::size_t at = back.data.size();
        back.data.append(bytes);
        d.queued += bytes.size();
        return back.data.data() + at;
      }
    }
    d.queue.push_back(out_item{.due = d.batch_due, .data = std::string(bytes), .hold = d.pending_hold, .rate = rate});
    d.pending_hold = 0ms;
    d.queued += bytes.size();
    return d.queue.back().data.data();
  }

  static void emit_marker(direction_state& d, then_kind then) {
    d.queue.push_back(out_item{.due = d.batch_due, .hold = d.pending_hold, .then = then});
    d.pending_hold = 0ms;
  }

  // Ends this direction here: nothing more of it is read or relayed; the writer then resets or closes.
  static void cut(direction_state& d, then_kind kind) {
    if (d.cut) return;
    emit_marker(d, kind);
    d.cut = true;
  }

  static void begin_body(stream_state& s, body_kind kind, std::uint64_t length) {
    s.body_pos = 0;
    switch (kind) {
      case body_kind::none:
        s.at = stream_state::phase::head;
        break;
      case body_kind::length:
        s.at = stream_state::phase::length_body;
        s.remaining = length;
        break;
      case body_kind::chunked:
        s.at = stream_state::phase::chunk_size;
        break;
      case body_kind::until_eof:
        s.at = stream_state::phase::until_eof;
        break;
    }
  }

  // Sends the answers made here that are next in line, unless a server response is on its way to the client.
  void flush_answers(connection& c) {
    while (!c.response_in_progress && !c.pending.empty() && c.pending.front().answer &&
           c.pending.front().answer_ready && !c.down.cut) {
      pending_request p = std::move(c.pending.front());
      c.pending.pop_front();
      // Due as if it had come from the server; the batch being parsed keeps its own due (the queue is FIFO).
      const auto batch_due = c.down.batch_due;
      c.down.batch_due = next_due(c.down, 2);
      emit(c.down, *p.answer);
      if (p.close_after_answer) cut(c.down, then_kind::close);
      c.down.batch_due = batch_due;
      c.down.ready.cancel();
    }
  }

  void on_message_end(connection& c, direction_state& d, bool request_side) {
    message_fault m = std::move(d.msg);
    d.msg = {};
    if (m.flip_at && m.d) take_back(*m.d);  // the body ended before the offset
    if (m.stall_at) {                       // ... or before the stall point: stall at its end
      d.pending_hold = m.stall_for;
      emit_marker(d, then_kind::none);
    }
    if (m.cut_at) cut(d, m.cut_kind);
    if (m.close_after) cut(d, then_kind::close);
    if (request_side) {
      if (m.discard && m.d) {
        for (auto& p : c.pending) {
          if (p.record == m.d->record) p.answer_ready = true;
        }
        flush_answers(c);
      }
    } else {
      c.response_in_progress = false;
      flush_answers(c);
    }
  }

  // Body bytes [p, p + n) of the current message pass by.
  void body_bytes(direction_state& d, const char* p, std::uint64_t n) {
    message_fault& m = d.msg;
    std::uint64_t i = 0;
    while (i < n && !d.cut) {
      const std::uint64_t pos = d.parse.body_pos;
      std::uint64_t take = n - i;
      if (m.stall_at) {
        if (*m.stall_at == pos) {
          d.pending_hold = m.stall_for;
          m.stall_at.reset();
        } else {
          take = std::min(take, *m.stall_at - pos);
        }
      }
      if (m.cut_at) {
        if (*m.cut_at == pos) {
          cut(d, m.cut_kind);
          m.cut_at.reset();
          return;
        }
        take = std::min(take, *m.cut_at - pos);
      }
      if (!m.discard) {
        char* out = emit(d, std::string_view(p + i, take), m.rate);
        if (m.flip_at && *m.flip_at >= pos && *m.flip_at - pos < take) {
          out[*m.flip_at - pos] ^= 0x01;
          m.flip_at.reset();
        }
      }
      d.parse.body_pos += take;
      i += take;
    }
  }

  void on_request_head(connection& c, direction_state& d, std::string text) {
    head h = split_head(text);
    const std::string_view line = h.start_line;
    const std::string method(line.substr(0, line.find(' ')));
    const std::string_view rest = line.substr(std::min(line.size(), method.size() + 1));
    const std::string target(rest.substr(0, rest.find(' ')));
    const std::uint64_t id = add_record(
        request_record{.method = method, .target = target, .copy_source = h.get("x-amz-copy-source").has_value()});
    d.msg = {};
    pending_request p{.record = id, .method = method};
    auto framing = body_framing(h, body_kind::none);
    if (!framing) {  // unframeable: relay the rest as it comes, and inject nothing
      emit(d, text);
      c.pending.push_back(std::move(p));
      d.parse.at = stream_state::phase::passthrough;
      return;
    }
    const bool has_body = framing->first != body_kind::none;
    const bool known_length = framing->first == body_kind::length;
    const std::uint64_t length = framing->second;
    std::optional<decision> dec = decide(method, target, id);
    bool forward = true;
    if (dec) {
      const fault_action& a = dec->action;
      const bool request_side = a.kind == fault_kind::latency || a.kind == fault_kind::status ||
                                a.direction == fault_direction::request ||
                                (a.direction == fault_direction::automatic && has_body);
      if (!request_side) {
        p.response_fault = std::move(dec);
      } else {
        switch (a.kind) {
          case fault_kind::latency:
            d.pending_hold = a.duration;
            break;
          case fault_kind::status: {
            const bool expect =
                has_body && lower(h.get("expect").value_or("")).find("100-continue") != std::string::npos;
            const bool close = expect || lower(h.get("connection").value_or("")).find("close") != std::string::npos ||
                               line.ends_with("HTTP/1.0");
            p.answer = error_response(a, target, method == "HEAD", close, id);
            p.close_after_answer = close;
            // A client waiting for 100 Continue may never send the body: answer now, then close.
            p.answer_ready = expect || !has_body;
            update_record(id, [&](request_record& r) { r.status = a.status; });
            d.msg.discard = true;
            d.msg.d = std::move(dec);
            forward = false;
            break;
          }
          case fault_kind::reset:
            if (!has_body) {
              cut(d, then_kind::reset);  // the request never leaves
              c.pending.push_back(std::move(p));
              return;
            }
            d.msg.cut_at = known_length ? std::min(a.bytes, length - 1) : a.bytes;
            d.msg.cut_kind = then_kind::reset;
            break;
          case fault_kind::stall:
            if (a.after_bytes) {
              d.msg.stall_at = a.after_bytes;
              d.msg.stall_for = a.duration;
            } else {
              d.pending_hold = a.duration;
            }
            break;
          case fault_kind::flip_bit:
            if (!has_body || (known_length && a.offset >= length)) {
              take_back(*dec);
            } else {
              d.msg.flip_at = a.offset;
              d.msg.d = std::move(dec);
            }
            break;
          case fault_kind::trickle:
            if (has_body) {
              d.msg.rate = a.bytes_per_second;
            } else {
              take_back(*dec);
            }
            break;
          case fault_kind::truncate:
          case fault_kind::wrong_content_length:
            take_back(*dec);  // validate() keeps these off requests
            break;
        }
      }
    }
    if (forward) emit(d, text);
    c.pending.push_back(std::move(p));
    flush_answers(c);  // an answer that needs no body (or must not wait for it)
    begin_body(d.parse, framing->first, framing->second);
    if (framing->first == body_kind::none) on_message_end(c, d, true);
  }

  void on_response_head(connection& c, direction_state& d, std::string text) {
    head h = split_head(text);
    unsigned status = 0;
    const std::string_view line = h.start_line;
    if (std::size_t sp = line.find(' '); sp != std::string_view::npos) {
      std::from_chars(line.data() + sp + 1, line.data() + line.size(), status);
    }
    if (status >= 100 && status < 200 && status != 101) {  // interim: the final response follows
      emit(d, text);
      return;
    }
    pending_request req;
    if (!c.pending.empty() && !c.pending.front().answer) {
      req = std::move(c.pending.front());
      c.pending.pop_front();
      update_record(req.record, [&](request_record& r) { r.status = status; });
    }
    d.msg = {};
    c.response_in_progress = true;
    std::optional<std::pair<body_kind, std::uint64_t>> framing;
    if (req.method == "HEAD" || status == 204 || status == 304 || status == 101) {
      framing = std::pair{status == 101 ? body_kind::until_eof : body_kind::none, std::uint64_t{0}};
    } else {
      framing = body_framing(h, body_kind::until_eof);
    }
    if (!framing) {
      if (req.response_fault) take_back(*req.response_fault);
      emit(d, text);
      d.parse.at = stream_state::phase::passthrough;
      return;
    }
    const bool has_body = framing->first != body_kind::none;
    const bool known_length = framing->first == body_kind::length;
    const std::uint64_t length = framing->second;
    std::string out = std::move(text);
    if (auto& dec = req.response_fault) {
      const fault_action& a = dec->action;
      bool done = status >= 200 && status < 300;
      if (done) {
        switch (a.kind) {
          case fault_kind::reset:
          case fault_kind::truncate:
            d.msg.cut_kind = a.kind == fault_kind::reset ? then_kind::reset : then_kind::close;
            if (!has_body) {
              d.msg.cut_at = 0;  // right after the head, at the message's end below
            } else {
              d.msg.cut_at = known_length ? std::min(a.bytes, length - 1) : a.bytes;
            }
            break;
          case fault_kind::stall:
            if (a.after_bytes) {
              d.msg.stall_at = a.after_bytes;
              d.msg.stall_for = a.duration;
            } else {
              d.pending_hold = a.duration;
            }
            break;
          case fault_kind::flip_bit:
            if (!has_body || (known_length && a.offset >= length)) {
              done = false;
            } else {
              d.msg.flip_at = a.offset;
              d.msg.d = *dec;
            }
            break;
          case fault_kind::wrong_content_length: {
            std::uint64_t real = 0;  // as declared: for HEAD it is not the length of a body that follows
            if (auto cl = h.get("content-length");
                cl && framing->first != body_kind::chunked &&
                std::from_chars(cl->data(), cl->data() + cl->size(), real).ec == std::errc()) {
              const std::int64_t declared = static_cast<std::int64_t>(real) + a.delta;
              out = with_content_length(out, static_cast<std::uint64_t>(std::max<std::int64_t>(declared, 0)));
              d.msg.close_after = true;
            } else {
              done = false;
            }
            break;
          }
          case fault_kind::trickle:
            if (has_body) {
              d.msg.rate = a.bytes_per_second;
            } else {
              done = false;
            }
            break;
          case fault_kind::latency:
          case fault_kind::status:
            done = false;  // request-side faults never get here
            break;
        }
      }
      if (!done) take_back(*dec);
    }
    emit(d, out);
    begin_body(d.parse, framing->first, framing->second);
    if (framing->first == body_kind::none) on_message_end(c, d, false);
  }

  // Advances one direction over `data` as read, queueing what is to be relayed.
  void advance(connection& c, direction_state& d, bool request_side, std::span<const char> data) {
    using phase = stream_state::phase;
    stream_state& s = d.parse;
    std::size_t i = 0;
    while (i < data.size() && !d.cut) {
      switch (s.at) {
        case phase::passthrough:
          emit(d, std::string_view(data.data() + i, data.size() - i));
          return;
        case phase::head: {
          if (s.line.empty() && (data[i] == '\r' || data[i] == '\n')) {  // stray line ends between messages
            emit(d, std::string_view(data.data() + i, 1));
            ++i;
            break;
          }
          while (i < data.size()) {
            s.line.push_back(data[i++]);
            if (s.line.size() >= 4 && s.line.ends_with("\r\n\r\n")) break;
            if (s.line.size() > max_head_bytes) break;
          }
          if (s.line.size() > max_head_bytes) {
            emit(d, s.line);
            s.line.clear();
            s.at = phase::passthrough;
          } else if (s.line.ends_with("\r\n\r\n")) {
            std::string text = std::move(s.line);
            s.line.clear();
            if (request_side) {
              on_request_head(c, d, std::move(text));
            } else {
              on_response_head(c, d, std::move(text));
            }
          }
          break;
        }
        case phase::length_body:
        case phase::chunk_data: {
          const std::uint64_t n = std::min<std::uint64_t>(s.remaining, data.size() - i);
          body_bytes(d, data.data() + i, n);
          if (d.cut) return;
          i += n;
          s.remaining -= n;
          if (s.remaining == 0) {
            if (s.at == phase::length_body) {
              s.at = phase::head;
              on_message_end(c, d, request_side);
            } else {
              s.at = phase::chunk_data_end;
            }
          }
          break;
        }
        case phase::until_eof:
          body_bytes(d, data.data() + i, data.size() - i);
          return;
        case phase::chunk_data_end:
        case phase::chunk_size:
        case phase::trailers: {
          s.line.push_back(data[i++]);
          if (s.line.size() > max_line_bytes) {
            emit(d, s.line);
            s.line.clear();
            s.at = phase::passthrough;
            break;
          }
          if (!s.line.ends_with("\r\n")) break;
          std::string framing_line = std::move(s.line);
          s.line.clear();
          if (!d.msg.discard) emit(d, framing_line);
          if (s.at == phase::chunk_data_end) {
            s.at = framing_line == "\r\n" ? phase::chunk_size : phase::passthrough;
          } else if (s.at == phase::trailers) {
            if (framing_line == "\r\n") {
              s.at = phase::head;
              on_message_end(c, d, request_side);
            }
          } else {
            std::uint64_t size = 0;
            const char* first = framing_line.data();
            auto [end, ec] = std::from_chars(first, first + framing_line.size(), size, 16);
            if (ec != std::errc() || (*end != ';' && *end != '\r' && *end != ' ')) {
              s.at = phase::passthrough;
            } else if (size == 0) {
              s.at = phase::trailers;
            } else {
              s.at = phase::chunk_data;
              s.remaining = size;
            }
          }
          break;
        }
      }
    }
  }

  static void kill(connection& c, bool reset) {
    if (c.dead) return;
    c.dead = true;
    boost::system::error_code ignored;
    for (tcp::socket* s : {&c.client, &c.upstream}) {
      if (reset && s->is_open()) s->set_option(tcp::socket::linger(true, 0), ignored);
      s->close(ignored);
    }
    for (direction_state* d : {&c.up, &c.down}) {
      d->space.cancel();
      d->ready.cancel();
      d->timer.cancel();
    }
    c.linger.cancel();
  }

  // Whether direction `d`'s coroutines should go on.
  static bool alive(const connection& c, const direction_state& d) { return !c.dead && !(c.closing && &d == &c.up); }

  static asio::awaitable<bool> wait_until(connection& c, direction_state& d, clock_type::time_point when) {
    if (when > clock_type::now()) {
      d.timer.expires_at(when);
      co_await d.timer.async_wait(tok);
    }
    co_return alive(c, d);
  }

  // Unsent bytes of `s` (queued in the kernel): a reset would throw them away.
  static int unsent_bytes(tcp::socket& s) {
    int n = 0;
    if (!s.is_open() || ::ioctl(s.native_handle(), SIOCOUTQ, &n) != 0) return 0;
    return n;
  }

  asio::awaitable<void> reader(connection& c, direction_state& d, bool request_side) {
    tcp::socket& from = request_side ? c.client : c.upstream;
    std::vector<char> buf(relay_buffer_bytes);
    for (;;) {
      while (alive(c, d) && d.queued >= options.queue_limit) {  // backpressure: the writer is behind
        d.space.expires_at(clock_type::time_point::max());
        co_await d.space.async_wait(tok);
      }
      if (c.dead) break;
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), tok);
      if (c.dead) break;
      if (request_side && c.closing) {  // discard until the client closes too
        if (ec) break;
        continue;
      }
      if (ec) {
        if (!d.cut) {
          d.batch_due = next_due(d);
          if (ec == asio::error::eof) {
            if (d.parse.at == stream_state::phase::until_eof) on_message_end(c, d, request_side);
            if (!d.cut) emit_marker(d, then_kind::eof);
          } else {
            cut(d, then_kind::reset);  // pass the abort on
          }
          d.ready.cancel();
        }
        break;
      }
      if (d.cut) break;
      d.batch_due = next_due(d);
      advance(c, d, request_side, std::span<const char>(buf.data(), n));
      d.ready.cancel();
      if (d.cut) break;
    }
    d.reading_done = true;
    c.linger.cancel();
  }

  asio::awaitable<void> writer(connection& c, direction_state& d, bool to_client) {
    tcp::socket& to = to_client ? c.client : c.upstream;
    boost::system::error_code ignored;
    for (;;) {
      if (!alive(c, d)) co_return;
      if (d.queue.empty()) {
        if (d.reading_done && d.cut) co_return;
        d.ready.expires_at(clock_type::time_point::max());
        co_await d.ready.async_wait(tok);
        continue;
      }
      out_item item = std::move(d.queue.front());
      d.queue.pop_front();
      if (!co_await wait_until(c, d, item.due)) co_return;
      for (auto end = stall_end(clock_type::now()); end; end = stall_end(clock_type::now())) {
        if (!co_await wait_until(c, d, *end)) co_return;
      }
      if (item.hold > 0ms && !co_await wait_until(c, d, clock_type::now() + item.hold)) co_return;
      if (!item.data.empty()) {
        boost::system::error_code ec;
        if (item.rate == 0) {
          auto [wec, written] = co_await asio::async_write(to, asio::buffer(item.data), tok);
          ec = wec;
        } else {
          const std::size_t slice = static_cast<std::size_t>(std::clamp<std::uint64_t>(item.rate / 50, 1, 16384));
          for (std::size_t at = 0; at < item.data.size() && !ec;) {
            d.pace_next = std::max(d.pace_next, clock_type::now());
            if (!co_await wait_until(c, d, d.pace_next)) co_return;
            const std::size_t n = std::min(slice, item.data.size() - at);
            auto [wec, written] = co_await asio::async_write(to, asio::buffer(item.data.data() + at, n), tok);
            ec = wec;
            at += n;
            d.pace_next += std::chrono::nanoseconds(static_cast<std::int64_t>(n * 1'000'000'000ull / item.rate));
          }
        }
        if (ec) {
          if (alive(c, d)) kill(c, false);
          co_return;
        }
        d.queued -= item.data.size();
        d.space.cancel();
      }
      switch (item.then) {
        case then_kind::none:
          break;
        case then_kind::eof:
          to.shutdown(tcp::socket::shutdown_send, ignored);
          co_return;
        case then_kind::reset: {
          const auto deadline = clock_type::now() + drain_limit;
          while (unsent_bytes(to) > 0 && clock_type::now() < deadline) {
            if (!co_await wait_until(c, d, clock_type::now() + 2ms)) co_return;
          }
          kill(c, true);
          co_return;
        }
        case then_kind::close: {
          // FIN to the client; the server's side is dropped; the client gets a moment to close its side.
          c.closing = true;
          c.client.shutdown(tcp::socket::shutdown_send, ignored);
          c.upstream.close(ignored);
          c.up.space.cancel();
          c.up.ready.cancel();
          c.up.timer.cancel();
          if (!c.up.reading_done) {
            c.linger.expires_after(close_linger);
            co_await c.linger.async_wait(tok);
          }
          kill(c, false);
          co_return;
        }
      }
    }
  }

  asio::awaitable<void> session(tcp::socket client_socket) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    connection c(std::move(client_socket), ex);
    {
      asio::steady_timer timeout(ex);
      timeout.expires_after(connect_timeout);
      auto done = co_await (c.upstream.async_connect(upstream, tok) || timeout.async_wait(tok));
      if (done.index() != 0 || std::get<0>(std::get<0>(done))) co_return;  // the client sees its connection close
    }
    boost::system::error_code ignored;
    c.client.set_option(tcp::no_delay(true), ignored);
    c.upstream.set_option(tcp::no_delay(true), ignored);
    co_await (reader(c, c.up, true) && writer(c, c.up, false) && reader(c, c.down, false) && writer(c, c.down, true));
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(tok);
      if (ec == asio::error::connection_aborted) continue;  // the client gave up before accept
      if (ec) co_return;                                    // closed, or out of descriptors: stop, not spin
      {
        std::lock_guard lock(mutex);
        ++connections;
      }
      asio::co_spawn(*ioc, session(std::move(socket)), asio::detached);
    }
  }
};

fault_proxy::fault_proxy(fault_proxy_options options) : state_(std::make_unique<state>()) {
  state& s = *state_;
  s.rules = make_rule_set(std::move(options.rules));
  s.rng.seed(options.seed);
  s.options = std::move(options);
  set_delay(s.options.delay, s.options.jitter);

  tcp::resolver resolver(*s.ioc);
  auto found = resolver.resolve(s.options.upstream_host, std::to_string(s.options.upstream_port));
  s.upstream = found.begin()->endpoint();

  const tcp::endpoint listen(asio::ip::make_address(s.options.listen_address), s.options.listen_port);
  s.acceptor->open(listen.protocol());
  s.acceptor->set_option(tcp::acceptor::reuse_address(true));
  s.acceptor->bind(listen);
  s.acceptor->listen();
  s.port = s.acceptor->local_endpoint().port();
  asio::co_spawn(*s.ioc, s.accept_loop(), asio::detached);
  s.thread = std::thread([ioc = s.ioc.get()] { ioc->run(); });
}

fault_proxy::~fault_proxy() {
  // Stopping the io_context abandons every relay; ~state destroys it, which closes their sockets.
  state_->ioc->stop();
  if (state_->thread.joinable()) state_->thread.join();
}

std::uint16_t fault_proxy::port() const { return state_->port; }

std::string fault_proxy::endpoint() const {
  return "http://" + state_->options.listen_address + ":" + std::to_string(state_->port);
}

void fault_proxy::set_rules(std::vector<fault_rule> rules) {
  auto set = make_rule_set(std::move(rules));
  std::lock_guard lock(state_->mutex);
  state_->rules = std::move(set);
}

void fault_proxy::set_seed(std::uint64_t seed) {
  std::lock_guard lock(state_->mutex);
  state_->rng.seed(seed);
}

void fault_proxy::set_delay(std::chrono::microseconds one_way, std::chrono::microseconds jitter) {
  state_->delay_us.store(std::max<std::int64_t>(one_way.count(), 0));
  state_->jitter_us.store(std::max<std::int64_t>(jitter.count(), 0));
}

void fault_proxy::set_stall(std::chrono::milliseconds duration, std::chrono::milliseconds every) {
  state_->stall_duration_ns.store(0);  // no half-updated stall is ever seen as one
  state_->stall_every_ns.store(std::chrono::nanoseconds(std::max(every, 0ms)).count());
  state_->stall_origin_ns.store(clock_type::now().time_since_epoch().count());
  state_->stall_duration_ns.store(std::chrono::nanoseconds(std::max(duration, 0ms)).count());
}

fault_stats fault_proxy::stats() const {
  std::lock_guard lock(state_->mutex);
  fault_stats out;
  for (const auto& r : state_->rules->rules) out.rule_names.push_back(r.name);
  out.fired = state_->rules->fired;
  out.requests = state_->next_id;
  out.connections = state_->connections;
  out.records.assign(state_->records.begin(), state_->records.end());
  return out;
}

std::uint64_t fault_proxy::fired(std::size_t index) const {
  std::lock_guard lock(state_->mutex);
  return index < state_->rules->fired.size() ? state_->rules->fired[index] : 0;
}

std::vector<request_record> fault_proxy::requests() const {
  std::lock_guard lock(state_->mutex);
  return {state_->records.begin(), state_->records.end()};
}

}  // namespace ferry::test
