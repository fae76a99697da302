// The S3 endpoint's pieces that need no server: the lister on scripted ListObjectsV2 pages (prefix
// stripping, continuation, order checking), rclone's mtime format, Content-Range parsing.
#include "store/order_check.hpp"
#include "store/s3_endpoint.hpp"
#include "support/io_runner.hpp"
#include "support/listing.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace ferry::store {
namespace {

using test::drain;
using test::keys_of;

using test::io_runner;
using namespace std::chrono_literals;

// Pages served in order; page i answers continuation token "" (i = 0) or "t<i>".
struct scripted_pages {
  std::vector<s3::list_page> pages;
  std::vector<s3::list_params> asked;
  std::size_t fail_once_at = SIZE_MAX;  // answer this page index with a transient error, once

  static s3::list_page page(std::vector<std::string> keys, bool more, std::string next = {}) {
    s3::list_page p;
    for (auto& k : keys)
      p.objects.push_back(s3::object_summary{std::move(k), 7, "etag-" + std::to_string(keys.size()), "", ""});
    p.is_truncated = more;
    p.next_continuation_token = std::move(next);
    return p;
  }
};

list_page_fn fetch_from(std::shared_ptr<scripted_pages> s) {
  return [s](const s3::list_params& p) -> asio::awaitable<result<s3::list_page>> {
    s->asked.push_back(p);
    std::size_t i = 0;
    if (!p.continuation_token.empty()) i = std::stoul(p.continuation_token.substr(1));
    if (i == s->fail_once_at) {
      s->fail_once_at = SIZE_MAX;
      auto e = s3::local_error("InternalError", "scripted failure");
      e.retryable = true;
      co_return e;
    }
    if (i >= s->pages.size()) co_return s3::local_error("TestError", "no such page");
    co_return s->pages[i];
  };
}

TEST(StoreS3Lister, StripsThePrefixAndFollowsContinuationTokens) {
  io_runner io;
  auto s = std::make_shared<scripted_pages>();
  s->pages = {scripted_pages::page({"photos/", "photos/a-b", "photos/a.b"}, true, "t1"),
              scripted_pages::page({"photos/a/b", "photos/a0"}, true, "t2"),
              scripted_pages::page({"photos/\xc3\xa9"}, false)};
  auto l = make_s3_lister(fetch_from(s), "photos/", "remote:bucket/photos/");
  auto pages = io.run(drain(*l));
  ASSERT_TRUE(pages) << pages.error().to_string();
  // The folder marker named like the prefix is no object under it.
  EXPECT_EQ(keys_of(*pages), (std::vector<std::string>{"a-b", "a.b", "a/b", "a0", "\xc3\xa9"}));
  EXPECT_EQ(pages->size(), 3u);
  EXPECT_EQ(pages->at(0).at(0).size, 7u);
  EXPECT_EQ(pages->at(0).at(0).etag, "etag-3");
  EXPECT_FALSE(pages->at(0).at(0).mtime);  // listings carry no mtime; stat() has it
  ASSERT_EQ(s->asked.size(), 3u);
  for (const auto& p : s->asked) EXPECT_EQ(p.prefix, "photos/");
  EXPECT_EQ(s->asked[0].continuation_token, "");
  EXPECT_EQ(s->asked[1].continuation_token, "t1");
  EXPECT_EQ(s->asked[2].continuation_token, "t2");
  // Finished: further calls stay empty without asking again.
  auto again = io.run(l->next());
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(s->asked.size(), 3u);
}

TEST(StoreS3Lister, DetectsKeysOutOfOrderWithinAPage) {
  io_runner io;
  auto s = std::make_shared<scripted_pages>();
  // A directory-walk order, as s3rver without the strict wrapper lists.
  s->pages = {scripted_pages::page({"a/b", "a-b"}, false)};
  auto l = make_s3_lister(fetch_from(s), "", "remote:bucket/");
  auto pages = io.run(drain(*l));
  ASSERT_FALSE(pages);
  EXPECT_EQ(pages.error().code, "ListingOutOfOrder");
  EXPECT_FALSE(pages.error().retryable);
  EXPECT_NE(pages.error().message.find("a-b"), std::string::npos) << pages.error().message;
  EXPECT_NE(pages.error().message.find("remote:bucket/"), std::string::npos) << pages.error().message;
}

TEST(StoreS3Lister, DetectsKeysOutOfOrderAcrossPagesAndRepeats) {
  io_runner io;
  {
    auto s = std::make_shared<scripted_pages>();
    s->pages = {scripted_pages::page({"b", "c"}, true, "t1"), scripted_pages::page({"a"}, false)};
    auto l = make_s3_lister(fetch_from(s), "", "x");
    auto first = io.run(l->next());
    ASSERT_TRUE(first);  // the first page alone is fine
    EXPECT_EQ(first->size(), 2u);
    auto second = io.run(l->next());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, "ListingOutOfOrder");
  }
  {
    auto s = std::make_shared<scripted_pages>();
    s->pages = {scripted_pages::page({"a", "b"}, true, "t1"), scripted_pages::page({"b", "c"}, false)};
    auto l = make_s3_lister(fetch_from(s), "", "x");
    auto pages = io.run(drain(*l));
    ASSERT_FALSE(pages);
    EXPECT_EQ(pages.error().code, "ListingOutOfOrder");
    EXPECT_NE(pages.error().message.find("repeats"), std::string::npos);
  }
}

