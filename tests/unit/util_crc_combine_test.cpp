// util::crc32c_combine against CRC32C computed over the joined bytes: random splits, empty parts,
// folding many parts left to right, and associativity for lengths too long to hash.
#include "util/hash.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace ferry::util {
namespace {

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

TEST(UtilCrcCombine, KnownValueOfTheCheckString) {
  // "123456789" has the catalogued CRC32C check value; any split must give it back.
  const std::string_view all = "123456789";
  for (std::size_t cut = 0; cut <= all.size(); ++cut) {
    const auto a = all.substr(0, cut), b = all.substr(cut);
    EXPECT_EQ(crc32c_combine(crc32c(a), crc32c(b), b.size()), 0xE3069283u) << "cut at " << cut;
  }
}

TEST(UtilCrcCombine, EmptyPartsLeaveTheOtherCrc) {
  const std::string data = "ferry moves objects";
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c_combine(crc32c(data), crc32c(""), 0), crc32c(data));
  EXPECT_EQ(crc32c_combine(crc32c(""), crc32c(data), data.size()), crc32c(data));
  EXPECT_EQ(crc32c_combine(0, 0, 0), 0u);
}

TEST(UtilCrcCombine, RandomSplitsMatchTheWholeCrc) {
  std::mt19937_64 rng(20261123);
  for (int round = 0; round < 300; ++round) {
    // Mostly small, sometimes up to 256 KiB, so lengths with high bits set are covered too.
    const std::size_t n = round % 10 == 0 ? rng() % (256 * 1024) : rng() % 2000;
    const auto data = random_bytes(rng, n);
    const std::size_t cut = n == 0 ? 0 : rng() % (n + 1);
    const std::string_view all(data);
    const auto a = all.substr(0, cut), b = all.substr(cut);
    ASSERT_EQ(crc32c_combine(crc32c(a), crc32c(b), b.size()), crc32c(all)) << "length " << n << ", cut at " << cut;
  }
}

TEST(UtilCrcCombine, FoldingPartsLikeAMultipartUploadGivesTheObjectCrc) {
  std::mt19937_64 rng(7);
  const auto data = random_bytes(rng, 11 * 1024 * 1024 + 17);
  const std::string_view all(data);
  for (const std::size_t part : {std::size_t{4096}, std::size_t{1024 * 1024 + 1}, std::size_t{5 * 1024 * 1024}}) {
    std::uint32_t folded = crc32c("");
    for (std::size_t off = 0; off < all.size(); off += part) {
      const auto piece = all.substr(off, part);
      folded = crc32c_combine(folded, crc32c(piece), piece.size());
    }
    EXPECT_EQ(folded, crc32c(all)) << "parts of " << part;
  }
  // Byte by byte, over a prefix.
  const auto prefix = all.substr(0, 5000);
  std::uint32_t folded = 0;
  for (std::size_t i = 0; i < prefix.size(); ++i) folded = crc32c_combine(folded, crc32c(prefix.substr(i, 1)), 1);
  EXPECT_EQ(folded, crc32c(prefix));
}

TEST(UtilCrcCombine, IsAssociativeForLengthsTooLongToHash) {
  // (A||B)||C == A||(B||C) is an identity of the method for any lengths, so it checks the high
  // powers of x (objects of terabytes) that no test can hash: b + c carries into higher bits.
  std::mt19937_64 rng(99);
  for (int round = 0; round < 200; ++round) {
    const auto ca = static_cast<std::uint32_t>(rng()), cb = static_cast<std::uint32_t>(rng()),
               cc = static_cast<std::uint32_t>(rng());
    const std::uint64_t b = rng() >> (1 + rng() % 63), c = rng() >> (1 + rng() % 63);
    const auto left = crc32c_combine(crc32c_combine(ca, cb, b), cc, c);
    const auto right = crc32c_combine(ca, crc32c_combine(cb, cc, c), b + c);
    ASSERT_EQ(left, right) << "b=" << b << " c=" << c;
  }
  // And the method against real bytes across a long run of zeros.
  const auto a = random_bytes(rng, 100);
  const std::string zeros(70'000, '\0');
  EXPECT_EQ(crc32c_combine(crc32c(a), crc32c(zeros), zeros.size()), crc32c(a + zeros));
}

}  // namespace
}  // namespace ferry::util
