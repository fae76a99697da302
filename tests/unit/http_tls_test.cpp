// The HTTP client over TLS against the in-process test server and a throwaway test CA.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/ssl/error.hpp>
#include <filesystem>

#include "http_test_util.hpp"
#include "support/test_ca.hpp"

namespace ferry::http::testing {
namespace {

using ft::http_test_request;
using ft::http_test_response;

http_test_response echo(const http_test_request& req) {
  http_test_response r;
  r.headers.emplace_back("X-Target", req.target);
  r.body = req.body.empty() ? "secure" : req.body;
  return r;
}

class HttpTls : public HttpFixture {
 protected:
  void SetUp() override {
    std::string templ = (std::filesystem::temp_directory_path() / "ferry-http-tls-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    ca_ = ft::make_test_ca(dir_ / "ca");
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  ft::http_test_server::options server_options(const ft::test_ca_files& ca) const {
    ft::http_test_server::options o;
    o.tls = true;
    o.cert_file = ca.server_cert;
    o.key_file = ca.server_key;
    return o;
  }

  pool_config trusting(const std::string& ca_file) const {
    pool_config cfg;
    cfg.tls.ca_file = ca_file;
    return cfg;
  }

  std::filesystem::path dir_;
  ft::test_ca_files ca_;
};

TEST_F(HttpTls, VerifiesTheServerWithTheTestCa) {
  ft::http_test_server server(echo, server_options(ca_));
  auto p = make_pool(server.url("localhost"), trusting(ca_.ca_cert));
  auto f = run(fetch(p, make_request("GET", "/k")));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_EQ(f.status, 200u);
  EXPECT_EQ(f.body, "secure");
}

TEST_F(HttpTls, VerifiesAnIpAddressAgainstItsIpSan) {
  ft::http_test_server server(echo, server_options(ca_));
  auto p = make_pool(server.url("127.0.0.1"), trusting(ca_.ca_cert));
  auto f = run(fetch(p, make_request("GET", "/k")));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_EQ(f.body, "secure");
}

TEST_F(HttpTls, FailsWithoutTheTestCaWithAVerificationError) {
  ft::http_test_server server(echo, server_options(ca_));
  auto p = make_pool(server.url("localhost"));
  auto f = run(fetch(p, make_request("GET", "/k")));
  ASSERT_TRUE(f.ec);
  EXPECT_EQ(f.ec.category(), asio::error::get_ssl_category()) << f.ec.message();
  EXPECT_TRUE(is_certificate_error(f.ec)) << f.ec.message();
  EXPECT_NE(f.ec.message().find("certificate verify failed"), std::string::npos) << f.ec.message();
  EXPECT_EQ(server.requests_handled(), 0u);
  EXPECT_EQ(p->stats().open, 0u);
}

TEST_F(HttpTls, HostnameMismatchFails) {
  const auto other = ft::make_test_ca(dir_ / "other", {"other.invalid"}, {});
  ft::http_test_server server(echo, server_options(other));
  auto p = make_pool(server.url("localhost"), trusting(other.ca_cert));
  auto f = run(fetch(p, make_request("GET", "/k")));
  ASSERT_TRUE(f.ec);
  EXPECT_TRUE(is_certificate_error(f.ec)) << f.ec.message();
  auto by_ip = run(fetch(make_pool(server.url("127.0.0.1"), trusting(other.ca_cert)), make_request("GET", "/k")));
  EXPECT_TRUE(is_certificate_error(by_ip.ec)) << by_ip.ec.message();
  EXPECT_EQ(server.requests_handled(), 0u);
}

TEST_F(HttpTls, VerificationOffAcceptsAnUntrustedServer) {
  // Only to prove the failing tests above fail for the right reason.
  ft::http_test_server server(echo, server_options(ca_));
  pool_config cfg;
  cfg.tls.verify_peer = false;
  auto p = make_pool(server.url("localhost"), cfg);
  auto f = run(fetch(p, make_request("GET", "/k")));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_EQ(f.body, "secure");
}

TEST_F(HttpTls, MissingCaFileFailsEverySend) {
  ft::http_test_server server(echo, server_options(ca_));
  auto p = make_pool(server.url("localhost"), trusting((dir_ / "missing.pem").string()));
  auto f = run(fetch(p, make_request("GET", "/k")));
  EXPECT_TRUE(f.ec);
  EXPECT_EQ(server.connections_accepted(), 0u);
}

TEST_F(HttpTls, StreamedBodyAndKeepAliveOverTls) {
  const std::string data = pattern(3 * 1024 * 1024 + 5);
  ft::http_test_server server(echo, server_options(ca_));
  auto p = make_pool(server.url("localhost"), trusting(ca_.ca_cert));
  auto f = run([&]() -> asio::awaitable<fetched> {
    std::size_t off = 0;
    request req = make_request("PUT", "/big");
    req.content_length = data.size();
    req.source = [&](std::span<char> buf) -> asio::awaitable<result<std::size_t>> {
      const std::size_t n = std::min(buf.size(), data.size() - off);
      std::copy_n(data.data() + off, n, buf.data());
      off += n;
      co_return n;
    };
    co_return co_await fetch(p, std::move(req));
  }());
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_TRUE(f.body == data);
  auto g = run(fetch(p, make_request("GET", "/again")));
  ASSERT_FALSE(g.ec) << g.ec.message();
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(p->stats().reused, 1u);
}

TEST_F(HttpTls, LargeInMemoryBodyOverTls) {
  const std::string data = pattern(1024 * 1024 + 3);  // several write slices
  ft::http_test_server server(echo, server_options(ca_));
  auto p = make_pool(server.url("localhost"), trusting(ca_.ca_cert));
  auto f = run(fetch(p, make_request("PUT", "/big", data)));
  ASSERT_FALSE(f.ec) << f.ec.message();
  EXPECT_TRUE(f.body == data);
}

TEST_F(HttpTls, StaleTlsConnectionIsRetried) {
  ft::http_test_server server(
      [](const http_test_request& req) {
        http_test_response r = echo(req);
        if (req.connection_index == 0 && req.request_index == 1) r.act = http_test_response::action::drop;
        return r;
      },
      server_options(ca_));
  auto p = make_pool(server.url("localhost"), trusting(ca_.ca_cert));
  ASSERT_FALSE(run(fetch(p, make_request("GET", "/1"))).ec);
  auto g = run(fetch(p, make_request("GET", "/2")));
  ASSERT_FALSE(g.ec) << g.ec.message();
  EXPECT_EQ(g.headers.get("X-Target"), "/2");
  EXPECT_EQ(server.connections_accepted(), 2u);
}

}  // namespace
}  // namespace ferry::http::testing
