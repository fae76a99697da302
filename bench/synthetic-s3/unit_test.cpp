// synthetic-s3's pure parts: specs, sizes, keys, content, aws-chunked decoding, listing pages, and the
// multipart running digest. The endpoint itself is tested end to end with real clients in
// tests/integration/synthetic_s3_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "chunked.hpp"
#include "generator.hpp"
#include "listing.hpp"
#include "spec.hpp"
#include "store.hpp"
#include "xml.hpp"

namespace ferry::synthetic {
namespace {

std::string generate(std::uint64_t seed, std::uint64_t off, std::size_t n) {
  std::string s(n, '\0');
  fill(seed, off, std::span<char>(s.data(), s.size()));
  return s;
}

TEST(SyntheticSpec, ParsesAFixedSizeBucket) {
  auto s = parse_bucket_spec("name=src,keys=10k,size=100KiB,seed=7,prefix=obj/,latency=20ms");
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->name, "src");
  EXPECT_EQ(s->keys, 10000u);
  EXPECT_EQ(s->seed, 7u);
  EXPECT_EQ(s->prefix, "obj/");
  EXPECT_EQ(s->width, 4u);
  EXPECT_EQ(s->latency, std::chrono::milliseconds(20));
  EXPECT_EQ(s->sizes.size_of(7, 123), 100u * 1024);
  EXPECT_FALSE(s->writable);
}

TEST(SyntheticSpec, ParsesMixedSizesWhoseCommasAreNotFieldSeparators) {
  auto s = parse_bucket_spec("name=mix,keys=1M,size=mixed:80%<1MiB,15%1MiB-10MiB,5%10MiB-200MiB,seed=3");
  ASSERT_TRUE(s) << s.error();
  ASSERT_EQ(s->sizes.classes.size(), 3u);
  EXPECT_EQ(s->sizes.classes[0].hi, (1u << 20) - 1);
  EXPECT_EQ(s->sizes.classes[2].lo, 10u << 20);
  EXPECT_EQ(s->seed, 3u);
  EXPECT_EQ(s->width, 6u);
  auto same = parse_bucket_spec("name=mix,keys=1M,seed=3,size=mixed:80%<1MiB;15%1MiB-10MiB;5%10MiB-200MiB");
  ASSERT_TRUE(same) << same.error();
  EXPECT_EQ(same->sizes.size_of(3, 99), s->sizes.size_of(3, 99));
  // describe() reads back as the same spec.
  auto again = parse_bucket_spec(s->describe());
  ASSERT_TRUE(again) << s->describe() << ": " << again.error();
  EXPECT_EQ(again->describe(), s->describe());
  EXPECT_NE(s->describe().find("80%<1MiB"), std::string::npos) << s->describe();
}

TEST(SyntheticSpec, MixedSharesAreRoughlyHonoured) {
  auto d = parse_size_distribution("mixed:80%<1MiB,15%1MiB-10MiB,5%10MiB-200MiB");
  ASSERT_TRUE(d) << d.error();
  int small = 0, medium = 0, large = 0;
  for (std::uint64_t i = 0; i < 100000; ++i) {
    const auto sz = d->size_of(1, i);
    if (sz < (1u << 20))
      ++small;
    else if (sz <= (10u << 20))
      ++medium;
    else
      ++large;
    ASSERT_LE(sz, 200u << 20);
  }
  EXPECT_NEAR(small, 80000, 1000);
  EXPECT_NEAR(medium, 15000, 800);
  EXPECT_NEAR(large, 5000, 500);
}

TEST(SyntheticSpec, RejectsBadSpecsWithAReason) {
  for (const char* bad : {"keys=10", "name=src", "name=Bad_Name,keys=1", "name=src,keys=10,size=mixed:50%1KiB",
                          "name=src,keys=10,size=lots", "name=src,keys=10,colour=blue", "name=src,keys=100,width=1",
                          "name=dst,writable,keys=3", "name=src,keys=x"}) {
    auto s = parse_bucket_spec(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_FALSE(s.error().empty());
  }
  auto w = parse_bucket_spec("name=dst,writable");
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->writable);
}

TEST(SyntheticSpec, DatesFormatAsS3AndHttpWriteThem) {
  auto t = parse_iso8601("2024-02-29T13:05:09Z");
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(iso8601(*t), "2024-02-29T13:05:09.000Z");
  EXPECT_EQ(http_date(*t), "Thu, 29 Feb 2024 13:05:09 GMT");
  EXPECT_FALSE(parse_iso8601("2023-02-29T00:00:00Z"));
}

TEST(SyntheticBucket, KeysAreZeroPaddedSortedAndParsedBack) {
  auto s = parse_bucket_spec("name=src,keys=2500,size=1KiB,prefix=obj/,suffix=.bin");
  ASSERT_TRUE(s);
  synthetic_bucket b(*s, etag_mode::automatic, 16 << 20);
  EXPECT_EQ(b.key(0), "obj/0000.bin");
  EXPECT_EQ(b.key(2499), "obj/2499.bin");
  for (std::uint64_t i = 1; i < b.count(); ++i) ASSERT_LT(b.key(i - 1), b.key(i));
  EXPECT_EQ(b.index_of("obj/0042.bin"), 42u);
  EXPECT_FALSE(b.index_of("obj/2500.bin"));
  EXPECT_FALSE(b.index_of("obj/42.bin"));
  EXPECT_FALSE(b.index_of("obj/00a2.bin"));
  EXPECT_EQ(b.lower_bound(""), 0u);
  EXPECT_EQ(b.lower_bound("obj/0042.bin"), 42u);
  EXPECT_EQ(b.lower_bound("obj/0042.bin0"), 43u);
  EXPECT_EQ(b.lower_bound("obj/1"), 1000u);
  EXPECT_EQ(b.lower_bound("p"), 2500u);
  EXPECT_EQ(b.total_bytes(), 2500u * 1024);
}

TEST(SyntheticContent, AnyRangeEqualsTheSameSliceOfTheWhole) {
  const std::string whole = generate(99, 0, 4096);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 500; ++i) {
    const std::size_t off = rng() % 4096, len = rng() % (4096 - off + 1);
    ASSERT_EQ(generate(99, off, len), whole.substr(off, len)) << off << "+" << len;
  }
  EXPECT_NE(generate(98, 0, 64), whole.substr(0, 64));
}

