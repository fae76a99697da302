#pragma once
// Change watching for a local directory tree (Linux inotify), so a mirror with a local source
// wakes on a change instead of relisting on a timer. It says that something changed, never what:
// the mirror lists again. Symbolic links below the root are not followed (as the local endpoint's
// default), so changes reached only through them are not seen.
#include "store/endpoint.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>

namespace ferry::store {

class local_watcher {
 public:
  // Watches root and every directory under it (recursive; new directories are watched as they
  // appear). The initial walk runs here, on the calling thread. Fails with "RootNotFound" (404),
  // "WatchLimit" when the kernel's inotify limits are reached (the message names the /proc/sys/fs/
  // inotify setting to raise), or "LocalIOError".
  static result<std::unique_ptr<local_watcher>> start(asio::any_io_executor ex, std::filesystem::path root);
  ~local_watcher();
  local_watcher(const local_watcher&) = delete;
  local_watcher& operator=(const local_watcher&) = delete;

  // true when something under root changed (create, write-close, delete, move, attrib; ferry's own
  // temp files do not count), `settle` after the first event so that a burst is one wake-up; false
  // when `timeout` passes with no change. An event queue overflow counts as a change (and the tree
  // is walked again). Errors: "Cancelled" (the coroutine's cancellation slot), "Closed" (close()),
  // "WatchLimit" (a new directory could not be watched: from then on, poll instead).
  // One wait at a time, on the executor given to start(): like any Asio object, not thread-safe.
  asio::awaitable<result<bool>> wait_change(std::chrono::milliseconds settle, std::chrono::milliseconds timeout);

  // Stops watching: a pending wait_change() completes with "Closed", and so do later ones.
  void close();

  // How many directories are watched now (for logs and tests).
  std::size_t watched() const;

 private:
  struct impl;
  explicit local_watcher(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace ferry::store
