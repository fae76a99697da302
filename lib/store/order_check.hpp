#pragma once
// The guard of the merge-join: keys of one listing must arrive in strictly increasing UTF-8 byte
// order across all its pages. A listing that breaks it fails with "ListingOutOfOrder" instead of
// feeding the planner a wrong order (the planner then falls back to sorting on disk).
#include "store/endpoint.hpp"

#include <string>
#include <string_view>

namespace ferry::store {

// True when a sorts before b in byte order (bytes compared as unsigned, like S3 and memcmp).
bool key_less(std::string_view a, std::string_view b);

class order_check {
 public:
  // Accepts `key` if it sorts strictly after every key seen so far; else a non-retryable
  // "ListingOutOfOrder" error naming `where` (the listing) and both keys.
  result<void> next(std::string_view key, std::string_view where);
  const std::string& last() const { return last_; }

 private:
  std::string last_;
  bool any_ = false;
};

}  // namespace ferry::store
