// lib/util/hash: digests against published vectors, incremental == one-shot, strict base64.
#include "util/hash.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

namespace ferry::util {
namespace {

std::span<const std::uint8_t> bytes(const std::vector<std::uint8_t>& v) { return v; }

TEST(Md5, KnownVectors) {
  EXPECT_EQ(to_hex(md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(to_hex(md5("abc")), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(to_hex(md5("The quick brown fox jumps over the lazy dog")), "9e107d9d372bb6826bd81d3542a419d6");
}

TEST(Md5, IncrementalMatchesOneShotAndFinishStartsOver) {
  std::string data(100'003, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + 7);
  md5_hasher h;
  for (std::size_t pos = 0; pos < data.size(); pos += 4093) h.update(std::string_view(data).substr(pos, 4093));
  EXPECT_EQ(h.finish(), md5(data));
  // After finish the hasher is empty again.
  h.update(std::string_view("abc"));
  EXPECT_EQ(to_hex(h.finish()), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Md5, ByteAndUint8SpansAgreeWithStrings) {
  const std::string s = "hello, world";
  md5_hasher a, b;
  a.update(std::as_bytes(std::span(s.data(), s.size())));
  std::vector<std::uint8_t> v(s.begin(), s.end());
  b.update(bytes(v));
  const auto expected = md5(s);
  EXPECT_EQ(a.finish(), expected);
  EXPECT_EQ(b.finish(), expected);
  EXPECT_EQ(md5(bytes(v)), expected);
}

TEST(Md5, MovedHasherKeepsItsState) {
  md5_hasher a;
  a.update(std::string_view("ab"));
  md5_hasher b = std::move(a);
  b.update(std::string_view("c"));
  EXPECT_EQ(to_hex(b.finish()), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(to_hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // The body of AWS's S3 PUT Object signing example.
  EXPECT_EQ(to_hex(sha256("Welcome to Amazon S3.")),
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
}

TEST(Sha256, IncrementalMatchesOneShot) {
  const std::string data = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  sha256_hasher h;
  for (char c : data) h.update(std::string_view(&c, 1));
  EXPECT_EQ(to_hex(h.finish()), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(HmacSha256, Rfc4231Vectors) {
  const std::vector<std::uint8_t> key1(20, 0x0b);
  EXPECT_EQ(to_hex(hmac_sha256(bytes(key1), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(to_hex(hmac_sha256(std::string_view("Jefe"), "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a key longer than the block size is hashed first.
  const std::vector<std::uint8_t> key6(131, 0xaa);
  EXPECT_EQ(to_hex(hmac_sha256(bytes(key6), "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256, EmptyKeyAndData) {
  EXPECT_EQ(to_hex(hmac_sha256(std::string_view(""), "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(Crc32c, StandardCheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(Crc32c, Rfc3720Vectors) {
  std::vector<std::uint8_t> zeros(32, 0), ones(32, 0xFF), ascending(32);
  std::iota(ascending.begin(), ascending.end(), std::uint8_t{0});
  auto crc = [](const std::vector<std::uint8_t>& v) {
    crc32c_hasher h;
    h.update(std::span<const std::uint8_t>(v));
    return h.value();
  };
  EXPECT_EQ(crc(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc(ones), 0x62A8AB43u);
  EXPECT_EQ(crc(ascending), 0x46DD794Eu);
}

TEST(Crc32c, IncrementalAcrossOddSplits) {
  std::string data(70'001, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7919) >> 3);
  for (std::size_t step : {1u, 3u, 64u, 4097u}) {
    crc32c_hasher h;
    for (std::size_t pos = 0; pos < data.size(); pos += step) h.update(std::string_view(data).substr(pos, step));
    EXPECT_EQ(h.value(), crc32c(data)) << "step " << step;
  }
}

TEST(Crc32c, BigEndianBytesAreWhatTheChecksumHeaderCarries) {
  crc32c_hasher h;
  h.update(std::string_view("123456789"));
  const auto be = h.big_endian();
  EXPECT_EQ(be, (std::array<std::uint8_t, 4>{0xE3, 0x06, 0x92, 0x83}));
  EXPECT_EQ(base64_encode(be), "4waSgw==");
  crc32c_hasher empty;
  EXPECT_EQ(base64_encode(empty.big_endian()), "AAAAAA==");
}

TEST(Hex, LowerCase) {
  const std::vector<std::uint8_t> v{0x00, 0x0f, 0xa0, 0xff};
  EXPECT_EQ(to_hex(bytes(v)), "000fa0ff");
  EXPECT_EQ(to_hex(std::string_view("\x01\xAB", 2)), "01ab");
  EXPECT_EQ(to_hex(std::string_view()), "");
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {{"", ""},
                                                       {"f", "Zg=="},
                                                       {"fo", "Zm8="},
                                                       {"foo", "Zm9v"},
                                                       {"foob", "Zm9vYg=="},
                                                       {"fooba", "Zm9vYmE="},
                                                       {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(base64_encode(std::string_view(plain)), encoded);
    auto back = base64_decode(encoded);
    ASSERT_TRUE(back.has_value()) << encoded;
    EXPECT_EQ(std::string(back->begin(), back->end()), plain);
  }
}

TEST(Base64, ContentMd5OfEmptyBody) { EXPECT_EQ(base64_encode(md5("")), "1B2M2Y8AsgTpgAmY7PhCfg=="); }

TEST(Base64, RoundTripsAllByteValues) {
  std::vector<std::uint8_t> all(256);
  std::iota(all.begin(), all.end(), std::uint8_t{0});
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    std::vector<std::uint8_t> v(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    auto back = base64_decode(base64_encode(bytes(v)));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, v);
  }
}

TEST(Base64, DecodeRejectsMalformedInput) {
  for (const char* bad : {"Zg=", "Zg", "Z===", "Zm=v", "=Zm9", "Zm9v\n", " Zm9v", "Zm9v====", "Zm9*", "Zh==", "Zm9="})
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
}

TEST(HashSelfTest, PassesOnThisHost) {
  std::string why;
  EXPECT_TRUE(hash_self_test(&why)) << why;
}

}  // namespace
}  // namespace ferry::util
