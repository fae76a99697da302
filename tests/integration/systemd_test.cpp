// ferryd under systemd: the notify protocol seen from a NOTIFY_SOCKET we own (READY=1 only once the
// control socket listens, WATCHDOG=1 from the event loop, STATUS=), and the shipped unit checked by
// systemd-analyze (verify, and a security exposure of 2.5 or lower).
#include "support/ferryd.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

namespace ferry::test {
namespace {

using namespace std::chrono_literals;

// A datagram socket standing in for systemd's notify socket.
class notify_socket {
 public:
  explicit notify_socket(const std::filesystem::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("bind " + path.string() + ": " + std::strerror(errno));
  }
  ~notify_socket() { ::close(fd_); }
  // The next datagram, or "" when none comes within `wait`.
  std::string receive(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return {};
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

TEST(Systemd, ReadyOnlyOnceTheSocketListensThenWatchdogAndStatusFromTheLoop) {
  temp_dir dir;
  const auto control = dir.path() / "run" / "ferryd.sock";
  const auto config = dir.path() / "ferryd.toml";
  std::ofstream(config) << "socket = \"" << control.string() << "\"\nstate_dir = \"" << (dir.path() / "state").string()
                        << "\"\nlog_level = \"info\"\n";
  notify_socket notify(dir.path() / "notify");
  process d(
      process_options{.argv = {ferryd_path(), "--config", config.string()},
                      .env_set = {{"NOTIFY_SOCKET", (dir.path() / "notify").string()}, {"WATCHDOG_USEC", "200000"}},
                      .env_unset = {"JOURNAL_STREAM", "WATCHDOG_PID"},
                      .stdout_path = dir.path() / "ferryd.log",
                      .stderr_path = dir.path() / "ferryd.log"});
  bool ready = false, listening_when_ready = false, status = false;
  int watchdogs = 0;
  std::string seen;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while ((!ready || watchdogs < 2 || !status) && std::chrono::steady_clock::now() < deadline) {
    const auto msg = notify.receive(500ms);
    if (msg.empty()) continue;
    seen += msg + "\n";
    if (msg.find("READY=1") != std::string::npos) {
      ready = true;
      listening_when_ready = std::filesystem::exists(control);
    }
    // Pings only count after READY=1: systemd expects them from then on.
    if (ready && msg.find("WATCHDOG=1") != std::string::npos) ++watchdogs;
    if (msg.find("STATUS=") != std::string::npos) status = msg.find("job(s) running") != std::string::npos;
  }
  EXPECT_TRUE(ready) << seen;
  EXPECT_TRUE(listening_when_ready) << "READY=1 came before the control socket existed";
  EXPECT_GE(watchdogs, 2) << seen;
  EXPECT_TRUE(status) << seen;

  d.signal(SIGTERM);
  EXPECT_EQ(d.wait_for(30s), 0);
  bool stopping = false;
  for (std::string msg; !(msg = notify.receive(200ms)).empty();)
    stopping = stopping || msg.find("STOPPING=1") != std::string::npos;
  EXPECT_TRUE(stopping);
}

// The unit as shipped, with ExecStart pointing at the binary just built (verify checks it exists).
std::filesystem::path unit_under_test(const temp_dir& dir) {
  std::ifstream in(std::string(FERRY_SOURCE_DIR) + "/systemd/ferryd.service");
  std::stringstream text;
  text << in.rdbuf();
  const auto unit = std::regex_replace(text.str(), std::regex("/usr/bin/ferryd"), ferryd_path());
  auto path = dir.path() / "ferryd.service";
  std::ofstream(path) << unit;
  return path;
}

TEST(Systemd, TheUnitVerifies) {
  temp_dir dir;
  auto r = run(process_options{.argv = {"systemd-analyze", "verify", unit_under_test(dir).string()}}, 60s);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("ferryd.service"), std::string::npos) << r.err;
}

TEST(Systemd, TheUnitsSecurityExposureIsAtMost2_5) {
  temp_dir dir;
  auto r = run(
      process_options{.argv = {"systemd-analyze", "security", "--offline=true", unit_under_test(dir).string()}}, 60s);
  std::smatch m;
  const std::string out = r.out + r.err;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("Overall exposure level for ferryd.service: ([0-9.]+)"))) << out;
  EXPECT_LE(std::stod(m[1].str()), 2.5) << out;
}

}  // namespace
}  // namespace ferry::test