TEST(SyntheticContent, Md5OfMatchesHashingTheGeneratedBytes) {
  const std::string whole = generate(5, 0, 300000);
  EXPECT_EQ(md5_of(5, 0, whole.size()), util::md5(whole));
  EXPECT_EQ(md5_of(5, 1001, 77777), util::md5(std::string_view(whole).substr(1001, 77777)));
  EXPECT_EQ(md5_of(5, 0, 0), util::md5(std::string_view{}));
}

TEST(SyntheticContent, EtagIsTheMd5OnlyUpToTheThresholdUnderAuto) {
  auto s = parse_bucket_spec("name=src,keys=4,size=1KiB-64KiB,seed=2");
  ASSERT_TRUE(s);
  synthetic_bucket b(*s, etag_mode::automatic, 0);
  EXPECT_FALSE(b.etag_is_md5(0));
  auto tag = b.etag(0);
  ASSERT_TRUE(tag);
  EXPECT_TRUE(tag->ends_with("-1"));
  synthetic_bucket m(*s, etag_mode::automatic, 1 << 20);
  EXPECT_FALSE(m.etag(1));  // not hashed yet
  const auto d = m.compute_md5(1);
  EXPECT_EQ(d, util::md5(generate(m.content_seed(1), 0, m.size(1))));
  EXPECT_EQ(m.etag(1), hex(d));
  EXPECT_EQ(m.md5_computed(), 1u);
}

// ---- aws-chunked ----

std::string chunked_body(const std::string& payload, std::size_t chunk, std::string trailer) {
  std::string out;
  char buf[32];
  for (std::size_t off = 0; off < payload.size(); off += chunk) {
    const std::size_t n = std::min(chunk, payload.size() - off);
    std::snprintf(buf, sizeof buf, "%zx", n);
    out += std::string(buf) + ";chunk-signature=" + std::string(64, 'a') + "\r\n" + payload.substr(off, n) + "\r\n";
  }
  out += "0;chunk-signature=" + std::string(64, 'b') + "\r\n" + trailer + "\r\n";
  return out;
}

