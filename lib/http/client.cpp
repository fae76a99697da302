// The pool, its connections and the response. Beast and OpenSSL stay in this file.
//
// Threading: a pool is shared by coroutines on several io threads. Its bookkeeping (idle list,
// slot count, waiters) is guarded by one mutex and never held across an await. Each connection
// owns a strand; every socket operation runs on it (co_spawn per step), because beast::tcp_stream's
// timeout handler and the operation it guards must not run concurrently. The request body source
// is always called from the caller's own coroutine, never from a connection strand.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/system/errc.hpp>
#include <cerrno>
#include <charconv>
#include <deque>
#include <map>
#include <mutex>

#include "http/client.hpp"

namespace ferry::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto tok = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t write_chunk_bytes = 256 * 1024;  // one request-body chunk in flight per request
constexpr std::size_t read_all_step = 64 * 1024;
constexpr int max_interim_responses = 8;  // 1xx heads skipped before the real response

using parser_type = bhttp::response_parser<bhttp::buffer_body>;
using errc = boost::system::errc::errc_t;

error_code make_errc(errc e) { return boost::system::errc::make_error_code(e); }

// Beast reports its own timeout code; callers see one: asio::error::timed_out.
error_code map_error(error_code ec) {
  if (ec == beast::error::timeout) return asio::error::timed_out;
  return ec;
}

// What a reused keep-alive connection the server already closed looks like.
bool is_stale_error(const error_code& ec) {
  return ec == asio::error::eof || ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted || ec == asio::error::not_connected ||
         ec == ssl::error::stream_truncated;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

// No CR/LF/NUL: a value must not be able to inject a header line.
bool is_field_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

bool is_target(std::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

bool is_bodyless_method(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "DELETE" || m == "OPTIONS" || m == "TRACE";
}

// The request line and header block, validated; Host and Content-Length are ours.
result<std::string> format_head(const request& r, const origin& o) {
  if (!is_token(r.method) || !is_target(r.target)) return make_errc(errc::invalid_argument);
  std::string h;
  h.reserve(256);
  h.append(r.method).append(" ").append(r.target).append(" HTTP/1.1\r\nHost: ").append(o.host_header()).append("\r\n");
  for (const auto& [k, v] : r.headers.items) {
    if (iequals(k, "host") || iequals(k, "content-length")) continue;
    // Bodies are always sent with a length; a caller-chosen framing would desynchronise the stream.
    if (iequals(k, "transfer-encoding")) return make_errc(errc::invalid_argument);
    if (!is_token(k) || !is_field_value(v)) return make_errc(errc::invalid_argument);
    h.append(k).append(": ").append(v).append("\r\n");
  }
  const std::uint64_t len = r.source ? r.content_length : r.body.size();
  if (len > 0 || r.source || !is_bodyless_method(r.method)) {
    h.append("Content-Length: ").append(std::to_string(len)).append("\r\n");
  }
  h.append("\r\n");
  return h;
}

std::optional<std::uint64_t> parse_content_length(const header_list& h) {
  auto v = h.get("content-length");
  if (!v) return std::nullopt;
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || end != v->data() + v->size()) return std::nullopt;
  return n;
}

}  // namespace

bool is_certificate_error(const error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return false;
  const auto e = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
  return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED;
}

// One TCP (or TLS over TCP) connection and its read buffer; owned by exactly one of: the idle
// list, a send in progress, a response, a waiter it was handed to.
// Bytes a connection's read buffer holds ready, so body reads move this much per system call.
constexpr std::size_t read_reserve_bytes = 256 * 1024;

class connection {
 public:
  using strand_type = asio::strand<asio::any_io_executor>;

  connection(asio::any_io_executor ex, ssl::context* ctx, std::size_t buffer_limit)
      : strand(asio::make_strand(ex)), ctx_(ctx), buffer(buffer_limit) {
    // Beast sizes each socket read by the buffer's free capacity, with 512 bytes as the floor: an
    // unreserved buffer read bodies 512 bytes per system call (strace during a 1000 x 100 KiB copy:
    // 215,094 recvmsg of exactly 512 bytes, and the uploads fed from them went out 512 at a time).
    buffer.reserve(std::min<std::size_t>(buffer_limit, read_reserve_bytes));
    reset_stream();
  }