TEST(StoreS3Lister, ComparesBytesAsUnsigned) {
  io_runner io;
  auto s = std::make_shared<scripted_pages>();
  // '~' is 0x7E; UTF-8 lead bytes (0xC3, 0xE6) and 0xFF sort after it, as S3 lists them.
  s->pages = {scripted_pages::page({"a~", "a\xc3\xa9", "a\xe6\x97\xa5", "a\xff"}, false)};
  auto ok = io.run(drain(*make_s3_lister(fetch_from(s), "", "x")));
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ(keys_of(*ok).size(), 4u);

  s->pages = {scripted_pages::page({"a\xc3\xa9", "a~"}, false)};
  auto bad = io.run(drain(*make_s3_lister(fetch_from(s), "", "x")));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "ListingOutOfOrder");

  EXPECT_TRUE(key_less("a~", "a\xc3\xa9"));
  EXPECT_TRUE(key_less("a", "a\x01"));
  EXPECT_TRUE(key_less("a-b", "a/b"));
  EXPECT_TRUE(key_less("a/b", "a0"));
  EXPECT_FALSE(key_less("a", "a"));
  EXPECT_TRUE(key_less("", "a"));
}

TEST(StoreS3Lister, SkipsEmptyPagesAndResumesAfterAFailedPage) {
  io_runner io;
  auto s = std::make_shared<scripted_pages>();
  s->pages = {scripted_pages::page({"a"}, true, "t1"), scripted_pages::page({}, true, "t2"),
              scripted_pages::page({"b", "c"}, true, "t3"), scripted_pages::page({}, false)};
  s->fail_once_at = 2;
  auto l = make_s3_lister(fetch_from(s), "", "x");
  auto first = io.run(l->next());
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), 1u);
  auto failed = io.run(l->next());  // the empty page is skipped, then page 2 fails
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, "InternalError");
  auto retried = io.run(l->next());  // the caller's retry picks up at the same page
  ASSERT_TRUE(retried) << retried.error().to_string();
  ASSERT_EQ(retried->size(), 2u);
  EXPECT_EQ(retried->at(0).key, "b");
  auto end = io.run(l->next());
  ASSERT_TRUE(end);
  EXPECT_TRUE(end->empty());
}