TEST(AwsChunked, DecodesWhateverTheReadBoundaries) {
  const std::string payload = generate(1, 0, 5000);
  const std::string body = chunked_body(payload, 1024, "x-amz-checksum-crc32c:AAAAAA==\r\n");
  for (std::size_t piece : {1u, 2u, 7u, 100u, 1023u, 100000u}) {
    aws_chunked_decoder d;
    std::string out;
    auto sink = [&](std::span<const char> s) { out.append(s.data(), s.size()); };
    for (std::size_t off = 0; off < body.size(); off += piece)
      ASSERT_TRUE(d.feed(std::span<const char>(body.data() + off, std::min(piece, body.size() - off)), sink))
          << d.error();
    EXPECT_TRUE(d.done());
    EXPECT_EQ(out, payload);
    EXPECT_EQ(d.decoded_bytes(), payload.size());
    ASSERT_EQ(d.trailers().size(), 1u);
    EXPECT_EQ(d.trailers()[0].first, "x-amz-checksum-crc32c");
    EXPECT_EQ(d.trailers()[0].second, "AAAAAA==");
  }
}

TEST(AwsChunked, RefusesMalformedBodies) {
  auto sink = [](std::span<const char>) {};
  for (const std::string& bad : {std::string("zz\r\nabc"), std::string("3\r\nabcd\r\n"), std::string("3\nabc"),
                                 std::string(5000, '1'), std::string("0\r\n\r\nextra")}) {
    aws_chunked_decoder d;
    EXPECT_FALSE(d.feed(std::span<const char>(bad.data(), bad.size()), sink)) << bad.substr(0, 20);
    EXPECT_FALSE(d.error().empty());
  }
  aws_chunked_decoder cut;
  const std::string partial = "5\r\nab";
  EXPECT_TRUE(cut.feed(std::span<const char>(partial.data(), partial.size()), sink));
  EXPECT_FALSE(cut.done());
}

// ---- listing ----

struct vector_cursor {
  const std::vector<std::string>& keys;
  std::size_t i = 0;
  void seek(std::string_view lb) { i = std::lower_bound(keys.begin(), keys.end(), lb) - keys.begin(); }
  bool valid() const { return i < keys.size(); }
  const std::string& key() const { return keys[i]; }
  void next() { ++i; }
  std::string item() const { return keys[i]; }
};

// Everything a full listing returns, by a naive reading of S3's rules.
std::vector<std::string> naive(const std::vector<std::string>& keys, const std::string& prefix,
                               const std::string& delim) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& k : keys) {
    if (!k.starts_with(prefix)) continue;
    const auto cp = common_prefix_of(k, prefix, delim);
    if (cp.empty()) {
      out.push_back(k);
    } else if (seen.insert(std::string(cp)).second) {
      out.push_back("P:" + std::string(cp));
    }
  }
  return out;
}

TEST(Listing, PagesConcatenateToTheFullListingForAnyPageSize) {
  std::vector<std::string> keys;
  std::mt19937 rng(11);
  const std::string alphabet = "ab/-.";
  for (int i = 0; i < 400; ++i) {
    std::string k;
    const int len = 1 + static_cast<int>(rng() % 7);
    for (int j = 0; j < len; ++j) k += alphabet[rng() % alphabet.size()];
    keys.push_back(k);
  }
  keys.push_back(std::string("a\xff\xff", 3));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (const std::string prefix : {"", "a", "a/", "b-", "zz"}) {
    for (const std::string delim : {"", "/", "-", "ab"}) {
      const auto expected = naive(keys, prefix, delim);
      for (std::size_t page : {1u, 2u, 3u, 1000u}) {
        std::vector<std::string> got;
        list_query q{prefix, delim, "", page};
        for (int guard = 0; guard < 10000; ++guard) {
          vector_cursor c{keys};
          auto r = list_page(c, q);
          // Merge keys and prefixes back into order, as a client sees the sequence.
          std::vector<std::string> merged = r.items;
          for (const auto& p : r.prefixes) merged.push_back("P:" + p);
          std::sort(merged.begin(), merged.end(), [](const std::string& a, const std::string& b) {
            return (a.starts_with("P:") ? a.substr(2) : a) < (b.starts_with("P:") ? b.substr(2) : b);
          });
          ASSERT_LE(merged.size(), page);
          got.insert(got.end(), merged.begin(), merged.end());
          if (!r.truncated) break;
          ASSERT_FALSE(r.last.empty());
          q.after = r.last;
        }
        EXPECT_EQ(got, expected) << "prefix=" << prefix << " delim=" << delim << " page=" << page;
      }
    }
  }
}