  // A new, unconnected stream (between connect attempts to several resolved addresses).
  void reset_stream() {
    plain.reset();
    tls.reset();
    if (ctx_) {
      tls.emplace(strand, *ctx_);
    } else {
      plain.emplace(strand);
    }
  }

  beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  template <class F>
  auto visit(F&& f) {
    if (tls) return f(*tls);
    return f(*plain);
  }

  // A pooled connection is reused only if the server has not closed it meanwhile (a FIN or a
  // TLS close_notify waiting in the socket) and nothing unread is left over.
  bool alive() {
    if (buffer.size() != 0) return false;
    auto& sock = tcp().socket();
    if (!sock.is_open()) return false;
    char b = 0;
    const auto n = ::recv(sock.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  strand_type strand;

 private:
  ssl::context* ctx_;

 public:
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  steady::time_point idle_since{};
  std::optional<std::chrono::nanoseconds> connect_time, tls_time;  // set by open_connection
};

namespace {

// Runs one socket step on the connection's strand and resumes the caller on its own executor.
template <class T>
asio::awaitable<T> on_strand(connection& c, asio::awaitable<T> op) {
  co_return co_await asio::co_spawn(c.strand, std::move(op), asio::use_awaitable);
}

std::unique_ptr<parser_type> make_parser(bool head_request, std::size_t max_header_bytes) {
  auto p = std::make_unique<parser_type>();
  p->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(max_header_bytes, UINT32_MAX)));
  p->body_limit(boost::none);  // streamed in caller-sized chunks; the caller decides how much is too much
  if (head_request) p->skip(true);
  return p;
}

// getaddrinfo cannot be cancelled, so the resolve runs detached and is awaited with a timer.
asio::awaitable<result<tcp::resolver::results_type>> resolve(const origin& o, std::chrono::milliseconds limit) {
  using channel = asio::experimental::channel<void(error_code, tcp::resolver::results_type)>;
  auto ex = co_await asio::this_coro::executor;
  auto ch = std::make_shared<channel>(ex, 1);
  asio::co_spawn(
      ex,
      [](std::shared_ptr<channel> ch, std::string host, std::string port) -> asio::awaitable<void> {
        tcp::resolver resolver(co_await asio::this_coro::executor);
        auto [ec, eps] = co_await resolver.async_resolve(host, port, tok);
        ch->try_send(ec, std::move(eps));
      }(ch, o.host, std::to_string(o.port)),
      asio::detached);
  asio::steady_timer timer(ex, limit);
  auto r = co_await (ch->async_receive(tok) || timer.async_wait(tok));
  if (r.index() == 1) co_return error_code(asio::error::timed_out);
  auto [ec, eps] = std::get<0>(std::move(r));
  if (ec) co_return ec;
  co_return eps;
}

// Resolve, TCP connect (per address, in order), TCP_NODELAY, then the TLS handshake with SNI
// and host name verification. Runs on the connection's strand.
asio::awaitable<error_code> open_connection(connection& c, const origin& o, const pool_config& cfg) {
  auto eps = co_await resolve(o, cfg.timeout.connect);
  if (!eps) co_return eps.error();
  error_code ec = asio::error::host_not_found;
  for (const auto& entry : *eps) {
    c.reset_stream();
    c.tcp().expires_after(cfg.timeout.connect);
    const auto began = steady::now();
    auto [cec] = co_await c.tcp().async_connect(entry.endpoint(), tok);
    c.connect_time = steady::now() - began;
    ec = map_error(cec);
    if (!ec) break;
  }
  if (ec) co_return ec;
  c.tcp().socket().set_option(tcp::no_delay(true), ec);
  if (ec) co_return ec;
  if (c.tls) {
    error_code not_ip;
    asio::ip::make_address(o.host, not_ip);
    // SNI carries names only; an IP literal is checked against the certificate's IP SANs.
    if (not_ip && SSL_set_tlsext_host_name(c.tls->native_handle(), o.host.c_str()) != 1) {
      co_return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
    }
    if (cfg.tls.verify_peer) {
      c.tls->set_verify_mode(ssl::verify_peer, ec);
      if (!ec) c.tls->set_verify_callback(ssl::host_name_verification(o.host), ec);
    } else {
      c.tls->set_verify_mode(ssl::verify_none, ec);
    }
    if (ec) co_return ec;
    c.tcp().expires_after(cfg.timeout.tls_handshake);
    const auto began = steady::now();
    auto [hec] = co_await c.tls->async_handshake(ssl::stream_base::client, tok);
    c.tls_time = steady::now() - began;
    if (hec) co_return map_error(hec);
  }
  c.tcp().expires_never();
  co_return error_code{};
}

// Writes the head and then `body` in slices, each under the idle timeout. The head goes out with
// the first slice, so a small request is one segment.
asio::awaitable<error_code> write_request(connection& c, std::string_view head, std::string_view body,
                                          std::chrono::milliseconds idle, const ratelimit::throttle& cap,
                                          std::chrono::nanoseconds& busy) {
  std::size_t off = 0;
  bool first = true;
  const bool capped = !cap.unlimited(ratelimit::direction::up);
  while (first || off < body.size()) {
    std::size_t n = std::min(write_chunk_bytes, body.size() - off);
    // A capped body goes out in quanta, each paid for before it is written.
    if (capped && n > 0) {
      n = std::min(n, std::max<std::size_t>(1, cap.quantum(ratelimit::direction::up)));
      if (!cap.try_acquire(ratelimit::direction::up, n)) {
        if (auto ec = co_await cap.acquire(ratelimit::direction::up, n)) co_return ec;
      }
    } else if (n > 0) {
      (void)cap.try_acquire(ratelimit::direction::up, n);  // uncapped: counted for the measured rate
    }
    const auto began = steady::now();
    // No empty buffer in the sequence: beast's flat_stream (under ssl_stream) would write zero
    // bytes for a leading empty buffer and async_write would report success.
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body.data() + off, n)};
    const std::span<const asio::const_buffer> seq =
        !first || head.empty() ? std::span<const asio::const_buffer>(bufs).subspan(1)
                               : std::span<const asio::const_buffer>(bufs).first(n == 0 ? 1 : 2);
    c.tcp().expires_after(idle);
    auto [ec, written] = co_await c.visit([&](auto& s) { return asio::async_write(s, seq, tok); });
    busy += steady::now() - began;
    if (ec) co_return map_error(ec);
    off += n;
    first = false;
  }
  c.tcp().expires_never();
  co_return error_code{};
}

