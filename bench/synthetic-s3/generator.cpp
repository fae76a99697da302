#include "generator.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace ferry::synthetic {

static_assert(std::endian::native == std::endian::little, "content bytes are defined as little-endian words");

namespace {

constexpr std::uint64_t golden = 0x9E3779B97F4A7C15ull;

inline std::uint64_t word(std::uint64_t seed, std::uint64_t w) { return mix64(seed + (w + 1) * golden); }

}  // namespace

std::uint64_t object_seed(std::uint64_t bucket_seed, std::string_view key) {
  std::uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a, then mixed: keys differ mostly in their last bytes
  for (const char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ull;
  }
  return mix64(bucket_seed ^ mix64(h));
}

void fill(std::uint64_t seed, std::uint64_t offset, std::span<char> out) {
  char* p = out.data();
  std::size_t n = out.size();
  std::uint64_t w = offset / 8;
  if (const std::size_t skew = offset % 8; skew != 0 && n > 0) {
    const std::uint64_t v = word(seed, w++);
    const std::size_t take = std::min<std::size_t>(8 - skew, n);
    std::memcpy(p, reinterpret_cast<const char*>(&v) + skew, take);
    p += take;
    n -= take;
  }
  // The hot loop: no dependency between words, so the compiler keeps several multiplies in flight.
  const std::size_t words = n / 8;
  for (std::size_t i = 0; i < words; ++i) {
    const std::uint64_t v = word(seed, w + i);
    std::memcpy(p + i * 8, &v, 8);
  }
  p += words * 8;
  n -= words * 8;
  w += words;
  if (n > 0) {
    const std::uint64_t v = word(seed, w);
    std::memcpy(p, &v, n);
  }
}

util::md5_digest md5_of(std::uint64_t seed, std::uint64_t offset, std::uint64_t length) {
  util::md5_hasher md5;
  auto sink = [&md5](std::span<const std::byte> b) { md5.update(b); };
  generate_into(seed, offset, length, sink);
  return md5.finish();
}

}  // namespace ferry::synthetic
