// The S3 endpoint's pieces that need no server: the lister on scripted ListObjectsV2 pages (prefix
// stripping, continuation, order checking, LastModified), ListParts paging and DeleteObjects batching
// on scripted answers, rclone's mtime format, ISO 8601 and Content-Range parsing.
#include "store/order_check.hpp"
#include "store/s3_endpoint.hpp"
#include "support/io_runner.hpp"
#include "support/listing.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
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

TEST(StoreS3Lister, FillsLastModifiedAndSkipsOneThatDoesNotParse) {
  io_runner io;
  auto s = std::make_shared<scripted_pages>();
  auto page = scripted_pages::page({"a", "b", "c"}, false);
  page.objects[0].last_modified = "2026-11-23T16:30:00.000Z";
  page.objects[1].last_modified = "yesterday";
  page.objects[2].last_modified = "";
  s->pages = {page};
  auto pages = io.run(drain(*make_s3_lister(fetch_from(s), "", "x")));
  ASSERT_TRUE(pages) << pages.error().to_string();
  ASSERT_EQ(keys_of(*pages), (std::vector<std::string>{"a", "b", "c"}));
  const auto& objects = pages->at(0);
  using namespace std::chrono;
  ASSERT_TRUE(objects[0].last_modified);
  EXPECT_EQ(*objects[0].last_modified, sys_days(2026y / November / 23) + 16h + 30min);
  EXPECT_FALSE(objects[0].mtime);  // Last-Modified is no mtime
  EXPECT_FALSE(objects[1].last_modified);
  EXPECT_FALSE(objects[2].last_modified);
}

TEST(StoreS3Iso8601, ParsesS3TimestampsAndRefusesTheRest) {
  using namespace std::chrono;
  const auto base = sys_days(2026y / November / 23) + 16h + 30min;
  EXPECT_EQ(parse_iso8601("2026-11-23T16:30:00.000Z"), base);
  EXPECT_EQ(parse_iso8601("2026-11-23T16:30:00Z"), base);
  EXPECT_EQ(parse_iso8601("2026-11-23t16:30:00z"), base);
  EXPECT_EQ(parse_iso8601("2026-11-23T16:30:00.5Z"), base + 500ms);
  EXPECT_EQ(parse_iso8601("2026-11-23T16:30:00.123456789Z"), base + 123'456'789ns);
  EXPECT_EQ(parse_iso8601("2026-11-23T16:30:00.1234567891Z"), base + 123'456'789ns);  // past ns: dropped
  EXPECT_EQ(parse_iso8601("2026-11-23T18:30:00+02:00"), base);
  EXPECT_EQ(parse_iso8601("2026-11-23T14:00:00-02:30"), base);
  EXPECT_EQ(parse_iso8601("1970-01-01T00:00:00.000Z"), system_clock::time_point{});
  EXPECT_EQ(parse_iso8601("2024-02-29T00:00:00Z"), sys_days(2024y / February / 29));
  for (const char* bad :
       {"", "2026-11-23", "2026-11-23T16:30:00", "2026-11-23T16:30:00.Z", "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T16:60:00Z", "2026-11-23 16:30:00Z",
        "2026-11-23T16:30:00.000", "2026-11-23T16:30:00+0200", "2026-11-23T16:30:00.000ZZ", "20261123T163000Z",
        "2026-1a-23T16:30:00Z", "Mon, 23 Nov 2026 16:30:00 GMT"})
    EXPECT_FALSE(parse_iso8601(bad)) << bad;
  EXPECT_FALSE(parse_iso8601("2026-11-23T16:30:00." + std::string(100, '1') + "Z"));  // bounded input
}

// ListParts pages served by part-number marker: page i answers marker markers[i].
struct scripted_parts {
  std::vector<s3::parts_page> pages;
  std::vector<int> markers;  // the marker each page answers
  std::vector<int> asked;

  static s3::parts_page page(std::vector<int> numbers, bool more, int next = 0) {
    s3::parts_page p;
    for (int n : numbers) p.parts.push_back(s3::part_info{n, "etag" + std::to_string(n), 5u << 20});
    p.is_truncated = more;
    p.next_part_number_marker = next;
    return p;
  }
};

