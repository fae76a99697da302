#include "support/s3rver.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "support/test_ca.hpp"

#ifndef FERRY_SOURCE_DIR
#error "FERRY_SOURCE_DIR must be defined (tests/CMakeLists.txt does)"
#endif

namespace ferry::test {
namespace {

constexpr std::string_view listening_marker = "S3rver listening on 127.0.0.1:";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string tail(const std::string& text, std::size_t max_chars = 4000) {
  return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

// The port from "S3rver listening on 127.0.0.1:PORT", once s3rver has printed it.
std::optional<std::uint16_t> listening_port(const std::string& log) {
  std::size_t at = log.find(listening_marker);
  if (at == std::string::npos) return std::nullopt;
  const char* first = log.data() + at + listening_marker.size();
  const char* last = log.data() + log.size();
  unsigned value = 0;
  auto [end, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || end == first || end == last || (*end != '\n' && *end != '\r') || value == 0 ||
      value > 65535) {
    return std::nullopt;  // not complete yet
  }
  return static_cast<std::uint16_t>(value);
}

bool accepts_connections(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string program_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    auto candidate = std::filesystem::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return {};
}

}  // namespace

std::filesystem::path s3rver::node_modules() { return std::filesystem::path(FERRY_SOURCE_DIR) / "tests/node_modules"; }

s3rver::s3rver(s3rver_options options) : options_(std::move(options)), dir_("ferry-s3rver") {
  const auto s3rver_js = node_modules() / "s3rver/bin/s3rver.js";
  if (!std::filesystem::exists(s3rver_js)) {
    throw std::runtime_error("s3rver is not installed (" + s3rver_js.string() +
                             " is missing): run scripts/setup-deps.sh");
  }
  if (program_on_path("node").empty()) {
    throw std::runtime_error("node is not on PATH, so s3rver cannot run: run scripts/setup-deps.sh");
  }
  data_dir_ = dir_ / "data";
  log_file_ = dir_ / "s3rver.log";
  rclone_config_ = dir_ / "rclone.conf";
  std::filesystem::create_directories(data_dir_);
  if (options_.tls) {
    test_ca_files files = make_test_ca(dir_ / "tls");
    ca_file_ = files.ca_cert;
    cert_file_ = files.server_cert;
    key_file_ = files.server_key;
  }
  start(0);
}

s3rver::~s3rver() { stop(); }

void s3rver::start(std::uint16_t port) {
  process_options o;
  o.argv = {"node"};
  if (options_.strict) {
    o.argv.push_back(std::string(FERRY_SOURCE_DIR) + "/tests/support/s3rver_strict.js");
    o.argv.insert(o.argv.end(),
                  {"--region", options_.region, "--min-part-size", std::to_string(options_.min_part_size)});
    for (const auto& [id, secret] : options_.extra_keys)
      o.argv.insert(o.argv.end(), {"--extra-key", id + ":" + secret});
  } else {
    o.argv.push_back((node_modules() / "s3rver/bin/s3rver.js").string());
  }
  o.argv.insert(o.argv.end(), {"-d", data_dir_.string(), "-a", "127.0.0.1", "-p", std::to_string(port)});
  if (!options_.log_requests) o.argv.push_back("-s");
  if (options_.tls) o.argv.insert(o.argv.end(), {"--key", key_file_.string(), "--cert", cert_file_.string()});
  o.stdout_path = log_file_;
  o.stderr_path = log_file_;

  // A restart on a port just released can find it briefly taken: retry until the start timeout.
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  for (;;) {
    child_.emplace(o);
    std::optional<std::uint16_t> found;
    while (!found && std::chrono::steady_clock::now() < deadline) {
      found = listening_port(read_file(log_file_));
      if (found || !child_->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (found) {
      port_ = *found;
      break;
    }
    const std::string log = read_file(log_file_);
    const bool exited = !child_->running();
    child_->kill(std::chrono::seconds(1));
    child_.reset();
    if (port != 0 && exited && log.find("EADDRINUSE") != std::string::npos &&
        std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    throw std::runtime_error(std::string("s3rver ") + (exited ? "exited at start" : "did not start in time") +
                             "; its log (" + log_file_.string() + "):\n" + tail(log));
  }
  // It prints the line once listening; a connect proves it from the outside, within the same deadline.
  while (!accepts_connections(port_)) {
    if (std::chrono::steady_clock::now() >= deadline || !child_->running()) {
      throw std::runtime_error("s3rver reported port " + std::to_string(port_) +
                               " but does not accept connections; its log:\n" + tail(read_file(log_file_)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  endpoint_ = (options_.tls ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(port_);
  std::ofstream conf(rclone_config_, std::ios::trunc);
  conf << "[s3rver]\n"
       << "type = s3\n"
       << "provider = Other\n"
       << "access_key_id = " << access_key_id << "\n"
       << "secret_access_key = " << secret_access_key << "\n"
       << "endpoint = " << endpoint_ << "\n"
       << "region = " << options_.region << "\n"
       << "force_path_style = true\n";
  conf.close();
  if (!conf) throw std::runtime_error("cannot write " + rclone_config_.string());
}

void s3rver::stop() {
  if (child_) {
    child_->kill(std::chrono::seconds(5));
    child_.reset();
  }
}

void s3rver::restart() {
  stop();
  start(port_);
}

bool s3rver::running() { return child_ && child_->running(); }

std::string s3rver::read_log() const { return read_file(log_file_); }

run_result s3rver::rclone(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const {
  process_options o;
  o.argv = {"rclone", "--config", rclone_config_.string(), "--retries", "1", "--low-level-retries", "1"};
  if (!ca_file_.empty()) o.argv.insert(o.argv.end(), {"--ca-cert", ca_file_.string()});
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  // rclone's S3 SDK refuses to start when AWS_CA_BUNDLE is set with its custom transport; RCLONE_* from the
  // caller's environment must not change what the test asked for.
  o.env_unset = {"AWS_CA_BUNDLE", "RCLONE_CONFIG", "RCLONE_CA_CERT"};
  try {
    return run(o, timeout);
  } catch (const std::system_error& e) {
    throw std::runtime_error(std::string(e.what()) + " (is rclone installed? run scripts/setup-deps.sh)");
  }
}

}  // namespace ferry::test
