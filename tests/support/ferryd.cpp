#include "support/ferryd.hpp"

#include <csignal>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace ferry::test {

std::string ferryd_path() { return std::string(FERRY_BINARY_DIR) + "/daemon/ferryd"; }
std::string ferryctl_path() { return std::string(FERRY_BINARY_DIR) + "/daemon/ferryctl"; }

std::string remote_section(const std::string& name, const s3rver& server, bool with_ca,
                           const std::string& access_key_id, const std::string& secret) {
  std::ostringstream s;
  s << "[remotes." << name << "]\n"
    << "endpoint = \"" << server.endpoint() << "\"\n"
    << "region = \"" << server.region() << "\"\n"
    << "path_style = true\n"
    << "access_key_id = \"" << access_key_id << "\"\n"
    << "secret_access_key = \"" << secret << "\"\n";
  if (with_ca && !server.ca_file().empty()) s << "ca_file = \"" << server.ca_file().string() << "\"\n";
  return s.str();
}

namespace {

process start(const std::filesystem::path& config, const std::filesystem::path& log) {
  // The tests' own environment may carry AWS_CA_BUNDLE; each remote names its CA instead.
  return process(process_options{.argv = {ferryd_path(), "--config", config.string()},
                                 .env_unset = {"AWS_CA_BUNDLE", "JOURNAL_STREAM"},
                                 .stdout_path = log,
                                 .stderr_path = log});
}

std::filesystem::path write_config(const temp_dir& dir, const std::string& remotes, const std::string& log_level,
                                   const std::string& extra_config) {
  auto path = dir.path() / "ferryd.toml";
  // Top-level keys of extra_config (before its first section) must precede every section.
  std::string top, sections = extra_config;
  if (!extra_config.starts_with("[")) {
    const auto at = extra_config.find("\n[");
    top = at == std::string::npos ? extra_config : extra_config.substr(0, at + 1);
    sections = at == std::string::npos ? std::string() : extra_config.substr(at + 1);
  }
  std::ofstream out(path);
  out << top << (top.empty() || top.back() == '\n' ? "" : "\n") << "socket = \""
      << (dir.path() / "run" / "ferryd.sock").string() << "\"\n"
      << "state_dir = \"" << (dir.path() / "state").string() << "\"\n"
      << "log_level = \"" << log_level << "\"\n"
      << "threads = 2\n"
      << "[retry]\nmax_attempts = 3\n\n"
      << sections << (sections.empty() || sections.back() == '\n' ? "" : "\n") << remotes;
  return path;
}

}  // namespace

ferryd::ferryd(const std::string& remotes, const std::string& log_level, const std::string& extra_config)
    : socket_(dir_.path() / "run" / "ferryd.sock"),
      config_(write_config(dir_, remotes, log_level, extra_config)),
      log_(dir_.path() / "ferryd.log"),
      proc_(start(config_, log_)) {
  wait_for_socket();
}

void ferryd::wait_for_socket() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!std::filesystem::exists(socket_)) {
    if (!proc_.running()) throw std::runtime_error("ferryd exited at start:\n" + read_log());
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("ferryd did not create its socket within 20 s:\n" + read_log());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void ferryd::kill9() {
  proc_.signal(SIGKILL);
  (void)proc_.wait_for(std::chrono::seconds(20));
}

void ferryd::restart() {
  (void)proc_.kill(std::chrono::seconds(20));
  std::error_code ec;
  std::filesystem::rename(log_, log_.string() + "." + std::to_string(runs_++), ec);
  // The socket a killed ferryd left: gone, so that waiting for it waits for the new one.
  std::filesystem::remove(socket_, ec);
  proc_ = start(config_, log_);
  wait_for_socket();
}

ferryd::~ferryd() { proc_.kill(std::chrono::seconds(5)); }

std::string ferryd::read_log() const {
  std::ifstream in(log_);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

run_result ferryd::ctl(std::vector<std::string> args, std::chrono::seconds timeout) const {
  process_options o;
  o.argv = {ferryctl_path(), "--socket", socket_.string()};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  return run(o, timeout);
}

int ferryd::stop() { return proc_.kill(std::chrono::seconds(20)); }

}  // namespace ferry::test
