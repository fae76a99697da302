// A hostile or broken client on ferryd's control socket: 10,000 malformed lines of mixed kinds each
// get a JSON-RPC error, and ferryd keeps serving everyone else meanwhile and afterwards; an
// oversized line gets its error and only its own connection is closed.
#include "proto/messages.hpp"
#include "support/ferryd.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

namespace ferry::test {
namespace {

// A blocking line-oriented connection to the control socket, every read bounded by 20 s.
class raw_connection {
 public:
  explicit raw_connection(const std::filesystem::path& socket) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, socket.c_str(), sizeof a.sun_path - 1);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("connect: " + std::string(std::strerror(errno)));
    timeval tv{20, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~raw_connection() { ::close(fd_); }
  bool send(const std::string& bytes) {
    std::size_t at = 0;
    while (at < bytes.size()) {
      const auto n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return false;
      at += static_cast<std::size_t>(n);
    }
    return true;
  }
  // The next line, without '\n'; nullopt on EOF, error or timeout.
  std::optional<std::string> line() {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        auto l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      char chunk[65536];
      const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

// Line i of the hostile stream, and the JSON-RPC error code it must get.
std::pair<std::string, int> hostile_line(int i) {
  const std::string id = std::to_string(i);
  switch (i % 10) {
    case 0:
      return {"{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"method\":\"job.get\"", -32700};  // cut short
    case 1:
      return {"{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"method\":\"no.such.method\"}", -32601};
    case 2:
      return {"{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"method\":\"job.get\",\"params\":{\"id\":42}}", -32602};
    case 3:
      return {"[{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"method\":\"job.list\"}]", -32600};  // a batch
    case 4:
      return {std::string(40, '[') + std::string(40, ']'), -32700};  // nested too deep
    case 5:
      return {"{\"jsonrpc\":\"1.0\",\"id\":" + id + ",\"method\":\"job.list\"}", -32600};
    case 6:
      return {"\xff\xfe{\"jsonrpc\":\"2.0\",\"id\":" + id + "}", -32700};  // not UTF-8
    case 7:
      return {"{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"method\":\"job.create\",\"params\":{\"kind\":\"copy\"}}",
              -32602};
    case 8:
      return {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"job.list\"}", -32600};  // fractional id
    default:
      return {"{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"method\":\"job.get\",\"params\":{\"id\":\"j-999999\"}}",
              -32001};
  }
}

TEST(ControlHostile, TenThousandMalformedLinesEachGetAnErrorWhileOthersAreServed) {
  ferryd d("", "info");
  std::atomic<bool> done{false};
  std::atomic<int> served{0}, refused{0};
  // Another client keeps asking for the daemon's status all along.
  std::thread other([&] {
    while (!done.load()) {
      auto r = d.ctl({"--json", "status"}, std::chrono::seconds(30));
      (r.exit_code == 0 && proto::parse_daemon_status(r.out.substr(0, r.out.find('\n'))) ? served : refused)++;
    }
  });
  raw_connection c(d.socket());
  int wrong = 0;
  std::string first_wrong;
  for (int i = 0; i < 10'000; ++i) {
    const auto [text, code] = hostile_line(i);
    ASSERT_TRUE(c.send(text + "\n")) << "ferryd closed the connection at line " << i;
    auto reply = c.line();
    ASSERT_TRUE(reply) << "no answer to line " << i << ": " << text;
    if (reply->find("\"code\":" + std::to_string(code)) == std::string::npos) {
      if (wrong++ == 0) first_wrong = text + " -> " + *reply;
    }
  }
  done = true;
  other.join();
  EXPECT_EQ(wrong, 0) << first_wrong;
  EXPECT_GT(served.load(), 0);
  EXPECT_EQ(refused.load(), 0);
  // The same connection, and a new one, still work.
  ASSERT_TRUE(c.send("{\"jsonrpc\":\"2.0\",\"id\":\"last\",\"method\":\"daemon.status\"}\n"));
  auto last = c.line();
  ASSERT_TRUE(last);
  EXPECT_NE(last->find("\"result\""), std::string::npos) << *last;
  EXPECT_EQ(d.ctl({"status"}).exit_code, 0);
}

TEST(ControlHostile, AnOversizedLineGetsItsErrorAndOnlyThatConnectionCloses) {
  ferryd d("", "info");
  raw_connection big(d.socket());
  raw_connection bystander(d.socket());
  // 2 MiB without a newline, then one: over the 1 MiB limit.
  (void)big.send(std::string(2 << 20, 'x') + "\n");
  auto reply = big.line();
  ASSERT_TRUE(reply);
  EXPECT_NE(reply->find("-32600"), std::string::npos) << reply->substr(0, 200);
  EXPECT_FALSE(big.line()) << "the connection should be closed: framing is lost";
  ASSERT_TRUE(bystander.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"job.list\"}\n"));
  auto ok = bystander.line();
  ASSERT_TRUE(ok);
  EXPECT_NE(ok->find("\"result\""), std::string::npos) << *ok;
}

}  // namespace
}  // namespace ferry::test