// Reads the response head (skipping 1xx interim heads) within the first-byte timeout.
// `no_response_bytes` stays true only while nothing at all has arrived.
asio::awaitable<error_code> read_head(connection& c, std::unique_ptr<parser_type>& p, bool head_request,
                                      const pool_config& cfg, bool& no_response_bytes) {
  c.tcp().expires_after(cfg.timeout.first_byte);
  for (int interim = 0;; ++interim) {
    auto [ec, n] = co_await c.visit([&](auto& s) { return bhttp::async_read_header(s, c.buffer, *p, tok); });
    if (p->got_some() || c.buffer.size() > 0) no_response_bytes = false;
    if (ec) co_return map_error(ec);
    const unsigned status = p->get().result_int();
    if (status >= 200 || status == 101) break;
    if (interim == max_interim_responses) co_return make_errc(errc::protocol_error);
    p = make_parser(head_request, cfg.max_header_bytes);
  }
  c.tcp().expires_never();
  co_return error_code{};
}

// Reads body bytes into `buf` until at least one arrived or the body is complete (then 0).
asio::awaitable<result<std::size_t>> read_body(connection& c, parser_type& p, std::span<char> buf,
                                               std::chrono::milliseconds idle) {
  for (;;) {
    if (p.is_done()) co_return std::size_t{0};
    auto& body = p.get().body();
    body.data = buf.data();
    body.size = buf.size();
    body.more = true;
    c.tcp().expires_after(idle);
    auto [ec, n] = co_await c.visit([&](auto& s) { return bhttp::async_read_some(s, c.buffer, p, tok); });
    c.tcp().expires_never();
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) co_return map_error(ec);
    const std::size_t got = buf.size() - body.size;
    body.data = nullptr;
    if (got > 0 || p.is_done()) co_return got;
  }
}

