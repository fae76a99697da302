// lib/store's local_watcher on real temp directories: which changes wake it (files and directories,
// new directories at any depth, renames in and out of the tree), what does not (ferry's temp files,
// nothing at all: a timeout), bursts, overflow, cancellation and close().
#include "store/blocking.hpp"
#include "store/local_endpoint.hpp"
#include "store/local_watch.hpp"
#include "support/io_runner.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

namespace ferry::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::io_runner;

void make_file(const fs::path& p, std::string_view content = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::app);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  ASSERT_TRUE(out.good()) << p;
}

http::body_source string_source(std::shared_ptr<const std::string> s) {
  auto off = std::make_shared<std::size_t>(0);
  return [s, off](std::span<char> buf) -> asio::awaitable<http::result<std::size_t>> {
    const std::size_t n = std::min(buf.size(), s->size() - *off);
    std::memcpy(buf.data(), s->data() + *off, n);
    *off += n;
    co_return n;
  };
}

class StoreLocalWatch : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(root_); }

  std::unique_ptr<local_watcher> start() {
    auto w = local_watcher::start(io_.executor(), root_);
    if (!w) throw std::runtime_error("start: " + w.error().to_string());
    return std::move(*w);
  }
  // A change is expected: a generous bound that only a broken watcher reaches.
  result<bool> wait(local_watcher& w, std::chrono::milliseconds settle = 20ms) {
    return io_.run(w.wait_change(settle, 20s));
  }
  // No change is expected: short, since it is always spent in full.
  result<bool> quiet(local_watcher& w) { return io_.run(w.wait_change(10ms, 300ms)); }

  test::temp_dir dir_{"ferry-watch"};
  fs::path root_ = dir_ / "root";
  io_runner io_;
};

#define EXPECT_CHANGE(w, what)                                             \
  do {                                                                     \
    auto changed_ = wait(w);                                               \
    ASSERT_TRUE(changed_) << what << ": " << changed_.error().to_string(); \
    EXPECT_TRUE(*changed_) << what << ": no change seen";                  \
  } while (0)

#define EXPECT_QUIET(w, what)                                              \
  do {                                                                     \
    auto changed_ = quiet(w);                                              \
    ASSERT_TRUE(changed_) << what << ": " << changed_.error().to_string(); \
    EXPECT_FALSE(*changed_) << what << ": a change was reported";          \
  } while (0)

TEST_F(StoreLocalWatch, SeesFilesCreatedWrittenChangedAndDeleted) {
  auto w = start();
  EXPECT_QUIET(*w, "just started");
  make_file(root_ / "f.txt", "one");
  EXPECT_CHANGE(*w, "create");
  EXPECT_QUIET(*w, "after the create was reported");
  make_file(root_ / "f.txt", "two");  // opened for writing, appended, closed
  EXPECT_CHANGE(*w, "write");
  fs::permissions(root_ / "f.txt", fs::perms::owner_read, fs::perm_options::replace);
  EXPECT_CHANGE(*w, "chmod");
  fs::rename(root_ / "f.txt", root_ / "g.txt");
  EXPECT_CHANGE(*w, "rename");
  fs::remove(root_ / "g.txt");
  EXPECT_CHANGE(*w, "delete");
  EXPECT_QUIET(*w, "at the end");
}

TEST_F(StoreLocalWatch, WatchesDirectoriesAtAnyDepthIncludingNewOnes) {
  fs::create_directories(root_ / "old/deep");
  auto w = start();
  EXPECT_EQ(w->watched(), 3u);  // root, old, old/deep
  make_file(root_ / "old/deep/f");
  EXPECT_CHANGE(*w, "file in a directory that existed at start");

  fs::create_directory(root_ / "new");
  EXPECT_CHANGE(*w, "mkdir");
  make_file(root_ / "new/f");
  EXPECT_CHANGE(*w, "file in a directory made after start");

  // A tree made at once: its inner directories may exist before the watcher sees the top one.
  fs::create_directories(root_ / "tree/a/b/c");
  EXPECT_CHANGE(*w, "mkdir -p");
  EXPECT_EQ(w->watched(), 8u);
  make_file(root_ / "tree/a/b/c/f");
  EXPECT_CHANGE(*w, "file deep in the new tree");

  fs::remove_all(root_ / "tree");
  EXPECT_CHANGE(*w, "rm -r");
  EXPECT_EQ(w->watched(), 4u);
  EXPECT_QUIET(*w, "at the end");
}

TEST_F(StoreLocalWatch, FollowsDirectoriesRenamedInsideAndForgetsThoseMovedOut) {
  fs::create_directories(root_ / "a/b");
  fs::create_directories(dir_ / "elsewhere");
  auto w = start();
  fs::rename(root_ / "a", root_ / "c");
  EXPECT_CHANGE(*w, "rename of a directory");
  make_file(root_ / "c/b/f");
  EXPECT_CHANGE(*w, "file in the renamed directory");

  fs::rename(root_ / "c", dir_ / "elsewhere/c");
  EXPECT_CHANGE(*w, "directory moved out");
  EXPECT_EQ(w->watched(), 1u);
  make_file(dir_ / "elsewhere/c/b/g");
  EXPECT_QUIET(*w, "a write outside the root");

  fs::rename(dir_ / "elsewhere/c", root_ / "back");
  EXPECT_CHANGE(*w, "directory moved in");
  EXPECT_EQ(w->watched(), 3u);
  make_file(root_ / "back/b/h");
  EXPECT_CHANGE(*w, "file in a directory moved in");
}

