// The planner's pure parts: the merge-join of two listings in byte order, and change detection.
#include "sync/planner.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace ferry::sync {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::system_clock;

// A lister over fixed pages (an empty page list ends the listing), or failing at page `fail_at`.
class fake_lister final : public store::lister {
 public:
  explicit fake_lister(std::vector<std::vector<std::string>> pages, int fail_at = -1)
      : pages_(std::move(pages)), fail_at_(fail_at) {}
  asio::awaitable<store::result<std::vector<store::object_info>>> next() override {
    if (at_ == fail_at_) co_return s3::local_error("InternalError", "listing broke");
    std::vector<store::object_info> out;
    if (at_ < static_cast<int>(pages_.size())) {
      for (const auto& k : pages_[static_cast<std::size_t>(at_)]) {
        store::object_info o;
        o.key = k;
        o.size = k.size();
        out.push_back(std::move(o));
      }
    }
    ++at_;
    co_return out;
  }

 private:
  std::vector<std::vector<std::string>> pages_;
  int fail_at_;
  int at_ = 0;
};

struct joined {
  std::vector<std::string> rows;  // "key:S", "key:D" or "key:SD"
  std::string error;
};

joined join(std::unique_ptr<store::lister> src, std::unique_ptr<store::lister> dst) {
  boost::asio::io_context io;
  auto run = [&]() -> asio::awaitable<joined> {
    merge_join mj(std::move(src), std::move(dst));
    joined out;
    for (int guard = 0; guard < 10000; ++guard) {
      auto p = co_await mj.next();
      if (!p) {
        out.error = p.error().to_string();
        co_return out;
      }
      if (!*p) co_return out;
      const auto& k = (*p)->src ? (*p)->src->key : (*p)->dst->key;
      out.rows.push_back(k + ":" + ((*p)->src ? "S" : "") + ((*p)->dst ? "D" : ""));
    }
    out.error = "did not end";
    co_return out;
  };
  auto f = boost::asio::co_spawn(io, run(), boost::asio::use_future);
  io.run();
  return f.get();
}

TEST(SyncMergeJoin, PairsKeysInByteOrderAcrossPageBoundaries) {
  auto src = std::make_unique<fake_lister>(std::vector<std::vector<std::string>>{{"a", "b"}, {"c", "e"}, {"f"}});
  auto dst = std::make_unique<fake_lister>(std::vector<std::vector<std::string>>{{"b"}, {}, {"d", "e", "z"}});
  // An empty page ends a listing: the destination's "d", "e", "z" are never seen.
  auto got = join(std::move(src), std::move(dst));
  EXPECT_EQ(got.error, "");
  EXPECT_EQ(got.rows, (std::vector<std::string>{"a:S", "b:SD", "c:S", "e:S", "f:S"}));
}

TEST(SyncMergeJoin, DestinationOnlyKeysAndBytesAboveAscii) {
  auto src = std::make_unique<fake_lister>(std::vector<std::vector<std::string>>{{"a-b", "a/b"}});
  auto dst =
      std::make_unique<fake_lister>(std::vector<std::vector<std::string>>{{"a.b", "a/b", "\xc3\xa9", "\xe6\x97\xa5"}});
  auto got = join(std::move(src), std::move(dst));
  EXPECT_EQ(got.rows, (std::vector<std::string>{"a-b:S", "a.b:D", "a/b:SD", "\xc3\xa9:D", "\xe6\x97\xa5:D"}));
}

TEST(SyncMergeJoin, WithoutADestinationEverythingIsSourceOnly) {
  auto src = std::make_unique<fake_lister>(std::vector<std::vector<std::string>>{{"x", "y"}});
  auto got = join(std::move(src), nullptr);
  EXPECT_EQ(got.rows, (std::vector<std::string>{"x:S", "y:S"}));
}

TEST(SyncMergeJoin, AFailedListingFailsTheJoinInsteadOfLookingLikeDeletions) {
  auto src = std::make_unique<fake_lister>(std::vector<std::vector<std::string>>{{"a"}, {"b"}}, 1);
  auto dst = std::make_unique<fake_lister>(std::vector<std::vector<std::string>>{{"a", "b", "c"}});
  auto got = join(std::move(src), std::move(dst));
  EXPECT_NE(got.error.find("listing broke"), std::string::npos) << got.error;
}

