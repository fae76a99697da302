#include "control/client.hpp"
#include "control/server.hpp"
#include "proto/messages.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <optional>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace control = ferry::control;
namespace proto = ferry::proto;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// Polls `pred` every few milliseconds for at most `timeout`.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  const auto end = clock_type::now() + timeout;
  while (clock_type::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// A hand-driven client socket, for sending what control::client never would.
class raw_client {
 public:
  explicit raw_client(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.data(), path.size());
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~raw_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // The next line (without '\n'), or nullopt on timeout, EOF or error.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 5s) {
    const auto end = clock_type::now() + timeout;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (!fill(end)) return std::nullopt;
    }
  }

  // True once the server has closed the connection (EOF or reset) within `timeout`.
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto end = clock_type::now() + timeout;
    while (clock_type::now() < end) {
      if (!fill(end)) return eof_;
      buf_.clear();
    }
    return false;
  }

 private:
  bool fill(clock_type::time_point end) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - clock_type::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

std::string request(std::int64_t id, std::string_view method, std::string_view params = "{}") {
  return proto::request_line(id, method, params);
}

// The response to one line, parsed.
proto::response parse(const std::optional<std::string>& line) {
  EXPECT_TRUE(line);
  if (!line) return {};
  auto r = proto::parse_response(*line);
  EXPECT_TRUE(r) << *line;
  return r ? *r : proto::response{};
}

int error_code_of(const proto::response& r) { return r.outcome ? 0 : r.outcome.error().code; }

class ControlServer : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.socket_path = (dir_ / "run/ferry/ferryd.sock").string();
    cfg_.idle_timeout = 30s;
    cfg_.write_timeout = 5s;
    cfg_.handler_timeout = 10s;
    cfg_.stop_grace = 500ms;
  }

  void TearDown() override {
    if (server_) {
      server_->stop();
      EXPECT_TRUE(server_->wait_stopped_for(5s)) << "connections left open after stop()";
    }
    guard_.reset();
    // Every coroutine must end once the server has stopped: the io_context runs out of work.
    EXPECT_TRUE(eventually([&] { return io_.stopped(); }, 5s)) << "work left behind on the io_context";
    io_.stop();
    for (auto& t : threads_) t.join();
    server_.reset();
  }

  // Registers the test methods and starts serving on two io threads.
  void start() {
    server_ = std::make_unique<control::server>(io_.get_executor(), cfg_);
    server_->add_method(
        "echo", [](const proto::request& r) -> asio::awaitable<control::handler_result> { co_return r.params; });
    server_->add_method("sleep", [this](const proto::request& r) -> asio::awaitable<control::handler_result> {
      ++sleeping_;
      const auto ms = r.params == "{}" ? 0 : std::stoi(r.params.substr(6));  // {"ms":N}
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
      co_await t.async_wait(asio::use_awaitable);
      co_return "{\"slept\":" + std::to_string(ms) + "}";
    });
    server_->add_method("hang", [this](const proto::request&) -> asio::awaitable<control::handler_result> {
      ++sleeping_;
      asio::steady_timer t(co_await asio::this_coro::executor, 1h);
      co_await t.async_wait(asio::use_awaitable);
      co_return "{}";
    });
    server_->add_method("job.get", [](const proto::request& r) -> asio::awaitable<control::handler_result> {
      auto p = proto::parse_job_get_params(r.params);
      if (!p) co_return p.error();
      if (p->id != "j-000001") co_return proto::error{proto::code::job_not_found, "job not found: " + p->id};
      proto::job j;
      j.id = p->id;
      j.kind = "copy";
      co_return proto::to_json(j);
    });
    server_->add_method("throw", [](const proto::request&) -> asio::awaitable<control::handler_result> {
      throw std::runtime_error("bug");
      co_return "{}";
    });
    server_->add_method("count", [this](const proto::request&) -> asio::awaitable<control::handler_result> {
      ++counted_;
      co_return "{}";
    });
    if (authorizer_) server_->set_authorizer(authorizer_);
    auto started = server_->start();
    ASSERT_TRUE(started) << started.error();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  control::client connect(control::client_options opts = {}) {
    auto c = control::client::connect(cfg_.socket_path, opts);
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
    return std::move(c).value();
  }

  ferry::test::temp_dir dir_{"ferry-ctl"};
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{io_.get_executor()};
  std::vector<std::thread> threads_;
  control::server_config cfg_;
  control::authorizer authorizer_;
  std::unique_ptr<control::server> server_;
  std::atomic<int> sleeping_{0};
  std::atomic<int> counted_{0};
};