TEST_F(StoreLocalWatch, ReturnsFalseWhenTheTimeoutPassesWithoutAChange) {
  auto w = start();
  const auto began = std::chrono::steady_clock::now();
  auto r = io_.run(w->wait_change(10ms, 400ms));
  const auto took = std::chrono::steady_clock::now() - began;
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_FALSE(*r);
  EXPECT_GE(took, 390ms);
  EXPECT_LT(took, 10s);
}

TEST_F(StoreLocalWatch, IgnoresFerrysOwnTempFiles) {
  fs::create_directories(root_ / "sub");
  auto w = start();
  for (const auto& dir : {root_, root_ / "sub"}) {
    const auto tmp = dir / (std::string(temp_file_prefix) + "0123456789abcdef-name");
    make_file(tmp, "partial");
    fs::permissions(tmp, fs::perms::owner_all, fs::perm_options::replace);
    fs::remove(tmp);
  }
  EXPECT_QUIET(*w, "temp files only");

  // A whole write through the local endpoint: only its final rename is a change.
  blocking_pool pool(1);
  auto ep = make_local_endpoint(root_, pool);
  auto data = std::make_shared<const std::string>("written by ferry");
  auto body = string_source(data);
  auto written = io_.run(ep->write("sub/file", std::move(body), data->size(), write_options{}));
  ASSERT_TRUE(written) << written.error().to_string();
  EXPECT_CHANGE(*w, "the final rename of a write");
  EXPECT_QUIET(*w, "after the write");
}

TEST_F(StoreLocalWatch, ABurstOfChangesIsOneWakeUp) {
  auto w = start();
  fs::create_directories(root_ / "sub");
  EXPECT_CHANGE(*w, "mkdir");
  for (int i = 0; i < 300; ++i) make_file((i % 2 ? root_ : root_ / "sub") / std::to_string(i));
  EXPECT_CHANGE(*w, "the burst");
  EXPECT_QUIET(*w, "after the burst");
}

TEST_F(StoreLocalWatch, AChangeDuringAWaitWakesIt) {
  auto w = start();
  auto f = asio::co_spawn(io_.context(), w->wait_change(10ms, 60s), asio::use_future);
  make_file(root_ / "during");
  ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
  auto r = f.get();
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(*r);
}

TEST_F(StoreLocalWatch, SettleWaitsForMoreEventsAfterTheFirst) {
  auto w = start();
  make_file(root_ / "first");
  const auto began = std::chrono::steady_clock::now();
  auto r = io_.run(w->wait_change(300ms, 20s));
  const auto took = std::chrono::steady_clock::now() - began;
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(*r);
  EXPECT_GE(took, 290ms);  // the event was already queued: all of that is the settle time
  EXPECT_LT(took, 10s);
}

TEST_F(StoreLocalWatch, AnEventQueueOverflowCountsAsAChangeAndKeepsWatching) {
  std::ifstream limit_file("/proc/sys/fs/inotify/max_queued_events");
  long limit = 0;
  limit_file >> limit;
  if (limit <= 0 || limit > 100'000) GTEST_SKIP() << "max_queued_events is " << limit << ": too many files to overflow";
  auto w = start();
  // Two events a file (create, close-write): past the queue's limit.
  const long files = limit / 2 + 500;
  for (long i = 0; i < files; ++i) make_file(root_ / std::to_string(i));
  // Made with the queue full: their creation events are lost.
  for (int i = 0; i < 10; ++i) fs::create_directory(root_ / ("o" + std::to_string(i)));
  EXPECT_CHANGE(*w, "overflow");
  // The walk after the overflow watched them anyway.
  EXPECT_EQ(w->watched(), 11u);
  make_file(root_ / "o9/after");
  EXPECT_CHANGE(*w, "a file after the overflow");
}

TEST_F(StoreLocalWatch, CancellationAndCloseEndAWait) {
  auto w = start();
  asio::cancellation_signal signal;
  auto cancelled = asio::co_spawn(io_.context(), w->wait_change(10ms, 60s),
                                  asio::bind_cancellation_slot(signal.slot(), asio::use_future));
  asio::post(io_.context(), [&] { signal.emit(asio::cancellation_type::terminal); });
  ASSERT_EQ(cancelled.wait_for(20s), std::future_status::ready);
  auto r = cancelled.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "Cancelled");

  // Still usable after a cancelled wait.
  make_file(root_ / "f");
  EXPECT_CHANGE(*w, "after a cancelled wait");

  auto closed = asio::co_spawn(io_.context(), w->wait_change(10ms, 60s), asio::use_future);
  asio::post(io_.context(), [&] { w->close(); });  // on the watcher's executor, as required
  ASSERT_EQ(closed.wait_for(20s), std::future_status::ready);
  auto c = closed.get();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, "Closed");
  auto later = io_.run(w->wait_change(10ms, 100ms));
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error().code, "Closed");
}

TEST_F(StoreLocalWatch, StartFailsOnAMissingRootAndAFile) {
  auto missing = local_watcher::start(io_.executor(), dir_ / "no-such-dir");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "RootNotFound");
  EXPECT_EQ(missing.error().http_status, 404u);
  make_file(dir_ / "a-file");
  auto file = local_watcher::start(io_.executor(), dir_ / "a-file");
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code, "RootNotFound");
}

TEST_F(StoreLocalWatch, TheRootDeletedCountsAsAChangeAndIsWatchedAgainWhenBack) {
  auto w = start();
  fs::remove_all(root_);
  EXPECT_CHANGE(*w, "root deleted");
  EXPECT_EQ(w->watched(), 0u);
  EXPECT_QUIET(*w, "no root");
  fs::create_directories(root_);
  EXPECT_CHANGE(*w, "root made again");  // seen on the next wait: a new directory under the name
  make_file(root_ / "f");
  EXPECT_CHANGE(*w, "a file in the new root");
}

}  // namespace
}  // namespace ferry::store