list_parts_fn parts_from(std::shared_ptr<scripted_parts> s) {
  return [s](int marker) -> asio::awaitable<result<s3::parts_page>> {
    s->asked.push_back(marker);
    for (std::size_t i = 0; i < s->markers.size(); ++i)
      if (s->markers[i] == marker) co_return s->pages[i];
    co_return s3::local_error("NoSuchUpload", "no page for this marker");
  };
}

TEST(StoreS3Parts, FollowsPartNumberMarkersAcrossPages) {
  io_runner io;
  auto s = std::make_shared<scripted_parts>();
  s->pages = {scripted_parts::page({1, 2, 3}, true, 3), scripted_parts::page({5, 8}, true, 8),
              scripted_parts::page({}, false)};
  s->markers = {0, 3, 8};
  auto parts = io.run(list_all_parts(parts_from(s), "upload"));
  ASSERT_TRUE(parts) << parts.error().to_string();
  std::vector<int> numbers;
  for (const auto& p : *parts) numbers.push_back(p.part_number);
  EXPECT_EQ(numbers, (std::vector<int>{1, 2, 3, 5, 8}));
  EXPECT_EQ(parts->at(3).etag, "etag5");
  EXPECT_EQ(parts->at(3).size, 5u << 20);
  EXPECT_EQ(s->asked, (std::vector<int>{0, 3, 8}));
}

TEST(StoreS3Parts, RefusesPagesThatRepeatOrDoNotAdvanceAndPassesErrorsOn) {
  io_runner io;
  const auto run = [&](std::vector<s3::parts_page> pages, std::vector<int> markers) {
    auto s = std::make_shared<scripted_parts>();
    s->pages = std::move(pages);
    s->markers = std::move(markers);
    return io.run(list_all_parts(parts_from(s), "upload u1"));
  };
  // A marker that does not advance would loop forever.
  auto stuck = run({scripted_parts::page({1}, true, 0)}, {0});
  ASSERT_FALSE(stuck);
  EXPECT_EQ(stuck.error().code, "InvalidResponse");
  EXPECT_NE(stuck.error().message.find("upload u1"), std::string::npos);
  // A marker behind the parts already given repeats them.
  auto repeat = run({scripted_parts::page({1, 2}, true, 1), scripted_parts::page({2, 3}, false)}, {0, 1});
  ASSERT_FALSE(repeat);
  EXPECT_EQ(repeat.error().code, "InvalidResponse");
  // Out of order within a page, and beyond S3's 10,000 parts.
  EXPECT_FALSE(run({scripted_parts::page({2, 1}, false)}, {0}));
  EXPECT_FALSE(run({scripted_parts::page({10001}, false)}, {0}));
  EXPECT_FALSE(run({scripted_parts::page({1}, true, 10000)}, {0}));
  // The server's error is the caller's (NoSuchUpload: the upload is gone).
  auto gone = run({}, {});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, "NoSuchUpload");
  // The largest upload S3 allows, page by page.
  std::vector<s3::parts_page> pages;
  std::vector<int> markers;
  for (int start = 1; start <= 10000; start += 1000) {
    std::vector<int> numbers;
    for (int n = start; n < start + 1000; ++n) numbers.push_back(n);
    const bool more = start + 1000 <= 10000;
    pages.push_back(scripted_parts::page(numbers, more, more ? start + 999 : 0));
    markers.push_back(start - 1);
  }
  auto all = run(pages, markers);
  ASSERT_TRUE(all) << all.error().to_string();
  EXPECT_EQ(all->size(), 10000u);
  EXPECT_EQ(all->back().part_number, 10000);
}

// DeleteObjects answered from a script: records each batch; keys in `refuse` come back as errors,
// keys in `missing` as S3's NoSuchKey; the batch numbered `fail_batch` fails as a whole.
struct scripted_deletes {
  std::vector<std::vector<std::string>> batches;
  std::vector<std::string> refuse, missing;
  std::size_t fail_batch = SIZE_MAX;
};

