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

std::string field_reader::string(std::string_view key, std::size_t max_bytes, text_rule rule, bool allow_empty) {
  dom::element e;
  if (!get(key, e)) return {};
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) {
    expected(key, "a string", e);
    return {};
  }
  if (s.size() > max_bytes) {
    fail(key, "too long (" + std::to_string(s.size()) + " bytes, at most " + std::to_string(max_bytes) + ")");
    return {};
  }
  if (!allow_empty && s.empty()) {
    fail(key, "must not be empty");
    return {};
  }
  if (const char* why = check_text(s, rule)) {
    fail(key, why);
    return {};
  }
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

field_reader field_reader::object(std::string_view key) {
  dom::element e;
  if (!get(key, e)) {
    // A reader that reads nothing: the slot already holds the error.
    return field_reader(dom::element{}, path_of(key), *slot_);
  }
  return field_reader(e, path_of(key), *slot_);
}

}  // namespace ferry::proto::detail
