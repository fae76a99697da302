// The copier's decisions and verdicts, on in-memory endpoints with S3's rules (Content-MD5 checked,
// ETag = MD5 or MD5 of part MD5s + "-N"). The real servers are exercised by the integration tests;
// here a source can be made to lie, which no real server does on request.
#include "support/io_runner.hpp"
#include "support/pattern.hpp"
#include "transfer/copier.hpp"
#include "util/hash.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstring>
#include <map>

namespace ferry::transfer {
namespace {

using test::io_runner;
using test::pattern;

std::string md5_hex(std::string_view s) { return util::to_hex(util::md5(s)); }

struct stored {
  std::string data, etag;
  s3::object_metadata metadata;
};

// An S3-like bucket in memory. `corrupt_reads` flips one byte of every read of that many keys' data.
class memory_endpoint final : public store::endpoint {
 public:
  std::map<std::string, stored> objects;
  int corrupt_reads = 0;  // reads left to corrupt
  int reads = 0, writes = 0, parts_written = 0;
  bool local = false;

  std::string describe() const override { return "mem:"; }
  bool is_local() const override { return local; }

  class mem_lister final : public store::lister {
   public:
    explicit mem_lister(memory_endpoint& e) : e_(e) {}
    asio::awaitable<store::result<std::vector<store::object_info>>> next() override {
      std::vector<store::object_info> page;
      if (!done_)
        for (auto& [k, v] : e_.objects) page.push_back({k, v.data.size(), v.etag, std::nullopt, {}, std::nullopt});
      done_ = true;
      co_return page;
    }

   private:
    memory_endpoint& e_;
    bool done_ = false;
  };
  std::unique_ptr<store::lister> list() override { return std::make_unique<mem_lister>(*this); }

  asio::awaitable<store::result<store::object_info>> stat(std::string_view key) override {
    auto it = objects.find(std::string(key));
    if (it == objects.end()) co_return s3::local_error("NoSuchKey", std::string(key));
    co_return store::object_info{it->first,    it->second.data.size(), it->second.etag,
                                 std::nullopt, it->second.metadata,    std::nullopt};
  }