delete_batch_fn deletes_to(std::shared_ptr<scripted_deletes> s) {
  return [s](const std::vector<std::string>& keys) -> asio::awaitable<result<s3::delete_result>> {
    s->batches.push_back(keys);
    if (s->batches.size() - 1 == s->fail_batch) {
      auto e = s3::local_error("SlowDown", "scripted failure");
      e.http_status = 503;
      e.retryable = true;
      co_return e;
    }
    s3::delete_result r;
    for (const auto& k : keys) {
      if (std::find(s->refuse.begin(), s->refuse.end(), k) != s->refuse.end())
        r.errors.push_back({k, "AccessDenied", "Access Denied"});
      else if (std::find(s->missing.begin(), s->missing.end(), k) != s->missing.end())
        r.errors.push_back({k, "NoSuchKey", "The specified key does not exist."});
      else
        r.deleted.push_back(k);
    }
    co_return r;
  };
}

TEST(StoreS3Deletes, BatchesOfAtMostAThousandKeysUnderThePrefix) {
  io_runner io;
  auto s = std::make_shared<scripted_deletes>();
  std::vector<std::string> keys;
  for (int i = 0; i < 2500; ++i) keys.push_back("k" + std::to_string(i));
  s->refuse = {"pre/k7", "pre/k1500"};
  s->missing = {"pre/k8"};
  auto failed = io.run(delete_in_batches(deletes_to(s), "pre/", keys));
  ASSERT_TRUE(failed) << failed.error().to_string();
  ASSERT_EQ(s->batches.size(), 3u);
  EXPECT_EQ(s->batches[0].size(), 1000u);
  EXPECT_EQ(s->batches[1].size(), 1000u);
  EXPECT_EQ(s->batches[2].size(), 500u);
  EXPECT_EQ(s->batches[0].front(), "pre/k0");
  EXPECT_EQ(s->batches[2].back(), "pre/k2499");
  // Only the refused keys, relative to the prefix, with S3's code; a missing key counts as deleted.
  ASSERT_EQ(failed->size(), 2u);
  EXPECT_EQ(failed->at(0).first, "k7");
  EXPECT_EQ(failed->at(0).second.code, "AccessDenied");
  EXPECT_FALSE(failed->at(0).second.retryable);
  EXPECT_EQ(failed->at(1).first, "k1500");

  // Exactly 1000 keys are one request; none are none.
  auto one = std::make_shared<scripted_deletes>();
  keys.resize(1000);
  ASSERT_TRUE(io.run(delete_in_batches(deletes_to(one), "", keys)));
  EXPECT_EQ(one->batches.size(), 1u);
  auto none = std::make_shared<scripted_deletes>();
  auto empty = io.run(delete_in_batches(deletes_to(none), "", {}));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_TRUE(none->batches.empty());
}

TEST(StoreS3Deletes, InvalidKeysFailAloneAndAFailedRequestFailsTheCall) {
  io_runner io;
  auto s = std::make_shared<scripted_deletes>();
  const std::string too_long(1021, 'x');  // with "pre/", over S3's 1024 bytes
  auto failed = io.run(delete_in_batches(deletes_to(s), "pre/", {"ok", "", too_long}));
  ASSERT_TRUE(failed) << failed.error().to_string();
  ASSERT_EQ(failed->size(), 2u);
  EXPECT_EQ(failed->at(0).first, "");
  EXPECT_EQ(failed->at(0).second.code, "InvalidKey");
  EXPECT_EQ(failed->at(1).first, too_long);
  EXPECT_EQ(failed->at(1).second.code, "InvalidKey");
  ASSERT_EQ(s->batches.size(), 1u);
  EXPECT_EQ(s->batches[0], std::vector<std::string>{"pre/ok"});

  auto broken = std::make_shared<scripted_deletes>();
  broken->fail_batch = 1;
  std::vector<std::string> keys(1500, "k");
  auto whole = io.run(delete_in_batches(deletes_to(broken), "", keys));
  ASSERT_FALSE(whole);
  EXPECT_EQ(whole.error().code, "SlowDown");
  EXPECT_TRUE(whole.error().retryable);
  EXPECT_EQ(broken->batches.size(), 2u);
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
