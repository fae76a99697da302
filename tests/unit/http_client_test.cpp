// The HTTP client over real loopback sockets against the in-process test server (plain HTTP).
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "http_test_util.hpp"

namespace ferry::http::testing {
namespace {

using ft::http_test_request;
using ft::http_test_response;
using namespace std::chrono_literals;

// Echoes what the client sent, so the client-side assertions see the server's view.
http_test_response echo(const http_test_request& req) {
  http_test_response r;
  r.headers.emplace_back("X-Method", req.method);
  r.headers.emplace_back("X-Target", req.target);
  r.headers.emplace_back("X-Host", req.header("Host").value_or("<none>"));
  r.headers.emplace_back("X-Content-Length", req.header("Content-Length").value_or("<none>"));
  r.body = req.body;
  return r;
}

class HttpClient : public HttpFixture {};

TEST_F(HttpClient, GetReturnsStatusHeadersAndBody) {
  ft::http_test_server server([](const http_test_request& req) {
    auto r = echo(req);
    r.status = 203;
    r.body = "hello";
    return r;
  });
  auto p = make_pool(server.url());
  auto f = run(fetch(p, make_request("GET", "/bucket/key?x=y")));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_EQ(f.status, 203u);
  EXPECT_EQ(f.body, "hello");
  EXPECT_EQ(f.content_length, 5u);
  EXPECT_EQ(f.headers.get("x-method"), "GET");
  EXPECT_EQ(f.headers.get("X-Target"), "/bucket/key?x=y");
  EXPECT_EQ(f.headers.get("X-Host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(f.headers.get("X-Content-Length"), "<none>");  // a bodiless GET sends no length
}

TEST_F(HttpClient, PutInMemoryBodyArrivesWithContentLength) {
  ft::http_test_server server(echo);
  auto p = make_pool(server.url());
  auto req = make_request("PUT", "/b/k", "some body bytes");
  req.headers.set("Content-Length", "999");  // ignored: the client owns framing
  req.headers.set("Host", "evil.example");
  auto f = run(fetch(p, std::move(req)));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_EQ(f.body, "some body bytes");
  EXPECT_EQ(f.headers.get("X-Content-Length"), "15");
  EXPECT_EQ(f.headers.get("X-Host"), "127.0.0.1:" + std::to_string(server.port()));
}

TEST_F(HttpClient, LargeInMemoryBodyIsSentInSlices) {
  const std::string data = pattern(1024 * 1024 + 3);
  ft::http_test_server server(echo);
  auto p = make_pool(server.url());
  auto f = run(fetch(p, make_request("PUT", "/b/big", data)));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_EQ(f.headers.get("X-Content-Length"), std::to_string(data.size()));
  EXPECT_TRUE(f.body == data);
}

TEST_F(HttpClient, EmptyPutSendsContentLengthZero) {
  ft::http_test_server server(echo);
  auto p = make_pool(server.url());
  auto f = run(fetch(p, make_request("PUT", "/b/empty")));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_EQ(f.headers.get("X-Content-Length"), "0");
}

TEST_F(HttpClient, StreamedMultiMiBBodyArrivesByteExactAndStreamsBack) {
  const std::string data = pattern(5 * 1024 * 1024 + 777);
  ft::http_test_server server(echo);
  auto p = make_pool(server.url());
  struct outcome {
    error_code ec;
    std::size_t calls = 0;
    std::size_t largest_request = 0;
    std::size_t largest_read = 0;
    std::string received;
    std::optional<std::uint64_t> content_length;
  };
  auto o = run([&]() -> asio::awaitable<outcome> {
    outcome out;
    std::size_t off = 0;
    request req = make_request("PUT", "/b/big");
    req.content_length = data.size();
    req.source = [&](std::span<char> buf) -> asio::awaitable<result<std::size_t>> {
      ++out.calls;
      out.largest_request = std::max(out.largest_request, buf.size());
      // Uneven pieces: the client must not assume a source fills its buffer.
      const std::size_t n = std::min({buf.size(), data.size() - off, std::size_t{100'003}});
      std::copy_n(data.data() + off, n, buf.data());
      off += n;
      co_return n;
    };
    auto r = co_await p->send(std::move(req));
    if (!r) {
      out.ec = r.error();
      co_return out;
    }
    out.content_length = r->content_length();
    std::vector<char> buf(100'000);
    for (;;) {
      auto n = co_await r->read_some(buf);
      if (!n) {
        out.ec = n.error();
        co_return out;
      }
      if (*n == 0) break;
      out.largest_read = std::max(out.largest_read, *n);
      out.received.append(buf.data(), *n);
    }
    co_return out;
  }());
  ASSERT_FALSE(o.ec) << o.ec.message();
  EXPECT_GT(o.calls, 10u);
  EXPECT_LE(o.largest_request, 256u * 1024);
  EXPECT_LE(o.largest_read, 100'000u);
  EXPECT_EQ(o.content_length, data.size());
  EXPECT_EQ(o.received.size(), data.size());
  EXPECT_TRUE(o.received == data) << "streamed body differs";
}

TEST_F(HttpClient, SourceShorterThanContentLengthFails) {
  ft::http_test_server server(echo);
  auto p = make_pool(server.url());
  auto f = run([&]() -> asio::awaitable<fetched> {
    request req = make_request("PUT", "/b/short");
    req.content_length = 10;
    bool sent = false;
    req.source = [&](std::span<char> buf) -> asio::awaitable<result<std::size_t>> {
      if (sent) co_return std::size_t{0};
      sent = true;
      buf[0] = 'x';
      co_return std::size_t{1};
    };
    co_return co_await fetch(p, std::move(req));
  }());
  EXPECT_EQ(f.ec, asio::error::message_size);
  EXPECT_EQ(p->stats().open, 0u);  // the half-sent request's connection is gone
}

TEST_F(HttpClient, ChunkedResponseIsDecoded) {
  const std::string data = pattern(300'000);
  ft::http_test_server server([&](const http_test_request&) {
    http_test_response r;
    r.body = data;
    r.chunked = true;
    r.chunk_size = 1000;
    return r;
  });
  auto p = make_pool(server.url());
  auto f = run(fetch(p, make_request("GET", "/chunked")));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_FALSE(f.content_length.has_value());
  EXPECT_TRUE(f.body == data);
  // A fully read chunked body leaves the connection reusable.
  auto g = run(fetch(p, make_request("GET", "/chunked")));
  ASSERT_FALSE(g.ec) << g.ec.message();
  EXPECT_EQ(server.connections_accepted(), 1u);
}

TEST_F(HttpClient, HeadReportsLengthWithoutBodyAndKeepsConnection) {
  ft::http_test_server server([](const http_test_request&) {
    http_test_response r;
    r.body = std::string(1234, 'b');
    return r;
  });
  auto p = make_pool(server.url());
  struct outcome {
    error_code ec;
    std::optional<std::uint64_t> length;
    std::size_t first_read = 99;
  };
  auto o = run([&]() -> asio::awaitable<outcome> {
    outcome out;
    auto r = co_await p->send(make_request("HEAD", "/k"));
    if (!r) {
      out.ec = r.error();
      co_return out;
    }
    out.length = r->content_length();
    char buf[16];
    auto n = co_await r->read_some(buf);
    if (!n) {
      out.ec = n.error();
      co_return out;
    }
    out.first_read = *n;
    co_return out;
  }());
  ASSERT_FALSE(o.ec) << o.ec.message();
  EXPECT_EQ(o.length, 1234u);
  EXPECT_EQ(o.first_read, 0u);
  auto g = run(fetch(p, make_request("GET", "/k")));
  ASSERT_FALSE(g.ec) << g.ec.message();
  EXPECT_EQ(g.body.size(), 1234u);
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(p->stats().created, 1u);
}

TEST_F(HttpClient, SequentialRequestsReuseOneConnection) {
  ft::http_test_server server(echo);
  auto p = make_pool(server.url());
  for (int i = 0; i < 5; ++i) {
    auto f = run(fetch(p, make_request("GET", "/k" + std::to_string(i))));
    ASSERT_FALSE(f.ec) << f.ec.message();
  }
  const auto s = p->stats();
  EXPECT_EQ(s.created, 1u);
  EXPECT_EQ(s.reused, 4u);
  EXPECT_EQ(s.open, 1u);
  EXPECT_EQ(s.idle, 1u);
  EXPECT_EQ(server.connections_accepted(), 1u);
}

TEST_F(HttpClient, MaxConnectionsBoundsConcurrencyAcrossThreads) {
  ft::http_test_server server([](const http_test_request& req) {
    auto r = echo(req);
    r.delay = 30ms;  // keep requests overlapping
    return r;
  });
  pool_config cfg;
  cfg.max_connections = 2;
  auto p = make_pool(server.url(), cfg);
  auto results = run(fetch_concurrently(p, make_request("GET", "/k"), 12), 30s, 2);
  ASSERT_EQ(results.size(), 12u);
  for (const auto& f : results) {
    EXPECT_FALSE(f.ec) << f.ec.message();
    EXPECT_EQ(f.status, 200u);
  }
  EXPECT_EQ(server.max_open_connections(), 2u);
  EXPECT_EQ(server.connections_accepted(), 2u);
  EXPECT_EQ(p->stats().created, 2u);
  EXPECT_EQ(p->stats().reused, 10u);
  EXPECT_LE(p->stats().open, 2u);
}

TEST_F(HttpClient, WaitForAFreeSlotIsBounded) {
  ft::http_test_server server([](const http_test_request&) {
    http_test_response r;
    r.body = std::string(1000, 'x');
    return r;
  });
  pool_config cfg;
  cfg.max_connections = 1;
  cfg.timeout.pool_wait = 100ms;
  auto p = make_pool(server.url(), cfg);
  struct outcome {
    error_code first, second, third;
  };
  auto o = run([&]() -> asio::awaitable<outcome> {
    outcome out;
    {
      auto held = co_await p->send(make_request("GET", "/a"));  // body unread: holds the only slot
      if (!held) out.first = held.error();
      auto waited = co_await p->send(make_request("GET", "/b"));
      if (!waited) out.second = waited.error();
    }  // `held` dropped with its body unread: the connection closes and the slot frees
    auto f = co_await fetch(p, make_request("GET", "/c"));
    out.third = f.ec;
    co_return out;
  }());
  EXPECT_FALSE(o.first) << o.first.message();
  EXPECT_EQ(o.second, asio::error::timed_out);
  EXPECT_FALSE(o.third) << o.third.message();
  EXPECT_EQ(server.connections_accepted(), 2u);
}

TEST_F(HttpClient, ServerConnectionCloseClosesAfterTheBody) {
  ft::http_test_server server([](const http_test_request& req) {
    auto r = echo(req);
    r.body = "bye";
    r.close = true;
    return r;
  });
  auto p = make_pool(server.url());
  auto f = run(fetch(p, make_request("GET", "/k")));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_EQ(f.body, "bye");
  EXPECT_EQ(p->stats().open, 0u);
  EXPECT_EQ(p->stats().idle, 0u);
  auto g = run(fetch(p, make_request("GET", "/k")));
  ASSERT_FALSE(g.ec) << g.ec.message();
  EXPECT_EQ(server.connections_accepted(), 2u);
}

TEST_F(HttpClient, DroppingAnUnreadResponseClosesItsConnection) {
  ft::http_test_server server([](const http_test_request&) {
    http_test_response r;
    r.body = pattern(1 << 20);
    return r;
  });
  auto p = make_pool(server.url());
  auto n = run([&]() -> asio::awaitable<std::size_t> {
    auto r = co_await p->send(make_request("GET", "/k"));
    if (!r) co_return std::size_t{0};
    char buf[10];
    auto got = co_await r->read_some(buf);
    co_return got ? *got : 0;
  }());
  EXPECT_GT(n, 0u);
  EXPECT_EQ(p->stats().open, 0u);
  auto g = run(fetch(p, make_request("GET", "/k")));
  ASSERT_FALSE(g.ec) << g.ec.message();
  EXPECT_EQ(g.body.size(), 1u << 20);
  EXPECT_EQ(server.connections_accepted(), 2u);
}

TEST_F(HttpClient, IdleConnectionsAreReapedAfterKeepalive) {
  ft::http_test_server server(echo);
  pool_config cfg;
  cfg.timeout.keepalive = 100ms;
  auto p = make_pool(server.url(), cfg);
  auto f = run(fetch(p, make_request("GET", "/k")));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_EQ(p->stats().idle, 1u);
  // Waiting is the behaviour under test: the pool's own timer must close the idle connection.
  run([]() -> asio::awaitable<int> {
    asio::steady_timer t(co_await asio::this_coro::executor, 400ms);
    co_await t.async_wait(tok);
    co_return 0;
  }());
  EXPECT_EQ(p->stats().idle, 0u);
  EXPECT_EQ(p->stats().open, 0u);
  auto g = run(fetch(p, make_request("GET", "/k")));
  ASSERT_FALSE(g.ec) << g.ec.message();
  EXPECT_EQ(p->stats().created, 2u);
  EXPECT_EQ(p->stats().reused, 0u);
}

TEST_F(HttpClient, FirstByteTimeoutOnAStalledServer) {
  ft::http_test_server server([](const http_test_request&) {
    http_test_response r;
    r.act = http_test_response::action::stall;
    return r;
  });
  pool_config cfg;
  cfg.timeout.first_byte = 200ms;
  auto p = make_pool(server.url(), cfg);
  const auto start = std::chrono::steady_clock::now();
  auto f = run(fetch(p, make_request("GET", "/k")));
  EXPECT_EQ(f.ec, asio::error::timed_out) << f.ec.message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(p->stats().open, 0u);
}

TEST_F(HttpClient, CallerCancellationAbortsAStalledRequest) {
  ft::http_test_server server([](const http_test_request&) {
    http_test_response r;
    r.act = http_test_response::action::stall;
    return r;
  });
  auto p = make_pool(server.url());  // default timeouts: only cancellation can end this quickly
  const auto start = std::chrono::steady_clock::now();
  auto which = run([&]() -> asio::awaitable<std::size_t> {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer t(co_await asio::this_coro::executor, 200ms);
    auto r = co_await (fetch(p, make_request("GET", "/k")) || t.async_wait(tok));
    co_return r.index();
  }());
  EXPECT_EQ(which, 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(p->stats().open, 0u);
}

TEST_F(HttpClient, IdleTimeoutWhenTheBodyStalls) {
  ft::http_test_server server([](const http_test_request&) {
    http_test_response r;
    r.body = std::string(10'000, 'z');
    r.stall_after = 5000;  // the head and part of the body, then silence
    return r;
  });
  pool_config cfg;
  cfg.timeout.idle = 200ms;
  auto p = make_pool(server.url(), cfg);
  auto f = run(fetch(p, make_request("GET", "/k")));
  EXPECT_EQ(f.status, 200u);
  EXPECT_EQ(f.ec, asio::error::timed_out) << f.ec.message();
  EXPECT_EQ(p->stats().open, 0u);
}

TEST_F(HttpClient, ConnectFailureToAClosedPort) {
  std::uint16_t port = 0;
  {
    asio::ip::tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  auto p = make_pool("http://127.0.0.1:" + std::to_string(port));
  auto f = run(fetch(p, make_request("GET", "/k")));
  EXPECT_EQ(f.ec, asio::error::connection_refused) << f.ec.message();
  EXPECT_EQ(p->stats().open, 0u);
  EXPECT_EQ(p->stats().created, 0u);
}

// The server accepts the second request on the first connection and closes without answering:
// what a keep-alive race looks like from the client.
http_test_response drop_second_on_first_connection(const http_test_request& req) {
  http_test_response r = echo(req);
  if (req.connection_index == 0 && req.request_index == 1) r.act = http_test_response::action::drop;
  return r;
}

TEST_F(HttpClient, StaleReusedConnectionIsRetriedOnceOnAFreshOne) {
  ft::http_test_server server(drop_second_on_first_connection);
  auto p = make_pool(server.url());
  auto f = run(fetch(p, make_request("GET", "/1")));
  ASSERT_FALSE(f.ec) << f.ec.message();
  auto g = run(fetch(p, make_request("GET", "/2")));
  ASSERT_FALSE(g.ec) << g.ec.message();
  EXPECT_EQ(g.headers.get("X-Target"), "/2");
  EXPECT_EQ(server.connections_accepted(), 2u);
  EXPECT_EQ(server.requests_handled(), 3u);
  EXPECT_EQ(p->stats().open, 1u);
}

TEST_F(HttpClient, NonIdempotentRequestIsNotRetried) {
  ft::http_test_server server(drop_second_on_first_connection);
  auto p = make_pool(server.url());
  ASSERT_FALSE(run(fetch(p, make_request("GET", "/1"))).ec);
  auto req = make_request("POST", "/2?uploads", "x");
  req.idempotent = false;
  auto g = run(fetch(p, std::move(req)));
  EXPECT_TRUE(g.ec);
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(p->stats().open, 0u);
}

TEST_F(HttpClient, ConsumedStreamingBodyIsNotRetried) {
  ft::http_test_server server(drop_second_on_first_connection);
  auto p = make_pool(server.url());
  ASSERT_FALSE(run(fetch(p, make_request("GET", "/1"))).ec);
  auto g = run([&]() -> asio::awaitable<fetched> {
    request req = make_request("PUT", "/2");
    req.content_length = 3;
    req.source = [](std::span<char> buf) -> asio::awaitable<result<std::size_t>> {
      std::copy_n("abc", 3, buf.data());
      co_return std::size_t{3};
    };
    co_return co_await fetch(p, std::move(req));
  }());
  EXPECT_TRUE(g.ec);
  EXPECT_EQ(server.connections_accepted(), 1u);
}

TEST_F(HttpClient, PooledConnectionClosedByTheServerIsNotReused) {
  ft::http_test_server server(echo);
  auto p = make_pool(server.url());
  ASSERT_FALSE(run(fetch(p, make_request("GET", "/1"))).ec);
  EXPECT_EQ(server.close_idle_connections(), 1u);
  // Not idempotent, so no retry could hide a write to the dead connection.
  auto req = make_request("POST", "/2", "x");
  req.idempotent = false;
  auto g = run(fetch(p, std::move(req)));
  ASSERT_FALSE(g.ec) << g.ec.message();
  EXPECT_EQ(server.connections_accepted(), 2u);
  EXPECT_EQ(p->stats().reused, 0u);
}

TEST_F(HttpClient, HeaderInjectionIsRejectedBeforeConnecting) {
  ft::http_test_server server(echo);
  auto p = make_pool(server.url());
  auto req = make_request("GET", "/k");
  req.headers.add("X-Bad", "a\r\nInjected: yes");
  auto f = run(fetch(p, std::move(req)));
  EXPECT_EQ(f.ec, boost::system::errc::invalid_argument);
  auto bad_target = run(fetch(p, make_request("GET", "/a b")));
  EXPECT_EQ(bad_target.ec, boost::system::errc::invalid_argument);
  EXPECT_EQ(server.connections_accepted(), 0u);
  EXPECT_EQ(p->stats().open, 0u);
}

TEST_F(HttpClient, ReadAllEnforcesItsLimit) {
  ft::http_test_server server([](const http_test_request& req) {
    http_test_response r;
    r.body = std::string(1000, 'q');
    r.chunked = req.target == "/chunked";
    r.chunk_size = 100;
    return r;
  });
  auto p = make_pool(server.url());
  auto limited = [&](std::string target) -> asio::awaitable<error_code> {
    auto r = co_await p->send(make_request("GET", std::move(target)));
    if (!r) co_return r.error();
    auto b = co_await r->read_all(100);
    co_return b ? error_code{} : b.error();
  };
  EXPECT_EQ(run(limited("/sized")), asio::error::message_size);
  EXPECT_EQ(run(limited("/chunked")), asio::error::message_size);
  EXPECT_EQ(p->stats().open, 0u);
}

TEST_F(HttpClient, ClientSharesOnePoolPerOrigin) {
  client c(ioc.get_executor(), {});
  auto a = c.pool_for(*parse_origin("http://127.0.0.1:1"));
  auto b = c.pool_for(*parse_origin("http://127.0.0.1:1/other/path"));
  auto d = c.pool_for(*parse_origin("https://127.0.0.1:1"));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, d);
  EXPECT_EQ(d->where().scheme, "https");
}

}  // namespace
}  // namespace ferry::http::testing
