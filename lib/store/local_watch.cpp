#include "store/local_watch.hpp"

#include "store/local_endpoint.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace ferry::store {

namespace {

namespace fs = std::filesystem;
using namespace asio::experimental::awaitable_operators;

// What counts as a change. IN_MODIFY is left out on purpose: a large write would wake us for
// every chunk; IN_CLOSE_WRITE says the same once. IN_EXCL_UNLINK: nothing from unlinked files.
constexpr std::uint32_t change_events =
    IN_CREATE | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
constexpr std::uint32_t subdir_mask = change_events | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK;
// The root itself may be a symlink to the directory the user named.
constexpr std::uint32_t root_mask = change_events | IN_ONLYDIR | IN_EXCL_UNLINK;
// Our own bound on watched directories, below any sane max_user_watches; memory stays bounded.
constexpr std::size_t max_watches = 1 << 20;
// One read() of events; room for many events of the longest name (NAME_MAX + 1).
constexpr std::size_t event_buffer_bytes = 64 * 1024;
// read()s per wake-up, so a flood of events cannot hold the io thread.
constexpr int max_reads_per_drain = 16;

error make_error(std::string code, std::string message, unsigned status = 0) {
  auto e = s3::local_error(std::move(code), std::move(message));
  e.http_status = status;
  e.retryable = false;
  return e;
}

std::string proc_value(const char* path) {
  std::ifstream in(path);
  std::string v;
  if (!(in >> v)) return "?";
  return v;
}

error limit_error(std::string_view what) {
  return make_error("WatchLimit", std::string(what) + ": the inotify watch limit is reached (" +
                                      "/proc/sys/fs/inotify/max_user_watches = " +
                                      proc_value("/proc/sys/fs/inotify/max_user_watches") + "; raise it)");
}

class unique_fd {
 public:
  explicit unique_fd(int fd) : fd_(fd) {}
  ~unique_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

struct local_watcher::impl {
  impl(asio::any_io_executor ex, fs::path r) : sd(std::move(ex)), root(std::move(r)) {}

  asio::posix::stream_descriptor sd;
  fs::path root;
  std::unordered_map<int, std::string> path_of;  // watch -> directory relative to root ("" is root)
  std::map<std::string, int> wd_of;              // the reverse, ordered: a subtree is one range
  bool pending = false;                          // a change seen but not reported yet
  bool root_lost = false;                        // root deleted or moved: watched again once it is back
  bool closed = false;
  std::optional<error> failed;  // the tree can no longer be watched whole
  alignas(inotify_event) std::array<char, event_buffer_bytes> buf{};

  fs::path full(const std::string& rel) const { return rel.empty() ? root : root / rel; }

  void bind(int wd, const std::string& rel) {
    if (auto it = path_of.find(wd); it != path_of.end() && it->second != rel) {
      // The same directory under a new name (a move we did not see, or a rescan).
      if (auto old = wd_of.find(it->second); old != wd_of.end() && old->second == wd) wd_of.erase(old);
    }
    path_of[wd] = rel;
    wd_of[rel] = wd;
  }

  // Watches one directory: its watch, nullopt if it is gone or no directory (a race, a symlink).
  result<std::optional<int>> watch_one(const std::string& rel) {
    if (path_of.size() >= max_watches)
      return make_error("WatchLimit",
                        "watching " + root.string() + ": more than " + std::to_string(max_watches) + " directories");
    const auto path = full(rel);
    const int wd = ::inotify_add_watch(sd.native_handle(), path.c_str(), rel.empty() ? root_mask : subdir_mask);
    if (wd >= 0) {
      bind(wd, rel);
      return std::optional<int>(wd);
    }
    const int err = errno;
    switch (err) {
      case ENOENT:
      case ENOTDIR:
      case ELOOP:
        if (rel.empty()) return make_error("RootNotFound", "directory " + root.string() + " does not exist", 404);
        return std::optional<int>();
      case EACCES:
        if (rel.empty()) return make_error("AccessDenied", "watching " + root.string() + ": permission denied", 403);
        spdlog::debug("store: cannot watch {}: permission denied", path.string());
        return std::optional<int>();
      case ENOSPC:
        return limit_error("watching " + path.string());
      default:
        return make_error("LocalIOError", "watching " + path.string() + ": " + std::generic_category().message(err));
    }
  }

