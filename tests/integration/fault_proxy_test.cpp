// The fault proxy (tests/fault/) between a real s3rver and real clients: raw HTTP, to see exactly what
// arrives (statuses, short reads, flipped bits, timing), Beast on one keep-alive connection, and ferry's own
// S3 client. s3rver runs as published (not strict), so raw requests need no signature.
//   FaultProxy        each fault, share / times / runtime rules, the control port, the delayed path
//   FaultProxyConfig  the JSON rules document (README.md's examples)
#include "fault/fault_proxy.hpp"
#include "fault/fault_config.hpp"
#include "fault/fault_control.hpp"
#include "s3/client.hpp"
#include "support/io_runner.hpp"
#include "support/pattern.hpp"
#include "support/s3rver.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <future>
#include <thread>

namespace ferry::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto tok = asio::as_tuple(asio::use_awaitable);

std::chrono::milliseconds since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t);
}

// Everything one request got back on its own connection, read until the connection ended.
struct raw_reply {
  std::string bytes;                      // head and body as received
  boost::system::error_code write_error;  // sending the request
  boost::system::error_code end;          // how reading ended: eof, connection_reset, timed_out...
  std::chrono::milliseconds first_byte{-1}, elapsed{0};

  std::size_t head_size() const {
    const std::size_t at = bytes.find("\r\n\r\n");
    return at == std::string::npos ? bytes.size() : at + 4;
  }
  std::string head() const { return bytes.substr(0, head_size()); }
  std::string body() const { return bytes.substr(head_size()); }
  unsigned status() const {
    unsigned s = 0;
    if (bytes.size() > 12 && bytes.starts_with("HTTP/1.1 ")) std::from_chars(bytes.data() + 9, bytes.data() + 12, s);
    return s;
  }
  std::optional<std::uint64_t> content_length() const {
    const std::string h = head();
    const std::size_t at = h.find("Content-Length: ");
    if (at == std::string::npos) return std::nullopt;
    std::uint64_t n = 0;
    std::from_chars(h.data() + at + 16, h.data() + h.size(), n);
    return n;
  }
};

// Sends `request` on a new connection to 127.0.0.1:port and reads until the connection ends (or `limit`).
raw_reply exchange(std::uint16_t port, const std::string& request, std::chrono::milliseconds limit = 20s) {
  asio::io_context ioc;
  raw_reply out;
  bool done = false;
  const auto start = steady::now();
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        tcp::socket s(ioc);
        auto [cec] = co_await s.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), tok);
        if (cec) {
          out.end = cec;
          done = true;
          co_return;
        }
        auto [wec, written] = co_await asio::async_write(s, asio::buffer(request), tok);
        out.write_error = wec;
        std::vector<char> buf(64 * 1024);
        for (;;) {
          auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), tok);
          if (n > 0 && out.first_byte.count() < 0) out.first_byte = since(start);
          out.bytes.append(buf.data(), n);
          if (ec) {
            out.end = ec;
            break;
          }
        }
        done = true;
      },
      asio::detached);
  ioc.run_for(limit);
  if (!done) out.end = asio::error::timed_out;
  out.elapsed = since(start);
  return out;
}

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
}

std::string put(const std::string& target, const std::string& body) {
  return "PUT " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// The offsets where a and b (of equal size) differ.
std::vector<std::size_t> differences(const std::string& a, const std::string& b) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i] != b[i]) out.push_back(i);
  }
  return out;
}

// Requests on one keep-alive connection, each response read before the next request goes.
using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;
asio::awaitable<std::vector<response>> on_one_connection(std::uint16_t port, std::vector<request> requests) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(20s);
  co_await stream.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), asio::use_awaitable);
  beast::flat_buffer buffer;
  std::vector<response> out;
  for (auto& req : requests) {
    req.set(bhttp::field::host, "127.0.0.1");
    req.prepare_payload();
    stream.expires_after(20s);
    co_await bhttp::async_write(stream, req, asio::use_awaitable);
    response res;
    co_await bhttp::async_read(stream, buffer, res, asio::use_awaitable);
    out.push_back(std::move(res));
  }
  co_return out;
}

