#pragma once
// A real ferryd for end-to-end tests: writes its config into a temp dir, starts the binary, waits
// (bounded) for the control socket, and runs ferryctl against it. Killed on destruction.
#include "support/process.hpp"
#include "support/s3rver.hpp"
#include "support/temp_dir.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace ferry::test {

// The built binaries (FERRY_BINARY_DIR/daemon/...).
std::string ferryd_path();
std::string ferryctl_path();

// One [remotes.NAME] section for an s3rver, with its CA when it speaks TLS (unless with_ca is false).
std::string remote_section(const std::string& name, const s3rver& server, bool with_ca = true,
                           const std::string& access_key_id = std::string(s3rver::access_key_id),
                           const std::string& secret = std::string(s3rver::secret_access_key));

class ferryd {
 public:
  // `remotes` is TOML text ([remotes.*] sections); socket and state_dir are filled in. `extra_config` is more
  // TOML text: top-level keys first if any (e.g. "control_group = \"x\"\n"), then whole sections other than
  // [retry] (e.g. "[transfer]\nmultipart_threshold = \"8MiB\"\n"), written before the remotes.
  explicit ferryd(const std::string& remotes, const std::string& log_level = "debug",
                  const std::string& extra_config = "");
  ~ferryd();

  const std::filesystem::path& socket() const { return socket_; }
  const std::filesystem::path& config_file() const { return config_; }
  std::string read_log() const;
  // ferryctl --socket SOCKET args...; bounded by `timeout`.
  run_result ctl(std::vector<std::string> args, std::chrono::seconds timeout = std::chrono::seconds(120)) const;
  // SIGTERM and the exit status.
  int stop();
  // SIGKILL, as a crash: nothing is flushed or cleaned up; the socket file stays behind.
  void kill9();
  // Starts ferryd again with the same config and state directory (after kill9 or stop) and waits,
  // bounded, for its socket. The earlier run's log moves to ferryd.log.N.
  void restart();
  pid_t pid() const { return proc_.pid(); }

 private:
  void wait_for_socket();

  temp_dir dir_;
  std::filesystem::path socket_, config_, log_;
  process proc_;
  int runs_ = 1;
};

}  // namespace ferry::test
