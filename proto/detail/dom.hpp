#pragma once
// Private to proto/*.cpp: simdjson DOM parsing and a field reader that remembers the first error
// with the path of the offending field ("params.name: expected a string, got a number").
#include "proto/error.hpp"

#include <simdjson.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::proto::detail {

namespace dom = simdjson::dom;

inline constexpr std::size_t max_depth = 32;

// Parses `text` (already padded) with a fresh parser; depth is capped at max_depth.
// On failure: `code` with simdjson's reason.
result<dom::element> parse_dom(dom::parser& p, const simdjson::padded_string& text, int code, std::string_view what);

std::string_view type_name(dom::element e);

// The first error seen while reading one document.
struct error_slot {
  int code;
  std::optional<error> first;
  void fail(std::string path, std::string_view msg);
};

enum class text_rule {
  any,         // any valid UTF-8 (simdjson already validated it)
  no_control,  // no C0 controls or DEL: names, ids, locations
};

// Reads fields of one JSON object; every accessor returns a default value after an error.
class field_reader {
 public:
  field_reader(dom::element e, std::string path, error_slot& slot);

  bool ok() const { return !slot_->first; }
  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const;

  // Strict mode: refuses keys not in `known` and duplicate keys.
  void only(std::initializer_list<std::string_view> known);

  std::string string(std::string_view key, std::size_t max_bytes = SIZE_MAX, text_rule rule = text_rule::any,
                     bool allow_empty = true);
  // Absent or null -> nullopt.
  std::optional<std::string> optional_string(std::string_view key, std::size_t max_bytes = SIZE_MAX,
                                             text_rule rule = text_rule::any);
  std::uint64_t uint(std::string_view key);
  std::int64_t int64(std::string_view key);
  bool boolean(std::string_view key);
  // Absent or null -> nullopt; present: as uint(), int64(), boolean().
  std::optional<std::uint64_t> optional_uint(std::string_view key);
  std::optional<std::int64_t> optional_int64(std::string_view key);
  std::optional<bool> optional_bool(std::string_view key);
  // Absent or null -> nullopt; any JSON number otherwise.
  std::optional<double> optional_double(std::string_view key);
  // An array of at most `max_items` strings, each checked as string() checks one; absent or null: empty.
  std::vector<std::string> optional_strings(std::string_view key, std::size_t max_items = SIZE_MAX,
                                            std::size_t max_bytes = SIZE_MAX, text_rule rule = text_rule::any,
                                            bool allow_empty = true);
  // The key is present with a value other than null.
  bool has(std::string_view key);
  // A nested object (absent or wrong type: error; the reader then reads nothing).
  field_reader object(std::string_view key);
  // Present as an array: calls f(element, path) for each item; absent or wrong type: error.
  template <class F>
  void array(std::string_view key, F&& f) {
    dom::element e;
    if (!get(key, e)) return;
    dom::array a;
    if (e.get_array().get(a) != simdjson::SUCCESS) {
      expected(key, "an array", e);
      return;
    }
    std::size_t i = 0;
    for (dom::element item : a) {
      if (!ok()) return;
      f(item, path_of(key) + "[" + std::to_string(i) + "]");
      ++i;
    }
  }

  // Records an error about `key` (unless one is recorded already).
  void fail(std::string_view key, std::string_view msg);
  error_slot* slot() const { return slot_; }

 private:
  bool get(std::string_view key, dom::element& out);  // false (and an error) if missing
  // Checks one string value found at `path`; records the error and returns false if it fails a rule.
  bool check_string(const std::string& path, std::string_view s, std::size_t max_bytes, text_rule rule,
                    bool allow_empty);
  void expected(std::string_view key, std::string_view what, dom::element got);

  dom::object obj_;
  bool is_object_ = false;
  std::string path_;
  error_slot* slot_;
};

// Checks a string against a rule; returns a reason or nullptr.
const char* check_text(std::string_view s, text_rule rule);

}  // namespace ferry::proto::detail