TEST(Listing, StartAfterInsideACommonPrefixStillRollsUpTheRest) {
  const std::vector<std::string> keys = {"a/1", "a/2", "b", "c/1"};
  vector_cursor c{keys};
  auto r = list_page(c, list_query{"", "/", "a/1", 1000});
  EXPECT_EQ(r.prefixes, (std::vector<std::string>{"a/", "c/"}));
  EXPECT_EQ(r.items, (std::vector<std::string>{"b"}));
  vector_cursor c2{keys};
  auto r2 = list_page(c2, list_query{"", "/", "a/", 1000});  // a common prefix as marker: after all of it
  EXPECT_EQ(r2.prefixes, (std::vector<std::string>{"c/"}));
}

TEST(Listing, MillionsOfKeysUnderOnePrefixCostOneSeek) {
  auto s = parse_bucket_spec("name=big,keys=1G,size=1,prefix=deep/");
  ASSERT_TRUE(s);
  synthetic_bucket b(*s, etag_mode::multipart, 0);
  struct cursor {
    explicit cursor(const synthetic_bucket& sb) : b(sb) {}
    const synthetic_bucket& b;
    std::uint64_t i = 0;
    std::string k;
    int seeks = 0;
    void seek(std::string_view lb) {
      ++seeks;
      i = b.lower_bound(lb);
      if (i < b.count()) k = b.key(i);
    }
    bool valid() const { return i < b.count(); }
    const std::string& key() const { return k; }
    void next() {
      if (++i < b.count()) k = b.key(i);
    }
    std::uint64_t item() const { return i; }
  } c(b);
  auto r = list_page(c, list_query{"", "/", "", 1000});
  EXPECT_EQ(r.prefixes, (std::vector<std::string>{"deep/"}));
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(c.seeks, 2);
  cursor c2(b);
  auto r2 = list_page(c2, list_query{"deep/", "", "deep/000000500", 3});
  EXPECT_EQ(r2.items, (std::vector<std::uint64_t>{501, 502, 503}));
  EXPECT_TRUE(r2.truncated);
}

// ---- multipart running digest ----

struct mp_fixture {
  buffer_budget budget;
  std::vector<std::string> parts;
  std::string whole;
  explicit mp_fixture(int n, std::size_t part_size) {
    for (int i = 0; i < n; ++i) {
      parts.push_back(generate(static_cast<std::uint64_t>(i) + 1, 0, part_size + static_cast<std::size_t>(i)));
      whole += parts.back();
    }
  }
  std::vector<complete_part> list() const {
    std::vector<complete_part> l;
    for (std::size_t i = 0; i < parts.size(); ++i) l.push_back({static_cast<int>(i) + 1, hex(util::md5(parts[i]))});
    return l;
  }
  void send(multipart_upload& up, int number) {
    auto r = up.begin_part(number);
    const auto& p = parts[static_cast<std::size_t>(number) - 1];
    r->update(std::span<const std::byte>(reinterpret_cast<const std::byte*>(p.data()), p.size()));
    if (up.finish_part(*r, r->md5())) up.fold_pending();
  }
};