  // Watches `rel` and every directory under it. Each directory is watched before it is read, so a
  // subdirectory made meanwhile is seen by one or the other. `seen`, when given, collects the watches.
  result<void> watch_tree(const std::string& rel, std::unordered_set<int>* seen = nullptr) {
    std::vector<std::string> todo{rel};
    while (!todo.empty()) {
      const std::string dir = std::move(todo.back());
      todo.pop_back();
      auto wd = watch_one(dir);
      if (!wd) return wd.error();
      if (!*wd) continue;
      if (seen != nullptr) seen->insert(**wd);
      const int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (dir.empty() ? 0 : O_NOFOLLOW);
      unique_fd fd(::open(full(dir).c_str(), flags));
      if (fd.get() < 0) continue;  // gone or replaced since it was watched: its events say so
      DIR* d = ::fdopendir(fd.get());
      if (d == nullptr) continue;
      fd.release();
      std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
      for (;;) {
        errno = 0;
        const dirent* de = ::readdir(d);
        if (de == nullptr) break;  // an error mid-directory leaves the rest to the events
        const std::string_view name(de->d_name);
        if (name == "." || name == "..") continue;
        bool is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
          struct stat st {};
          is_dir = ::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        if (is_dir) todo.push_back(dir.empty() ? std::string(name) : dir + "/" + std::string(name));
      }
    }
    return {};
  }

  // Stops watching `rel` and everything under it (moved away: its watches would report from
  // wherever it went).
  void forget(const std::string& rel) {
    auto first = wd_of.lower_bound(rel);
    auto last = first;
    const std::string below = rel.empty() ? std::string() : rel + "/";
    while (last != wd_of.end() && (last->first == rel || last->first.starts_with(below))) {
      ::inotify_rm_watch(sd.native_handle(), last->second);  // EINVAL: the kernel dropped it already
      path_of.erase(last->second);
      ++last;
    }
    wd_of.erase(first, last);
  }

  // After an overflow: events were lost, directories made meanwhile may be unwatched and watches of
  // directories gone may be stale. Walks the whole tree again.
  result<void> rescan() {
    std::unordered_set<int> seen;
    auto walked = watch_tree("", &seen);
    if (!walked && walked.error().code == "RootNotFound") {
      lose_root();
      return {};
    }
    if (!walked) return walked;
    std::vector<int> stale;
    for (const auto& [wd, rel] : path_of)
      if (!seen.contains(wd)) stale.push_back(wd);
    for (const int wd : stale) {
      ::inotify_rm_watch(sd.native_handle(), wd);
      if (auto w = wd_of.find(path_of[wd]); w != wd_of.end() && w->second == wd) wd_of.erase(w);
      path_of.erase(wd);
    }
    return {};
  }

  void lose_root() {
    forget("");
    path_of.clear();
    wd_of.clear();
    root_lost = true;
    pending = true;
  }

  // The root was deleted or moved: watches it again once a directory is back under its name.
  result<void> try_restore() {
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return {};
    auto walked = watch_tree("");
    if (!walked) {
      if (walked.error().code == "RootNotFound") return {};  // gone again
      return walked;
    }
    root_lost = false;
    pending = true;  // a new directory under the old name
    return {};
  }

  result<void> handle(const inotify_event& ev, std::string_view name) {
    if (ev.mask & IN_Q_OVERFLOW) {
      pending = true;
      spdlog::debug("store: inotify queue overflow under {}: walking it again", root.string());
      return rescan();
    }
    const auto it = path_of.find(ev.wd);
    if (it == path_of.end()) return {};  // a watch we dropped
    const std::string dir = it->second;  // copied: forget() may erase it
    if (ev.mask & IN_IGNORED) {
      path_of.erase(it);
      if (auto w = wd_of.find(dir); w != wd_of.end() && w->second == ev.wd) wd_of.erase(w);
      if (dir.empty()) lose_root();
      return {};
    }
    if (ev.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
      // A subdirectory's own removal or move was reported by its parent already.
      if (dir.empty()) lose_root();
      return {};
    }
    const bool is_dir = (ev.mask & IN_ISDIR) != 0;
    if (!is_dir && name.starts_with(temp_file_prefix)) return {};  // ferry's own write in progress
    pending = true;
    if (!is_dir || name.empty()) return {};
    const std::string child = dir.empty() ? std::string(name) : dir + "/" + std::string(name);
    if (ev.mask & IN_MOVED_FROM) forget(child);
    if (ev.mask & (IN_CREATE | IN_MOVED_TO)) return watch_tree(child);
    return {};
  }