TEST(StoreS3Lister, RefusesBrokenPagination) {
  io_runner io;
  for (auto page : {scripted_pages::page({"a"}, true, ""), scripted_pages::page({"a"}, true, "t0")}) {
    auto s = std::make_shared<scripted_pages>();
    s->pages = {page, scripted_pages::page({"b"}, false)};
    auto pages = io.run(drain(*make_s3_lister(fetch_from(s), "", "x")));
    ASSERT_FALSE(pages);
    EXPECT_EQ(pages.error().code, "InvalidResponse");
  }
  auto s = std::make_shared<scripted_pages>();
  s->pages = {scripted_pages::page({"other/a"}, false)};
  auto outside = io.run(drain(*make_s3_lister(fetch_from(s), "mine/", "x")));
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, "InvalidResponse");
}

TEST(StoreOrderCheck, AcceptsStrictlyIncreasingKeysOnly) {
  order_check c;
  EXPECT_TRUE(c.next("a", "w"));
  EXPECT_TRUE(c.next("a-b", "w"));
  EXPECT_TRUE(c.next("a/b", "w"));
  EXPECT_EQ(c.last(), "a/b");
  auto repeat = c.next("a/b", "w");
  ASSERT_FALSE(repeat);
  EXPECT_EQ(repeat.error().code, "ListingOutOfOrder");
  EXPECT_FALSE(c.next("a.b", "w"));
  EXPECT_EQ(c.last(), "a/b");  // a refused key is not remembered
  EXPECT_TRUE(c.next("a0", "w"));
}

TEST(StoreS3Mtime, RcloneFormatRoundTrips) {
  using std::chrono::system_clock;
  const auto t = system_clock::time_point(std::chrono::seconds(1'700'000'000) + std::chrono::nanoseconds(123'456'789));
  EXPECT_EQ(format_rclone_mtime(t), "1700000000.123456789");
  EXPECT_EQ(parse_rclone_mtime("1700000000.123456789"), t);
  EXPECT_EQ(format_rclone_mtime(system_clock::time_point(std::chrono::seconds(1'700'000'000))), "1700000000");
  EXPECT_EQ(format_rclone_mtime(system_clock::time_point(std::chrono::milliseconds(1'500))), "1.5");
  EXPECT_EQ(format_rclone_mtime(system_clock::time_point(-std::chrono::milliseconds(1'500))), "-1.5");
  EXPECT_EQ(parse_rclone_mtime("-1.5"), system_clock::time_point(-std::chrono::milliseconds(1'500)));
  EXPECT_EQ(parse_rclone_mtime("1700000000"), system_clock::time_point(std::chrono::seconds(1'700'000'000)));
  EXPECT_EQ(parse_rclone_mtime("1700000000.5"),
            system_clock::time_point(std::chrono::seconds(1'700'000'000) + std::chrono::milliseconds(500)));
  // Digits past nanoseconds (a float printed in full) are dropped.
  EXPECT_EQ(parse_rclone_mtime("1.1234567891234"),
            system_clock::time_point(std::chrono::seconds(1) + std::chrono::nanoseconds(123'456'789)));
  for (const char* bad : {"", "abc", "1.", ".5", "1.2.3", "1e9", " 1", "1 ", "-", "99999999999999999999", "1.x"})
    EXPECT_FALSE(parse_rclone_mtime(bad)) << bad;
}

TEST(StoreS3ContentRange, ParsesWhatS3Sends) {
  auto cr = parse_content_range("bytes 0-99/1000");
  ASSERT_TRUE(cr);
  EXPECT_EQ(cr->first, 0u);
  EXPECT_EQ(cr->last, 99u);
  EXPECT_EQ(cr->total, 1000u);
  EXPECT_TRUE(parse_content_range("bytes 999-999/1000"));
  for (const char* bad : {"", "bytes */1000", "bytes 0-99/*", "bytes 5-4/10", "bytes 0-10/10", "items 0-1/2",
                          "bytes 0-1/2x", "bytes -1/2"})
    EXPECT_FALSE(parse_content_range(bad)) << bad;
}

}  // namespace
}  // namespace ferry::store
