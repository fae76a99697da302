// lib/state from coroutines: async_state_db runs RocksDB work on the blocking pool (never on the
// io thread) and returns its results; integrity_store persists what the copier reports.
#include "state/async_state.hpp"
#include "state/integrity_store.hpp"
#include "store/blocking.hpp"
#include "support/io_runner.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <boost/asio/this_coro.hpp>

#include <thread>

namespace ferry::state {
namespace {

using namespace std::chrono_literals;

class StateAsyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = state_db::open(dir_ / "state");
    ASSERT_TRUE(r) << r.error().message;
    db_ = std::move(*r);
  }

  test::temp_dir dir_{"ferry-state"};
  std::unique_ptr<state_db> db_;
  store::blocking_pool pool_{2};
  test::io_runner io_;
};

transfer::integrity_record verdict(std::string key) {
  transfer::integrity_record r;
  r.key = std::move(key);
  r.result = transfer::verdict::verified;
  r.method = "etag=md5";
  return r;
}

TEST_F(StateAsyncTest, CallsRunOnThePoolAndReturnTheirResults) {
  async_state_db st(*db_, pool_);
  auto body = [&]() -> asio::awaitable<bool> {
    auto io_thread = std::this_thread::get_id();
    auto where = [](state_db&) { return std::this_thread::get_id(); };
    auto pool_thread = co_await st.run(std::move(where));
    EXPECT_NE(pool_thread, io_thread);
    // Resumed on the io thread again.
    EXPECT_EQ(std::this_thread::get_id(), io_thread);

    auto id = co_await st.next_job_id();
    EXPECT_TRUE(id);
    if (!id) co_return false;
    EXPECT_EQ(*id, "j-000001");
    job_record j;
    j.id = *id;
    j.state = "running";
    EXPECT_TRUE(co_await st.put_job(j));
    auto got = co_await st.get_job(*id);
    EXPECT_TRUE(got && *got && (*got)->state == "running");
    EXPECT_EQ((co_await st.list_jobs())->size(), 1u);

    object_state s;
    s.phase = object_phase::in_flight;
    s.upload_id = "u1";
    // Arguments named first: GCC 12 destroys temporaries written inside a co_await expression twice.
    std::string key = "a/b", upload_id = "u1", cursor = "source", from, empty;
    part_record part{1, 5, "e1", "m1", 9};
    auto other = verdict("other");
    EXPECT_TRUE(co_await st.put_object_state(*id, key, s));
    upload_record u{*id, key, "e", "b", key, "u1", {}};
    EXPECT_TRUE(co_await st.register_upload(u));
    EXPECT_TRUE((co_await st.untracked_uploads())->empty());
    EXPECT_TRUE(co_await st.put_part(*id, key, upload_id, part));
    EXPECT_EQ((co_await st.list_parts(*id, key, upload_id))->size(), 1u);

    state_batch done;
    s.phase = object_phase::verified;
    done.put_object_state(*id, key, s);
    done.record_integrity(*id, verdict(key));
    done.clear_parts(*id, key);
    done.remove_upload(u);
    EXPECT_TRUE(co_await st.write(std::move(done)));
    EXPECT_EQ((*co_await st.get_object_state(*id, key))->phase, object_phase::verified);
    EXPECT_TRUE((co_await st.list_parts(*id, key, upload_id))->empty());
    EXPECT_EQ((*co_await st.latest_integrity(*id, key))->seq, 1u);
    EXPECT_EQ(*co_await st.record_integrity(*id, other), 2u);
    auto page = co_await st.integrity_records(*id, 0, 10);
    EXPECT_EQ(page->entries.size(), 2u);
    EXPECT_EQ((co_await st.scan_objects(*id, from, 10))->size(), 1u);
    EXPECT_TRUE(co_await st.put_cursor(*id, cursor, key));
    EXPECT_EQ(**co_await st.get_cursor(*id, cursor), key);
    EXPECT_TRUE(co_await st.clear_parts(*id, key));
    EXPECT_TRUE(co_await st.remove_upload(u));
    EXPECT_TRUE(co_await st.delete_job(*id));
    EXPECT_FALSE(*co_await st.get_job(*id));

    // Errors come back as values.
    auto bad = co_await st.get_object_state(*id, empty);
    EXPECT_FALSE(bad);
    co_return true;
  };
  EXPECT_TRUE(io_.run(body(), 60s));
}

TEST_F(StateAsyncTest, IntegrityStoreWritesInlineOrOnThePool) {
  integrity_store inline_sink(*db_, "j-1");
  inline_sink.record(verdict("a"));
  inline_sink.record(verdict("b"));
  auto page = db_->integrity_records("j-1", 0, 10);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->entries.size(), 2u);
  EXPECT_EQ(page->entries[1].record.key, "b");
  EXPECT_EQ(inline_sink.failures(), 0u);

  integrity_store pooled(*db_, "j-2", &pool_, durability::fsync);
  for (int i = 0; i < 20; ++i) pooled.record(verdict("k" + std::to_string(i)));
  ASSERT_TRUE(pool_.wait_detached(30s));
  auto pooled_page = db_->integrity_records("j-2", 0, 100);
  ASSERT_TRUE(pooled_page);
  EXPECT_EQ(pooled_page->entries.size(), 20u);
  EXPECT_EQ(pooled.failures(), 0u);
  EXPECT_FALSE(pooled.last_error());

  // A record lib/state cannot store is counted, not thrown.
  inline_sink.record(verdict(""));
  EXPECT_EQ(inline_sink.failures(), 1u);
  ASSERT_TRUE(inline_sink.last_error());
  EXPECT_EQ(inline_sink.last_error()->kind, error_kind::invalid_argument);
}

}  // namespace
}  // namespace ferry::state
