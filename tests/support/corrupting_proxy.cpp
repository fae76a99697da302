#include "support/corrupting_proxy.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <deque>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>

namespace ferry::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto tok = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_head_bytes = 64 * 1024;
constexpr std::size_t max_line_bytes = 4096;  // a chunk-size or trailer line
constexpr std::size_t relay_buffer_bytes = 64 * 1024;
constexpr std::size_t no_record = static_cast<std::size_t>(-1);

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
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

// One direction of one connection: where the byte stream is within its current message.
struct stream_state {
  enum class phase { head, length_body, chunk_size, chunk_data, chunk_data_end, trailers, until_eof, passthrough };
  phase at = phase::head;
  std::string line;  // the head so far, or the current chunk-size / trailer line
  std::uint64_t remaining = 0;
  std::uint64_t body_pos = 0;            // body bytes of the current message seen so far
  std::optional<std::uint64_t> flip_at;  // body offset to corrupt in the current message
  std::size_t record = no_record;        // the request a response answers
};

struct pending_request {
  std::size_t record = no_record;
  std::string method;
};

struct connection {
  std::deque<pending_request> pending;  // requests sent upstream and not yet answered, oldest first
  stream_state request, response;
};

}  // namespace

struct corrupting_proxy::state {
  corrupting_proxy_options options;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::uint16_t port = 0;
  std::optional<std::size_t> budget;  // corruptions left; touched on the io thread only
  std::atomic<std::size_t> corrupted{0};
  mutable std::mutex mutex;  // guards log
  std::vector<proxied_request> log;
  std::thread thread;

  std::size_t record(proxied_request r) {
    std::lock_guard lock(mutex);
    log.push_back(std::move(r));
    return log.size() - 1;
  }

  void on_request_head(connection& c, stream_state& s, std::string_view text) {
    head h = split_head(text);
    std::string_view line = h.start_line;
    std::string_view method = line.substr(0, line.find(' '));
    std::string_view rest = line.substr(std::min(line.size(), method.size() + 1));
    std::string_view target = rest.substr(0, rest.find(' '));
    proxied_request r{.method = std::string(method),
                      .target = std::string(target),
                      .copy_source = h.get("x-amz-copy-source").has_value()};
    c.pending.push_back({record(std::move(r)), std::string(method)});
    auto framing = body_framing(h, body_kind::none);
    if (!framing) {
      s.at = stream_state::phase::passthrough;
      return;
    }
    begin_body(s, framing->first, framing->second);
  }

  void on_response_head(connection& c, stream_state& s, std::string_view text) {
    head h = split_head(text);
    unsigned status = 0;
    std::string_view line = h.start_line;
    if (std::size_t sp = line.find(' '); sp != std::string_view::npos) {
      std::from_chars(line.data() + sp + 1, line.data() + line.size(), status);
    }
    if (status >= 100 && status < 200 && status != 101) return;  // interim: the final response follows
    pending_request req;
    if (!c.pending.empty()) {
      req = std::move(c.pending.front());
      c.pending.pop_front();
    }
    std::string target;
    if (req.record != no_record) {
      std::lock_guard lock(mutex);
      log[req.record].status = status;
      target = log[req.record].target;
    }
    s.record = req.record;
    if (req.method == "HEAD" || status == 204 || status == 304 || status == 101) {
      begin_body(s, status == 101 ? body_kind::until_eof : body_kind::none, 0);
      return;
    }
    auto framing = body_framing(h, body_kind::until_eof);
    if (!framing) {
      s.at = stream_state::phase::passthrough;
      return;
    }
    begin_body(s, framing->first, framing->second);
    const std::string_view query =
        target.find('?') == std::string::npos ? std::string_view() : std::string_view(target).substr(target.find('?'));
    if (req.method == "GET" && (status == 200 || status == 206) &&
        target.find(options.key_substring) != std::string::npos && query.find("list-type") == std::string::npos &&
        (!budget || *budget > 0)) {
      s.flip_at = options.body_offset;
    }
  }

