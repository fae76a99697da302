#pragma once
// An escaping-correct JSON writer: the only way proto/ (and ferryd) turn values into JSON text.
// Every string goes through append_json_string, so untrusted text (object keys, S3 error messages,
// job names) can never break the framing: control characters, quotes and backslashes are escaped,
// invalid UTF-8 becomes U+FFFD, and the output never contains a raw '\n'.
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::proto {

// Appends `s` as a quoted JSON string.
void append_json_string(std::string& out, std::string_view s);

// `s` with each invalid UTF-8 sequence replaced by U+FFFD (what the writer does inside strings).
std::string sanitize_utf8(std::string_view s);

// Builds compact JSON (no whitespace); commas and colons are placed automatically. The caller is
// responsible for balancing begin/end and for pairing key() with a value inside objects.
class json_writer {
 public:
  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  json_writer& key(std::string_view k);

  json_writer& value(std::string_view s);
  json_writer& value(const char* s) { return value(std::string_view(s)); }
  json_writer& value(const std::string& s) { return value(std::string_view(s)); }
  json_writer& value(bool b);
  json_writer& value(std::signed_integral auto v) { return int_value(static_cast<std::int64_t>(v)); }
  json_writer& value(std::unsigned_integral auto v) { return uint_value(static_cast<std::uint64_t>(v)); }
  // A finite number in its shortest round-trip form; NaN and infinities (not JSON) become null.
  json_writer& value(double v);
  json_writer& null();
  // A value that is already JSON text, e.g. a handler's serialised result. Must be one complete
  // JSON value produced by this writer (never text received from outside).
  json_writer& raw(std::string_view json);

  // key(k) followed by value(v).
  template <class T>
  json_writer& member(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }

  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  json_writer& int_value(std::int64_t v);
  json_writer& uint_value(std::uint64_t v);
  void separate();

  std::string out_;
  bool need_comma_ = false;
};

}  // namespace ferry::proto
