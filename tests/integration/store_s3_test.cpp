// lib/store's S3 endpoint against a real s3rver (SigV4, Content-MD5, listing order and multipart
// checked by tests/support/s3rver_strict.js), over plain HTTP and TLS; rclone reads and writes the
// same mtimes. DeleteObjects of more than 1000 keys (slow on s3rver) and ListParts paging run against
// bench/synthetic-s3 too.
#include "s3/client.hpp"
#include "store/s3_endpoint.hpp"
#include "support/io_runner.hpp"
#include "support/listing.hpp"
#include "support/pattern.hpp"
#include "support/process.hpp"
#include "support/s3rver.hpp"
#include "support/temp_dir.hpp"
#include "util/hash.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

namespace ferry::store {
namespace {

using test::keys_of;
using test::list_pages;
using test::pattern;

using test::io_runner;
using test::s3rver;
using test::s3rver_options;
using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;

std::string md5_hex(std::string_view data) { return util::to_hex(util::md5(data)); }
std::string md5_b64(std::string_view data) { return util::base64_encode(util::md5(data)); }

http::body_source string_source(std::shared_ptr<const std::string> s) {
  auto off = std::make_shared<std::size_t>(0);
  return [s, off](std::span<char> buf) -> asio::awaitable<http::result<std::size_t>> {
    const std::size_t n = std::min(buf.size(), s->size() - *off);
    std::memcpy(buf.data(), s->data() + *off, n);
    *off += n;
    co_return n;
  };
}

// The reader's info and every byte.
struct read_back {
  object_info info;
  std::string data;
};

asio::awaitable<result<read_back>> read_all(endpoint& ep, std::string key, std::optional<byte_range> range,
                                            std::string if_match) {
  auto r = co_await ep.read(key, range, if_match);
  if (!r) co_return r.error();
  read_back out{(*r)->info(), {}};
  std::array<char, 65536> buf{};
  for (;;) {
    auto n = co_await (*r)->read_some(buf);
    if (!n) co_return n.error();
    if (*n == 0) break;
    out.data.append(buf.data(), *n);
  }
  co_return out;
}

asio::awaitable<result<write_result>> write_string(endpoint& ep, std::string key, std::string data,
                                                   write_options opts) {
  auto bytes = std::make_shared<const std::string>(std::move(data));
  auto body = string_source(bytes);
  co_return co_await ep.write(key, std::move(body), bytes->size(), opts);
}

s3::remote_config remote_for(const s3rver& s) {
  s3::remote_config r;
  r.name = "test";
  r.endpoint = s.endpoint();
  r.region = s.region();
  r.path_style = true;
  r.credentials.access_key_id = std::string(s3rver::access_key_id);
  r.credentials.secret_access_key = std::string(s3rver::secret_access_key);
  r.ca_file = s.ca_file().string();
  return r;
}

class StoreS3Test : public ::testing::TestWithParam<bool> {
 protected:
  explicit StoreS3Test(bool strict = true) : server_(s3rver_options{.tls = GetParam(), .strict = strict}) {}

  void SetUp() override {
    auto r = remote_for(server_);
    http::pool_config pc;
    pc.max_connections = 16;
    pc.tls.ca_file = r.ca_file;
    auto http = std::make_shared<http::client>(io_.executor(), pc);
    s3::credentials c{r.credentials.access_key_id, r.credentials.secret_access_key, ""};
    s3_ = std::make_shared<s3::client>(std::move(http), std::move(r), std::move(c));
    auto made = io_.run(s3_->create_bucket(bucket_));
    ASSERT_TRUE(made) << made.error().to_string() << "\n" << server_.read_log();
    ep_ = make_s3_endpoint(s3_, bucket_, "pre/");
  }

  result<s3::put_result> put(std::string key, std::string data, s3::put_params p = {}) {
    return io_.run(s3_->put_object(bucket_, key, s3::body::from_string(std::move(data)), p));
  }
  result<write_result> write(std::string key, std::string data, write_options opts = {}) {
    return io_.run(write_string(*ep_, std::move(key), std::move(data), std::move(opts)));
  }
  result<read_back> read(std::string key, std::optional<byte_range> range = std::nullopt, std::string if_match = {}) {
    return io_.run(read_all(*ep_, std::move(key), range, std::move(if_match)));
  }

