#include "support/process.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace ferry::test {
namespace {

constexpr std::size_t max_captured_output = 64 * 1024 * 1024;

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// Closes on scope exit; -1 means nothing to close.
struct fd_guard {
  int fd = -1;
  explicit fd_guard(int f = -1) : fd(f) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The PATH lookup happens here, not in the child: execvpe may allocate, which is unsafe after fork in a
// multi-threaded process.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path_env = std::getenv("PATH");
  std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    start = end + 1;
  }
  throw_errno(ENOENT, "cannot start '" + name + "': not found in PATH");
}

std::vector<std::string> child_environment(const process_options& o) {
  std::set<std::string, std::less<>> drop(o.env_unset.begin(), o.env_unset.end());
  for (const auto& [name, value] : o.env_set) drop.insert(name);
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    if (drop.find(name) == drop.end()) env.emplace_back(entry);
  }
  for (const auto& [name, value] : o.env_set) env.push_back(name + "=" + value);
  return env;
}

int open_output(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno(errno, "cannot open " + path.string());
  return fd;
}

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

std::string read_all(int fd) {
  std::string data;
  if (::lseek(fd, 0, SEEK_SET) < 0) return data;
  char buf[65536];
  while (data.size() < max_captured_output) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, max_captured_output - data.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  return data;
}

}  // namespace

process::process(const process_options& options) : process(options, -1, -1) {}

process::process(const process_options& o, int stdout_fd, int stderr_fd) {
  if (o.argv.empty()) throw std::invalid_argument("process: argv is empty");

  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  const std::string program = resolve_program(o.argv[0]);
  std::vector<std::string> env = child_environment(o);
  std::vector<char*> argv_p;
  for (const auto& a : o.argv) argv_p.push_back(const_cast<char*>(a.c_str()));
  argv_p.push_back(nullptr);
  std::vector<char*> env_p;
  for (auto& e : env) env_p.push_back(e.data());
  env_p.push_back(nullptr);
  const std::string cwd = o.cwd.string();

  fd_guard dev_null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (dev_null.fd < 0) throw_errno(errno, "cannot open /dev/null");
  fd_guard out_file, err_file;
  int out = stdout_fd, err = stderr_fd;
  if (out < 0) {
    if (o.stdout_path.empty()) {
      out = dev_null.fd;
    } else {
      out_file.fd = open_output(o.stdout_path);
      out = out_file.fd;
    }
  }
  if (err < 0) {
    if (o.stderr_path.empty()) {
      err = dev_null.fd;
    } else if (o.stderr_path == o.stdout_path) {
      err = out;
    } else {
      err_file.fd = open_output(o.stderr_path);
      err = err_file.fd;
    }
  }

  // The child reports a failed exec through this pipe; a successful exec closes it (O_CLOEXEC) unwritten.
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
  fd_guard exec_read(exec_pipe[0]);
  fd_guard exec_write(exec_pipe[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno(errno, "fork");
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    // Descriptors the test opened without O_CLOEXEC (Asio's sockets, for one) must not outlive exec here:
    // a server child holding a test's listening socket would keep its port open.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    int e = 0;
    if (::dup2(dev_null.fd, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) {
      e = errno;
    } else if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      e = errno;
    } else {
      ::execve(program.c_str(), argv_p.data(), env_p.data());
      e = errno;
    }
    [[maybe_unused]] ssize_t ignored = ::write(exec_write.fd, &e, sizeof e);
    ::_exit(127);
  }
  // Also set from the parent, so a signal sent right after the constructor reaches the new group.
  ::setpgid(pid, pid);
  ::close(exec_write.fd);
  exec_write.fd = -1;

  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_read.fd, &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    throw_errno(child_errno, "cannot start " + program);
  }
  pid_ = pid;
}

process::process(process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(std::exchange(other.status_, std::nullopt)) {}

process& process::operator=(process&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) kill();
    pid_ = std::exchange(other.pid_, -1);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

process::~process() {
  if (pid_ > 0 && !status_) kill();
}

bool process::running() { return !wait_for(std::chrono::milliseconds(0)).has_value(); }

std::optional<int> process::wait_for(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = decode_status(st);
      return status_;
    }
    if (r < 0 && errno != EINTR) {  // ECHILD: reaped elsewhere; nothing left to wait for
      status_ = -1;
      return status_;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::nullopt;
    // No child-exit notification to wait on without owning SIGCHLD, so poll with a short backoff.
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

void process::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(-pid_, sig);
}

int process::kill(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (status_) return *status_;
  signal(SIGTERM);
  if (auto st = wait_for(grace)) return *st;
  signal(SIGKILL);
  if (auto st = wait_for(std::chrono::seconds(30))) return *st;
  return -1;
}

run_result run(const process_options& options, std::chrono::milliseconds timeout) {
  fd_guard out(::memfd_create("ferry-run-stdout", MFD_CLOEXEC));
  fd_guard err(::memfd_create("ferry-run-stderr", MFD_CLOEXEC));
  if (out.fd < 0 || err.fd < 0) throw_errno(errno, "memfd_create");
  run_result result;
  {
    process p(options, out.fd, err.fd);
    if (auto st = p.wait_for(timeout)) {
      result.exit_code = *st;
    } else {
      result.timed_out = true;
      p.kill(std::chrono::seconds(1));
    }
  }
  result.out = read_all(out.fd);
  result.err = read_all(err.fd);
  return result;
}

}  // namespace ferry::test
