// Reopening lib/state after ferryd dies mid-work: a child process (this test binary re-run with
// a filter) writes state as a job would and acknowledges each write; it is killed with SIGKILL
// at an arbitrary moment, and every acknowledged write must be there after reopening.
#include "state/state_db.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ferry::state {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* dir_env = "FERRY_STATE_CRASH_DIR";
constexpr int max_iterations = 1'000'000;  // the child stops on its own if nobody kills it

std::string key_for(int i) { return "dir/" + std::to_string(i) + std::string("\0\xff", 2); }

transfer::integrity_record verdict_for(int i) {
  transfer::integrity_record r;
  r.key = key_for(i);
  r.size = static_cast<std::uint64_t>(i);
  r.method = "multipart-etag";
  r.result = transfer::verdict::verified;
  return r;
}

// The child: what a job does per object (upload registered with the object's state, a part,
// then the verdict with the final state), one acknowledgement line per object once all of it
// returned. Only runs when the parent test starts it.
TEST(StateCrashChild, DISABLED_WriteUntilKilled) {
  const char* dir = std::getenv(dir_env);
  if (dir == nullptr) GTEST_SKIP() << "run by StateCrash.AcknowledgedWritesSurviveSigkill";
  auto db = state_db::open(fs::path(dir) / "state");
  ASSERT_TRUE(db) << db.error().message;
  int acks = ::open((fs::path(dir) / "acks").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  ASSERT_GE(acks, 0);
  auto ack = [&](const std::string& line) {
    auto text = line + "\n";
    ASSERT_EQ(::write(acks, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  };

  auto id1 = (*db)->next_job_id();
  auto id2 = (*db)->next_job_id();
  ASSERT_TRUE(id1 && id2);
  job_record j;
  j.id = *id2;
  j.state = "running";
  ASSERT_TRUE((*db)->put_job(j));
  ack("ids " + *id1 + " " + *id2);

  for (int i = 0; i < max_iterations; ++i) {
    auto key = key_for(i);
    auto upload_id = "upload-" + std::to_string(i);
    state_batch start;
    object_state s;
    s.phase = object_phase::in_flight;
    s.upload_id = upload_id;
    start.put_object_state(j.id, key, s);
    start.register_upload(upload_record{j.id, key, "e", "b", key, upload_id, {}});
    ASSERT_TRUE((*db)->write(start));
    ASSERT_TRUE((*db)->put_part(j.id, key, upload_id, part_record{1, 5, "etag", "md5", static_cast<std::uint32_t>(i)}));

    state_batch done;
    s.phase = object_phase::verified;
    s.attempts = 1;
    done.put_object_state(j.id, key, s);
    done.record_integrity(j.id, verdict_for(i));
    done.remove_upload(upload_record{j.id, key, "e", "b", key, upload_id, {}});
    ASSERT_TRUE((*db)->write(done));
    // Progress that may be redone: WAL only, yet a process crash must not lose it either.
    ASSERT_TRUE((*db)->put_cursor(j.id, "source", key, durability::wal));
    ack(std::to_string(i));
  }
  ::_exit(3);  // never closed cleanly, even here
}

// Complete lines of the acknowledgement file (the last may be cut by the kill).
std::vector<std::string> read_acks(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (auto nl = all.find('\n'); nl != std::string::npos; nl = all.find('\n', start)) {
    lines.push_back(all.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

TEST(StateCrash, AcknowledgedWritesSurviveSigkill) {
  test::temp_dir dir("ferry-state-crash");
  auto self = fs::read_symlink("/proc/self/exe");
  test::process child(test::process_options{
      .argv = {self.string(), "--gtest_filter=StateCrashChild.DISABLED_WriteUntilKilled",
               "--gtest_also_run_disabled_tests"},
      .env_set = {{dir_env, dir.path().string()}},
      .stdout_path = dir / "child.log",
      .stderr_path = dir / "child.log",
  });

  // Kill it once it has acknowledged enough objects to be in the middle of its work.
  constexpr std::size_t wanted = 1 + 300;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  std::size_t seen = 0;
  while (std::chrono::steady_clock::now() < deadline && child.running()) {
    seen = read_acks(dir / "acks").size();
    if (seen >= wanted) break;
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_GE(seen, wanted) << "the child did not get far enough; its log:\n" << std::ifstream(dir / "child.log").rdbuf();
  child.signal(SIGKILL);
  auto status = child.wait_for(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 128 + SIGKILL);

  auto acks = read_acks(dir / "acks");
  ASSERT_GE(acks.size(), wanted);
  EXPECT_EQ(acks[0], "ids j-000001 j-000002");
  const int done = static_cast<int>(acks.size()) - 1;
  EXPECT_EQ(acks.back(), std::to_string(done - 1));

  auto db = state_db::open(dir / "state");
  ASSERT_TRUE(db) << db.error().message;
  EXPECT_EQ(*(*db)->next_job_id(), "j-000003");
  auto job = (*db)->get_job("j-000002");
  ASSERT_TRUE(job && *job);
  EXPECT_EQ((*job)->state, "running");

  for (int i = 0; i < done; ++i) {
    auto key = key_for(i);
    auto s = (*db)->get_object_state("j-000002", key);
    ASSERT_TRUE(s && *s) << i;
    EXPECT_EQ((*s)->phase, object_phase::verified) << i;
    auto parts = (*db)->list_parts("j-000002", key, "upload-" + std::to_string(i));
    ASSERT_TRUE(parts) << i;
    ASSERT_EQ(parts->size(), 1u) << i;
    EXPECT_EQ((*parts)[0].crc32c, static_cast<std::uint32_t>(i));
    auto v = (*db)->latest_integrity("j-000002", key);
    ASSERT_TRUE(v && *v) << i;
    EXPECT_EQ((*v)->record.size, static_cast<std::uint64_t>(i));
  }
  // Verdicts in order, numbered without gaps; at most one more than acknowledged (killed
  // between its write and its acknowledgement).
  std::uint64_t after = 0, count = 0;
  for (int page = 0; page < 1000; ++page) {
    auto p = (*db)->integrity_records("j-000002", after, 500);
    ASSERT_TRUE(p);
    for (const auto& e : p->entries) {
      EXPECT_EQ(e.seq, count + 1);
      EXPECT_EQ(e.record.key, key_for(static_cast<int>(count)));
      ++count;
    }
    after = p->next_after;
    if (!p->more) break;
  }
  EXPECT_GE(count, static_cast<std::uint64_t>(done));
  EXPECT_LE(count, static_cast<std::uint64_t>(done) + 1);
  auto cursor = (*db)->get_cursor("j-000002", "source");
  ASSERT_TRUE(cursor && *cursor);
  bool cursor_known = **cursor == key_for(done - 1) || **cursor == key_for(done);
  EXPECT_TRUE(cursor_known) << **cursor;
  // Every acknowledged object's upload was removed with its verdict; at most the one in flight is left.
  auto uploads = (*db)->list_uploads();
  ASSERT_TRUE(uploads);
  EXPECT_LE(uploads->size(), 1u);
  for (const auto& u : *uploads) EXPECT_EQ(u.upload_id, "upload-" + std::to_string(done));
}

}  // namespace
}  // namespace ferry::state
