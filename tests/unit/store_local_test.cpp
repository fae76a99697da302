// lib/store's local endpoint on real temp directories: listing order and pagination, key checks,
// atomic writes, digests, mtimes, multipart, ranged reads, batch removal; and the blocking pool under it.
#include "store/blocking.hpp"
#include "store/local_endpoint.hpp"
#include "support/io_runner.hpp"
#include "support/listing.hpp"
#include "support/pattern.hpp"
#include "support/temp_dir.hpp"
#include "util/hash.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_future.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

namespace ferry::store {
namespace {

using test::keys_of;
using test::list_pages;
using test::pattern;

namespace fs = std::filesystem;
using test::io_runner;
using namespace std::chrono_literals;

void make_file(const fs::path& p, std::string_view content = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  ASSERT_TRUE(out.good()) << p;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every regular file under `dir`, relative, sorted: to prove nothing (temp files included) is left.
std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

// A body of `data`, handed out in pieces of at most `piece` bytes.
http::body_source string_source(std::string data, std::size_t piece = 1 << 16) {
  auto s = std::make_shared<std::string>(std::move(data));
  auto off = std::make_shared<std::size_t>(0);
  return [s, off, piece](std::span<char> buf) -> asio::awaitable<http::result<std::size_t>> {
    const std::size_t n = std::min({buf.size(), s->size() - *off, piece});
    std::memcpy(buf.data(), s->data() + *off, n);
    *off += n;
    co_return n;
  };
}

// A body that fails (connection reset) once `good` bytes were given.
http::body_source failing_source(std::size_t good) {
  auto off = std::make_shared<std::size_t>(0);
  return [off, good](std::span<char> buf) -> asio::awaitable<http::result<std::size_t>> {
    if (*off >= good) co_return http::result<std::size_t>(boost::system::in_place_error, asio::error::connection_reset);
    const std::size_t n = std::min(buf.size(), good - *off);
    std::memset(buf.data(), 'z', n);
    *off += n;
    co_return n;
  };
}

std::string md5_b64(std::string_view data) { return util::base64_encode(util::md5(data)); }

asio::awaitable<result<std::string>> read_all(endpoint& ep, std::string key, std::optional<byte_range> range) {
  auto r = co_await ep.read(key, range, "");
  if (!r) co_return r.error();
  std::string out;
  std::array<char, 4096> buf{};
  for (;;) {
    auto n = co_await (*r)->read_some(buf);
    if (!n) co_return n.error();
    if (*n == 0) break;
    out.append(buf.data(), *n);
  }
  co_return out;
}

asio::awaitable<result<write_result>> write_string(endpoint& ep, std::string key, std::string data,
                                                   write_options opts) {
  const auto size = data.size();
  auto body = string_source(std::move(data));
  co_return co_await ep.write(key, std::move(body), size, opts);
}

class StoreLocalTest : public ::testing::Test {
 protected:
  std::unique_ptr<endpoint> make(local_options o) { return make_local_endpoint(root_, pool_, o); }

  std::vector<std::string> list_keys(endpoint& ep) {
    auto pages = io_.run(list_pages(ep));
    EXPECT_TRUE(pages) << pages.error().to_string();
    std::vector<std::string> keys;
    if (pages)
      for (const auto& p : *pages)
        for (const auto& o : p) keys.push_back(o.key);
    return keys;
  }
  std::vector<std::string> list_keys() { return list_keys(*ep_); }

  result<std::string> read(std::string key, std::optional<byte_range> range = std::nullopt) {
    return io_.run(read_all(*ep_, std::move(key), range));
  }
  result<write_result> write(std::string key, std::string data, write_options opts = {}) {
    return io_.run(write_string(*ep_, std::move(key), std::move(data), std::move(opts)));
  }
  result<object_info> stat(std::string key) { return io_.run(ep_->stat(key)); }

  test::temp_dir dir_{"ferry-store"};
  fs::path root_ = dir_ / "root";
  blocking_pool pool_{4};
  io_runner io_;
  std::unique_ptr<endpoint> ep_ = make_local_endpoint(root_, pool_);
};

// The keys of a tree where a naive recursive walk goes wrong: '-' (0x2D) and '.' (0x2E) sort
// before '/' (0x2F), and '0' after it; UTF-8 bytes sort after ASCII.
const std::vector<std::string> tricky_keys = {"a-b",
                                              "a.b",
                                              "a/b",
                                              "a/b.txt",
                                              "a0",
                                              "ab",
                                              "a!b",
                                              "a-/x",
                                              "a.c-x",
                                              "a.c/z",
                                              "a.c0",
                                              "a/c/d/e/f/g/h/i/j/deep.txt",
                                              "b",
                                              "B",
                                              "~tilde",
                                              " space",
                                              "\xc3\xa9.txt" /* é */,
                                              "e\xcc\x81.txt" /* e + combining acute */,
                                              "\xe6\x97\xa5\xe6\x9c\xac/\xe8\xaa\x9e.txt" /* 日本/語.txt */,
                                              "z/\xf0\x9f\x98\x80" /* an emoji */,
                                              "z0"};

TEST_F(StoreLocalTest, ListingIsInByteOrderLikeS3) {
  for (const auto& k : tricky_keys) make_file(root_ / k, k);
  for (const auto* d : {"empty", "a/empty", "deep/er/est", "z/e"}) fs::create_directories(root_ / d);
  auto expected = tricky_keys;
  std::sort(expected.begin(), expected.end());  // std::string compares bytes as unsigned char
  EXPECT_EQ(list_keys(), expected);

  // The same order when pages end anywhere, mid-directory included.
  for (std::size_t page : {1u, 2u, 3u, 7u}) {
    auto small = make(local_options{.list_page_size = page});
    auto pages = io_.run(list_pages(*small));
    ASSERT_TRUE(pages) << pages.error().to_string();
    std::vector<std::string> keys;
    for (const auto& p : *pages) {
      EXPECT_LE(p.size(), page);
      for (const auto& o : p) keys.push_back(o.key);
    }
    EXPECT_EQ(keys, expected) << "page size " << page;
  }
}

TEST_F(StoreLocalTest, ListingGivesSizeAndMtimeButNoEtagOrMetadata) {
  make_file(root_ / "dir/file.txt", "hello");
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_TRUE(pages) << pages.error().to_string();
  ASSERT_EQ(pages->size(), 1u);
  ASSERT_EQ(pages->front().size(), 1u);
  const auto& o = pages->front().front();
  EXPECT_EQ(o.key, "dir/file.txt");
  EXPECT_EQ(o.size, 5u);
  EXPECT_EQ(o.etag, "");
  ASSERT_TRUE(o.mtime);
  struct stat st {};
  ASSERT_EQ(::stat((root_ / "dir/file.txt").c_str(), &st), 0);
  EXPECT_EQ(o.mtime->time_since_epoch(),
            std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec));
  EXPECT_EQ(o.metadata.content_type, "");
}

TEST_F(StoreLocalTest, PaginationAcrossMoreThanAThousandFiles) {
  std::vector<std::string> expected;
  for (int d = 0; d < 3; ++d)
    for (int f = 0; f < 800; ++f) {
      char name[32];
      std::snprintf(name, sizeof name, "d%d/f%04d", d, f);
      expected.push_back(name);
      make_file(root_ / name);
    }
  for (int f = 0; f < 100; ++f) {
    expected.push_back("top" + std::to_string(f));
    make_file(root_ / expected.back());
  }
  std::sort(expected.begin(), expected.end());
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_TRUE(pages) << pages.error().to_string();
  std::vector<std::size_t> sizes;
  std::vector<std::string> keys;
  for (const auto& p : *pages) {
    sizes.push_back(p.size());
    for (const auto& o : p) keys.push_back(o.key);
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1000, 1000, 500}));
  EXPECT_EQ(keys, expected);
}

