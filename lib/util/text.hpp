#pragma once
// Small text helpers shared across lib/.
#include <string>
#include <string_view>

namespace ferry::util {

// ASCII lower case; other bytes (UTF-8 included) unchanged. For header names, ETags, hex.
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace ferry::util
