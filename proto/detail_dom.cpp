#include "proto/detail/dom.hpp"

#include <algorithm>
#include <vector>

namespace ferry::proto::detail {

namespace {

// A key quoted in an error message: it came from the client, so keep it short.
std::string sanitize_key(std::string_view k) {
  constexpr std::size_t max = 64;
  if (k.size() <= max) return std::string(k);
  return std::string(k.substr(0, max)) + "...";
}

}  // namespace

result<dom::element> parse_dom(dom::parser& p, const simdjson::padded_string& text, int code, std::string_view what) {
  if (auto ec = p.allocate(std::max<std::size_t>(text.size(), 64), max_depth); ec != simdjson::SUCCESS)
    return error{code, std::string(what) + ": cannot allocate parser: " + simdjson::error_message(ec)};
  dom::element root;
  if (auto ec = p.parse(text).get(root); ec != simdjson::SUCCESS) {
    std::string reason = simdjson::error_message(ec);
    if (ec == simdjson::DEPTH_ERROR) reason = "nested deeper than " + std::to_string(max_depth) + " levels";
    if (ec == simdjson::UTF8_ERROR) reason = "not valid UTF-8";
    if (ec == simdjson::EMPTY) reason = "empty";
    return error{code, std::string(what) + ": " + reason};
  }
  return result<dom::element>(boost::system::in_place_value, root);
}

std::string_view type_name(dom::element e) {
  switch (e.type()) {
    case dom::element_type::ARRAY:
      return "an array";
    case dom::element_type::OBJECT:
      return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      return "a number";
    case dom::element_type::STRING:
      return "a string";
    case dom::element_type::BOOL:
      return "a boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

void error_slot::fail(std::string path, std::string_view msg) {
  if (first) return;
  first = error{code, std::move(path) + ": " + std::string(msg)};
}

const char* check_text(std::string_view s, text_rule rule) {
  if (rule == text_rule::no_control) {
    for (unsigned char c : s)
      if (c < 0x20 || c == 0x7F) return "must not contain control characters";
  }
  return nullptr;
}

field_reader::field_reader(dom::element e, std::string path, error_slot& slot) : path_(std::move(path)), slot_(&slot) {
  if (!ok()) return;
  if (e.get_object().get(obj_) == simdjson::SUCCESS) {
    is_object_ = true;
  } else {
    slot_->fail(path_, std::string("expected an object, got ") + std::string(type_name(e)));
  }
}

std::string field_reader::path_of(std::string_view key) const { return path_ + "." + std::string(key); }

void field_reader::fail(std::string_view key, std::string_view msg) { slot_->fail(path_of(key), msg); }

void field_reader::only(std::initializer_list<std::string_view> known) {
  if (!ok() || !is_object_) return;
  std::vector<std::string_view> seen;
  for (auto field : obj_) {
    const std::string_view k = field.key;
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      slot_->fail(path_, "unknown field '" + sanitize_key(k) + "'");
      return;
    }
    if (std::find(seen.begin(), seen.end(), k) != seen.end()) {
      slot_->fail(path_, "duplicate field '" + sanitize_key(k) + "'");
      return;
    }
    seen.push_back(k);
  }
}

bool field_reader::get(std::string_view key, dom::element& out) {
  if (!ok() || !is_object_) return false;
  if (obj_.at_key(key).get(out) != simdjson::SUCCESS) {
    fail(key, "missing");
    return false;
  }
  return true;
}

void field_reader::expected(std::string_view key, std::string_view what, dom::element got) {
  fail(key, "expected " + std::string(what) + ", got " + std::string(type_name(got)));
}

bool field_reader::check_string(const std::string& path, std::string_view s, std::size_t max_bytes, text_rule rule,
                                bool allow_empty) {
  if (s.size() > max_bytes) {
    slot_->fail(path, "too long (" + std::to_string(s.size()) + " bytes, at most " + std::to_string(max_bytes) + ")");
    return false;
  }
  if (!allow_empty && s.empty()) {
    slot_->fail(path, "must not be empty");
    return false;
  }
  if (const char* why = check_text(s, rule)) {
    slot_->fail(path, why);
    return false;
  }
  return true;
}

std::string field_reader::string(std::string_view key, std::size_t max_bytes, text_rule rule, bool allow_empty) {
  dom::element e;
  if (!get(key, e)) return {};
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) {
    expected(key, "a string", e);
    return {};
  }
  if (!check_string(path_of(key), s, max_bytes, rule, allow_empty)) return {};
  return std::string(s);
}

std::optional<std::string> field_reader::optional_string(std::string_view key, std::size_t max_bytes, text_rule rule) {
  if (!ok() || !is_object_) return std::nullopt;
  dom::element e;
  if (obj_.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  return string(key, max_bytes, rule);
}

std::uint64_t field_reader::uint(std::string_view key) {
  dom::element e;
  if (!get(key, e)) return 0;
  std::uint64_t v = 0;
  if (e.get_uint64().get(v) == simdjson::SUCCESS) return v;
  expected(key, "a non-negative integer", e);
  return 0;
}

std::int64_t field_reader::int64(std::string_view key) {
  dom::element e;
  if (!get(key, e)) return 0;
  std::int64_t v = 0;
  if (e.get_int64().get(v) == simdjson::SUCCESS) return v;
  expected(key, "an integer", e);
  return 0;
}

bool field_reader::boolean(std::string_view key) {
  dom::element e;
  if (!get(key, e)) return false;
  bool v = false;
  if (e.get_bool().get(v) == simdjson::SUCCESS) return v;
  expected(key, "a boolean", e);
  return false;
}

bool field_reader::has(std::string_view key) {
  if (!ok() || !is_object_) return false;
  dom::element e;
  return obj_.at_key(key).get(e) == simdjson::SUCCESS && !e.is_null();
}

std::optional<std::uint64_t> field_reader::optional_uint(std::string_view key) {
  if (!has(key)) return std::nullopt;
  const auto v = uint(key);
  return ok() ? std::optional(v) : std::nullopt;
}

std::optional<std::int64_t> field_reader::optional_int64(std::string_view key) {
  if (!has(key)) return std::nullopt;
  const auto v = int64(key);
  return ok() ? std::optional(v) : std::nullopt;
}

std::optional<double> field_reader::optional_double(std::string_view key) {
  if (!has(key)) return std::nullopt;
  dom::element e;
  if (!get(key, e)) return std::nullopt;
  double d = 0;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  if (e.get_double().get(d) == simdjson::SUCCESS) return d;
  if (e.get_int64().get(i) == simdjson::SUCCESS) return static_cast<double>(i);
  if (e.get_uint64().get(u) == simdjson::SUCCESS) return static_cast<double>(u);
  expected(key, "a number", e);
  return std::nullopt;
}

std::optional<bool> field_reader::optional_bool(std::string_view key) {
  if (!has(key)) return std::nullopt;
  const bool v = boolean(key);
  return ok() ? std::optional(v) : std::nullopt;
}

std::vector<std::string> field_reader::optional_strings(std::string_view key, std::size_t max_items,
                                                        std::size_t max_bytes, text_rule rule, bool allow_empty) {
  std::vector<std::string> out;
  if (!has(key)) return out;
  dom::element e;
  if (!get(key, e)) return out;
  dom::array a;
  if (e.get_array().get(a) != simdjson::SUCCESS) {
    expected(key, "an array", e);
    return out;
  }
  // Counted before anything is copied (size() saturates at 2^24 - 1, far above any limit here).
  const std::size_t n = a.size();
  if (n > max_items) {
    fail(key, "too many items (" + std::to_string(n) + ", at most " + std::to_string(max_items) + ")");
    return out;
  }
  out.reserve(n);
  std::size_t i = 0;
  for (dom::element item : a) {
    const std::string path = path_of(key) + "[" + std::to_string(i++) + "]";
    std::string_view s;
    if (item.get_string().get(s) != simdjson::SUCCESS) {
      slot_->fail(path, "expected a string, got " + std::string(type_name(item)));
      return {};
    }
    if (!check_string(path, s, max_bytes, rule, allow_empty)) return {};
    out.emplace_back(s);
  }
  return out;
}

field_reader field_reader::object(std::string_view key) {
  dom::element e;
  if (!get(key, e)) {
    // A reader that reads nothing: the slot already holds the error.
    return field_reader(dom::element{}, path_of(key), *slot_);
  }
  return field_reader(e, path_of(key), *slot_);
}

}  // namespace ferry::proto::detail