class FaultProxy : public ::testing::Test {
 protected:
  static constexpr std::size_t object_size = 100'000;

  FaultProxy() : proxy_({.upstream_port = server_.port()}) {}

  void SetUp() override {
    auto made = exchange(server_.port(), put("/bkt", ""));
    ASSERT_EQ(made.status(), 200u) << made.bytes << server_.read_log();
    upload("/bkt/obj", data_);
  }

  // PUT straight to the server, then waits until it serves the object (s3rver answers before it has written).
  void upload(const std::string& target, const std::string& data) {
    auto r = exchange(server_.port(), put(target, data));
    ASSERT_EQ(r.status(), 200u) << r.head();
    ASSERT_TRUE(served(target, data.size()));
  }

  // Whether the server itself serves `target` with `size` bytes within a few seconds.
  bool served(const std::string& target, std::size_t size) {
    const auto deadline = steady::now() + 10s;
    while (steady::now() < deadline) {
      auto r = exchange(server_.port(), get(target));
      if (r.status() == 200 && r.body().size() == size) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  raw_reply direct(const std::string& target) { return exchange(server_.port(), get(target)); }
  raw_reply via_proxy(const std::string& request) { return exchange(proxy_.port(), request); }

  const request_record& last_record() {
    records_ = proxy_.requests();
    if (records_.empty()) throw std::runtime_error("no request recorded");
    return records_.back();
  }

  s3rver server_{{.strict = false, .log_requests = false}};
  fault_proxy proxy_;
  std::string data_ = pattern(object_size, 7);
  std::vector<request_record> records_;
};

TEST_F(FaultProxy, RelaysUnchangedWithoutRules) {
  auto r = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(r.status(), 200u);
  EXPECT_EQ(r.body(), data_);
  EXPECT_EQ(r.end, asio::error::eof);
  const auto& rec = last_record();
  EXPECT_EQ(rec.method, "GET");
  EXPECT_EQ(rec.target, "/bkt/obj");
  EXPECT_EQ(rec.status, 200u);
  EXPECT_FALSE(rec.fault);
}

TEST_F(FaultProxy, SlowDownIsAnsweredInTheServersPlaceAndTheServerNeverSeesTheRequest) {
  proxy_.set_rules({{.name = "puts", .methods = {"PUT"}, .action = fault_action::slow_down()}});
  auto r = via_proxy(put("/bkt/new", "never stored"));
  EXPECT_EQ(r.status(), 503u) << r.bytes;
  EXPECT_NE(r.body().find("<Code>SlowDown</Code>"), std::string::npos) << r.body();
  EXPECT_NE(r.body().find("<Resource>/bkt/new</Resource>"), std::string::npos) << r.body();
  EXPECT_EQ(r.content_length(), r.body().size());
  EXPECT_EQ(proxy_.fired(0), 1u);
  const auto& rec = last_record();
  EXPECT_EQ(rec.status, 503u);
  EXPECT_EQ(rec.fault, fault_kind::status);
  EXPECT_EQ(rec.rule, 0u);
  EXPECT_EQ(direct("/bkt/new").status(), 404u) << "the answered request reached the server";
  EXPECT_EQ(via_proxy(get("/bkt/obj")).body(), data_) << "a GET matched a PUT rule";
  EXPECT_EQ(proxy_.fired(0), 1u);
}

TEST_F(FaultProxy, AnUploadWaitingFor100ContinueGetsTheErrorAtOnceAndTheConnectionCloses) {
  proxy_.set_rules({{.methods = {"PUT"}, .action = fault_action::slow_down()}});
  // The head only: a client that asked for 100 Continue sends no body until it hears back.
  auto r = via_proxy(
      "PUT /bkt/expecting HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
      "Content-Length: 100000\r\n\r\n");
  EXPECT_EQ(r.status(), 503u) << r.bytes;
  EXPECT_NE(r.head().find("Connection: close"), std::string::npos) << r.head();
  EXPECT_NE(r.body().find("<Code>SlowDown</Code>"), std::string::npos);
  EXPECT_EQ(r.end, asio::error::eof) << r.end.message();
  EXPECT_LT(r.elapsed, 5s);
}

TEST_F(FaultProxy, AnInjectedErrorKeepsAKeepAliveConnectionInStep) {
  proxy_.set_rules({{.methods = {"PUT"}, .times = 1, .action = fault_action::internal_error()}});
  std::vector<request> requests;
  requests.emplace_back(bhttp::verb::put, "/bkt/kept", 11).body() = "first body";  // answered 500, body swallowed
  requests.emplace_back(bhttp::verb::get, "/bkt/obj", 11);
  requests.emplace_back(bhttp::verb::put, "/bkt/kept", 11).body() = "second body";
  requests.emplace_back(bhttp::verb::get, "/bkt/obj", 11);
  io_runner io;
  auto responses = io.run(on_one_connection(proxy_.port(), std::move(requests)), 60s);
  ASSERT_EQ(responses.size(), 4u);
  EXPECT_EQ(responses[0].result_int(), 500u);
  EXPECT_NE(responses[0].body().find("<Code>InternalError</Code>"), std::string::npos) << responses[0].body();
  EXPECT_EQ(responses[1].result_int(), 200u);
  EXPECT_EQ(responses[1].body(), data_);
  EXPECT_EQ(responses[2].result_int(), 200u);
  EXPECT_EQ(responses[3].body(), data_);
  EXPECT_EQ(proxy_.stats().connections, 1u);
  ASSERT_TRUE(served("/bkt/kept", std::string("second body").size()));
  EXPECT_EQ(direct("/bkt/kept").body(), "second body");
}

TEST_F(FaultProxy, ResetAfterBodyBytesCutsTheResponseShortWithAReset) {
  proxy_.set_rules({{.methods = {"GET"}, .action = fault_action::reset_after(1000)}});
  auto r = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(r.status(), 200u);
  EXPECT_EQ(r.content_length(), object_size);
  EXPECT_EQ(r.body(), data_.substr(0, 1000));
  EXPECT_EQ(r.end, asio::error::connection_reset) << r.end.message();
  EXPECT_EQ(last_record().fault, fault_kind::reset);
}

TEST_F(FaultProxy, ResetAfterUploadBodyBytesCutsTheUploadWithAReset) {
  // The upstream here is a sink that keeps what arrives, to see exactly where the upload was cut (s3rver as
  // published keeps an empty object behind an aborted upload, which says little).
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  std::string received;
  boost::system::error_code end;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto [ec, s] = co_await acceptor.async_accept(tok);
        if (ec) co_return;
        std::vector<char> buf(64 * 1024);
        for (;;) {
          auto [rec, n] = co_await s.async_read_some(asio::buffer(buf), tok);
          received.append(buf.data(), n);
          if (rec) {
            end = rec;
            break;
          }
        }
      },
      asio::detached);
  std::thread sink([&] { ioc.run_for(20s); });
  fault_proxy proxy({.upstream_port = acceptor.local_endpoint().port(),
                     .rules = {{.methods = {"PUT"}, .action = fault_action::reset_after(5000)}}});  // the upload
  auto r = exchange(proxy.port(), put("/bkt/upload", data_));
  sink.join();
  EXPECT_EQ(r.status(), 0u) << r.head();
  EXPECT_TRUE(r.end == asio::error::connection_reset || r.write_error == asio::error::connection_reset ||
              r.write_error == asio::error::broken_pipe)
      << r.end.message() << " / " << r.write_error.message();
  const std::size_t head_end = received.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << received.size();
  EXPECT_EQ(received.substr(0, head_end), put("/bkt/upload", data_).substr(0, head_end));
  EXPECT_EQ(received.substr(head_end + 4), data_.substr(0, 5000));
  EXPECT_EQ(end, asio::error::connection_reset) << end.message();
  EXPECT_EQ(proxy.fired(0), 1u);
}

