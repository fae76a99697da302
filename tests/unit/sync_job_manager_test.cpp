// A copy job end to end on local directories (local→local needs no server): every object gets a
// verdict through the integrity interface, and the job's counters agree with them.
#include "store/blocking.hpp"
#include "support/pattern.hpp"
#include "support/temp_dir.hpp"
#include "sync/job_manager.hpp"
#include "util/hash.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <fstream>
#include <thread>

namespace ferry::sync {
namespace {

class recording_sink final : public transfer::integrity_sink {
 public:
  void record(const transfer::integrity_record& r) override {
    std::lock_guard lock(mu_);
    records_.push_back(r);
  }
  std::vector<transfer::integrity_record> records() const {
    std::lock_guard lock(mu_);
    return records_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<transfer::integrity_record> records_;
};

class JobManagerTest : public ::testing::Test {
 protected:
  JobManagerTest() : thread_([this] { io_.run(); }) {}
  ~JobManagerTest() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  void write_file(const std::string& rel, const std::string& data) {
    auto p = src_.path() / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << data;
  }

  // Polls until the job is final, at most 60 s.
  job_snapshot wait(job_manager& m, const std::string& id) {
    for (int i = 0; i < 6000; ++i) {
      auto s = m.get(id);
      if (s && s->state != job_state::queued && s->state != job_state::running) return *s;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("job did not finish within 60 s");
  }

  boost::asio::io_context io_{2};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread thread_;
  store::blocking_pool blocking_{2};
  test::temp_dir src_, dst_;
  recording_sink sink_;
};

TEST_F(JobManagerTest, LocalCopyRecordsAVerdictForEveryObject) {
  const std::vector<std::pair<std::string, std::string>> files = {{"a.txt", "hello"},
                                                                  {"dir/b.bin", test::pattern(300'000, 1)},
                                                                  {"dir/sub/c", ""},
                                                                  {"big.bin", test::pattern(6u << 20, 2)}};
  for (const auto& [k, v] : files) write_file(k, v);
  engine_config cfg;
  cfg.transfer.multipart_threshold = 5u << 20;  // big.bin goes in parts
  cfg.transfer.part_size = 5u << 20;
  job_manager m(
      io_.get_executor(), [](std::string_view) { return nullptr; }, cfg, blocking_, &sink_);
  auto created = m.create({"copy", src_.path().string(), dst_.path().string(), "local", {}});
  ASSERT_TRUE(created) << created.error();
  auto done = wait(m, created->id);
  EXPECT_EQ(done.state, job_state::succeeded) << done.error;
  EXPECT_EQ(done.objects_total, files.size());
  EXPECT_EQ(done.objects_done, files.size());
  EXPECT_EQ(done.streamed, files.size());

  auto records = sink_.records();
  ASSERT_EQ(records.size(), files.size());
  for (const auto& [k, v] : files) {
    auto it = std::find_if(records.begin(), records.end(), [&](const auto& r) { return r.key == k; });
    ASSERT_NE(it, records.end()) << k;
    EXPECT_EQ(it->result, transfer::verdict::verified) << k << ": " << it->error;
    EXPECT_EQ(it->md5, util::to_hex(util::md5(v))) << k;
    EXPECT_EQ(it->size, v.size());
    EXPECT_FALSE(it->method.empty());
    std::ifstream in(dst_.path() / k, std::ios::binary);
    std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(back, v) << k;
  }
}

TEST_F(JobManagerTest, UnknownRemotesAndBadPathsAreRefusedBeforeAJobExists) {
  job_manager m(
      io_.get_executor(), [](std::string_view) { return nullptr; }, engine_config{}, blocking_, &sink_);
  auto unknown = m.create({"copy", "nowhere:bucket", dst_.path().string(), "", {}});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().find("no remote named 'nowhere'"), std::string::npos);
  auto dots = m.create({"copy", "/srv/../etc", dst_.path().string(), "", {}});
  ASSERT_FALSE(dots);
  EXPECT_TRUE(m.list().empty());
}

TEST_F(JobManagerTest, AMissingSourceDirectoryFailsTheJobWithAReason) {
  job_manager m(
      io_.get_executor(), [](std::string_view) { return nullptr; }, engine_config{}, blocking_, &sink_);
  auto created = m.create({"copy", (src_.path() / "absent").string(), dst_.path().string(), "", {}});
  ASSERT_TRUE(created);
  auto done = wait(m, created->id);
  EXPECT_EQ(done.state, job_state::failed);
  EXPECT_NE(done.error.find("RootNotFound"), std::string::npos) << done.error;
}

}  // namespace
}  // namespace ferry::sync