// Waits for a pool slot; handed a pooled connection or an empty slot (null) by whoever frees one.
struct waiter {
  explicit waiter(asio::any_io_executor ex) : ready(std::move(ex), 1) {}
  asio::experimental::concurrent_channel<void(error_code)> ready;
  std::unique_ptr<connection> conn;  // guarded by the pool mutex
  bool granted = false;              // guarded by the pool mutex
};

}  // namespace

struct pool::impl : std::enable_shared_from_this<pool::impl> {
  impl(asio::any_io_executor ex, origin o, pool_config cfg)
      : ex_(ex),
        origin_(std::move(o)),
        cfg_(std::move(cfg)),
        reaper_strand_(asio::make_strand(ex)),
        reaper_timer_(reaper_strand_) {
    if (cfg_.max_connections == 0) cfg_.max_connections = 1;
    if (origin_.tls()) init_tls();
  }

  // One client context per pool: system trust store plus the optional extra CA bundle.
  void init_tls() {
    ssl_.emplace(ssl::context::tls_client);
    error_code ec;
    ssl_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                          ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                      ec);
    if (!ec) ssl_->set_default_verify_paths(ec);
    if (!ec && !cfg_.tls.ca_file.empty()) ssl_->load_verify_file(cfg_.tls.ca_file, ec);
    config_error_ = ec;
  }

  std::size_t buffer_limit() const { return cfg_.max_header_bytes + 2 * write_chunk_bytes; }

  // Under the lock: moves idle connections past the keepalive timeout to `dead`.
  void reap_locked(steady::time_point now, std::vector<std::unique_ptr<connection>>& dead) {
    while (!idle_.empty() && idle_.front()->idle_since + cfg_.timeout.keepalive <= now) {
      dead.push_back(std::move(idle_.front()));
      idle_.pop_front();
      --open_;
    }
  }

  void reap_idle() {
    std::vector<std::unique_ptr<connection>> dead;
    std::lock_guard lk(m_);
    reap_locked(steady::now(), dead);
  }

  // Returns a pooled connection, or null meaning "a slot is yours, connect".
  asio::awaitable<result<std::unique_ptr<connection>>> acquire() {
    auto ex = co_await asio::this_coro::executor;
    std::shared_ptr<waiter> w;
    {
      std::vector<std::unique_ptr<connection>> dead;
      std::lock_guard lk(m_);
      reap_locked(steady::now(), dead);
      if (closed_) co_return error_code(asio::error::operation_aborted);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());  // most recently used: least likely to be stale
        idle_.pop_back();
        co_return std::move(c);
      }
      if (open_ < cfg_.max_connections) {
        ++open_;
        co_return std::unique_ptr<connection>();
      }
      w = std::make_shared<waiter>(ex);
      waiters_.push_back(w);
    }
    asio::steady_timer timer(ex, cfg_.timeout.pool_wait);
    auto r = co_await (w->ready.async_receive(tok) || timer.async_wait(tok));
    std::lock_guard lk(m_);
    if (w->granted) co_return std::move(w->conn);
    std::erase(waiters_, w);
    if (r.index() == 1 && !std::get<0>(std::get<1>(r))) co_return error_code(asio::error::timed_out);
    co_return error_code(asio::error::operation_aborted);
  }

  // A leased connection whose exchange completed cleanly goes back to the pool (or to a waiter).
  void release_conn(std::unique_ptr<connection> c) {
    std::unique_ptr<connection> dead;
    std::shared_ptr<waiter> w;
    bool start_reaper = false;
    {
      std::lock_guard lk(m_);
      if (closed_) {
        dead = std::move(c);
        --open_;
      } else if (!waiters_.empty()) {
        w = std::move(waiters_.front());
        waiters_.pop_front();
        w->granted = true;
        w->conn = std::move(c);
      } else {
        c->idle_since = steady::now();
        idle_.push_back(std::move(c));
        start_reaper = !reaper_running_;
        reaper_running_ = true;
      }
    }
    if (w) w->ready.try_send(error_code{});
    if (start_reaper) asio::co_spawn(reaper_strand_, reap_loop(shared_from_this()), asio::detached);
  }

  // A leased connection was closed (or never opened): its slot is free.
  void release_slot() {
    std::shared_ptr<waiter> w;
    {
      std::lock_guard lk(m_);
      if (!closed_ && !waiters_.empty()) {
        w = std::move(waiters_.front());
        waiters_.pop_front();
        w->granted = true;
      } else {
        --open_;
      }
    }
    if (w) w->ready.try_send(error_code{});
  }

  // Closes idle connections when they expire, so an idle pool holds no sockets for long.
  static asio::awaitable<void> reap_loop(std::shared_ptr<impl> self) {
    for (;;) {
      steady::time_point next;
      {
        std::lock_guard lk(self->m_);
        if (self->closed_ || self->idle_.empty()) {
          self->reaper_running_ = false;
          co_return;
        }
        next = self->idle_.front()->idle_since + self->cfg_.timeout.keepalive;
      }
      self->reaper_timer_.expires_at(next);
      co_await self->reaper_timer_.async_wait(tok);
      self->reap_idle();
    }
  }

  void shutdown() {
    std::deque<std::unique_ptr<connection>> dead;
    std::deque<std::shared_ptr<waiter>> ws;
    bool reaper = false;
    {
      std::lock_guard lk(m_);
      closed_ = true;
      dead.swap(idle_);
      open_ -= dead.size();
      ws.swap(waiters_);
      reaper = reaper_running_;
    }
    for (auto& w : ws) w->ready.try_send(asio::error::operation_aborted);
    if (reaper) asio::post(reaper_strand_, [self = shared_from_this()] { self->reaper_timer_.cancel(); });
  }

  asio::awaitable<result<std::unique_ptr<connection>>> connect() {
    auto c = std::make_unique<connection>(ex_, ssl_ ? &*ssl_ : nullptr, buffer_limit());
    const error_code ec = co_await on_strand(*c, open_connection(*c, origin_, cfg_));
    if (ec) co_return ec;
    ++created_;
    co_return std::move(c);
  }

  struct exchange_result {
    error_code ec;
    bool no_response_bytes = true;
    std::unique_ptr<parser_type> parser;
    exchange_report report;
  };

  // Sends the request on `c` and reads the response head.
  asio::awaitable<exchange_result> exchange(connection& c, const request& req, const std::string& head,
                                            bool& source_called) {
    exchange_result out;
    const bool head_request = req.method == "HEAD";
    out.parser = make_parser(head_request, cfg_.max_header_bytes);
    auto& rep = out.report;
    rep.connect = c.connect_time;
    rep.tls = c.tls_time;
    if (!req.source) {
      out.ec = co_await on_strand(c, write_request(c, head, req.body, cfg_.timeout.idle, req.throttle, rep.send_time));
      rep.sent_body_bytes = req.body.size();
    } else {
      out.ec = co_await on_strand(c, write_request(c, head, {}, cfg_.timeout.idle, req.throttle, rep.send_time));
      auto buf = std::make_unique_for_overwrite<char[]>(write_chunk_bytes);
      std::uint64_t sent = 0;
      while (!out.ec && sent < req.content_length) {
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(write_chunk_bytes, req.content_length - sent));
        source_called = true;
        auto n = co_await req.source(std::span<char>(buf.get(), want));
        if (!n) {
          out.ec = n.error();
        } else if (*n == 0 || *n > want) {
          out.ec = error_code(asio::error::message_size);  // the source disagrees with content_length
        } else {
          out.ec = co_await on_strand(
              c, write_request(c, {}, std::string_view(buf.get(), *n), cfg_.timeout.idle, req.throttle, rep.send_time));
          sent += *n;
          rep.sent_body_bytes = sent;
        }
      }
    }
    if (out.ec) co_return out;
    const auto sent_at = steady::now();
    out.ec = co_await on_strand(c, read_head(c, out.parser, head_request, cfg_, out.no_response_bytes));
    if (!out.ec) {
      rep.first_byte = steady::now() - sent_at;
      rep.status = out.parser->get().result_int();
    }
    co_return out;
  }

  asio::awaitable<result<response>> send(request req);

  asio::any_io_executor ex_;
  origin origin_;
  pool_config cfg_;
  std::optional<ssl::context> ssl_;
  error_code config_error_;  // a bad CA file: every send fails with it
  asio::strand<asio::any_io_executor> reaper_strand_;
  asio::steady_timer reaper_timer_;  // used on reaper_strand_ only
  std::atomic<std::uint64_t> created_{0};
  std::atomic<std::uint64_t> reused_{0};

  mutable std::mutex m_;
  std::deque<std::unique_ptr<connection>> idle_;  // oldest first
  std::deque<std::shared_ptr<waiter>> waiters_;   // first come, first served
  std::size_t open_ = 0;                          // connecting, leased or idle: counts against the max
  bool reaper_running_ = false;
  bool closed_ = false;
};