TEST_F(FaultProxy, TruncateSendsTheFullLengthThenPartOfTheBodyAndCloses) {
  proxy_.set_rules({{.target_contains = "obj", .action = fault_action::truncate_after(5000)}});
  auto r = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(r.status(), 200u);
  EXPECT_EQ(r.content_length(), object_size);
  EXPECT_EQ(r.body(), data_.substr(0, 5000));
  EXPECT_EQ(r.end, asio::error::eof) << r.end.message();
}

TEST_F(FaultProxy, StallStopsTheResponseMidBodyThenItCompletes) {
  proxy_.set_rules({{.action = fault_action::stall_for(1200ms, 1000)}});
  auto r = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(r.body(), data_);
  EXPECT_LT(r.first_byte, 800ms) << "the head and first bytes should not wait";
  EXPECT_GE(r.elapsed, 1150ms);
  EXPECT_LT(r.elapsed, 10s);
}

TEST_F(FaultProxy, FlipsTheLowestBitOfTheResponseBodyAtTheOffset) {
  proxy_.set_rules({{.objects_only = true, .action = fault_action::flip_bit_at(12345)}});
  auto r = via_proxy(get("/bkt/obj"));
  ASSERT_EQ(r.body().size(), data_.size());
  EXPECT_EQ(differences(r.body(), data_), std::vector<std::size_t>{12345});
  EXPECT_EQ(r.body()[12345] ^ data_[12345], 1);
  EXPECT_EQ(last_record().fault, fault_kind::flip_bit);
}