TEST_F(StoreLocalTest, SymlinksAreSkippedAndNotTraversedByDefault) {
  make_file(root_ / "real/file.txt", "data");
  make_file(dir_ / "outside/secret.txt", "secret");
  fs::create_symlink(root_ / "real/file.txt", root_ / "file-link");
  fs::create_directory_symlink(root_ / "real", root_ / "dir-link");
  fs::create_directory_symlink(dir_ / "outside", root_ / "escape");
  EXPECT_EQ(list_keys(), (std::vector<std::string>{"real/file.txt"}));

  for (const auto* key : {"file-link", "dir-link/file.txt", "escape/secret.txt"}) {
    auto got = read(key);
    ASSERT_FALSE(got) << key;
    EXPECT_EQ(got.error().code, "NoSuchKey") << key;
    EXPECT_TRUE(is_not_found(got.error()));
    EXPECT_FALSE(stat(key)) << key;
  }
  // A write through a symlinked directory is refused rather than landing outside the root.
  auto w = write("escape/new.txt", "x");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, "PathConflict");
  EXPECT_FALSE(fs::exists(dir_ / "outside/new.txt"));
  // Removing a symlink's key leaves the symlink: it is no object.
  EXPECT_TRUE(io_.run(ep_->remove("file-link")));
  EXPECT_TRUE(fs::is_symlink(root_ / "file-link"));
}

TEST_F(StoreLocalTest, SymlinksAreFollowedWhenAskedAndCyclesEnd) {
  make_file(root_ / "real/file.txt", "data");
  fs::create_symlink(root_ / "real/file.txt", root_ / "file-link");
  fs::create_directory_symlink(root_ / "real", root_ / "dir-link");
  fs::create_directory_symlink(root_, root_ / "real/loop");  // real/loop -> root: a cycle
  fs::create_symlink(root_ / "nowhere", root_ / "dangling");
  auto ep = make(local_options{.follow_symlinks = true});
  auto keys = list_keys(*ep);
  // Each directory is walked once per path that does not revisit an ancestor.
  EXPECT_EQ(keys, (std::vector<std::string>{"dir-link/file.txt", "file-link", "real/file.txt"}));
  auto got = io_.run(read_all(*ep, "dir-link/file.txt", std::nullopt));
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, "data");
}