  io_runner io_;
  s3rver server_;
  std::shared_ptr<s3::client> s3_;
  std::string bucket_ = "ferry-store";
  std::unique_ptr<endpoint> ep_;
};

INSTANTIATE_TEST_SUITE_P(Transport, StoreS3Test, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "tls" : "http"; });

TEST_P(StoreS3Test, DescribesItselfAndNormalizesThePrefix) {
  EXPECT_EQ(ep_->describe(), "test:ferry-store/pre/");
  EXPECT_FALSE(ep_->is_local());
  EXPECT_EQ(make_s3_endpoint(s3_, bucket_, "pre")->describe(), "test:ferry-store/pre/");
  EXPECT_EQ(make_s3_endpoint(s3_, bucket_, "")->describe(), "test:ferry-store/");
}

TEST_P(StoreS3Test, ListStripsThePrefixAndIsInByteOrder) {
  std::vector<std::string> under = {"a-b", "a.b", "a/b", "a/b/c", "a0", "ab", "\xc3\xa9t\xc3\xa9", "z z", "~"};
  for (const auto& k : under) ASSERT_TRUE(put("pre/" + k, k));
  for (const auto* k : {"pre", "prefix", "other/x", "pre/"}) ASSERT_TRUE(put(k, "x"));  // not listed
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_TRUE(pages) << pages.error().to_string();
  std::sort(under.begin(), under.end());
  EXPECT_EQ(keys_of(*pages), under);
  for (const auto& p : *pages)
    for (const auto& o : p) {
      EXPECT_EQ(o.size, o.key.size()) << o.key;
      EXPECT_EQ(o.etag, md5_hex(o.key)) << o.key;
    }
  // The whole bucket, without a prefix.
  auto all = io_.run(list_pages(*make_s3_endpoint(s3_, bucket_, "")));
  ASSERT_TRUE(all) << all.error().to_string();
  EXPECT_EQ(keys_of(*all).size(), under.size() + 4);
}

TEST_P(StoreS3Test, ListPagesThroughMoreThanAThousandKeys) {
  // Puts in parallel: one at a time is slow against s3rver.
  std::vector<std::string> keys;
  for (int i = 0; i < 1003; ++i) keys.push_back("k/" + std::to_string(i));
  // The spawned calls hold references to their key and params: these outlive them.
  std::vector<std::string> full_keys;
  for (const auto& k : keys) full_keys.push_back("pre/" + k);
  const s3::put_params params;
  std::vector<std::future<result<s3::put_result>>> puts;
  for (std::size_t start = 0; start < keys.size(); start += 16) {
    puts.clear();
    for (std::size_t i = start; i < std::min(keys.size(), start + 16); ++i) {
      auto body = s3::body::from_string("x");
      puts.push_back(
          asio::co_spawn(io_.context(), s3_->put_object(bucket_, full_keys[i], body, params), asio::use_future));
    }
    for (auto& f : puts) {
      ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
      auto r = f.get();
      ASSERT_TRUE(r) << r.error().to_string();
    }
  }
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_TRUE(pages) << pages.error().to_string();
  ASSERT_EQ(pages->size(), 2u);
  EXPECT_EQ(pages->at(0).size(), 1000u);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys_of(*pages), keys);
}