store::object_info obj(std::uint64_t size, std::string etag, std::optional<clock::time_point> modified) {
  store::object_info o;
  o.key = "k";
  o.size = size;
  o.etag = std::move(etag);
  o.last_modified = modified;
  return o;
}

const std::string md5a = "0cc175b9c0f1b6a831c399e269772661";
const std::string md5b = "92eb5ffee6ae2fec3ad71c777531578f";
const clock::time_point t0 = clock::time_point(std::chrono::seconds(1'700'000'000));

TEST(SyncCompare, SizeDecidesFirstAndSizeOnlyStopsThere) {
  EXPECT_EQ(compare_listed(obj(1, md5a, t0), obj(2, md5a, t0), {}), difference::changed);
  EXPECT_EQ(compare_listed(obj(1, md5a, t0), obj(1, md5b, t0 - 1h), {.size_only = true}), difference::same);
}

TEST(SyncCompare, Md5EtagsDecideWhenBothSidesHaveThem) {
  EXPECT_EQ(compare_listed(obj(1, md5a, t0 + 1h), obj(1, md5a, t0), {}), difference::same);
  EXPECT_EQ(compare_listed(obj(1, md5a, t0), obj(1, md5b, t0 + 1h), {}), difference::changed);
  EXPECT_EQ(compare_listed(obj(1, md5a, t0), obj(1, "0CC175B9C0F1B6A831C399E269772661", t0), {}), difference::same);
  EXPECT_EQ(compare_listed(obj(1, "abc-2", t0 + 1h), obj(1, "abc-2", t0), {}), difference::same);
}

TEST(SyncCompare, WithoutComparableEtagsTheDestinationMustBeNewer) {
  // S3 multipart source -> S3 destination written by a stream copy (another ETag): times decide.
  EXPECT_EQ(compare_listed(obj(1, "abc-2", t0), obj(1, "def-3", t0 + 5s), {}), difference::same);
  EXPECT_EQ(compare_listed(obj(1, "abc-2", t0 + 5s), obj(1, "def-3", t0), {}), difference::changed);
  // Local source -> S3: a file changed after its upload.
  EXPECT_EQ(compare_listed(obj(1, "", t0 + 1s), obj(1, md5a, t0), {}), difference::changed);
  EXPECT_EQ(compare_listed(obj(1, "", t0), obj(1, md5a, t0 + 500ms), {}), difference::same);
  // S3 source -> local file: the file may carry the source's own (older) mtime: stat the source.
  EXPECT_EQ(compare_listed(obj(1, md5a, t0 + 1h), obj(1, "", t0), {}), difference::needs_detail);
  // Unknown times: copy again rather than guess.
  EXPECT_EQ(compare_listed(obj(1, "", std::nullopt), obj(1, "", t0), {}), difference::changed);
}

TEST(SyncCompare, ChecksumWithALocalSideAsksForHashes) {
  EXPECT_EQ(compare_listed(obj(1, "", t0), obj(1, md5a, t0 + 1h), {.checksum = true}), difference::needs_detail);
  EXPECT_EQ(compare_listed(obj(1, md5a, t0), obj(1, md5a, t0), {.checksum = true}), difference::same);
}

TEST(SyncCompare, ExactComparisonUsesHashesThenTheSourcesOwnMtime) {
  auto src = obj(1, md5a, t0 + 1h);
  src.mtime = t0;
  EXPECT_TRUE(compare_exact(src, obj(1, "", t0), "", ""));
  EXPECT_FALSE(compare_exact(src, obj(1, "", t0 - 1s), "", ""));
  EXPECT_TRUE(compare_exact(src, obj(1, "", t0 - 1h), md5a, md5a));
  EXPECT_FALSE(compare_exact(src, obj(1, "", t0), md5a, md5b));
  EXPECT_EQ(listed_md5(obj(1, "0CC175B9C0F1B6A831C399E269772661", t0)), md5a);
  EXPECT_EQ(listed_md5(obj(1, "abc-2", t0)), "");
}

}  // namespace
}  // namespace ferry::sync
