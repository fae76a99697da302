#pragma once
// Shared by the http_*_test.cpp files: a fixture with a bounded io_context and fetch helpers.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <stdexcept>

#include "http/client.hpp"
#include "support/http_test_server.hpp"
#include "support/pattern.hpp"

namespace ferry::http::testing {

namespace ft = ferry::test;
inline constexpr auto tok = asio::as_tuple(asio::use_awaitable);

// A response read to the end (or the first error).
struct fetched {
  error_code ec;
  unsigned status = 0;
  header_list headers;
  std::optional<std::uint64_t> content_length;
  std::string body;
};

inline request make_request(std::string method, std::string target, std::string body = {}) {
  request r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.body = std::move(body);
  return r;
}

inline asio::awaitable<fetched> fetch(std::shared_ptr<pool> p, request req) {
  fetched f;
  auto r = co_await p->send(std::move(req));
  if (!r) {
    f.ec = r.error();
    co_return f;
  }
  f.status = r->status();
  f.headers = r->headers();
  f.content_length = r->content_length();
  auto b = co_await r->read_all(std::size_t{256} << 20);
  if (!b) {
    f.ec = b.error();
    co_return f;
  }
  f.body = std::move(*b);
  co_return f;
}

// Runs `n` copies of the request concurrently on the caller's executor.
inline asio::awaitable<std::vector<fetched>> fetch_concurrently(std::shared_ptr<pool> p, request req, int n) {
  auto ex = co_await asio::this_coro::executor;
  asio::experimental::concurrent_channel<void(error_code, fetched)> done(ex, static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    asio::co_spawn(ex, fetch(p, req), [&done](std::exception_ptr e, fetched f) {
      if (e) f.ec = asio::error::fault;
      done.try_send(error_code{}, std::move(f));
    });
  }
  std::vector<fetched> out;
  for (int i = 0; i < n; ++i) {
    auto [ec, f] = co_await done.async_receive(tok);
    out.push_back(std::move(f));
  }
  co_return out;
}

// Deterministic bytes, so a streamed body can be checked byte for byte.
inline std::string pattern(std::size_t n) { return ferry::test::pattern(n); }

class HttpFixture : public ::testing::Test {
 protected:
  // Every test body runs under a deadline: a hang fails the test instead of the whole run.
  template <class T>
  T run(asio::awaitable<T> aw, std::chrono::milliseconds limit = std::chrono::seconds(30), unsigned threads = 1) {
    auto r = ft::run_bounded(ioc, std::move(aw), limit, threads);
    if (!r) throw std::runtime_error("test coroutine did not finish in time");
    return std::move(*r);
  }

  std::shared_ptr<pool> make_pool(const std::string& url, pool_config cfg = {}) {
    auto o = parse_origin(url);
    if (!o) throw std::runtime_error("bad url " + url);
    return std::make_shared<pool>(ioc.get_executor(), *o, std::move(cfg));
  }

  asio::io_context ioc;  // declared first: outlives every pool and response a test creates
};

}  // namespace ferry::http::testing
