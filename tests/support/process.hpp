#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry::test {

// What to start: argv[0] is looked up in PATH unless it contains a '/'. The child inherits this process's
// environment minus env_unset plus env_set, stdin from /dev/null, and stdout/stderr to the given files
// (truncated; empty path: /dev/null; the same path for both: one shared file). Every member has a default,
// so designated initializers may name only what they set.
struct process_options {
  std::vector<std::string> argv{};
  std::vector<std::pair<std::string, std::string>> env_set{};
  std::vector<std::string> env_unset{};
  std::filesystem::path stdout_path{};
  std::filesystem::path stderr_path{};
  std::filesystem::path cwd{};  // empty: this process's
};

// The result of run(): exit status as in process::wait_for (-1 when it timed out and was killed).
struct run_result {
  int exit_code = -1;
  bool timed_out = false;
  std::string out;  // stdout, at most 64 MiB
  std::string err;  // stderr, at most 64 MiB
};

// A child process in its own process group, killed (the whole group) when this object dies. The child also
// gets SIGKILL if the thread that spawned it exits (PR_SET_PDEATHSIG), so a crashed test leaves no servers
// behind: spawn long-lived children from the test's main thread.
class process {
 public:
  // Throws std::system_error if the program cannot be started (not found, not executable, ...).
  explicit process(const process_options& options);
  process(process&& other) noexcept;
  process& operator=(process&& other) noexcept;
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  ~process();

  pid_t pid() const { return pid_; }
  // True until the child has exited (reaps it when it has).
  bool running();
  // The exit status once the child exits within `timeout`: its exit code, or 128 + signal number as shells
  // report it; nullopt if it is still running.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  // Sends `sig` to the child's process group.
  void signal(int sig);
  // SIGTERM, up to `grace` for the child to exit, then SIGKILL; returns the exit status (see wait_for).
  int kill(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  process(const process_options& options, int stdout_fd, int stderr_fd);
  friend run_result run(const process_options&, std::chrono::milliseconds);

  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Runs a command to completion, capturing its stdout and stderr (options' paths are ignored). After
// `timeout` it is killed and timed_out is set. Throws std::system_error if it cannot be started.
run_result run(const process_options& options, std::chrono::milliseconds timeout);

}  // namespace ferry::test