TEST(MultipartDigest, FollowsTheWholeObjectWhateverTheArrivalOrder) {
  for (const std::vector<int>& order : {std::vector<int>{1, 2, 3, 4}, {4, 3, 2, 1}, {2, 1, 4, 3}, {3, 1, 1, 2, 4}}) {
    mp_fixture f(4, 1000);
    multipart_upload up("id", "b", "k", "binary/octet-stream", {}, &f.budget);
    for (int n : order) f.send(up, n);
    auto rec = up.complete(f.list(), 0);
    ASSERT_TRUE(rec);
    ASSERT_TRUE(rec->md5.has_value());
    EXPECT_EQ(*rec->md5, util::md5(f.whole));
    EXPECT_EQ(rec->crc32c, util::crc32c(f.whole));
    EXPECT_EQ(rec->size, f.whole.size());
    EXPECT_TRUE(rec->etag.ends_with("-4"));
    EXPECT_EQ(f.budget.used.load(), 0u);
  }
}

TEST(MultipartDigest, GivesUpHonestlyWhenItCannotFollow) {
  mp_fixture f(3, 1000);
  f.budget.limit = 500;  // parts that must wait do not fit
  multipart_upload up("id", "b", "k", "", {}, &f.budget);
  f.send(up, 3);
  f.send(up, 2);
  f.send(up, 1);
  auto rec = up.complete(f.list(), 0);
  ASSERT_TRUE(rec);
  EXPECT_FALSE(rec->md5.has_value());
  EXPECT_EQ(rec->size, f.whole.size());
  EXPECT_EQ(f.budget.used.load(), 0u);
}

TEST(MultipartDigest, CompletionChecksPartsAsS3Does) {
  mp_fixture f(3, 100);
  multipart_upload up("id", "b", "k", "", {}, &f.budget);
  for (int n = 1; n <= 3; ++n) f.send(up, n);
  auto l = f.list();
  EXPECT_EQ(up.complete(l, 1000).error().code, "EntityTooSmall");
  auto swapped = l;
  std::swap(swapped[0], swapped[1]);
  EXPECT_EQ(up.complete(swapped, 0).error().code, "InvalidPartOrder");
  auto wrong = l;
  wrong[1].etag = std::string(32, '0');
  EXPECT_EQ(up.complete(wrong, 0).error().code, "InvalidPart");
  auto fewer = l;
  fewer.pop_back();  // parts 1-2 of 3: the running digest covers 3, so it is not the object's MD5
  auto rec = up.complete(fewer, 0);
  ASSERT_TRUE(rec);
  EXPECT_FALSE(rec->md5.has_value());
  EXPECT_TRUE(rec->etag.ends_with("-2"));
}

TEST(MultipartDigest, AFailedPartLeavesTheRunningDigestUntouched) {
  mp_fixture f(2, 100);
  multipart_upload up("id", "b", "k", "", {}, &f.budget);
  auto bad = up.begin_part(1);
  bad->update(std::span<const std::byte>(reinterpret_cast<const std::byte*>("junk"), 4));
  up.cancel_part(*bad);
  f.send(up, 1);
  f.send(up, 2);
  auto rec = up.complete(f.list(), 0);
  ASSERT_TRUE(rec && rec->md5);
  EXPECT_EQ(*rec->md5, util::md5(f.whole));
}

// ---- XML ----

TEST(SyntheticXml, ParsesCompleteAndDeleteBodies) {
  auto c = parse_complete_request(
      "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"ABC\"</ETag></Part>"
      "<Part><ETag>def</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->size(), 2u);
  EXPECT_EQ((*c)[0].etag, "abc");
  EXPECT_EQ((*c)[1].number, 2);
  EXPECT_FALSE(parse_complete_request("<CompleteMultipartUpload><Part><PartNumber>x</PartNumber>"));
  auto d = parse_delete_request("<Delete><Quiet>true</Quiet><Object><Key>a &amp; b</Key></Object></Delete>");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->quiet);
  EXPECT_EQ(d->keys, (std::vector<std::string>{"a & b"}));
  EXPECT_EQ(parse_delete_request("<Delete/>").error().code, "MalformedXML");
  std::string esc;
  append_escaped(esc, "a<b>&\"'\x01");
  EXPECT_EQ(esc, "a&lt;b&gt;&amp;&quot;&apos;&#1;");
}

}  // namespace
}  // namespace ferry::synthetic