TEST_F(ControlServer, AnswersARequest) {
  start();
  auto c = connect();
  auto r = c.call("echo", R"({"a":[1,"two",{"three":null}]})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, R"({"a":[1,"two",{"three":null}]})");
  auto j = c.call("job.get", R"({"id":"j-000001"})");
  ASSERT_TRUE(j) << j.error().message;
  auto job = proto::parse_job(*j);
  ASSERT_TRUE(job) << job.error().message;
  EXPECT_EQ(job->id, "j-000001");
}

TEST_F(ControlServer, UnknownMethodIsMethodNotFound) {
  start();
  auto c = connect();
  auto r = c.call("job.frobnicate", "{}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what, control::call_error::kind::rpc);
  EXPECT_EQ(r.error().code, proto::code::method_not_found);
  EXPECT_EQ(r.error().message, "method not found: job.frobnicate");
  // An error answer leaves the connection usable.
  EXPECT_TRUE(c.call("echo", "{}"));
}

TEST_F(ControlServer, HandlerErrorsReachTheClient) {
  start();
  auto c = connect();
  auto bad = c.call("job.get", R"({"job":"j-1"})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, proto::code::invalid_params);
  EXPECT_EQ(bad.error().message, "params: unknown field 'job'");
  auto missing = c.call("job.get", R"({"id":"j-999"})");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, proto::code::job_not_found);
  EXPECT_EQ(missing.error().message, "job not found: j-999");
}

TEST_F(ControlServer, UnparsableLineIsParseErrorAndTheConnectionGoesOn) {
  start();
  raw_client rc(cfg_.socket_path);
  ASSERT_TRUE(rc.connected());
  ASSERT_TRUE(rc.send("{oops\n"));
  auto e = parse(rc.read_line());
  EXPECT_EQ(error_code_of(e), proto::code::parse_error);
  EXPECT_EQ(e.id, proto::request_id{nullptr});
  ASSERT_TRUE(rc.send(request(2, "echo", R"({"x":1})")));
  auto ok = parse(rc.read_line());
  ASSERT_TRUE(ok.outcome);
  EXPECT_EQ(*ok.outcome, R"({"x":1})");
  EXPECT_EQ(ok.id, proto::request_id{std::int64_t{2}});
}

TEST_F(ControlServer, InvalidRequestsAre32600) {
  start();
  raw_client rc(cfg_.socket_path);
  ASSERT_TRUE(rc.send(R"({"jsonrpc":"2.0","id":4,"method":7})"
                      "\n"));
  auto e = parse(rc.read_line());
  EXPECT_EQ(error_code_of(e), proto::code::invalid_request);
  EXPECT_EQ(e.id, proto::request_id{std::int64_t{4}});
  ASSERT_TRUE(rc.send(R"([{"jsonrpc":"2.0","id":5,"method":"echo"}])"
                      "\n"));
  auto batch = parse(rc.read_line());
  EXPECT_EQ(error_code_of(batch), proto::code::invalid_request);
  EXPECT_EQ(batch.outcome.error().message, "batch requests are not supported");
}

TEST_F(ControlServer, ParamsOfTheWrongShapeAre32602FromTheHandler) {
  start();
  raw_client rc(cfg_.socket_path);
  ASSERT_TRUE(rc.send(request(1, "job.get", R"(["j-000001"])")));
  auto e = parse(rc.read_line());
  EXPECT_EQ(error_code_of(e), proto::code::invalid_params);
  EXPECT_EQ(e.outcome.error().message, "params: expected an object, got an array");
}

TEST_F(ControlServer, NotificationsRunButGetNoReply) {
  start();
  raw_client rc(cfg_.socket_path);
  ASSERT_TRUE(rc.send(proto::notification_line("count", "{}") + proto::notification_line("nope", "{}") +
                      request(1, "echo", R"({"after":true})")));
  auto r = parse(rc.read_line());
  EXPECT_EQ(r.id, proto::request_id{std::int64_t{1}});
  EXPECT_EQ(counted_.load(), 1);
}

TEST_F(ControlServer, PipelinedRequestsAreAnsweredInOrder) {
  start();
  raw_client rc(cfg_.socket_path);
  // Blank lines are skipped; CRLF line ends are accepted.
  std::string crlf = request(3, "echo", R"({"n":3})");
  crlf.insert(crlf.size() - 1, "\r");
  const std::string lines = request(1, "sleep", R"({"ms":50})") + "\n  \n" + request(2, "echo", R"({"n":2})") + crlf;
  ASSERT_TRUE(rc.send(lines));
  for (std::int64_t id = 1; id <= 3; ++id) {
    auto r = parse(rc.read_line());
    EXPECT_EQ(r.id, proto::request_id{id});
    EXPECT_TRUE(r.outcome);
  }
}

TEST_F(ControlServer, OversizedLineIsRefusedAndTheServerGoesOn) {
  start();
  {
    raw_client rc(cfg_.socket_path);
    std::string huge = R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"pad":")";
    huge.append(proto::max_request_bytes, 'a');
    huge += "\"}}\n";
    ASSERT_TRUE(rc.send(huge));
    auto e = parse(rc.read_line());
    EXPECT_EQ(error_code_of(e), proto::code::invalid_request);
    EXPECT_NE(e.outcome.error().message.find("request too large"), std::string::npos);
    EXPECT_TRUE(rc.closed_within(5s));
  }
  // A line of exactly the limit is fine.
  raw_client rc(cfg_.socket_path);
  std::string exact = R"({"jsonrpc":"2.0","id":2,"method":"echo","params":{"pad":")";
  const std::string tail = "\"}}";
  exact.append(proto::max_request_bytes - exact.size() - tail.size(), 'b');
  exact += tail;
  ASSERT_EQ(exact.size(), proto::max_request_bytes);
  ASSERT_TRUE(rc.send(exact + "\n"));
  auto ok = parse(rc.read_line());
  ASSERT_TRUE(ok.outcome);
  EXPECT_EQ(ok.outcome->size(),
            proto::max_request_bytes - std::string(R"({"jsonrpc":"2.0","id":2,"method":"echo","params":)").size() - 1);
  EXPECT_TRUE(connect().call("echo", "{}"));
}

TEST_F(ControlServer, ServesManyClientsConcurrently) {
  start();
  constexpr int clients = 24, calls = 10;
  std::atomic<int> good{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < clients; ++t) {
    ts.emplace_back([&, t] {
      auto c = control::client::connect(cfg_.socket_path);
      if (!c) return;
      for (int i = 0; i < calls; ++i) {
        if (i % 3 == 0 && !c->call("sleep", R"({"ms":2})")) return;
        const std::string p = "{\"t\":" + std::to_string(t) + ",\"i\":" + std::to_string(i) + "}";
        auto r = c->call("echo", p);
        if (r && *r == p) ++good;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(good.load(), clients * calls);
  EXPECT_GE(server_->stats().accepted, static_cast<std::uint64_t>(clients));
}

TEST_F(ControlServer, SlowSilentAndGarbageClientsDoNotBlockOthers) {
  start();
  raw_client silent(cfg_.socket_path);
  raw_client partial(cfg_.socket_path);
  raw_client garbage(cfg_.socket_path);
  ASSERT_TRUE(partial.send(R"({"jsonrpc":"2.0","id":1,"method":"ec)"));
  ASSERT_TRUE(garbage.send(std::string("\x00\xff\xfe garbage\n[[[[\n", 16)));
  auto slow = std::async(std::launch::async, [&] {
    auto c = control::client::connect(cfg_.socket_path);
    return c && c->call("sleep", R"({"ms":2000})").has_value();
  });
  ASSERT_TRUE(eventually([&] { return sleeping_.load() == 1; }));

  const auto t0 = clock_type::now();
  auto c = connect();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.call("echo", "{}"));
  EXPECT_LT(clock_type::now() - t0, 1s);
  EXPECT_TRUE(garbage.read_line());  // garbage got its parse errors
  EXPECT_EQ(slow.wait_for(0s), std::future_status::timeout);
  EXPECT_TRUE(slow.get());
}

TEST_F(ControlServer, IdleClientIsDisconnected) {
  cfg_.idle_timeout = 200ms;
  start();
  raw_client rc(cfg_.socket_path);
  ASSERT_TRUE(rc.send(R"({"jsonrpc":"2.0")"));  // never finished
  EXPECT_TRUE(rc.closed_within(5s));
  EXPECT_TRUE(eventually([&] { return server_->stats().open == 0; }));
}

TEST_F(ControlServer, HandlerTimeoutAndExceptionAreInternalErrors) {
  cfg_.handler_timeout = 200ms;
  start();
  auto c = connect();
  auto t = c.call("hang", "{}");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, proto::code::internal_error);
  EXPECT_EQ(t.error().message, "internal error: hang timed out");
  const auto t0 = clock_type::now();
  auto x = c.call("throw", "{}");
  ASSERT_FALSE(x);
  EXPECT_EQ(x.error().code, proto::code::internal_error);
  EXPECT_EQ(x.error().message, "internal error");
  EXPECT_LT(clock_type::now() - t0, cfg_.handler_timeout);
  EXPECT_TRUE(c.call("echo", "{}"));
}

TEST_F(ControlServer, CreatesTheSocketWithMode0660InA0750Directory) {
  start();
  struct stat st {};
  ASSERT_EQ(::stat(cfg_.socket_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  for (auto dir : {dir_ / "run", dir_ / "run/ferry"}) {
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0750u) << dir;
  }
}

TEST_F(ControlServer, RefusesToStartOverALiveServerOrAFile) {
  start();
  control::server second(io_.get_executor(), cfg_);
  auto r = second.start();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("another process is listening"), std::string::npos) << r.error();

  control::server_config other = cfg_;
  other.socket_path = (dir_ / "not-a-socket").string();
  {
    std::FILE* f = std::fopen(other.socket_path.c_str(), "w");
    ASSERT_TRUE(f);
    std::fclose(f);
  }
  control::server third(io_.get_executor(), other);
  auto r3 = third.start();
  ASSERT_FALSE(r3);
  EXPECT_NE(r3.error().find("is not a socket"), std::string::npos) << r3.error();
  EXPECT_TRUE(std::filesystem::exists(other.socket_path));

  other.socket_path = "/tmp/" + std::string(120, 'x');
  control::server fourth(io_.get_executor(), other);
  auto r4 = fourth.start();
  ASSERT_FALSE(r4);
  EXPECT_NE(r4.error().find("too long"), std::string::npos) << r4.error();
}

TEST_F(ControlServer, ReplacesAStaleSocketFile) {
  std::filesystem::create_directories(std::filesystem::path(cfg_.socket_path).parent_path());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, cfg_.socket_path.data(), cfg_.socket_path.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::close(fd);  // the file stays, nobody listens: what a crashed ferryd leaves
  ASSERT_TRUE(std::filesystem::exists(cfg_.socket_path));
  start();
  EXPECT_TRUE(connect().call("echo", "{}"));
}

TEST_F(ControlServer, AuthorizerSeesThePeerAndCanRefuseIt) {
  std::promise<control::peer> seen;
  authorizer_ = [&](const control::peer& p) -> std::optional<std::string> {
    seen.set_value(p);
    return "uid " + std::to_string(p.uid) + " is not in group ferry";
  };
  start();
  auto c = connect();
  auto r = c.call("echo", "{}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what, control::call_error::kind::rpc);
  EXPECT_EQ(r.error().code, proto::code::permission_denied);
  EXPECT_EQ(r.error().message, "permission denied: uid " + std::to_string(::geteuid()) + " is not in group ferry");
  auto f = seen.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  const auto p = f.get();
  EXPECT_EQ(p.uid, ::geteuid());
  EXPECT_EQ(p.gid, ::getegid());
  EXPECT_EQ(p.pid, ::getpid());
  EXPECT_EQ(server_->stats().refused, 1u);
}

TEST(ControlAuthorizer, DefaultAllowsRootAndOwnUidOnly) {
  auto a = control::default_authorizer();
  EXPECT_FALSE(a(control::peer{1, 0, 0}));
  EXPECT_FALSE(a(control::peer{1, ::geteuid(), 0}));
  const uid_t other = ::geteuid() == 4242 ? 4343 : 4242;
  auto refused = a(control::peer{1, other, 0});
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->find(std::to_string(other)), std::string::npos);
}

TEST_F(ControlServer, TooManyConnectionsAreToldToRetry) {
  cfg_.max_connections = 2;
  start();
  raw_client a(cfg_.socket_path), b(cfg_.socket_path);
  for (auto* rc : {&a, &b}) {
    ASSERT_TRUE(rc->send(request(1, "echo")));
    ASSERT_TRUE(rc->read_line());
  }
  auto c = connect();
  auto r = c.call("echo", "{}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, proto::code::unavailable);
}

TEST_F(ControlServer, StopClosesIdleConnectionsAndRemovesTheSocket) {
  start();
  raw_client rc(cfg_.socket_path);
  ASSERT_TRUE(rc.send(request(1, "echo")));
  ASSERT_TRUE(rc.read_line());
  server_->stop();
  EXPECT_TRUE(rc.closed_within(2s));
  EXPECT_TRUE(server_->wait_stopped_for(2s));
  EXPECT_FALSE(std::filesystem::exists(cfg_.socket_path));
  auto c = control::client::connect(cfg_.socket_path);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().what, control::call_error::kind::unreachable);
}

TEST_F(ControlServer, StopRemovesTheSocketFileAtOnce) {
  start();
  ASSERT_TRUE(std::filesystem::exists(cfg_.socket_path));
  server_->stop();  // ferryd may stop its io_context right after: the file must be gone already
  EXPECT_FALSE(std::filesystem::exists(cfg_.socket_path));
}

TEST_F(ControlServer, StopLetsTheRequestInFlightFinish) {
  start();
  auto c = connect();
  auto pending = std::async(std::launch::async, [&] { return c.call("sleep", R"({"ms":300})"); });
  ASSERT_TRUE(eventually([&] { return sleeping_.load() == 1; }));
  server_->stop();
  auto r = pending.get();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, R"({"slept":300})");
  EXPECT_TRUE(server_->wait_stopped_for(2s));
}

TEST_F(ControlServer, StopCutsOffAHandlerAfterTheGracePeriod) {
  cfg_.stop_grace = 200ms;
  start();
  auto c = connect();
  auto pending = std::async(std::launch::async, [&] { return c.call("hang", "{}"); });
  ASSERT_TRUE(eventually([&] { return sleeping_.load() == 1; }));
  const auto t0 = clock_type::now();
  server_->stop();
  EXPECT_TRUE(server_->wait_stopped_for(3s));
  EXPECT_LT(clock_type::now() - t0, 2s);
  auto r = pending.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what, control::call_error::kind::transport);
}

TEST_F(ControlServer, AsyncWaitStoppedCompletesAfterStop) {
  start();
  std::promise<void> done;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        co_await server_->async_wait_stopped();
        done.set_value();
      },
      asio::detached);
  auto f = done.get_future();
  EXPECT_EQ(f.wait_for(100ms), std::future_status::timeout);
  server_->stop();
  EXPECT_EQ(f.wait_for(5s), std::future_status::ready);
}