TEST_P(StoreS3Test, StatGivesSizeEtagMetadataAndTheRcloneMtime) {
  const auto data = pattern(4321, 2);
  const auto mtime = sys_clock::time_point(std::chrono::seconds(1'600'000'000) + std::chrono::nanoseconds(987'654'321));
  write_options o;
  o.mtime = mtime;
  o.metadata.content_type = "text/plain";
  o.metadata.cache_control = "max-age=60";
  o.metadata.user["origin"] = "ferry";
  auto w = write("dir/with-mtime.txt", data, o);
  ASSERT_TRUE(w) << w.error().to_string();
  EXPECT_EQ(w->etag, md5_hex(data));

  auto s = io_.run(ep_->stat("dir/with-mtime.txt"));
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->key, "dir/with-mtime.txt");
  EXPECT_EQ(s->size, data.size());
  EXPECT_EQ(s->etag, md5_hex(data));
  EXPECT_EQ(s->mtime, mtime);
  EXPECT_EQ(s->metadata.content_type, "text/plain");
  EXPECT_EQ(s->metadata.cache_control, "max-age=60");
  EXPECT_EQ(s->metadata.user["origin"], "ferry");
  EXPECT_EQ(s->metadata.user["mtime"], "1600000000.987654321");

  // Without x-amz-meta-mtime: Last-Modified, which is about now.
  ASSERT_TRUE(put("pre/plain", "x"));
  auto plain = io_.run(ep_->stat("plain"));
  ASSERT_TRUE(plain) << plain.error().to_string();
  ASSERT_TRUE(plain->mtime);
  EXPECT_LT(std::chrono::abs(sys_clock::now() - *plain->mtime), 10min);

  auto missing = io_.run(ep_->stat("absent"));
  ASSERT_FALSE(missing);
  EXPECT_TRUE(is_not_found(missing.error())) << missing.error().to_string();
  EXPECT_EQ(missing.error().code, "NoSuchKey");
  EXPECT_FALSE(missing.error().retryable);
  auto bad_key = io_.run(ep_->stat(""));
  ASSERT_FALSE(bad_key);
  EXPECT_EQ(bad_key.error().code, "InvalidKey");
}

TEST_P(StoreS3Test, MtimesAgreeWithRclone) {
  // rclone -> ferry: rclone stores a local file's mtime as x-amz-meta-mtime; stat() reads it.
  test::temp_dir local("ferry-store-rclone");
  const auto file = local / "from-rclone.txt";
  std::ofstream(file) << "rclone wrote this";
  const timespec times[2] = {{0, UTIME_OMIT}, {1'500'000'000, 250'000'000}};
  ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
  auto cp = server_.rclone({"copyto", file.string(), "s3rver:" + bucket_ + "/pre/from-rclone.txt"});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  auto s = io_.run(ep_->stat("from-rclone.txt"));
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->mtime, sys_clock::time_point(std::chrono::seconds(1'500'000'000) + std::chrono::milliseconds(250)))
      << "x-amz-meta-mtime: " << s->metadata.user["mtime"];

  // ferry -> rclone: rclone reports the mtime ferry wrote.
  write_options o;
  o.mtime = sys_clock::time_point(std::chrono::seconds(1'600'000'000) + std::chrono::milliseconds(500));
  ASSERT_TRUE(write("from-ferry.txt", "ferry wrote this", o));
  ::setenv("TZ", "UTC", 1);  // rclone prints times in the local zone
  auto ls = server_.rclone({"lsjson", "s3rver:" + bucket_ + "/pre/from-ferry.txt"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("\"ModTime\":\"2020-09-13T12:26:40.500000000Z\""), std::string::npos) << ls.out;
}

TEST_P(StoreS3Test, RangedReadWithIfMatchAndPreconditionFailedAfterOverwrite) {
  const auto data = pattern(300'000, 5);
  ASSERT_TRUE(write("ranged.bin", data));
  const auto etag = md5_hex(data);

  auto mid = read("ranged.bin", byte_range{1000, 1999}, etag);
  ASSERT_TRUE(mid) << mid.error().to_string();
  EXPECT_EQ(mid->data, data.substr(1000, 1000));
  EXPECT_EQ(mid->info.size, data.size());  // the whole object's size, from Content-Range
  EXPECT_EQ(mid->info.etag, etag);
  EXPECT_EQ(mid->info.key, "ranged.bin");

  auto tail = read("ranged.bin", byte_range{299'990, 400'000});  // shortened by the server
  ASSERT_TRUE(tail) << tail.error().to_string();
  EXPECT_EQ(tail->data, data.substr(299'990));
  EXPECT_EQ(tail->info.size, data.size());

  auto whole = read("ranged.bin");
  ASSERT_TRUE(whole);
  EXPECT_EQ(md5_hex(whole->data), etag);
  EXPECT_EQ(whole->info.size, data.size());

  ASSERT_TRUE(write("ranged.bin", pattern(300'000, 6)));
  auto stale = read("ranged.bin", byte_range{1000, 1999}, etag);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().http_status, 412u);
  EXPECT_EQ(stale.error().code, "PreconditionFailed");
  EXPECT_FALSE(stale.error().retryable);

  auto missing = read("absent");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(is_not_found(missing.error()));
}

TEST_P(StoreS3Test, WriteStreamsWithDigestsMetadataAndMtime) {
  const auto data = pattern(2 * 1024 * 1024 + 3, 8);
  write_options o;
  o.content_md5 = md5_b64(data);
  util::crc32c_hasher crc;
  crc.update(std::string_view(data));
  o.checksum_crc32c = util::base64_encode(crc.big_endian());
  o.mtime = sys_clock::time_point(std::chrono::seconds(1'234'567'890));
  o.metadata.content_type = "application/x-test";
  o.metadata.user["k"] = "v";
  auto w = write("streamed.bin", data, o);
  ASSERT_TRUE(w) << w.error().to_string();
  EXPECT_EQ(w->etag, md5_hex(data));
  auto back = read("streamed.bin");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_TRUE(back->data == data);
  EXPECT_EQ(back->info.mtime, o.mtime);
  EXPECT_EQ(back->info.metadata.content_type, "application/x-test");
  EXPECT_EQ(back->info.metadata.user["k"], "v");
  EXPECT_EQ(back->info.metadata.user["mtime"], "1234567890");

  write_options wrong;
  wrong.content_md5 = md5_b64("not the data");
  auto bad = write("bad-digest.bin", data, wrong);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "BadDigest");
  EXPECT_FALSE(io_.run(ep_->stat("bad-digest.bin")));
}

TEST_P(StoreS3Test, MultipartOfTwoPartsGivesTheBytesAndADashTwoEtag) {
  const auto part1 = std::make_shared<const std::string>(pattern(5 * 1024 * 1024, 21));
  const auto part2 = std::make_shared<const std::string>("!");
  write_options o;
  o.mtime = sys_clock::time_point(std::chrono::seconds(1'650'000'000) + std::chrono::microseconds(1));
  o.metadata.content_type = "application/x-big";
  auto mp = io_.run(ep_->begin_multipart("big/object", o));
  ASSERT_TRUE(mp) << mp.error().to_string();
  auto& w = **mp;
  EXPECT_FALSE(w.id().empty());
  // The second part first, both in flight together.
  auto f2 = asio::co_spawn(io_.context(), w.write_part(2, part1->size(), part2, md5_b64(*part2)), asio::use_future);
  auto f1 = asio::co_spawn(io_.context(), w.write_part(1, 0, part1, md5_b64(*part1)), asio::use_future);
  ASSERT_EQ(f2.wait_for(120s), std::future_status::ready);
  ASSERT_EQ(f1.wait_for(120s), std::future_status::ready);
  auto e2 = f2.get();
  auto e1 = f1.get();
  ASSERT_TRUE(e1) << e1.error().to_string();
  ASSERT_TRUE(e2) << e2.error().to_string();
  EXPECT_EQ(*e1, md5_hex(*part1));
  EXPECT_EQ(*e2, md5_hex(*part2));
  EXPECT_FALSE(io_.run(ep_->stat("big/object")));  // nothing visible before complete

  std::vector<s3::part_info> parts = {{1, *e1, part1->size()}, {2, *e2, part2->size()}};
  auto done = io_.run(w.complete(parts));
  ASSERT_TRUE(done) << done.error().to_string();
  const auto d1 = util::md5(*part1), d2 = util::md5(*part2);
  std::string concat(reinterpret_cast<const char*>(d1.data()), d1.size());
  concat.append(reinterpret_cast<const char*>(d2.data()), d2.size());
  EXPECT_EQ(done->etag, md5_hex(concat) + "-2");

  auto back = read("big/object");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->data.size(), part1->size() + 1);
  EXPECT_TRUE(back->data == *part1 + *part2);
  EXPECT_EQ(back->info.etag, done->etag);
  EXPECT_EQ(back->info.mtime, o.mtime);
  EXPECT_EQ(back->info.metadata.content_type, "application/x-big");
}

TEST_P(StoreS3Test, MultipartAbortRemovesTheUpload) {
  auto mp = io_.run(ep_->begin_multipart("aborted", write_options{}));
  ASSERT_TRUE(mp) << mp.error().to_string();
  auto part = std::make_shared<const std::string>("part one");
  ASSERT_TRUE(io_.run((*mp)->write_part(1, 0, part, md5_b64(*part))));
  auto aborted = io_.run((*mp)->abort());
  ASSERT_TRUE(aborted) << aborted.error().to_string();
  // The upload is gone (s3rver has no ListMultipartUploads): it takes no more parts.
  auto late = io_.run(s3_->upload_part(bucket_, "pre/aborted", (*mp)->id(), 2, s3::body::from_string("x"), ""));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, "NoSuchUpload");
  auto again = io_.run((*mp)->abort());  // already gone is fine
  EXPECT_TRUE(again) << again.error().to_string();
  EXPECT_FALSE(io_.run(ep_->stat("aborted")));
}

TEST_P(StoreS3Test, RemoveDeletesAndIsIdempotent) {
  ASSERT_TRUE(write("doomed", "bye"));
  ASSERT_TRUE(write("kept", "stay"));
  auto removed = io_.run(ep_->remove("doomed"));
  ASSERT_TRUE(removed) << removed.error().to_string();
  EXPECT_FALSE(io_.run(ep_->stat("doomed")));
  EXPECT_TRUE(io_.run(ep_->remove("doomed")));
  EXPECT_TRUE(io_.run(ep_->remove("never-existed")));
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_TRUE(pages);
  EXPECT_EQ(keys_of(*pages), (std::vector<std::string>{"kept"}));
}

TEST_P(StoreS3Test, LastModifiedComesFromListingsHeadAndGet) {
  const auto before = sys_clock::now() - 10min, after = sys_clock::now() + 10min;
  write_options o;
  o.mtime = sys_clock::time_point(std::chrono::seconds(1'000'000'000));  // the file's; not the upload's
  ASSERT_TRUE(write("lm/a", "aaa", o));
  ASSERT_TRUE(put("pre/lm/b", "bbb"));
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_TRUE(pages) << pages.error().to_string();
  ASSERT_EQ(keys_of(*pages), (std::vector<std::string>{"lm/a", "lm/b"}));
  for (const auto& obj : pages->front()) {
    ASSERT_TRUE(obj.last_modified) << obj.key << ": LastModified did not parse";
    EXPECT_GT(*obj.last_modified, before) << obj.key;
    EXPECT_LT(*obj.last_modified, after) << obj.key;
    EXPECT_FALSE(obj.mtime) << obj.key;  // listings still carry no mtime
  }
  auto s = io_.run(ep_->stat("lm/a"));
  ASSERT_TRUE(s) << s.error().to_string();
  ASSERT_TRUE(s->last_modified);
  EXPECT_GT(*s->last_modified, before);
  EXPECT_LT(*s->last_modified, after);
  EXPECT_EQ(s->mtime, o.mtime);  // mtime keeps its meaning: x-amz-meta-mtime first
  // The listing's (milliseconds) and HEAD's (seconds) agree to the second.
  EXPECT_LT(std::chrono::abs(*s->last_modified - *pages->front().front().last_modified), 1s);
  auto r = read("lm/b");
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r->info.last_modified);
  EXPECT_GT(*r->info.last_modified, before);
  EXPECT_LT(*r->info.last_modified, after);
}

TEST_P(StoreS3Test, RemoveManyDeletesTheKeysAndReportsOnlyWhatFailed) {
  for (const auto* k : {"rm/1", "rm/2", "rm/3", "rm/kept"}) ASSERT_TRUE(write(k, k));
  auto failed = io_.run(ep_->remove_many({"rm/1", "rm/3", "rm/never-existed", "", "rm/2"}));
  ASSERT_TRUE(failed) << failed.error().to_string();
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ(failed->front().first, "");
  EXPECT_EQ(failed->front().second.code, "InvalidKey");
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_TRUE(pages) << pages.error().to_string();
  EXPECT_EQ(keys_of(*pages), std::vector<std::string>{"rm/kept"});
  auto none = io_.run(ep_->remove_many({}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreS3Test, AResumedWriterCompletesAnUploadBegunByAnother) {
  const auto part1 = std::make_shared<const std::string>(pattern(5 * 1024 * 1024, 31));
  const auto part2 = std::make_shared<const std::string>(pattern(5 * 1024 * 1024, 32));
  const auto part3 = std::make_shared<const std::string>("the end");
  write_options o;
  o.mtime = sys_clock::time_point(std::chrono::seconds(1'700'000'000));
  std::string id;
  std::vector<s3::part_info> parts;
  {
    // The first writer: two of three parts, then a "crash" (the writer is dropped; the upload stays).
    auto mp = io_.run(ep_->begin_multipart("resumed/obj", o));
    ASSERT_TRUE(mp) << mp.error().to_string();
    id = (*mp)->id();
    auto e1 = io_.run((*mp)->write_part(1, 0, part1, md5_b64(*part1)));
    auto e2 = io_.run((*mp)->write_part(2, part1->size(), part2, md5_b64(*part2)));
    ASSERT_TRUE(e1) << e1.error().to_string();
    ASSERT_TRUE(e2) << e2.error().to_string();
    parts = {{1, *e1, part1->size()}, {2, *e2, part2->size()}};  // what the state database kept
  }
  auto resumed = io_.run(ep_->resume_multipart("resumed/obj", id));
  ASSERT_TRUE(resumed) << resumed.error().to_string();
  auto& w = **resumed;
  EXPECT_EQ(w.id(), id);
  // What the server holds agrees with what the first writer was told.
  auto held = io_.run(w.uploaded_parts());
  ASSERT_TRUE(held) << held.error().to_string();
  ASSERT_EQ(held->size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(held->at(i).part_number, parts[i].part_number);
    EXPECT_EQ(held->at(i).etag, parts[i].etag);
    EXPECT_EQ(held->at(i).size, parts[i].size);
  }
  auto e3 = io_.run(w.write_part(3, part1->size() + part2->size(), part3, md5_b64(*part3)));
  ASSERT_TRUE(e3) << e3.error().to_string();
  parts = *held;
  parts.push_back({3, *e3, part3->size()});
  auto done = io_.run(w.complete(parts));
  ASSERT_TRUE(done) << done.error().to_string();
  EXPECT_TRUE(done->etag.ends_with("-3")) << done->etag;
  auto back = read("resumed/obj");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_TRUE(back->data == *part1 + *part2 + *part3);
  EXPECT_EQ(back->info.mtime, o.mtime);  // the metadata given to begin_multipart survives the resume

  // An upload that is gone: resuming costs no request, the first call says so.
  auto stale = io_.run(ep_->resume_multipart("resumed/obj", id));
  ASSERT_TRUE(stale) << stale.error().to_string();
  auto listed = io_.run((*stale)->uploaded_parts());
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code, "NoSuchUpload");
  auto late = io_.run((*stale)->write_part(4, 0, part3, md5_b64(*part3)));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, "NoSuchUpload");
  auto no_id = io_.run(ep_->resume_multipart("resumed/obj", ""));
  ASSERT_FALSE(no_id);
  EXPECT_EQ(no_id.error().code, "InvalidArgument");
}

TEST_P(StoreS3Test, AbortMultipartEndsAnUploadByIdAndAGoneOneIsFine) {
  auto mp = io_.run(ep_->begin_multipart("abandoned", write_options{}));
  ASSERT_TRUE(mp) << mp.error().to_string();
  auto part = std::make_shared<const std::string>("part one");
  ASSERT_TRUE(io_.run((*mp)->write_part(1, 0, part, md5_b64(*part))));
  const std::string id = (*mp)->id();
  mp->reset();  // the writer is gone (a crash); only the id is left
  auto aborted = io_.run(ep_->abort_multipart("abandoned", id));
  ASSERT_TRUE(aborted) << aborted.error().to_string();
  auto late = io_.run(s3_->upload_part(bucket_, "pre/abandoned", id, 2, s3::body::from_string("x"), ""));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, "NoSuchUpload");
  auto again = io_.run(ep_->abort_multipart("abandoned", id));
  EXPECT_TRUE(again) << again.error().to_string();
  auto unknown = io_.run(ep_->abort_multipart("abandoned", "no-such-upload-id"));
  EXPECT_TRUE(unknown) << unknown.error().to_string();
  EXPECT_FALSE(io_.run(ep_->stat("abandoned")));
}

// s3rver as published lists in directory-walk order: "a/b" (in directory "a") before "a-b".
class StoreS3UnorderedTest : public StoreS3Test {
 protected:
  StoreS3UnorderedTest() : StoreS3Test(/*strict=*/false) {}
};

INSTANTIATE_TEST_SUITE_P(Transport, StoreS3UnorderedTest, ::testing::Values(false),
                         [](const auto& info) { return info.param ? "tls" : "http"; });

TEST_P(StoreS3UnorderedTest, AListingOutOfByteOrderIsDetected) {
  for (const auto* k : {"pre/a-b", "pre/a/b", "pre/a0"}) ASSERT_TRUE(put(k, "x"));
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_FALSE(pages) << "listed in order: " << ::testing::PrintToString(keys_of(*pages));
  EXPECT_EQ(pages.error().code, "ListingOutOfOrder");
  EXPECT_FALSE(pages.error().retryable);
}

#ifdef FERRY_SYNTHETIC_S3_BIN
// bench/synthetic-s3 on a free port with one empty writable bucket "dst"; parts of 64 KiB are
// enough for CompleteMultipartUpload, so a test moves little data.
class synthetic_s3 {
 public:
  synthetic_s3() {
    test::process_options o;
    o.argv = {FERRY_SYNTHETIC_S3_BIN, "--port", "0", "--threads", "1", "--writable", "dst", "--min-part-size", "64KiB"};
    o.stdout_path = dir_ / "out.log";
    o.stderr_path = dir_ / "err.log";
    child_.emplace(o);
    constexpr std::string_view listening = "synthetic-s3 listening on 127.0.0.1:";
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      const auto out = slurp(dir_ / "out.log");
      if (auto at = out.find(listening); at != std::string::npos && out.find('\n', at) != std::string::npos) {
        endpoint_ = "http://127.0.0.1:" + std::to_string(std::stoi(out.substr(at + listening.size())));
        return;
      }
      if (!child_->running() || std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("synthetic-s3 did not start:\n" + slurp(dir_ / "err.log"));
      std::this_thread::sleep_for(10ms);  // polling a child's output file: nothing to wait on
    }
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  static std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  test::temp_dir dir_{"ferry-store-syn"};
  std::optional<test::process> child_;
  std::string endpoint_;
};

class StoreS3SyntheticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s3::remote_config r;
    r.name = "syn";
    r.endpoint = server_.endpoint();
    r.path_style = true;
    r.credentials.access_key_id = "AKSYNTH";
    r.credentials.secret_access_key = "SECRETSYNTH";
    http::pool_config pc;
    pc.max_connections = 8;
    auto http = std::make_shared<http::client>(io_.executor(), pc);
    s3::credentials c{r.credentials.access_key_id, r.credentials.secret_access_key, ""};
    s3_ = std::make_shared<s3::client>(std::move(http), std::move(r), std::move(c));
    ep_ = make_s3_endpoint(s3_, "dst", "pre/");
  }

  io_runner io_;
  synthetic_s3 server_;
  std::shared_ptr<s3::client> s3_;
  std::unique_ptr<endpoint> ep_;
};

std::vector<int> numbers_of(const std::vector<s3::part_info>& parts) {
  std::vector<int> out;
  for (const auto& p : parts) out.push_back(p.part_number);
  return out;
}

TEST_F(StoreS3SyntheticTest, UploadedPartsListsWhatAResumedWriterNeedNotSendAgain) {
  std::vector<std::shared_ptr<const std::string>> data;
  for (int i = 0; i < 3; ++i) data.push_back(std::make_shared<const std::string>(pattern(64 * 1024, 40 + i)));
  std::string id;
  {
    auto mp = io_.run(ep_->begin_multipart("resume/obj", write_options{}));
    ASSERT_TRUE(mp) << mp.error().to_string();
    id = (*mp)->id();
    for (int i = 0; i < 2; ++i) {
      auto e = io_.run((*mp)->write_part(i + 1, i * data[0]->size(), data[i], md5_b64(*data[i])));
      ASSERT_TRUE(e) << e.error().to_string();
    }
  }
  auto resumed = io_.run(ep_->resume_multipart("resume/obj", id));
  ASSERT_TRUE(resumed) << resumed.error().to_string();
  auto& w = **resumed;
  auto held = io_.run(w.uploaded_parts());
  ASSERT_TRUE(held) << held.error().to_string();
  EXPECT_EQ(numbers_of(*held), (std::vector<int>{1, 2}));
  for (const auto& p : *held) {
    EXPECT_EQ(p.etag, md5_hex(*data[p.part_number - 1])) << p.part_number;
    EXPECT_EQ(p.size, data[0]->size()) << p.part_number;
  }
  auto e3 = io_.run(w.write_part(3, 2 * data[0]->size(), data[2], md5_b64(*data[2])));
  ASSERT_TRUE(e3) << e3.error().to_string();
  auto all = io_.run(w.uploaded_parts());
  ASSERT_TRUE(all) << all.error().to_string();
  ASSERT_EQ(numbers_of(*all), (std::vector<int>{1, 2, 3}));
  auto done = io_.run(w.complete(*all));
  ASSERT_TRUE(done) << done.error().to_string();
  EXPECT_TRUE(done->etag.ends_with("-3")) << done->etag;
  auto s = io_.run(ep_->stat("resume/obj"));
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->size, 3 * data[0]->size());
  EXPECT_EQ(s->etag, done->etag);
  ASSERT_TRUE(s->last_modified);

  // Completed, the upload is gone: ListParts says so.
  auto gone = io_.run(w.uploaded_parts());
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, "NoSuchUpload");
}

asio::awaitable<result<void>> put_all(s3::client& c, std::string bucket, std::vector<std::string> keys) {
  const s3::put_params params;
  for (const auto& k : keys) {
    auto b = s3::body::from_string("x");
    auto r = co_await c.put_object(bucket, k, std::move(b), params);
    if (!r) co_return r.error();
  }
  co_return result<void>();
}

TEST_F(StoreS3SyntheticTest, RemoveManyDeletesMoreThanOneBatch) {
  std::vector<std::string> keys, full;
  for (int i = 0; i < 1001; ++i) {
    keys.push_back("many/" + std::to_string(i));
    full.push_back("pre/" + keys.back());
  }
  ASSERT_TRUE(io_.run(put_all(*s3_, "dst", full)));
  ASSERT_TRUE(io_.run(put_all(*s3_, "dst", {"pre/kept"})));
  const auto before = s3_->stats().requests.load();
  auto failed = io_.run(ep_->remove_many(keys));
  ASSERT_TRUE(failed) << failed.error().to_string();
  EXPECT_TRUE(failed->empty());
  EXPECT_EQ(s3_->stats().requests.load() - before, 2u);  // 1000 + 1
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_TRUE(pages) << pages.error().to_string();
  EXPECT_EQ(keys_of(*pages), std::vector<std::string>{"kept"});
}
#endif  // FERRY_SYNTHETIC_S3_BIN

}  // namespace
}  // namespace ferry::store
