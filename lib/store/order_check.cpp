#include "store/order_check.hpp"

#include <algorithm>
#include <cstring>

namespace ferry::store {

bool key_less(std::string_view a, std::string_view b) {
  const auto n = std::min(a.size(), b.size());
  if (n > 0) {
    const int c = std::memcmp(a.data(), b.data(), n);
    if (c != 0) return c < 0;
  }
  return a.size() < b.size();
}

result<void> order_check::next(std::string_view key, std::string_view where) {
  if (any_ && !key_less(last_, key)) {
    auto e = s3::local_error("ListingOutOfOrder", std::string(where) + ": key '" + std::string(key) +
                                                      (key == last_ ? "' repeats" : "' arrives after '" + last_ + "'") +
                                                      "; the listing is not in byte order");
    e.retryable = false;
    return e;
  }
  last_.assign(key);
  any_ = true;
  return {};
}

}  // namespace ferry::store