TEST_F(FaultProxy, FlipsTheLowestBitOfTheUploadBodyAtTheOffset) {
  proxy_.set_rules({{.methods = {"PUT"}, .action = fault_action::flip_bit_at(777)}});
  auto r = via_proxy(put("/bkt/flipped", data_));
  EXPECT_EQ(r.status(), 200u) << r.head();
  ASSERT_TRUE(served("/bkt/flipped", data_.size()));
  const std::string stored = direct("/bkt/flipped").body();
  EXPECT_EQ(differences(stored, data_), std::vector<std::size_t>{777});
  EXPECT_EQ(proxy_.fired(0), 1u);
}

TEST_F(FaultProxy, AFlipPastTheEndOfTheBodyIsTakenBackNotCounted) {
  proxy_.set_rules({{.times = 1, .action = fault_action::flip_bit_at(object_size)}});
  EXPECT_EQ(via_proxy(get("/bkt/obj")).body(), data_);
  EXPECT_EQ(proxy_.fired(0), 0u);
  EXPECT_FALSE(last_record().fault);
}

TEST_F(FaultProxy, WrongContentLengthDeclaresOtherThanTheBodyThenCloses) {
  proxy_.set_rules({{.times = 1, .action = fault_action::wrong_content_length(10)}});
  auto more = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(more.content_length(), object_size + 10);
  EXPECT_EQ(more.body(), data_);
  EXPECT_EQ(more.end, asio::error::eof);

  proxy_.set_rules({{.times = 1, .action = fault_action::wrong_content_length(-10)}});
  auto less = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(less.content_length(), object_size - 10);
  EXPECT_EQ(less.body(), data_);  // the declared length, then 10 bytes a client must not take as the next response
  EXPECT_EQ(less.end, asio::error::eof);
  EXPECT_EQ(proxy_.fired(0), 1u);
}