  static void begin_body(stream_state& s, body_kind kind, std::uint64_t length) {
    s.body_pos = 0;
    s.flip_at.reset();
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

  // Body bytes [p, p + n) of the current message pass by: corrupt the chosen one if it is among them.
  void body_bytes(stream_state& s, char* p, std::uint64_t n) {
    if (s.flip_at && *s.flip_at >= s.body_pos && *s.flip_at - s.body_pos < n) {
      if (!budget || *budget > 0) {
        p[*s.flip_at - s.body_pos] ^= 0x01;
        if (budget) --*budget;
        corrupted.fetch_add(1);
        if (s.record != no_record) {
          std::lock_guard lock(mutex);
          log[s.record].corrupted = true;
        }
      }
      s.flip_at.reset();
    }
    s.body_pos += n;
  }

  // Advances one direction over `data` (as read, modified in place), calling on_head for each head.
  template <class OnHead>
  void advance(stream_state& s, std::span<char> data, OnHead&& on_head) {
    using phase = stream_state::phase;
    std::size_t i = 0;
    while (i < data.size()) {
      switch (s.at) {
        case phase::passthrough:
          return;
        case phase::head: {
          s.line.push_back(data[i++]);
          if (s.line.size() > max_head_bytes) {
            s.at = phase::passthrough;
          } else if (s.line.size() >= 4 && s.line.compare(s.line.size() - 4, 4, "\r\n\r\n") == 0) {
            std::string text = std::move(s.line);
            s.line.clear();
            if (text == "\r\n\r\n") break;  // stray blank lines between messages are tolerated
            on_head(text);
          }
          break;
        }
        case phase::length_body:
        case phase::chunk_data: {
          const std::uint64_t n = std::min<std::uint64_t>(s.remaining, data.size() - i);
          body_bytes(s, data.data() + i, n);
          i += n;
          s.remaining -= n;
          if (s.remaining == 0) s.at = s.at == phase::length_body ? phase::head : phase::chunk_data_end;
          break;
        }
        case phase::until_eof: {
          body_bytes(s, data.data() + i, data.size() - i);
          i = data.size();
          break;
        }
        case phase::chunk_data_end:
        case phase::chunk_size:
        case phase::trailers: {
          s.line.push_back(data[i++]);
          if (s.line.size() > max_line_bytes) {
            s.at = phase::passthrough;
            break;
          }
          if (s.line.size() < 2 || s.line.compare(s.line.size() - 2, 2, "\r\n") != 0) break;
          std::string line = std::move(s.line);
          s.line.clear();
          if (s.at == phase::chunk_data_end) {
            s.at = line == "\r\n" ? phase::chunk_size : phase::passthrough;
          } else if (s.at == phase::trailers) {
            if (line == "\r\n") s.at = phase::head;
          } else {
            std::uint64_t size = 0;
            auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
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

  // Copies `from` to `to` until EOF, letting `process` look at (and change) each piece first. On EOF the
  // other side's sending half is shut, so a response still on its way is delivered; on an error both close.
  template <class Process>
  asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to, Process process) {
    std::vector<char> buf(relay_buffer_bytes);
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), tok);
      if (ec) {
        boost::system::error_code ignored;
        if (ec == asio::error::eof) {
          to.shutdown(tcp::socket::shutdown_send, ignored);
        } else {
          from.close(ignored);
          to.close(ignored);
        }
        co_return;
      }
      process(std::span<char>(buf.data(), n));
      auto [wec, written] = co_await asio::async_write(to, asio::buffer(buf.data(), n), tok);
      if (wec) {
        boost::system::error_code ignored;
        from.close(ignored);
        to.close(ignored);
        co_return;
      }
    }
  }

  asio::awaitable<void> session(tcp::socket client) {
    using namespace asio::experimental::awaitable_operators;
    tcp::socket upstream(ioc);
    auto [ec] =
        co_await upstream.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), options.upstream_port), tok);
    if (ec) co_return;  // the client sees its connection close
    boost::system::error_code ignored;
    client.set_option(tcp::no_delay(true), ignored);
    upstream.set_option(tcp::no_delay(true), ignored);
    connection c;
    co_await (pump(client, upstream,
                   [&](std::span<char> d) {
                     advance(c.request, d, [&](std::string_view h) { on_request_head(c, c.request, h); });
                   }) &&
              pump(upstream, client, [&](std::span<char> d) {
                advance(c.response, d, [&](std::string_view h) { on_response_head(c, c.response, h); });
              }));
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(tok);
      if (ec == asio::error::connection_aborted) continue;  // the client gave up before accept
      if (ec) co_return;                                    // closed, or out of descriptors: stop, not spin
      asio::co_spawn(ioc, session(std::move(socket)), asio::detached);
    }
  }
};

corrupting_proxy::corrupting_proxy(corrupting_proxy_options options) : state_(std::make_unique<state>()) {
  state_->options = std::move(options);
  state_->budget = state_->options.times;
  const tcp::endpoint listen(asio::ip::address_v4::loopback(), 0);
  state_->acceptor.open(listen.protocol());
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(listen);
  state_->acceptor.listen();
  state_->port = state_->acceptor.local_endpoint().port();
  asio::co_spawn(state_->ioc, state_->accept_loop(), asio::detached);
  state_->thread = std::thread([s = state_.get()] { s->ioc.run(); });
}

corrupting_proxy::~corrupting_proxy() {
  // Stopping the io_context abandons every relay; destroying it (with state_) closes their sockets.
  state_->ioc.stop();
  if (state_->thread.joinable()) state_->thread.join();
}

std::uint16_t corrupting_proxy::port() const { return state_->port; }

std::string corrupting_proxy::endpoint() const { return "http://127.0.0.1:" + std::to_string(state_->port); }

std::size_t corrupting_proxy::corrupted() const { return state_->corrupted.load(); }

std::vector<proxied_request> corrupting_proxy::requests() const {
  std::lock_guard lock(state_->mutex);
  return state_->log;
}

}  // namespace ferry::test