  class mem_reader final : public store::object_reader {
   public:
    mem_reader(store::object_info i, std::string d) : info_(std::move(i)), data_(std::move(d)) {}
    const store::object_info& info() const override { return info_; }
    asio::awaitable<store::result<std::size_t>> read_some(std::span<char> buf) override {
      // Small chunks, so a streamed copy takes many turns.
      std::size_t n = std::min({buf.size(), data_.size() - off_, std::size_t{100'000}});
      std::memcpy(buf.data(), data_.data() + off_, n);
      off_ += n;
      co_return n;
    }

   private:
    store::object_info info_;
    std::string data_;
    std::size_t off_ = 0;
  };

  asio::awaitable<store::result<std::unique_ptr<store::object_reader>>> read(std::string_view key,
                                                                             std::optional<store::byte_range> range,
                                                                             std::string_view if_match) override {
    ++reads;
    auto it = objects.find(std::string(key));
    if (it == objects.end()) co_return s3::local_error("NoSuchKey", std::string(key));
    if (!if_match.empty() && if_match != it->second.etag) {
      auto e = s3::local_error("PreconditionFailed", "etag changed");
      e.http_status = 412;
      co_return e;
    }
    std::string d = range ? it->second.data.substr(range->first, range->size()) : it->second.data;
    if (corrupt_reads > 0 && !d.empty()) {
      --corrupt_reads;
      d[d.size() / 2] ^= 0x01;
    }
    store::object_info info{it->first, it->second.data.size(), it->second.etag, std::nullopt, it->second.metadata};
    co_return std::unique_ptr<store::object_reader>(std::make_unique<mem_reader>(info, std::move(d)));
  }

  asio::awaitable<store::result<store::write_result>> write(std::string_view key, http::body_source body,
                                                            std::uint64_t size,
                                                            const store::write_options& opts) override {
    ++writes;
    std::string data;
    std::vector<char> buf(64 * 1024);
    while (data.size() < size) {
      auto n = co_await body(buf);
      if (!n) co_return s3::transport_error(n.error(), "body");
      if (*n == 0) break;
      data.append(buf.data(), *n);
    }
    if (data.size() != size) co_return s3::local_error("IncompleteBody", "short body");
    if (!opts.content_md5.empty() && opts.content_md5 != util::base64_encode(util::md5(data)))
      co_return s3::local_error("BadDigest", "Content-MD5 mismatch");
    auto etag = md5_hex(data);
    objects[std::string(key)] = stored{std::move(data), etag, opts.metadata};
    co_return store::write_result{etag};
  }

  class mem_multipart final : public store::multipart_writer {
   public:
    mem_multipart(memory_endpoint& e, std::string key, s3::object_metadata m) : e_(e), key_(std::move(key)), m_(m) {}
    const std::string& id() const override { return key_; }
    asio::awaitable<store::result<std::string>> write_part(int n, std::uint64_t,
                                                           std::shared_ptr<const std::string> data,
                                                           std::string content_md5) override {
      ++e_.parts_written;
      if (content_md5 != util::base64_encode(util::md5(*data))) co_return s3::local_error("BadDigest", "part");
      parts_[n] = *data;
      co_return md5_hex(*data);
    }
    asio::awaitable<store::result<store::write_result>> complete(const std::vector<s3::part_info>& parts) override {
      std::string all, md5s;
      for (const auto& p : parts) {
        all += parts_.at(p.part_number);
        auto d = util::md5(parts_.at(p.part_number));
        md5s.append(reinterpret_cast<const char*>(d.data()), d.size());
      }
      auto etag = md5_hex(md5s) + "-" + std::to_string(parts.size());
      e_.objects[key_] = stored{std::move(all), etag, m_};
      co_return store::write_result{etag};
    }
    asio::awaitable<store::result<void>> abort() override {
      aborted = true;
      co_return store::result<void>();
    }
    asio::awaitable<store::result<std::vector<s3::part_info>>> uploaded_parts() override {
      co_return s3::local_error("NotSupported", "memory endpoint");
    }
    bool aborted = false;

   private:
    memory_endpoint& e_;
    std::string key_;
    s3::object_metadata m_;
    std::map<int, std::string> parts_;
  };

  asio::awaitable<store::result<std::unique_ptr<store::multipart_writer>>> begin_multipart(
      std::string_view key, const store::write_options& opts) override {
    co_return std::unique_ptr<store::multipart_writer>(
        std::make_unique<mem_multipart>(*this, std::string(key), opts.metadata));
  }
  asio::awaitable<store::result<std::unique_ptr<store::multipart_writer>>> resume_multipart(std::string_view,
                                                                                            std::string) override {
    co_return s3::local_error("NotSupported", "memory endpoint");
  }
  asio::awaitable<store::result<void>> abort_multipart(std::string_view, std::string) override {
    co_return store::result<void>();
  }
  asio::awaitable<store::result<void>> remove(std::string_view key) override {
    objects.erase(std::string(key));
    co_return store::result<void>();
  }
  asio::awaitable<store::result<std::vector<std::pair<std::string, store::error>>>> remove_many(
      std::vector<std::string> keys) override {
    for (const auto& k : keys) objects.erase(k);
    co_return std::vector<std::pair<std::string, store::error>>{};
  }

  void put(const std::string& key, std::string data, bool multipart_etag = false) {
    auto etag = multipart_etag ? md5_hex(md5_hex(data)) + "-3" : md5_hex(data);
    objects[key] = stored{std::move(data), etag, {}};
  }
};

class CopierTest : public ::testing::Test {
 protected:
  copy_outcome copy(const std::string& key, copy_mode mode = copy_mode::automatic) {
    auto info = io_.run(src_.stat(key));
    if (!info) throw std::runtime_error("no such source key");
    copy_context ctx{src_, dst_, *budget_, cfg_, mode};
    return io_.run(copy_object(ctx, *info));
  }

  io_runner io_;
  memory_endpoint src_, dst_;
  std::shared_ptr<byte_budget> budget_ = std::make_shared<byte_budget>(64ull << 20);
  transfer_config cfg_{.multipart_threshold = 8ull << 20, .part_size = 5ull << 20, .part_concurrency = 3};
};

TEST_F(CopierTest, SmallObjectWithMd5EtagStreamsAndVerifiesByEtag) {
  const auto data = pattern(1'234'567, 1);
  src_.put("a", data);
  auto out = copy("a");
  ASSERT_TRUE(out.verified()) << out.record.error;
  EXPECT_EQ(out.record.method, "etag=md5");
  EXPECT_EQ(out.record.md5, md5_hex(data));
  EXPECT_EQ(out.record.crc32c, util::crc32c(data));
  EXPECT_FALSE(out.server_side);
  EXPECT_EQ(dst_.objects.at("a").data, data);
}

TEST_F(CopierTest, ZeroByteObjectIsCopiedAndVerified) {
  src_.put("empty", "");
  auto out = copy("empty");
  ASSERT_TRUE(out.verified()) << out.record.error;
  EXPECT_EQ(dst_.objects.at("empty").data, "");
}

TEST_F(CopierTest, ASourceThatLiesIsNeverReportedVerified) {
  src_.put("lie", pattern(300'000, 2));
  src_.corrupt_reads = 100;
  auto out = copy("lie");
  EXPECT_FALSE(out.verified());
  EXPECT_TRUE(out.retryable);  // the job retries it
  EXPECT_NE(out.record.error.find("BadDigest"), std::string::npos) << out.record.error;
  EXPECT_EQ(dst_.objects.count("lie"), 0u);  // Content-MD5 kept the bad bytes out
}

TEST_F(CopierTest, NonMd5EtagSourceIsStagedAndSentWithItsComputedMd5) {
  const auto data = pattern(2'000'000, 3);
  src_.put("mp", data, /*multipart_etag=*/true);
  auto out = copy("mp");
  ASSERT_TRUE(out.verified()) << out.record.error;
  EXPECT_EQ(out.record.method, "etag=md5");
  EXPECT_EQ(dst_.objects.at("mp").data, data);
  EXPECT_EQ(budget_->in_use(), 0u);  // the staged bytes were given back
}

TEST_F(CopierTest, LargeObjectGoesInPartsWithTheMultipartEtag) {
  const auto data = pattern((5u << 20) * 2 + 12345, 4);  // 3 parts of 5 MiB
  src_.put("big", data);
  auto out = copy("big");
  ASSERT_TRUE(out.verified()) << out.record.error;
  EXPECT_EQ(out.record.method, "multipart-etag");
  EXPECT_EQ(dst_.parts_written, 3);
  EXPECT_EQ(dst_.objects.at("big").data, data);
  EXPECT_EQ(out.record.md5, md5_hex(data));  // whole-object MD5, hashed in part order
  EXPECT_EQ(out.record.destination_etag.substr(out.record.destination_etag.size() - 2), "-3");
  EXPECT_EQ(budget_->in_use(), 0u);
}

TEST_F(CopierTest, CorruptedPartIsCaughtAgainstTheSourceMd5) {
  src_.put("big", pattern((5u << 20) * 2, 5));  // single-part MD5 ETag, copied in parts
  src_.corrupt_reads = 1;
  auto out = copy("big");
  EXPECT_FALSE(out.verified());
  EXPECT_TRUE(out.retryable);
  EXPECT_EQ(dst_.objects.count("big"), 0u);  // never completed
}

TEST_F(CopierTest, SourceOverwrittenMidCopyFailsRetryablyWithoutMixingVersions) {
  src_.put("v", pattern(1000, 6));
  auto info = io_.run(src_.stat("v"));
  ASSERT_TRUE(info);
  src_.put("v", pattern(1000, 7));  // overwritten after listing
  copy_context ctx{src_, dst_, *budget_, cfg_, copy_mode::automatic};
  auto out = io_.run(copy_object(ctx, *info));
  EXPECT_FALSE(out.verified());
  EXPECT_TRUE(out.retryable);
  EXPECT_EQ(dst_.objects.count("v"), 0u);
}

TEST_F(CopierTest, ServerModeWithoutASharedServiceFailsClearly) {
  src_.put("x", "abc");
  auto out = copy("x", copy_mode::server);
  EXPECT_FALSE(out.verified());
  EXPECT_FALSE(out.retryable);
  EXPECT_NE(out.record.error.find("same S3 service"), std::string::npos);
}

TEST_F(CopierTest, Sha256IsRecordedWhenAskedForStreamedAndMultipart) {
  cfg_.sha256 = true;
  const auto small = pattern(70'000, 8), big = pattern((5u << 20) * 2 + 1, 9);
  src_.put("small", small);
  src_.put("big", big);
  auto a = copy("small");
  ASSERT_TRUE(a.verified()) << a.record.error;
  EXPECT_EQ(a.record.sha256, util::to_hex(util::sha256(small)));
  auto b = copy("big");
  ASSERT_TRUE(b.verified()) << b.record.error;
  EXPECT_EQ(b.record.sha256, util::to_hex(util::sha256(big)));
  cfg_.sha256 = false;
  EXPECT_TRUE(copy("small").record.sha256.empty());
}

TEST(PartSize, StaysWithinS3Limits) {
  constexpr std::uint64_t mib = 1 << 20;
  EXPECT_EQ(part_size_for(100 * mib, 8 * mib), 8 * mib);
  EXPECT_EQ(part_size_for(100 * mib, 1 * mib), 5 * mib);  // S3's minimum
  const std::uint64_t five_tib = 5ull << 40;
  const auto p = part_size_for(five_tib, 8 * mib);
  EXPECT_LE((five_tib + p - 1) / p, 10'000u);
  EXPECT_LE(p, 5ull << 30);
  EXPECT_EQ(p % mib, 0u);
}

TEST(EtagIsMd5, OnlyThirtyTwoHexDigits) {
  EXPECT_TRUE(etag_is_md5("d41d8cd98f00b204e9800998ecf8427e"));
  EXPECT_FALSE(etag_is_md5("d41d8cd98f00b204e9800998ecf8427e-2"));
  EXPECT_FALSE(etag_is_md5(""));
  EXPECT_FALSE(etag_is_md5("zz1d8cd98f00b204e9800998ecf8427e"));
}

TEST(CopyMode, ParsesTheThreeModes) {
  EXPECT_EQ(parse_copy_mode("auto"), copy_mode::automatic);
  EXPECT_EQ(parse_copy_mode("server"), copy_mode::server);
  EXPECT_EQ(parse_copy_mode("stream"), copy_mode::stream);
  EXPECT_FALSE(parse_copy_mode("fast"));
}

TEST(ByteBudget, GrantsInOrderAndWakesWaitersOnRelease) {
  io_runner io;
  auto budget = std::make_shared<byte_budget>(100);
  auto order = io.run([](std::shared_ptr<byte_budget> b) -> asio::awaitable<std::vector<int>> {
    auto ex = co_await asio::this_coro::executor;
    std::vector<int> got;
    auto first = co_await b->acquire(80);
    int done = 0;
    asio::steady_timer all(ex, asio::steady_timer::time_point::max());
    for (int i = 1; i <= 2; ++i) {
      asio::co_spawn(
          ex,
          [b, i, &got]() -> asio::awaitable<void> {
            auto l = co_await b->acquire(i == 1 ? 60 : 30);
            got.push_back(i);
          },
          [&](std::exception_ptr) {
            if (++done == 2) all.cancel();
          });
    }
    asio::steady_timer settle(ex, std::chrono::milliseconds(20));
    co_await settle.async_wait(asio::use_awaitable);
    got.push_back(0);  // both still waiting: 80 of 100 taken
    first.release();
    co_await all.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return got;
  }(budget));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));  // first come, first served
  EXPECT_EQ(budget->in_use(), 0u);
}

TEST(ByteBudget, ARequestLargerThanTheBudgetRunsAlone) {
  io_runner io;
  auto budget = std::make_shared<byte_budget>(100);
  auto held = io.run([](std::shared_ptr<byte_budget> b) -> asio::awaitable<std::uint64_t> {
    auto l = co_await b->acquire(1000);
    co_return l.bytes();
  }(budget));
  EXPECT_EQ(held, 100u);
  EXPECT_EQ(budget->in_use(), 0u);
}

}  // namespace
}  // namespace ferry::transfer