TEST_F(FaultProxy, TrickleBoundsTheRateOfTheBody) {
  const std::string small = pattern(30'000, 3);
  upload("/bkt/small", small);
  proxy_.set_rules({{.target_contains = "small", .action = fault_action::trickle(30'000)}});
  auto r = via_proxy(get("/bkt/small"));
  EXPECT_EQ(r.body(), small);
  EXPECT_GE(r.elapsed, 900ms);  // 30 000 bytes at 30 000 bytes/s
  EXPECT_LT(r.elapsed, 5s);
}

TEST_F(FaultProxy, LatencyHoldsTheRequest) {
  proxy_.set_rules({{.action = fault_action::latency(400ms)}});
  auto r = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(r.body(), data_);
  EXPECT_GE(r.elapsed, 400ms);
  EXPECT_LT(r.elapsed, 10s);
}

TEST_F(FaultProxy, ShareFiresOnItsProportionAndASeedRepeatsThePattern) {
  upload("/bkt/tiny", "t");
  proxy_.set_seed(7);
  proxy_.set_rules({{.share = 0.3, .action = fault_action::slow_down()}});
  auto run = [&] {
    std::vector<bool> answered;
    for (int i = 0; i < 200; ++i) answered.push_back(via_proxy(get("/bkt/tiny")).status() == 503);
    return answered;
  };
  const auto first = run();
  const auto fired = static_cast<std::uint64_t>(std::count(first.begin(), first.end(), true));
  EXPECT_GE(fired, 40u);
  EXPECT_LE(fired, 80u);
  EXPECT_EQ(proxy_.fired(0), fired);

  proxy_.set_seed(7);
  proxy_.set_rules({{.share = 0.3, .action = fault_action::slow_down()}});
  EXPECT_EQ(run(), first);
}

TEST_F(FaultProxy, TimesLimitsTheFirings) {
  proxy_.set_rules({{.times = 3, .action = fault_action::slow_down()}});
  std::vector<unsigned> statuses;
  for (int i = 0; i < 8; ++i) statuses.push_back(via_proxy(get("/bkt/obj")).status());
  EXPECT_EQ(statuses, (std::vector<unsigned>{503, 503, 503, 200, 200, 200, 200, 200}));
  EXPECT_EQ(proxy_.fired(0), 3u);
}

TEST_F(FaultProxy, TheFirstMatchingRuleThatFiresWins) {
  proxy_.set_rules({{.name = "never", .share = 0.0, .action = fault_action::slow_down()},
                    {.name = "other key", .target_contains = "nothing", .action = fault_action::slow_down()},
                    {.name = "this", .methods = {"get"}, .action = fault_action::internal_error()},
                    {.name = "shadowed", .action = fault_action::slow_down()}});
  EXPECT_EQ(via_proxy(get("/bkt/obj")).status(), 500u);
  const auto stats = proxy_.stats();
  EXPECT_EQ(stats.rule_names, (std::vector<std::string>{"never", "other key", "this", "shadowed"}));
  EXPECT_EQ(stats.fired, (std::vector<std::uint64_t>{0, 0, 1, 0}));
}

TEST_F(FaultProxy, RulesChangeAtRuntime) {
  EXPECT_EQ(via_proxy(get("/bkt/obj")).status(), 200u);
  proxy_.set_rules({{.action = fault_action::error(500)}});
  auto r = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(r.status(), 500u);
  EXPECT_NE(r.body().find("<Code>InternalError</Code>"), std::string::npos);
  proxy_.set_rules({{.action = fault_action::error(503, "ServiceUnavailable")}});
  r = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(r.status(), 503u);
  EXPECT_NE(r.body().find("<Code>ServiceUnavailable</Code>"), std::string::npos);
  proxy_.set_rules({});
  EXPECT_EQ(via_proxy(get("/bkt/obj")).status(), 200u);
  EXPECT_TRUE(proxy_.stats().fired.empty());
  EXPECT_EQ(proxy_.stats().requests, 4u);
}

TEST_F(FaultProxy, ControlPortTakesRulesAndReportsStats) {
  fault_control control(proxy_);
  const std::string storm = R"({"seed": 3, "rules": [{"name": "slowdown-storm", "objects_only": true,
                                 "share": 1.0, "times": 2, "action": "status", "status": 503}]})";
  auto set = exchange(control.port(), "PUT /rules HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                                          std::to_string(storm.size()) + "\r\n\r\n" + storm);
  ASSERT_EQ(set.status(), 200u) << set.bytes;
  EXPECT_EQ(via_proxy(get("/bkt/obj")).status(), 503u);
  EXPECT_EQ(via_proxy(get("/bkt/obj")).status(), 503u);
  EXPECT_EQ(via_proxy(get("/bkt/obj")).status(), 200u);
  EXPECT_EQ(via_proxy(get("/bkt?list-type=2")).status(), 200u);  // not an object request

  auto got = exchange(control.port(), "GET /stats?recent=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(got.status(), 200u) << got.bytes;
  const auto stats = boost::json::parse(got.body()).as_object();
  EXPECT_EQ(stats.at("requests").to_number<int>(), 4);
  const auto& rule = stats.at("rules").as_array().at(0).as_object();
  EXPECT_EQ(rule.at("name").as_string(), "slowdown-storm");
  EXPECT_EQ(rule.at("fired").to_number<int>(), 2);
  const auto& recent = stats.at("recent").as_array();
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent.at(0).at("status").to_number<int>(), 200);
  EXPECT_TRUE(recent.at(0).at("fault").is_null());

  const std::string bad = R"({"rules": [{"action": "explode"}]})";
  auto refused = exchange(control.port(), "PUT /rules HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                                              std::to_string(bad.size()) + "\r\n\r\n" + bad);
  EXPECT_EQ(refused.status(), 400u);
  EXPECT_NE(refused.body().find("unknown action"), std::string::npos) << refused.body();
  EXPECT_EQ(proxy_.stats().rule_names, std::vector<std::string>{"slowdown-storm"}) << "a bad document changed rules";
}

TEST_F(FaultProxy, TheDelayAddsTwiceTheOneWayDelayToARoundTrip) {
  upload("/bkt/tiny", "t");
  const auto baseline = via_proxy(get("/bkt/tiny"));
  proxy_.set_delay(60ms);
  const auto delayed = via_proxy(get("/bkt/tiny"));
  EXPECT_EQ(delayed.body(), "t");
  EXPECT_GE(delayed.elapsed, 120ms) << "baseline " << baseline.elapsed.count() << " ms";
  EXPECT_LT(delayed.elapsed, baseline.elapsed + 120ms + 2s);
}

TEST_F(FaultProxy, TheDelayedPathKeepsThroughputHigh) {
  const std::string big = pattern(8 << 20, 11);
  upload("/bkt/big", big);
  proxy_.set_delay(25ms, 2ms);
  const auto start = steady::now();
  std::vector<std::future<raw_reply>> fetches;
  for (int i = 0; i < 8; ++i) {
    fetches.push_back(std::async(std::launch::async, [&] { return via_proxy(get("/bkt/big")); }));
  }
  for (auto& f : fetches) {
    const raw_reply r = f.get();
    EXPECT_EQ(r.status(), 200u);
    EXPECT_TRUE(r.body() == big) << "a delayed body arrived changed (" << r.body().size() << " bytes)";
  }
  const auto took = since(start);
  std::cout << "[ info ] 64 MiB over 8 connections, 50 ms RTT: " << took.count() << " ms ("
            << 64.0 * 8 / (static_cast<double>(took.count()) / 1000) << " Mbit/s)\n";
  EXPECT_LT(took, 10s);
}

TEST_F(FaultProxy, AStallHoldsAllTraffic) {
  proxy_.set_stall(800ms);
  auto held = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(held.body(), data_);
  EXPECT_GE(held.elapsed, 700ms);
  auto free = via_proxy(get("/bkt/obj"));
  EXPECT_EQ(free.body(), data_);
  EXPECT_LT(free.elapsed, 700ms);
}

TEST_F(FaultProxy, FerrysS3ClientSeesTheSlowDownCodeAndRetriesThroughIt) {
  io_runner io;
  auto make_client = [&](int attempts) {
    http::pool_config pc;
    pc.max_connections = 4;
    auto h = std::make_shared<http::client>(io.executor(), pc);
    s3::remote_config r;
    r.name = "proxied";
    r.endpoint = proxy_.endpoint();
    r.path_style = true;
    r.credentials.access_key_id = std::string(s3rver::access_key_id);
    r.credentials.secret_access_key = std::string(s3rver::secret_access_key);
    r.retry.max_attempts = attempts;
    r.retry.throttle_base_delay = 10ms;
    r.retry.base_delay = 10ms;
    s3::credentials c{r.credentials.access_key_id, r.credentials.secret_access_key, ""};
    return std::make_shared<s3::client>(std::move(h), std::move(r), std::move(c));
  };
  auto fetch = [](std::shared_ptr<s3::client> c) -> asio::awaitable<s3::result<std::string>> {
    const s3::get_params p;
    auto got = co_await c->get_object("bkt", "obj", p);
    if (!got) co_return got.error();
    auto body = co_await got->response.read_all(std::size_t{1} << 20);
    if (!body) co_return s3::transport_error(body.error(), "reading body");
    co_return std::move(*body);
  };

  proxy_.set_rules({{.methods = {"GET"}, .objects_only = true, .action = fault_action::slow_down()}});
  auto once = io.run(fetch(make_client(1)));
  ASSERT_FALSE(once);
  EXPECT_EQ(once.error().http_status, 503u);
  EXPECT_EQ(once.error().code, "SlowDown");
  EXPECT_TRUE(once.error().retryable);

  proxy_.set_rules({{.methods = {"GET"}, .objects_only = true, .times = 2, .action = fault_action::slow_down()}});
  auto retried = io.run(fetch(make_client(5)));
  ASSERT_TRUE(retried) << retried.error().to_string();
  EXPECT_EQ(*retried, data_);
  EXPECT_EQ(proxy_.fired(0), 2u);
}

// ---------------------------------------------------------------------------------------------------------

TEST(FaultProxyConfig, ParsesTheReadmeExamples) {
  std::string error;
  auto storm = parse_fault_config(R"({
    "seed": 42,
    "rules": [
      {"name": "slowdown-storm", "objects_only": true, "share": 0.3, "action": "status", "status": 503}
    ]})",
                                  error);
  ASSERT_TRUE(storm) << error;
  EXPECT_EQ(storm->seed, 42u);
  ASSERT_EQ(storm->rules->size(), 1u);
  const fault_rule& r = storm->rules->at(0);
  EXPECT_EQ(r.name, "slowdown-storm");
  EXPECT_TRUE(r.objects_only);
  EXPECT_DOUBLE_EQ(r.share, 0.3);
  EXPECT_EQ(r.action.kind, fault_kind::status);
  EXPECT_EQ(r.action.status, 503u);
  EXPECT_FALSE(storm->delay);

  auto resets = parse_fault_config(R"({
    "delay_ms": 25, "jitter_ms": 2,
    "rules": [
      {"name": "resets", "method": ["GET", "PUT"], "objects_only": true, "share": 0.05,
       "action": "reset", "bytes": 65536}
    ]})",
                                   error);
  ASSERT_TRUE(resets) << error;
  EXPECT_EQ(resets->delay, std::chrono::microseconds(25'000));
  EXPECT_EQ(resets->jitter, std::chrono::microseconds(2'000));
  const fault_rule& reset = resets->rules->at(0);
  EXPECT_EQ(reset.methods, (std::vector<std::string>{"GET", "PUT"}));
  EXPECT_EQ(reset.action.kind, fault_kind::reset);
  EXPECT_EQ(reset.action.bytes, 65536u);
  EXPECT_EQ(reset.action.direction, fault_direction::automatic);
}

TEST(FaultProxyConfig, RefusesMistakesWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[", "not JSON"},
      {R"({"rules": [{"action": "status", "shares": 0.3}]})", "unknown key \"shares\""},
      {R"({"rules": [{"action": "status", "share": 2}]})", "share"},
      {R"({"rules": [{"share": 0.5}]})", "action is required"},
      {R"({"rules": [{"action": "truncate", "direction": "request"}]})", "responses only"},
      {R"({"rules": [{"action": "trickle"}]})", "bytes_per_s"},
      {R"({"rules": [{"action": "latency", "ms": -5}]})", "ms"},
      {R"({"rules": [{"action": "status", "target_regex": "("}]})", "target_regex"},
      {R"({"delay_ms": "fast"})", "delay_ms"},
  };
  for (const auto& [doc, why] : cases) {
    std::string error;
    EXPECT_FALSE(parse_fault_config(doc, error)) << doc;
    EXPECT_NE(error.find(why), std::string::npos) << doc << " -> " << error;
  }
  EXPECT_EQ(parse_duration("25ms"), std::chrono::microseconds(25'000));
  EXPECT_EQ(parse_duration("1.5s"), std::chrono::microseconds(1'500'000));
  EXPECT_EQ(parse_duration("40"), std::chrono::microseconds(40'000));
  EXPECT_FALSE(parse_duration("5 parsecs"));
}

}  // namespace
}  // namespace ferry::test