TEST_F(StoreLocalTest, TempFilesAndSpecialFilesAreNotListed) {
  make_file(root_ / "kept.txt");
  make_file(root_ / "sub" / (std::string(temp_file_prefix) + "0123-kept.txt"));
  ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0644), 0);
  auto mp = io_.run(ep_->begin_multipart("big.bin", write_options{}));
  ASSERT_TRUE(mp) << mp.error().to_string();
  auto data = std::make_shared<const std::string>("part");
  ASSERT_TRUE(io_.run((*mp)->write_part(1, 0, data, "")));
  EXPECT_TRUE(fs::exists((*mp)->id())) << (*mp)->id();
  EXPECT_EQ(list_keys(), (std::vector<std::string>{"kept.txt"}));
  // A FIFO is no object, and opening it must not block.
  auto fifo = read("fifo");
  ASSERT_FALSE(fifo);
  EXPECT_EQ(fifo.error().code, "NoSuchKey");
  EXPECT_FALSE(stat("fifo"));
}

TEST_F(StoreLocalTest, InvalidKeysAreRefusedByEveryOperation) {
  make_file(dir_ / "x", "outside");
  make_file(root_ / "a/b", "inside");
  const std::vector<std::string> bad = {"",
                                        "../x",
                                        "/abs",
                                        "a//b",
                                        "a/../b",
                                        "./a",
                                        "a/.",
                                        "a/",
                                        "..",
                                        std::string("a\0b", 3),
                                        std::string(256, 'n'),
                                        "d/" + std::string(temp_file_prefix) + "x"};
  for (const auto& key : bad) {
    SCOPED_TRACE(::testing::PrintToString(key));
    EXPECT_FALSE(check_local_key(key));
    auto s = stat(key);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, "InvalidKey");
    EXPECT_FALSE(s.error().retryable);
    auto r = io_.run(ep_->read(key, std::nullopt, ""));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "InvalidKey");
    auto w = write(key, "overwritten");
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, "InvalidKey");
    auto m = io_.run(ep_->begin_multipart(key, write_options{}));
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, "InvalidKey");
    auto d = io_.run(ep_->remove(key));
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code, "InvalidKey");
  }
  EXPECT_EQ(slurp(dir_ / "x"), "outside");
  EXPECT_EQ(slurp(root_ / "a/b"), "inside");
  EXPECT_TRUE(check_local_key(std::string(255, 'n')));
  EXPECT_TRUE(check_local_key("a/b/..c/.d/e."));
}

TEST_F(StoreLocalTest, WriteCreatesDirectoriesAndRoundTrips) {
  const auto data = pattern(3 * 1024 * 1024 + 17);
  auto w = write("new/dirs/file.bin", data);
  ASSERT_TRUE(w) << w.error().to_string();
  EXPECT_EQ(w->etag, "");
  EXPECT_EQ(slurp(root_ / "new/dirs/file.bin"), data);
  EXPECT_EQ(files_under(root_), (std::vector<std::string>{"new/dirs/file.bin"}));
  struct stat st {};
  ASSERT_EQ(::stat((root_ / "new/dirs/file.bin").c_str(), &st), 0);
  EXPECT_EQ(
      st.st_mode & 0777, 0644u & ~[] {
        auto m = ::umask(0);
        ::umask(m);
        return m;
      }());
  auto back = read("new/dirs/file.bin");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_TRUE(*back == data);
  // An empty object is a file too.
  ASSERT_TRUE(write("empty", ""));
  EXPECT_EQ(fs::file_size(root_ / "empty"), 0u);
}

