#pragma once
// ListObjects paging over any sorted key source, as S3 does it: keys > the marker that start with
// the prefix; with a delimiter, keys sharing prefix + ... + delimiter roll up into one common prefix,
// which counts as one entry and is skipped over in one seek, so a million keys under one common
// prefix cost one step.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::synthetic {

struct list_query {
  std::string prefix, delimiter;
  std::string after;  // start-after, marker or a decoded continuation token: list keys > after
  std::size_t max_keys = 1000;
};

template <class Item>
struct list_result {
  std::vector<Item> items;            // keys (from the cursor) and common prefixes, in order
  std::vector<std::string> prefixes;  // common prefixes
  bool truncated = false;
  std::string last;  // the last key or common prefix returned: where the next page starts
};

// The smallest string greater than every string starting with p; "" when there is none (all 0xFF).
inline std::string prefix_successor(std::string_view p) {
  std::string s(p);
  while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xFF) s.pop_back();
  if (!s.empty()) s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
  return s;
}

// Where `key` rolls up under (prefix, delimiter): the common prefix, or "" when it does not.
inline std::string_view common_prefix_of(std::string_view key, std::string_view prefix, std::string_view delimiter) {
  if (delimiter.empty() || !key.starts_with(prefix)) return {};
  const auto at = key.find(delimiter, prefix.size());
  if (at == std::string_view::npos) return {};
  return key.substr(0, at + delimiter.size());
}

// Cursor: seek(lower_bound) to the first key >= it; valid(); key() (const std::string&); next();
// item() (the Item for the current key).
template <class Cursor>
auto list_page(Cursor& c, const list_query& q) {
  list_result<decltype(c.item())> r;
  if (!q.after.empty() && q.after >= q.prefix) {
    // A marker that is itself a common prefix means "after everything under it".
    if (common_prefix_of(q.after, q.prefix, q.delimiter) == q.after) {
      const std::string s = prefix_successor(q.after);
      if (s.empty()) return r;
      c.seek(s);
    } else {
      std::string s = q.after;
      s.push_back('\0');  // the smallest string greater than q.after
      c.seek(s);
    }
  } else {
    c.seek(q.prefix);
  }
  std::size_t count = 0;
  while (c.valid()) {
    const std::string& k = c.key();
    if (!k.starts_with(q.prefix)) break;
    if (count == q.max_keys) {
      r.truncated = q.max_keys > 0;
      break;
    }
    ++count;
    if (const auto cp = common_prefix_of(k, q.prefix, q.delimiter); !cp.empty()) {
      r.prefixes.emplace_back(cp);
      r.last = r.prefixes.back();
      const std::string s = prefix_successor(r.last);
      if (s.empty()) break;
      c.seek(s);
      continue;
    }
    r.items.push_back(c.item());
    r.last = k;
    c.next();
  }
  return r;
}

}  // namespace ferry::synthetic
