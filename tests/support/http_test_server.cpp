#include "support/http_test_server.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <future>
#include <map>
#include <stdexcept>

namespace ferry::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr auto tok = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds io_limit{30};  // a test client that goes silent cannot hold a session forever

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string hex(std::size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%zx", n);
  return buf;
}

// The response bytes exactly as sent, so tests control framing (and can cut it short).
std::string format_response(const http_test_response& r, bool head_request) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " +
                    std::string(bhttp::obsolete_reason(bhttp::int_to_status(r.status))) + "\r\n";
  bool has_length = false;
  for (const auto& [k, v] : r.headers) {
    has_length = has_length || iequals(k, "content-length");
    out += k + ": " + v + "\r\n";
  }
  if (r.chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  } else if (!has_length) {
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  if (r.close) out += "Connection: close\r\n";
  out += "\r\n";
  const bool bodyless = head_request || r.status < 200 || r.status == 204 || r.status == 304;
  if (bodyless) return out;
  if (!r.chunked) return out + r.body;
  const std::size_t step = std::max<std::size_t>(1, r.chunk_size);
  for (std::size_t off = 0; off < r.body.size(); off += step) {
    const std::size_t n = std::min(step, r.body.size() - off);
    out += hex(n) + "\r\n";
    out.append(r.body, off, n);
    out += "\r\n";
  }
  out += "0\r\n\r\n";
  return out;
}

}  // namespace

std::optional<std::string> http_test_request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

struct http_test_server::state {
  http_test_handler handler;
  options opts;
  std::atomic<std::size_t> accepted{0};
  std::atomic<std::size_t> handled{0};
  std::atomic<std::size_t> open{0};
  std::atomic<std::size_t> max_open{0};
  std::map<std::size_t, std::function<void()>> idle_closers;  // server thread only
  std::optional<ssl::context> tls;
  std::uint16_t port = 0;
  // Destroyed first (declared last): session frames it destroys still see the members above.
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::thread thread;

  struct open_guard {
    explicit open_guard(state& s) : st(s) {
      const auto now = ++st.open;
      auto prev = st.max_open.load();
      while (prev < now && !st.max_open.compare_exchange_weak(prev, now)) {
      }
    }
    ~open_guard() { --st.open; }
    state& st;
  };

  static std::function<void()> closer(beast::tcp_stream& lowest) {
    return [&lowest] {
      beast::error_code ignored;
      lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest.close();
    };
  }

  template <class Stream>
  asio::awaitable<void> serve(Stream& stream, beast::tcp_stream& lowest, std::size_t conn_index) {
    struct unregister {
      ~unregister() { closers.erase(index); }
      std::map<std::size_t, std::function<void()>>& closers;
      std::size_t index;
    } on_exit{idle_closers, conn_index};
    beast::flat_buffer buf;
    for (std::size_t index = 0;; ++index) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(opts.max_body);
      if (index > 0 && opts.keepalive_idle.count() > 0) {
        lowest.expires_after(opts.keepalive_idle);
      } else {
        lowest.expires_after(io_limit);
      }
      idle_closers[conn_index] = closer(lowest);
      auto [hec, hn] = co_await bhttp::async_read_header(stream, buf, parser, tok);
      idle_closers.erase(conn_index);
      if (hec) co_return;
      lowest.expires_after(io_limit);
      auto [ec, n] = co_await bhttp::async_read(stream, buf, parser, tok);
      if (ec) co_return;

      const auto& msg = parser.get();
      http_test_request req;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      req.body = msg.body();
      req.connection_index = conn_index;
      req.request_index = index;
      http_test_response res;
      try {
        res = handler(req);
      } catch (const std::exception& e) {
        res = http_test_response{};
        res.status = 500;
        res.body = e.what();
      }
      ++handled;

      asio::steady_timer timer(co_await asio::this_coro::executor);
      if (res.delay.count() > 0) {
        timer.expires_after(res.delay);
        co_await timer.async_wait(tok);
      }
      if (res.act == http_test_response::action::drop) {
        beast::error_code ignored;
        lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest.close();
        co_return;
      }
      if (res.act == http_test_response::action::stall) {
        timer.expires_after(std::chrono::hours(1));
        co_await timer.async_wait(tok);
        co_return;
      }
      std::string wire = format_response(res, req.method == "HEAD");
      if (res.stall_after && *res.stall_after < wire.size()) wire.resize(*res.stall_after);
      lowest.expires_after(io_limit);
      // Idle from here on: the client may see the response before this coroutine resumes, and a
      // test that then calls close_idle_connections() must find this connection.
      if (!res.stall_after && !res.close && parser.keep_alive()) idle_closers[conn_index] = closer(lowest);
      auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(wire), tok);
      if (wec) co_return;
      if (res.stall_after) {
        timer.expires_after(std::chrono::hours(1));
        co_await timer.async_wait(tok);
        co_return;
      }
      if (res.close || !parser.keep_alive()) {
        beast::error_code ignored;
        lowest.socket().shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
    }
  }

  asio::awaitable<void> session(tcp::socket sock, std::size_t conn_index) {
    open_guard guard(*this);
    beast::error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    if (!tls) {
      beast::tcp_stream stream(std::move(sock));
      co_await serve(stream, stream, conn_index);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(sock)), *tls);
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(io_limit);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, tok);
    if (ec) co_return;  // e.g. the client rejected our certificate
    co_await serve(stream, lowest, conn_index);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(tok);
      if (ec) co_return;
      const std::size_t index = accepted++;
      asio::co_spawn(ioc, session(std::move(sock), index), asio::detached);
    }
  }
};

http_test_server::http_test_server(http_test_handler handler, options opts) : state_(std::make_shared<state>()) {
  auto& st = *state_;
  st.handler = std::move(handler);
  st.opts = std::move(opts);
  if (st.opts.tls) {
    st.tls.emplace(ssl::context::tls_server);
    st.tls->use_certificate_chain_file(st.opts.cert_file);
    st.tls->use_private_key_file(st.opts.key_file, ssl::context::pem);
  }
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  st.acceptor.open(ep.protocol());
  st.acceptor.set_option(tcp::acceptor::reuse_address(true));
  st.acceptor.bind(ep);
  st.acceptor.listen();
  st.port = st.acceptor.local_endpoint().port();
  asio::co_spawn(st.ioc, st.accept_loop(), asio::detached);
  st.thread = std::thread([&st] { st.ioc.run(); });
}

http_test_server::~http_test_server() {
  state_->ioc.stop();
  if (state_->thread.joinable()) state_->thread.join();
}

std::uint16_t http_test_server::port() const { return state_->port; }

std::string http_test_server::url(std::string_view host) const {
  return std::string(state_->opts.tls ? "https://" : "http://") + std::string(host) + ":" + std::to_string(port());
}

std::size_t http_test_server::connections_accepted() const { return state_->accepted; }
std::size_t http_test_server::requests_handled() const { return state_->handled; }
std::size_t http_test_server::max_open_connections() const { return state_->max_open; }

std::size_t http_test_server::close_idle_connections() {
  auto done = std::make_shared<std::promise<std::size_t>>();
  auto f = done->get_future();
  asio::post(state_->ioc, [st = state_.get(), done] {
    const std::size_t n = st->idle_closers.size();
    for (auto& [index, close] : st->idle_closers) close();
    st->idle_closers.clear();
    done->set_value(n);
  });
  if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    throw std::runtime_error("http_test_server: close_idle_connections timed out");
  }
  return f.get();
}

}  // namespace ferry::test