struct response::impl {
  ~impl() {
    // The body was not read to the end: the connection is mid-message and cannot be reused.
    if (conn) {
      conn.reset();
      owner->release_slot();
    }
    report_once();
  }

  void report_once() {
    if (!observer) return;
    auto o = std::move(observer);
    observer = nullptr;
    report.ec = failure;
    o(report);
  }

  // The body is complete: the connection goes back to the pool if the exchange allows reuse.
  void finish() {
    done = true;
    report_once();
    if (!conn) return;
    if (keep_alive && conn->buffer.size() == 0) {
      owner->release_conn(std::move(conn));
    } else {
      conn.reset();
      owner->release_slot();
    }
  }

  std::shared_ptr<pool::impl> owner;
  std::unique_ptr<connection> conn;
  std::unique_ptr<parser_type> parser;
  unsigned status = 0;
  header_list headers;
  std::optional<std::uint64_t> content_length;
  bool keep_alive = false;
  bool done = false;
  error_code failure;  // a read failed: the connection is gone and every later read repeats this
  ratelimit::throttle throttle;
  exchange_observer observer;
  exchange_report report;
};

asio::awaitable<result<response>> pool::impl::send(request req) {
  if (config_error_) co_return config_error_;
  auto head = format_head(req, origin_);
  if (!head) co_return head.error();
  auto leased = co_await acquire();
  if (!leased) co_return leased.error();
  // The slot is released on every path that does not hand it to a response (a throwing body
  // source included); declared before `c` so the connection closes first.
  struct slot_guard {
    impl* owner;
    ~slot_guard() {
      if (owner) owner->release_slot();
    }
  } slot{this};
  std::unique_ptr<connection> c = std::move(*leased);
  bool reused = false;
  if (c) {
    if (c->alive()) {
      reused = true;
    } else {
      c.reset();  // closed by the server while pooled; its slot is ours to reconnect with
    }
  }
  bool source_called = false;
  for (int attempt = 0;; ++attempt) {
    if (!c) {
      auto fresh = co_await connect();
      if (!fresh) co_return fresh.error();
      c = std::move(*fresh);
    } else {
      ++reused_;
    }
    auto ex = co_await exchange(*c, req, *head, source_called);
    ex.report.reused = reused;
    if (!ex.ec) {
      auto r = std::make_unique<response::impl>();
      r->owner = shared_from_this();
      r->throttle = req.throttle;
      r->observer = req.observer;
      r->report = ex.report;
      r->status = ex.parser->get().result_int();
      for (const auto& f : ex.parser->get()) {
        r->headers.items.emplace_back(std::string(f.name_string()), std::string(f.value()));
      }
      r->content_length = parse_content_length(r->headers);
      const auto conn_hdr = req.headers.get("connection");
      r->keep_alive = ex.parser->keep_alive() && !(conn_hdr && iequals(*conn_hdr, "close"));
      r->parser = std::move(ex.parser);
      r->conn = std::move(c);
      slot.owner = nullptr;  // the response owns the slot now
      if (r->parser->is_done()) r->finish();
      co_return response(std::move(r));
    }
    c.reset();
    const bool retry =
        attempt == 0 && reused && ex.no_response_bytes && is_stale_error(ex.ec) && req.idempotent && !source_called;
    if (!retry) {
      if (req.observer) {
        ex.report.ec = ex.ec;
        req.observer(ex.report);
      }
      co_return ex.ec;
    }
    reused = false;
  }
}

