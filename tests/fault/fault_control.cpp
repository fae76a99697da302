#include "fault/fault_control.hpp"

#include "fault/fault_config.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <chrono>
#include <thread>

namespace ferry::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto tok = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_body_bytes = 1 << 20;
constexpr auto request_timeout = std::chrono::seconds(30);
constexpr std::size_t default_recent = 100;

std::string error_json(const std::string& message) {
  return boost::json::serialize(boost::json::object{{"error", message}});
}

}  // namespace

struct fault_control::state {
  fault_proxy* proxy = nullptr;
  std::string address;
  std::unique_ptr<asio::io_context> ioc = std::make_unique<asio::io_context>(1);
  std::unique_ptr<tcp::acceptor> acceptor = std::make_unique<tcp::acceptor>(*ioc);
  std::uint16_t port = 0;
  std::thread thread;

  ~state() {
    acceptor.reset();
    ioc.reset();
  }

  http::response<http::string_body> handle(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    if (path == "/rules" && (req.method() == http::verb::put || req.method() == http::verb::post)) {
      std::string error;
      auto config = parse_fault_config(req.body(), error);
      if (!config) {
        res.result(http::status::bad_request);
        res.body() = error_json(error);
      } else {
        apply_config(*proxy, *config);
        res.body() = R"({"ok":true})";
      }
    } else if (path == "/stats" && req.method() == http::verb::get) {
      std::size_t recent = default_recent;
      if (auto at = target.find("recent="); at != std::string_view::npos) {
        const std::string_view v = target.substr(at + 7);
        std::from_chars(v.data(), v.data() + v.size(), recent);
      }
      res.body() = stats_json(proxy->stats(), recent);
    } else {
      res.result(http::status::not_found);
      res.body() = error_json("PUT /rules or GET /stats");
    }
    res.prepare_payload();
    return res;
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(max_body_bytes);
      stream.expires_after(request_timeout);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, tok);
      if (ec) co_return;
      http::response<http::string_body> res = handle(parser.get());
      const bool keep = res.keep_alive();
      stream.expires_after(request_timeout);
      auto [wec, written] = co_await http::async_write(stream, res, tok);
      if (wec || !keep) co_return;
    }
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(tok);
      if (ec == asio::error::connection_aborted) continue;
      if (ec) co_return;
      asio::co_spawn(*ioc, session(std::move(socket)), asio::detached);
    }
  }
};

fault_control::fault_control(fault_proxy& proxy, const std::string& address, std::uint16_t port)
    : state_(std::make_unique<state>()) {
  state& s = *state_;
  s.proxy = &proxy;
  s.address = address;
  const tcp::endpoint listen(asio::ip::make_address(address), port);
  s.acceptor->open(listen.protocol());
  s.acceptor->set_option(tcp::acceptor::reuse_address(true));
  s.acceptor->bind(listen);
  s.acceptor->listen();
  s.port = s.acceptor->local_endpoint().port();
  asio::co_spawn(*s.ioc, s.accept_loop(), asio::detached);
  s.thread = std::thread([ioc = s.ioc.get()] { ioc->run(); });
}

fault_control::~fault_control() {
  state_->ioc->stop();
  if (state_->thread.joinable()) state_->thread.join();
}

std::uint16_t fault_control::port() const { return state_->port; }

std::string fault_control::endpoint() const { return "http://" + state_->address + ":" + std::to_string(state_->port); }

}  // namespace ferry::test