TEST_F(StoreLocalTest, AFailedWriteLeavesNoFileAndKeepsTheOldOne) {
  auto failed = io_.run(ep_->write("dir/new.bin", failing_source(100'000), 1'000'000, write_options{}));
  ASSERT_FALSE(failed);
  EXPECT_TRUE(failed.error().retryable) << failed.error().to_string();
  EXPECT_EQ(files_under(root_), std::vector<std::string>{});

  ASSERT_TRUE(write("old.txt", "old contents"));
  failed = io_.run(ep_->write("old.txt", failing_source(3), 10, write_options{}));
  ASSERT_FALSE(failed);
  EXPECT_EQ(slurp(root_ / "old.txt"), "old contents");
  EXPECT_EQ(files_under(root_), (std::vector<std::string>{"old.txt"}));

  // A source shorter than announced fails the same way.
  auto short_body = io_.run(ep_->write("short.txt", string_source("abc"), 4, write_options{}));
  ASSERT_FALSE(short_body);
  EXPECT_EQ(short_body.error().code, "BodySizeMismatch");
  EXPECT_EQ(files_under(root_), (std::vector<std::string>{"old.txt"}));
}

TEST_F(StoreLocalTest, ContentMd5AndCrc32cAreCheckedLikeS3) {
  const auto data = pattern(200'000, 3);
  write_options wrong;
  wrong.content_md5 = md5_b64("something else");
  auto bad = write("f.bin", data, wrong);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "BadDigest");
  EXPECT_FALSE(bad.error().retryable);
  EXPECT_EQ(files_under(root_), std::vector<std::string>{});

  write_options bad_crc;
  util::crc32c_hasher other;
  other.update(std::string_view("other"));
  bad_crc.checksum_crc32c = util::base64_encode(other.big_endian());
  auto bad2 = write("f.bin", data, bad_crc);
  ASSERT_FALSE(bad2);
  EXPECT_EQ(bad2.error().code, "BadDigest");

  write_options garbage;
  garbage.content_md5 = "not base64!";
  auto bad3 = write("f.bin", data, garbage);
  ASSERT_FALSE(bad3);
  EXPECT_EQ(bad3.error().code, "InvalidDigest");
  EXPECT_EQ(files_under(root_), std::vector<std::string>{});

  write_options right;
  right.content_md5 = md5_b64(data);
  util::crc32c_hasher crc;
  crc.update(std::string_view(data));
  right.checksum_crc32c = util::base64_encode(crc.big_endian());
  auto good = write("f.bin", data, right);
  ASSERT_TRUE(good) << good.error().to_string();
  EXPECT_EQ(slurp(root_ / "f.bin"), data);
}

TEST_F(StoreLocalTest, MtimeIsSetOnWriteAndReportedByStatListAndRead) {
  const auto mtime = std::chrono::system_clock::time_point(std::chrono::seconds(1'600'000'000) +
                                                           std::chrono::nanoseconds(123'456'789));
  write_options o;
  o.mtime = mtime;
  o.metadata.content_type = "ignored/locally";
  ASSERT_TRUE(write("m/file.json", "{}", o));
  auto s = stat("m/file.json");
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->mtime, mtime);
  EXPECT_EQ(s->size, 2u);
  EXPECT_EQ(s->key, "m/file.json");
  EXPECT_EQ(s->metadata.content_type, "application/json");
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_TRUE(pages);
  ASSERT_EQ(pages->size(), 1u);
  EXPECT_EQ(pages->front().at(0).mtime, mtime);
  auto r = io_.run(ep_->read("m/file.json", std::nullopt, ""));
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->info().mtime, mtime);
  // Before 1970 too.
  o.mtime = std::chrono::system_clock::time_point(-std::chrono::seconds(86400) + std::chrono::milliseconds(250));
  ASSERT_TRUE(write("old", "x", o));
  EXPECT_EQ(stat("old")->mtime, o.mtime);
}

TEST_F(StoreLocalTest, MissingObjectsAreNotFoundAndRemoveIsIdempotent) {
  for (const auto* key : {"absent", "no/such/dir/file"}) {
    auto s = stat(key);
    ASSERT_FALSE(s);
    EXPECT_TRUE(is_not_found(s.error())) << s.error().to_string();
    EXPECT_EQ(s.error().http_status, 404u);
    EXPECT_FALSE(s.error().retryable);
    auto r = read(key);
    ASSERT_FALSE(r);
    EXPECT_TRUE(is_not_found(r.error()));
  }
  ASSERT_TRUE(write("d/gone.txt", "x"));
  auto removed = io_.run(ep_->remove("d/gone.txt"));
  ASSERT_TRUE(removed) << removed.error().to_string();
  EXPECT_FALSE(fs::exists(root_ / "d/gone.txt"));
  EXPECT_TRUE(io_.run(ep_->remove("d/gone.txt")));
  EXPECT_TRUE(io_.run(ep_->remove("no/such/dir")));
  // A directory is no object: removing its key is a no-op.
  make_file(root_ / "d/sub/keep");
  EXPECT_TRUE(io_.run(ep_->remove("d/sub")));
  EXPECT_TRUE(fs::exists(root_ / "d/sub/keep"));
  // A key whose directory is a file does not exist either.
  EXPECT_TRUE(io_.run(ep_->remove("d/sub/keep/deeper")));
}

TEST_F(StoreLocalTest, AFileAndADirectoryCannotShareAName) {
  ASSERT_TRUE(write("a", "file"));
  auto under_file = write("a/b", "x");
  ASSERT_FALSE(under_file);
  EXPECT_EQ(under_file.error().code, "PathConflict");
  EXPECT_FALSE(under_file.error().retryable);
  ASSERT_TRUE(write("d/x", "x"));
  auto over_dir = write("d", "x");
  ASSERT_FALSE(over_dir);
  EXPECT_EQ(over_dir.error().code, "PathConflict");
  EXPECT_EQ(files_under(root_), (std::vector<std::string>{"a", "d/x"}));
}

TEST_F(StoreLocalTest, AMissingRootFailsTheListingAndTheFirstWriteCreatesIt) {
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_FALSE(pages);
  EXPECT_EQ(pages.error().code, "RootNotFound");
  EXPECT_EQ(pages.error().http_status, 404u);
  ASSERT_TRUE(write("first", "1"));
  EXPECT_EQ(list_keys(), (std::vector<std::string>{"first"}));
}

TEST_F(StoreLocalTest, RangedReadsReportTheWholeObject) {
  const auto data = pattern(100'000, 9);
  ASSERT_TRUE(write("r.bin", data));
  auto mid = read("r.bin", byte_range{1000, 1999});
  ASSERT_TRUE(mid) << mid.error().to_string();
  EXPECT_TRUE(*mid == data.substr(1000, 1000));
  auto last = read("r.bin", byte_range{99'999, 99'999});
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, data.substr(99'999));
  auto past = read("r.bin", byte_range{90'000, 200'000});  // shortened, as S3 does
  ASSERT_TRUE(past);
  EXPECT_TRUE(*past == data.substr(90'000));
  auto beyond = read("r.bin", byte_range{100'000, 100'010});
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().code, "InvalidRange");
  auto r = io_.run(ep_->read("r.bin", byte_range{10, 19}, "ignored-etag"));
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->info().size, 100'000u);
  EXPECT_EQ((*r)->info().key, "r.bin");
  EXPECT_EQ((*r)->info().metadata.content_type, "application/octet-stream");
}

TEST_F(StoreLocalTest, AReadFailsWhenTheFileChangesUnderIt) {
  ASSERT_TRUE(write("c.txt", pattern(10'000)));
  auto appended = io_.run([&]() -> asio::awaitable<result<std::string>> {
    auto r = co_await ep_->read("c.txt", std::nullopt, "");
    if (!r) co_return r.error();
    std::ofstream(root_ / "c.txt", std::ios::app) << "more";
    std::array<char, 65536> buf{};
    for (;;) {
      auto n = co_await (*r)->read_some(buf);
      if (!n) co_return n.error();
      if (*n == 0) co_return std::string("read to the end without noticing");
    }
  }());
  ASSERT_FALSE(appended);
  EXPECT_EQ(appended.error().code, "SourceChanged");
  EXPECT_TRUE(appended.error().retryable);

  ASSERT_TRUE(write("t.txt", pattern(10'000)));
  auto truncated = io_.run([&]() -> asio::awaitable<result<std::string>> {
    auto r = co_await ep_->read("t.txt", std::nullopt, "");
    if (!r) co_return r.error();
    fs::resize_file(root_ / "t.txt", 10);
    std::array<char, 4096> buf{};
    for (;;) {
      auto n = co_await (*r)->read_some(buf);
      if (!n) co_return n.error();
      if (*n == 0) co_return std::string("read to the end without noticing");
    }
  }());
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().code, "SourceChanged");
}

TEST_F(StoreLocalTest, ContentTypesComeFromTheExtension) {
  const std::vector<std::pair<std::string, std::string>> cases = {{"a.txt", "text/plain"},
                                                                  {"b/c.HTML", "text/html"},
                                                                  {"s.css", "text/css"},
                                                                  {"x.js", "text/javascript"},
                                                                  {"d.json", "application/json"},
                                                                  {"e.xml", "application/xml"},
                                                                  {"f.csv", "text/csv"},
                                                                  {"g.png", "image/png"},
                                                                  {"h.jpg", "image/jpeg"},
                                                                  {"h.JPEG", "image/jpeg"},
                                                                  {"i.gif", "image/gif"},
                                                                  {"j.webp", "image/webp"},
                                                                  {"k.svg", "image/svg+xml"},
                                                                  {"l.pdf", "application/pdf"},
                                                                  {"m.zip", "application/zip"},
                                                                  {"n.tar.gz", "application/gzip"},
                                                                  {"o.tar", "application/x-tar"},
                                                                  {"p.mp4", "video/mp4"},
                                                                  {"q.mp3", "audio/mpeg"},
                                                                  {"r.wav", "audio/wav"},
                                                                  {"s.bin", "application/octet-stream"},
                                                                  {"noext", "application/octet-stream"},
                                                                  {".hidden", "application/octet-stream"},
                                                                  {"dir.txt/file", "application/octet-stream"},
                                                                  {"t.unknown", "application/octet-stream"}};
  for (const auto& [key, type] : cases) EXPECT_EQ(guess_content_type(key), type) << key;
  ASSERT_TRUE(write("img/photo.PNG", "png"));
  auto s = stat("img/photo.PNG");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->metadata.content_type, "image/png");
}

// Parts of a local multipart write, started together so they run in parallel on the pool.
std::vector<result<std::string>> write_parts(io_runner& io, multipart_writer& w,
                                             const std::vector<std::tuple<int, std::uint64_t, std::string>>& parts) {
  std::vector<std::future<result<std::string>>> futures;
  for (const auto& [number, offset, bytes] : parts) {
    auto data = std::make_shared<const std::string>(bytes);
    std::string md5 = md5_b64(bytes);
    futures.push_back(asio::co_spawn(io.context(), w.write_part(number, offset, data, md5), asio::use_future));
  }
  std::vector<result<std::string>> out;
  for (auto& f : futures) {
    if (f.wait_for(60s) != std::future_status::ready) throw std::runtime_error("part did not finish");
    out.push_back(f.get());
  }
  return out;
}

TEST_F(StoreLocalTest, MultipartPartsInAnyOrderAndInParallelGiveTheRightBytes) {
  const auto data = pattern(5 * 300'001 + 1234, 5);
  const auto mtime = std::chrono::system_clock::time_point(std::chrono::seconds(1'650'000'000));
  write_options o;
  o.mtime = mtime;
  auto mp = io_.run(ep_->begin_multipart("mp/obj.bin", o));
  ASSERT_TRUE(mp) << mp.error().to_string();
  auto& w = **mp;
  std::vector<std::tuple<int, std::uint64_t, std::string>> parts;
  std::vector<s3::part_info> infos;
  for (int i = 0; i < 6; ++i) {
    const std::uint64_t off = static_cast<std::uint64_t>(i) * 300'001;
    const auto len = std::min<std::uint64_t>(300'001, data.size() - off);
    parts.emplace_back(i + 1, off, data.substr(off, len));
    infos.push_back(s3::part_info{i + 1, "", len});
  }
  std::reverse(parts.begin(), parts.end());
  for (auto& r : write_parts(io_, w, parts)) ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_FALSE(fs::exists(root_ / "mp/obj.bin"));  // nothing visible before complete
  auto done = io_.run(w.complete(infos));
  ASSERT_TRUE(done) << done.error().to_string();
  EXPECT_TRUE(slurp(root_ / "mp/obj.bin") == data);
  EXPECT_EQ(files_under(root_), (std::vector<std::string>{"mp/obj.bin"}));
  auto s = stat("mp/obj.bin");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->mtime, mtime);
  // Finished: no more parts, and abort has nothing left to do.
  auto late = io_.run(w.write_part(7, 0, std::make_shared<const std::string>("x"), ""));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, "NoSuchUpload");
  EXPECT_TRUE(io_.run(w.abort()));
  EXPECT_TRUE(fs::exists(root_ / "mp/obj.bin"));
}

TEST_F(StoreLocalTest, MultipartRefusesGapsBadDigestsAndBadOrders) {
  auto mp = io_.run(ep_->begin_multipart("gap.bin", write_options{}));
  ASSERT_TRUE(mp) << mp.error().to_string();
  auto& w = **mp;
  for (auto& r : write_parts(io_, w, {{1, 0, "aaaa"}, {3, 8, "cccc"}})) ASSERT_TRUE(r);
  auto missing = io_.run(w.complete({{1, "", 4}, {2, "", 4}, {3, "", 4}}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "InvalidPart");
  auto gap = io_.run(w.complete({{1, "", 4}, {3, "", 4}}));
  ASSERT_FALSE(gap);
  EXPECT_EQ(gap.error().code, "InvalidPart");
  EXPECT_NE(gap.error().message.find("gap"), std::string::npos) << gap.error().message;
  auto order = io_.run(w.complete({{3, "", 4}, {1, "", 4}}));
  ASSERT_FALSE(order);
  EXPECT_EQ(order.error().code, "InvalidPartOrder");
  auto wrong_size = io_.run(w.complete({{1, "", 5}}));
  ASSERT_FALSE(wrong_size);
  EXPECT_EQ(wrong_size.error().code, "InvalidPart");
  auto bad_md5 = io_.run(w.write_part(2, 4, std::make_shared<const std::string>("bbbb"), md5_b64("xxxx")));
  ASSERT_FALSE(bad_md5);
  EXPECT_EQ(bad_md5.error().code, "BadDigest");
  EXPECT_FALSE(fs::exists(root_ / "gap.bin"));
  // Fixed up, it completes; part 3 alone is left out, and its bytes with it.
  for (auto& r : write_parts(io_, w, {{2, 4, "bbbb"}})) ASSERT_TRUE(r);
  auto two = io_.run(w.complete({{1, "", 4}, {2, "", 4}}));
  ASSERT_TRUE(two) << two.error().to_string();
  EXPECT_EQ(slurp(root_ / "gap.bin"), "aaaabbbb");
  EXPECT_EQ(files_under(root_), (std::vector<std::string>{"gap.bin"}));
}

TEST_F(StoreLocalTest, MultipartAbortAndDestructionLeaveNothing) {
  {
    auto mp = io_.run(ep_->begin_multipart("aborted/x.bin", write_options{}));
    ASSERT_TRUE(mp);
    for (auto& r : write_parts(io_, **mp, {{1, 0, pattern(1000)}})) ASSERT_TRUE(r);
    EXPECT_EQ(files_under(root_).size(), 1u);
    ASSERT_TRUE(io_.run((*mp)->abort()));
    EXPECT_EQ(files_under(root_), std::vector<std::string>{});
    auto after = io_.run((*mp)->complete({{1, "", 1000}}));
    ASSERT_FALSE(after);
    EXPECT_EQ(after.error().code, "NoSuchUpload");
  }
  {
    auto mp = io_.run(ep_->begin_multipart("dropped/x.bin", write_options{}));
    ASSERT_TRUE(mp);
    for (auto& r : write_parts(io_, **mp, {{1, 0, pattern(1000)}})) ASSERT_TRUE(r);
    EXPECT_EQ(files_under(root_).size(), 1u);
  }  // destroyed without complete(): the temp file goes, on the pool
  ASSERT_TRUE(pool_.wait_detached(30s));
  EXPECT_EQ(files_under(root_), std::vector<std::string>{});
}

TEST_F(StoreLocalTest, LastModifiedIsTheMtimeInListStatAndRead) {
  const auto mtime =
      std::chrono::system_clock::time_point(std::chrono::seconds(1'500'000'000) + std::chrono::nanoseconds(42));
  write_options o;
  o.mtime = mtime;
  ASSERT_TRUE(write("lm/file.txt", "abc", o));
  auto s = stat("lm/file.txt");
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->last_modified, mtime);
  auto pages = io_.run(list_pages(*ep_));
  ASSERT_TRUE(pages) << pages.error().to_string();
  ASSERT_EQ(keys_of(*pages), std::vector<std::string>{"lm/file.txt"});
  EXPECT_EQ(pages->front().front().last_modified, mtime);
  EXPECT_EQ(pages->front().front().mtime, mtime);
  auto r = io_.run(ep_->read("lm/file.txt", std::nullopt, ""));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ((*r)->info().last_modified, mtime);
}

TEST_F(StoreLocalTest, RemoveManyDeletesFilesAndTheDirectoriesLeftEmptyButNeverTheRoot) {
  for (const auto* k : {"a/b/c/one", "a/b/c/two", "a/b/keep", "x/y/z/only", "top", "solo/file"})
    make_file(root_ / k, k);
  fs::create_directories(root_ / "empty/already");  // no key names it: left alone
  auto failed = io_.run(ep_->remove_many({"a/b/c/one", "a/b/c/two", "x/y/z/only", "top", "solo/file"}));
  ASSERT_TRUE(failed) << failed.error().to_string();
  EXPECT_TRUE(failed->empty());
  EXPECT_EQ(files_under(root_), std::vector<std::string>{"a/b/keep"});
  EXPECT_FALSE(fs::exists(root_ / "a/b/c"));  // emptied: gone
  EXPECT_TRUE(fs::exists(root_ / "a/b"));     // still holds "keep"
  EXPECT_FALSE(fs::exists(root_ / "x"));      // emptied all the way up
  EXPECT_FALSE(fs::exists(root_ / "solo"));
  EXPECT_TRUE(fs::exists(root_ / "empty/already"));
  EXPECT_TRUE(fs::is_directory(root_));  // the root stays, empty or not

  auto last = io_.run(ep_->remove_many({"a/b/keep"}));
  ASSERT_TRUE(last) << last.error().to_string();
  EXPECT_TRUE(last->empty());
  EXPECT_FALSE(fs::exists(root_ / "a"));
  EXPECT_TRUE(fs::is_directory(root_));
}

TEST_F(StoreLocalTest, RemoveManyCountsMissingKeysAsDeletedAndReportsInvalidOnes) {
  make_file(root_ / "d/real", "x");
  make_file(root_ / "d/sub/keep", "x");
  make_file(root_ / "plain", "x");
  auto failed = io_.run(ep_->remove_many(
      {"never/was", "d/real", "", "../escape", "d/sub", "plain/under-a-file", std::string(temp_file_prefix) + "x"}));
  ASSERT_TRUE(failed) << failed.error().to_string();
  ASSERT_EQ(failed->size(), 3u);
  EXPECT_EQ(failed->at(0).first, "");
  EXPECT_EQ(failed->at(1).first, "../escape");
  EXPECT_EQ(failed->at(2).first, std::string(temp_file_prefix) + "x");
  for (const auto& [key, e] : *failed) EXPECT_EQ(e.code, "InvalidKey") << key;
  // "d/sub" is a directory, no object: kept with its contents, as remove() does.
  EXPECT_EQ(files_under(root_), (std::vector<std::string>{"d/sub/keep", "plain"}));
  EXPECT_FALSE(fs::exists(root_ / "never"));

  // More keys than one hop to the pool takes.
  std::vector<std::string> many;
  for (int i = 0; i < 2100; ++i) {
    many.push_back("many/" + std::to_string(i % 7) + "/" + std::to_string(i));
    make_file(root_ / many.back());
  }
  auto all = io_.run(ep_->remove_many(many));
  ASSERT_TRUE(all) << all.error().to_string();
  EXPECT_TRUE(all->empty());
  EXPECT_FALSE(fs::exists(root_ / "many"));
  auto none = io_.run(ep_->remove_many({}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(StoreLocalTest, RemoveManyDoesNotFollowSymlinkedDirectoriesToRemoveThem) {
  make_file(dir_ / "outside/empty-soon/f", "x");
  fs::create_directories(root_);
  fs::create_directory_symlink(dir_ / "outside", root_ / "link");
  auto follow = make(local_options{.follow_symlinks = true});
  auto failed = io_.run(follow->remove_many({"link/empty-soon/f"}));
  ASSERT_TRUE(failed) << failed.error().to_string();
  EXPECT_TRUE(failed->empty());
  EXPECT_FALSE(fs::exists(dir_ / "outside/empty-soon/f"));  // the object, reached as asked
  EXPECT_TRUE(fs::exists(dir_ / "outside/empty-soon"));     // but no directory outside the root
  EXPECT_TRUE(fs::is_symlink(root_ / "link"));
}

TEST_F(StoreLocalTest, ResumingLocalUploadsIsNotSupportedAndAbortRemovesALeftoverTempFile) {
  auto mp = io_.run(ep_->begin_multipart("up/obj.bin", write_options{}));
  ASSERT_TRUE(mp) << mp.error().to_string();
  for (auto& r : write_parts(io_, **mp, {{1, 0, "abc"}})) ASSERT_TRUE(r);
  auto listed = io_.run((*mp)->uploaded_parts());
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code, "NotSupported");
  EXPECT_FALSE(listed.error().retryable);
  auto resumed = io_.run(ep_->resume_multipart("up/obj.bin", (*mp)->id()));
  ASSERT_FALSE(resumed);
  EXPECT_EQ(resumed.error().code, "NotSupported");

  // A temp file left behind (as by a crash) goes with abort_multipart of its id; other ids are ignored.
  const std::string id = (*mp)->id();
  ASSERT_EQ(files_under(root_).size(), 1u);
  ASSERT_TRUE(io_.run(ep_->abort_multipart("up/obj.bin", "upload-id-of-something-else")));
  ASSERT_TRUE(io_.run(ep_->abort_multipart("other/obj.bin", id)));  // not beside this key
  EXPECT_EQ(files_under(root_).size(), 1u);
  auto aborted = io_.run(ep_->abort_multipart("up/obj.bin", id));
  ASSERT_TRUE(aborted) << aborted.error().to_string();
  EXPECT_EQ(files_under(root_), std::vector<std::string>{});
  EXPECT_TRUE(io_.run(ep_->abort_multipart("up/obj.bin", id)));  // nothing left: still fine
  EXPECT_TRUE(io_.run(ep_->abort_multipart("never/begun", "")));
  auto bad = io_.run(ep_->abort_multipart("", id));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "InvalidKey");
}

TEST(StoreBlockingPool, RunsOnThePoolAndResumesOnTheCaller) {
  blocking_pool pool(2);
  io_runner io;
  auto ids = io.run([&]() -> asio::awaitable<std::array<std::thread::id, 3>> {
    const auto before = std::this_thread::get_id();
    auto where = [] { return std::this_thread::get_id(); };
    const auto inside = co_await run_blocking(pool, std::move(where));
    co_return std::array<std::thread::id, 3>{before, inside, std::this_thread::get_id()};
  }());
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_EQ(ids[0], ids[2]);

  auto thrown = io.run([&]() -> asio::awaitable<std::pair<std::string, bool>> {
    const auto caller = std::this_thread::get_id();
    try {
      auto buggy = []() -> int { throw std::runtime_error("bug"); };
      co_await run_blocking(pool, std::move(buggy));
    } catch (const std::runtime_error& e) {
      co_return std::pair<std::string, bool>(e.what(), std::this_thread::get_id() == caller);
    }
    co_return std::pair<std::string, bool>("no exception", false);
  }());
  EXPECT_EQ(thrown.first, "bug");
  EXPECT_TRUE(thrown.second) << "the exception surfaced on a pool thread";

  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i) pool.detach([&ran] { ++ran; });
  pool.detach([] { throw std::runtime_error("logged, not fatal"); });
  ASSERT_TRUE(pool.wait_detached(30s));
  EXPECT_EQ(ran.load(), 10);
}

}  // namespace
}  // namespace ferry::store