// ---- response ----

response::response() = default;
response::response(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
response::response(response&&) noexcept = default;
response& response::operator=(response&&) noexcept = default;
response::~response() = default;

unsigned response::status() const { return impl_ ? impl_->status : 0; }

const header_list& response::headers() const {
  static const header_list empty;
  return impl_ ? impl_->headers : empty;
}

std::optional<std::uint64_t> response::content_length() const { return impl_ ? impl_->content_length : std::nullopt; }

asio::awaitable<result<std::size_t>> response::read_some(std::span<char> buf) {
  if (!impl_) co_return error_code(asio::error::not_connected);
  auto& i = *impl_;
  if (i.done) co_return std::size_t{0};
  if (i.failure) co_return i.failure;
  if (buf.empty()) co_return make_errc(errc::invalid_argument);  // 0 would read as "complete"
  // A capped read asks for one quantum, paid for first; what did not arrive is given back.
  std::size_t paid = 0;
  if (!i.throttle.unlimited(ratelimit::direction::down)) {
    paid = std::min(buf.size(), std::max<std::size_t>(1, i.throttle.quantum(ratelimit::direction::down)));
    buf = buf.first(paid);
    if (!i.throttle.try_acquire(ratelimit::direction::down, paid)) {
      if (auto ec = co_await i.throttle.acquire(ratelimit::direction::down, paid)) co_return ec;
    }
  }
  const auto began = steady::now();
  auto n = co_await on_strand(*i.conn, read_body(*i.conn, *i.parser, buf, i.owner->cfg_.timeout.idle));
  i.report.receive_time += steady::now() - began;
  if (!n) {
    if (paid) i.throttle.refund(ratelimit::direction::down, paid);
    i.failure = n.error();
    i.conn.reset();
    i.owner->release_slot();
    i.report_once();
    co_return i.failure;
  }
  if (paid > *n) i.throttle.refund(ratelimit::direction::down, paid - *n);
  if (!paid && *n > 0) (void)i.throttle.try_acquire(ratelimit::direction::down, *n);  // counted for the rate
  i.report.received_body_bytes += *n;
  if (i.parser->is_done()) i.finish();
  co_return *n;
}

asio::awaitable<result<std::string>> response::read_all(std::size_t limit) {
  std::string out;
  if (auto cl = content_length()) {
    if (*cl > limit) co_return error_code(asio::error::message_size);
    out.reserve(static_cast<std::size_t>(*cl));
  }
  for (;;) {
    const std::size_t old = out.size();
    out.resize(old + read_all_step);
    auto n = co_await read_some(std::span<char>(out.data() + old, read_all_step));
    if (!n) co_return n.error();
    out.resize(old + *n);
    if (*n == 0) co_return out;
    if (out.size() > limit) co_return error_code(asio::error::message_size);
  }
}

// ---- pool ----

pool::pool(asio::any_io_executor ex, origin o, pool_config cfg)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(o), std::move(cfg))) {}