  // Reads what the kernel has queued, up to a bound.
  result<void> drain() {
    for (int round = 0; round < max_reads_per_drain; ++round) {
      const auto n = ::read(sd.native_handle(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return {};
        return make_error("LocalIOError", "reading inotify events for " + root.string() + ": " +
                                              std::generic_category().message(errno));
      }
      const auto got = static_cast<std::size_t>(n);
      std::size_t off = 0;
      while (off + sizeof(inotify_event) <= got) {
        inotify_event ev{};
        std::memcpy(&ev, buf.data() + off, sizeof ev);
        const char* name = buf.data() + off + sizeof ev;
        if (off + sizeof ev + ev.len > got) break;  // the kernel writes whole events; never happens
        const auto handled = handle(ev, std::string_view(name, ::strnlen(name, ev.len)));
        if (!handled) return handled;
        off += sizeof ev + ev.len;
      }
    }
    return {};
  }
};

local_watcher::local_watcher(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

local_watcher::~local_watcher() { close(); }

result<std::unique_ptr<local_watcher>> local_watcher::start(asio::any_io_executor ex, std::filesystem::path root) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == EMFILE && proc_value("/proc/sys/fs/inotify/max_user_instances") != "?")
      return make_error("WatchLimit", "watching " + root.string() +
                                          ": the inotify instance limit is reached (/proc/sys/fs/inotify/"
                                          "max_user_instances = " +
                                          proc_value("/proc/sys/fs/inotify/max_user_instances") + "; raise it)");
    return make_error("LocalIOError", "inotify_init1: " + std::generic_category().message(err));
  }
  auto i = std::make_unique<impl>(std::move(ex), std::move(root));
  boost::system::error_code ec;
  i->sd.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return make_error("LocalIOError", "watching " + i->root.string() + ": " + ec.message());
  }
  auto walked = i->watch_tree("");
  if (!walked) return walked.error();
  spdlog::debug("store: watching {} directories under {}", i->path_of.size(), i->root.string());
  return std::unique_ptr<local_watcher>(new local_watcher(std::move(i)));
}

asio::awaitable<result<bool>> local_watcher::wait_change(std::chrono::milliseconds settle,
                                                         std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  auto& s = *impl_;
  const auto closed = [] { return make_error("Closed", "the watcher is closed"); };
  if (s.closed) co_return closed();
  if (s.failed) co_return *s.failed;
  if (s.root_lost) {
    if (auto back = s.try_restore(); !back) {
      s.failed = back.error();
      co_return back.error();
    }
  }
  const auto deadline = clock::now() + timeout;
  auto settled = clock::now() + settle;  // meaningful while a change is pending
  asio::steady_timer timer(s.sd.get_executor());
  for (;;) {
    timer.expires_at(s.pending ? settled : deadline);
    const auto tok = asio::as_tuple(asio::use_awaitable);
    // Named first: GCC 12 mishandles temporaries passed to a coroutine (operator||) inside co_await.
    auto readable = s.sd.async_wait(asio::posix::descriptor_base::wait_read, tok);
    auto expired = timer.async_wait(tok);
    std::variant<std::tuple<boost::system::error_code>, std::tuple<boost::system::error_code>> r;
    try {
      r = co_await (std::move(readable) || std::move(expired));
    } catch (const boost::system::system_error& e) {
      // Asio throws instead of starting an operation once the coroutine's cancellation was requested.
      if (e.code() != asio::error::operation_aborted) throw;
      co_return make_error("Cancelled", "waiting for a change was cancelled");
    }
    if (s.closed) co_return closed();
    const auto ec = r.index() == 0 ? std::get<0>(std::get<0>(r)) : std::get<0>(std::get<1>(r));
    if (ec == asio::error::operation_aborted) co_return make_error("Cancelled", "waiting for a change was cancelled");
    if (ec) co_return make_error("LocalIOError", "waiting for inotify events: " + ec.message());
    if (r.index() == 1) {  // the timer
      const bool changed = std::exchange(s.pending, false);
      co_return changed;
    }
    const bool was_pending = s.pending;
    if (auto drained = s.drain(); !drained) {
      s.failed = drained.error();
      co_return drained.error();
    }
    if (!was_pending && s.pending) settled = clock::now() + settle;
  }
}

void local_watcher::close() {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  boost::system::error_code ignored;
  impl_->sd.close(ignored);  // a pending wait completes with operation_aborted
}

std::size_t local_watcher::watched() const { return impl_->path_of.size(); }

}  // namespace ferry::store
