#pragma once
// Deterministic test bytes (xorshift32), different for each seed, fast enough for hundreds of MiB.
#include <cstddef>
#include <cstdint>
#include <string>

namespace ferry::test {

inline std::string pattern(std::size_t n, std::uint32_t seed = 0) {
  std::string s(n, '\0');
  std::uint32_t x = 2463534242u ^ seed;
  if (x == 0) x = 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

}  // namespace ferry::test