pool::~pool() { impl_->shutdown(); }

asio::awaitable<result<response>> pool::send(request req) {
  auto self = impl_;  // keeps the pool state alive for the whole exchange
  co_return co_await self->send(std::move(req));
}

const origin& pool::where() const { return impl_->origin_; }

pool_stats pool::stats() const {
  pool_stats s;
  std::lock_guard lk(impl_->m_);
  s.open = impl_->open_;
  s.idle = impl_->idle_.size();
  s.created = impl_->created_;
  s.reused = impl_->reused_;
  return s;
}

void pool::reap_idle() { impl_->reap_idle(); }

// ---- client ----

struct client::state {
  asio::any_io_executor ex;
  pool_config cfg;
  std::mutex m;
  std::map<std::string, std::shared_ptr<pool>> pools;
};

client::client(asio::any_io_executor ex, pool_config cfg) : state_(std::make_shared<state>()) {
  state_->ex = std::move(ex);
  state_->cfg = std::move(cfg);
}

std::shared_ptr<pool> client::pool_for(const origin& o) {
  std::string key = o.scheme + "://" + o.host + ":" + std::to_string(o.port);
  std::lock_guard lk(state_->m);
  auto& p = state_->pools[key];
  if (!p) p = std::make_shared<pool>(state_->ex, o, state_->cfg);
  return p;
}

pool_stats client::stats() const {
  std::vector<std::shared_ptr<pool>> all;
  {
    std::lock_guard lk(state_->m);
    for (const auto& [k, p] : state_->pools) all.push_back(p);
  }
  pool_stats sum;
  for (const auto& p : all) {
    const auto s = p->stats();
    sum.open += s.open;
    sum.idle += s.idle;
    sum.created += s.created;
    sum.reused += s.reused;
  }
  return sum;
}

}  // namespace ferry::http
