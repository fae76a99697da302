// Jobs end to end on local directories (local→local needs no server): every object gets a verdict
// in the state database, the job's counters agree with them, and sync semantics hold.
#include "state/state_db.hpp"
#include "store/blocking.hpp"
#include "support/pattern.hpp"
#include "support/temp_dir.hpp"
#include "sync/job_manager.hpp"
#include "util/hash.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <fstream>
#include <future>
#include <set>
#include <thread>

namespace ferry::sync {
namespace {

job_request request(std::string kind, std::string source, std::string destination, std::string name = "") {
  job_request r;
  r.kind = std::move(kind);
  r.source = std::move(source);
  r.destination = std::move(destination);
  r.name = std::move(name);
  return r;
}

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

  // Runs `c` on the io_context and waits (bounded) for its result.
  template <class T>
  T await(boost::asio::awaitable<T> c) {
    auto f = boost::asio::co_spawn(io_, std::move(c), boost::asio::use_future);
    if (f.wait_for(std::chrono::seconds(60)) != std::future_status::ready) throw std::runtime_error("timed out");
    return f.get();
  }
  boost::system::result<job_snapshot, std::string> create(job_manager& m, job_request r) {
    return await(m.create(std::move(r)));
  }
  std::set<std::string> dst_files() {
    std::set<std::string> out;
    for (auto& e : std::filesystem::recursive_directory_iterator(dst_.path()))
      if (e.is_regular_file()) out.insert(std::filesystem::relative(e.path(), dst_.path()).string());
    return out;
  }

  test::temp_dir state_dir_;
  std::unique_ptr<state::state_db> db_ = state::state_db::open(state_dir_.path()).value();
  boost::asio::io_context io_{2};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread thread_;
  store::blocking_pool blocking_{2};
  test::temp_dir src_, dst_;
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
      io_.get_executor(), [](std::string_view) { return nullptr; }, cfg, blocking_, *db_);
  auto created = create(m, request("copy", src_.path().string(), dst_.path().string(), "local"));
  ASSERT_TRUE(created) << created.error();
  auto done = wait(m, created->id);
  EXPECT_EQ(done.state, job_state::succeeded) << done.error;
  EXPECT_EQ(done.objects_total, files.size());
  EXPECT_EQ(done.objects_done, files.size());
  EXPECT_EQ(done.streamed, files.size());

  auto page = db_->integrity_records(created->id, 0, 100).value();
  std::vector<transfer::integrity_record> records;
  for (auto& e : page.entries) records.push_back(e.record);
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
      io_.get_executor(), [](std::string_view) { return nullptr; }, engine_config{}, blocking_, *db_);
  auto unknown = create(m, request("copy", "nowhere:bucket", dst_.path().string(), ""));
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().find("no remote named 'nowhere'"), std::string::npos);
  auto dots = create(m, request("copy", "/srv/../etc", dst_.path().string(), ""));
  ASSERT_FALSE(dots);
  EXPECT_TRUE(m.list().empty());
}

TEST_F(JobManagerTest, AMissingSourceDirectoryFailsTheJobWithAReason) {
  job_manager m(
      io_.get_executor(), [](std::string_view) { return nullptr; }, engine_config{}, blocking_, *db_);
  auto created = create(m, request("copy", (src_.path() / "absent").string(), dst_.path().string(), ""));
  ASSERT_TRUE(created);
  auto done = wait(m, created->id);
  EXPECT_EQ(done.state, job_state::failed);
  EXPECT_NE(done.error.find("RootNotFound"), std::string::npos) << done.error;
}

TEST_F(JobManagerTest, SyncCopiesOnlyWhatChangedAndDeletesOnlyWhenAsked) {
  write_file("a", "alpha");
  write_file("dir/b", "bravo");
  job_manager m(
      io_.get_executor(), [](std::string_view) { return nullptr; }, engine_config{}, blocking_, *db_);
  auto first = create(m, request("sync", src_.path().string(), dst_.path().string(), ""));
  ASSERT_TRUE(first) << first.error();
  auto one = wait(m, first->id);
  ASSERT_EQ(one.state, job_state::succeeded) << one.error;
  EXPECT_EQ(one.plan.copy_objects, 2u);

  std::ofstream(dst_.path() / "extra") << "x";
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a new mtime second for the change
  write_file("a", "ALPHA");
  auto second = create(m, request("sync", src_.path().string(), dst_.path().string(), ""));
  ASSERT_TRUE(second) << second.error();
  auto two = wait(m, second->id);
  ASSERT_EQ(two.state, job_state::succeeded) << two.error;
  EXPECT_EQ(two.plan.copy_objects, 1u);
  EXPECT_EQ(two.plan.unchanged_objects, 1u);
  EXPECT_EQ(two.deleted, 0u);
  EXPECT_EQ(dst_files(), (std::set<std::string>{"a", "dir/b", "extra"}));

  job_request del = request("sync", src_.path().string(), dst_.path().string(), "");
  del.options.delete_extraneous = true;
  auto third = create(m, del);
  ASSERT_TRUE(third) << third.error();
  auto three = wait(m, third->id);
  ASSERT_EQ(three.state, job_state::succeeded) << three.error;
  EXPECT_EQ(three.deleted, 1u);
  EXPECT_EQ(dst_files(), (std::set<std::string>{"a", "dir/b"}));
}

TEST_F(JobManagerTest, InvalidOptionCombinationsAreRefused) {
  job_manager m(
      io_.get_executor(), [](std::string_view) { return nullptr; }, engine_config{}, blocking_, *db_);
  job_request r = request("copy", src_.path().string(), dst_.path().string(), "");
  r.options.delete_extraneous = true;
  auto copy_delete = create(m, r);
  ASSERT_FALSE(copy_delete);
  EXPECT_NE(copy_delete.error().find("--delete"), std::string::npos);
  r = request("sync", src_.path().string(), dst_.path().string(), "");
  r.options.checksum = r.options.size_only = true;
  EXPECT_FALSE(create(m, r));
  r = request("sync", src_.path().string(), dst_.path().string(), "");
  r.options.interval = std::chrono::seconds(5);
  EXPECT_FALSE(create(m, r));
  r = request("mirror", src_.path().string(), dst_.path().string(), "");
  r.options.filter.include = {"[unclosed"};
  EXPECT_FALSE(create(m, r));
  EXPECT_TRUE(m.list().empty());
}

TEST_F(JobManagerTest, AnUnfinishedJobIsResumedByTheNextManager) {
  write_file("a", "alpha");
  // A job recorded as running, as a crash leaves it: a new manager must run it without being asked.
  state::job_record rec;
  rec.id = db_->next_job_id().value();
  rec.kind = "copy";
  rec.state = "running";
  rec.source = src_.path().string();
  rec.destination = dst_.path().string();
  rec.created_at = std::chrono::system_clock::now();
  ASSERT_TRUE(db_->put_job(rec));
  job_manager m(
      io_.get_executor(), [](std::string_view) { return nullptr; }, engine_config{}, blocking_, *db_);
  auto resumed = await(m.restore());
  ASSERT_TRUE(resumed) << resumed.error();
  EXPECT_EQ(*resumed, 1u);
  auto done = wait(m, rec.id);
  EXPECT_EQ(done.state, job_state::succeeded) << done.error;
  EXPECT_EQ(dst_files(), (std::set<std::string>{"a"}));
  EXPECT_EQ(db_->get_job(rec.id).value()->state, "succeeded");
}

}  // namespace
}  // namespace ferry::sync
