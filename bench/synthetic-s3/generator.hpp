#pragma once
// Object content as a pure function of (object seed, byte offset): any range of any object can be
// produced without storing data. Word w (bytes 8w..8w+7, little-endian) is splitmix64's finaliser of
// seed + (w + 1) * golden-ratio, so generating is several GB/s per core and MD5 is the cost that matters.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "util/hash.hpp"

namespace ferry::synthetic {

// splitmix64's finaliser: a bijective 64-bit mix.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The seed of one object's content: depends on the bucket seed and the key, not on the bucket name, so
// equal (seed, key) pairs in two buckets hold equal bytes.
std::uint64_t object_seed(std::uint64_t bucket_seed, std::string_view key);

// Writes bytes [offset, offset + out.size()) of the object with this seed into out.
void fill(std::uint64_t seed, std::uint64_t offset, std::span<char> out);

// MD5 of bytes [offset, offset + length) of the object with this seed (generated in cache-sized chunks).
util::md5_digest md5_of(std::uint64_t seed, std::uint64_t offset, std::uint64_t length);

// Calls sink(std::span<const std::byte>) with bytes [offset, offset + length) in cache-sized chunks.
template <class Sink>
void generate_into(std::uint64_t seed, std::uint64_t offset, std::uint64_t length, Sink& sink) {
  constexpr std::size_t chunk = 64 * 1024;  // stays in L2 between generating and hashing
  alignas(64) static thread_local char buf[chunk];
  while (length > 0) {
    const std::size_t n = length < chunk ? static_cast<std::size_t>(length) : chunk;
    fill(seed, offset, std::span<char>(buf, n));
    sink(std::span<const std::byte>(reinterpret_cast<const std::byte*>(buf), n));
    offset += n;
    length -= n;
  }
}

}  // namespace ferry::synthetic