TEST(ControlClient, ConnectErrorNamesThePathAndTheFix) {
  ferry::test::temp_dir dir("ferry-ctl");
  const std::string path = (dir / "nope.sock").string();
  auto c = control::client::connect(path);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().what, control::call_error::kind::unreachable);
  EXPECT_EQ(c.error().message, "cannot reach ferryd at " + path +
                                   ": No such file or directory — is ferryd running? (--socket/FERRY_SOCKET)");
}

TEST_F(ControlServer, ClientCallTimesOutAndThenFailsFast) {
  start();
  control::client_options o;
  o.call_timeout = 300ms;
  auto c = connect(o);
  const auto t0 = clock_type::now();
  auto r = c.call("hang", "{}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what, control::call_error::kind::transport);
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_LT(clock_type::now() - t0, 3s);
  auto again = c.call("echo", "{}");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().what, control::call_error::kind::transport);
}

TEST_F(ControlServer, ClientReportsAServerThatWentAway) {
  start();
  auto c = connect();
  ASSERT_TRUE(c.call("echo", "{}"));
  server_->stop();
  ASSERT_TRUE(server_->wait_stopped_for(2s));
  auto r = c.call("echo", "{}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().what, control::call_error::kind::transport);
  EXPECT_NE(r.error().message.find("lost connection to ferryd"), std::string::npos) << r.error().message;
}

}  // namespace
