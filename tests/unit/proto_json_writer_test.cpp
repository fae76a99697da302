#include "proto/json_writer.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace {

using ferry::proto::append_json_string;
using ferry::proto::json_writer;
using ferry::proto::sanitize_utf8;

std::string json_quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// What simdjson reads back from a JSON string literal.
std::string parse_back(const std::string& json) {
  simdjson::dom::parser p;
  std::string_view v;
  EXPECT_EQ(p.parse(json).get_string().get(v), simdjson::SUCCESS) << json;
  return std::string(v);
}

TEST(ProtoJsonWriter, EscapesQuotesBackslashesAndShortControls) {
  EXPECT_EQ(json_quoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_quoted("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(json_quoted("/"), R"("/")");
}

TEST(ProtoJsonWriter, EscapesOtherControlCharactersAndDelAsUnicode) {
  EXPECT_EQ(json_quoted(std::string("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  EXPECT_EQ(json_quoted("\x1b[31mred"), R"("\u001b[31mred")");
}

TEST(ProtoJsonWriter, NeverEmitsARawNewlineOrControlByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string out = json_quoted(all);
  for (unsigned char c : out) EXPECT_FALSE(c < 0x20 || c == 0x7F) << int(c);
}

TEST(ProtoJsonWriter, PassesValidUtf8Through) {
  const std::string s = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E \xEF\xBF\xBF";  // é € 𝄞 U+FFFF
  EXPECT_EQ(json_quoted(s), "\"" + s + "\"");
  EXPECT_EQ(parse_back(json_quoted(s)), s);
}

TEST(ProtoJsonWriter, ReplacesInvalidUtf8WithReplacementCharacter) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(json_quoted("a\xFFz"), "\"a" + fffd + "z\"");                               // never valid
  EXPECT_EQ(json_quoted("\xC0\xAF"), "\"" + fffd + fffd + "\"");                        // overlong '/'
  EXPECT_EQ(json_quoted("\xE0\x80\xAF"), "\"" + fffd + fffd + fffd + "\"");             // overlong, 3 bytes
  EXPECT_EQ(json_quoted("\xED\xA0\x80"), "\"" + fffd + fffd + fffd + "\"");             // UTF-16 surrogate
  EXPECT_EQ(json_quoted("\xF4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // > U+10FFFF
  EXPECT_EQ(json_quoted("x\xE2\x82"), "\"x" + fffd + fffd + "\"");                      // truncated at the end
  EXPECT_EQ(json_quoted("\xE2\x82x"), "\"" + fffd + fffd + "x\"");                      // truncated in the middle
  EXPECT_EQ(sanitize_utf8("ok\x80"), "ok" + fffd);
}

TEST(ProtoJsonWriter, OutputOfEveryByteIsValidJsonThatReadsBackSanitized) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(parse_back(json_quoted(all)), sanitize_utf8(all));
}

TEST(ProtoJsonWriter, PlacesCommasAndColonsInNestedStructures) {
  json_writer w;
  w.begin_object()
      .member("a", 1)
      .member("b", "x")
      .key("c")
      .begin_array()
      .value(true)
      .null()
      .begin_object()
      .end_object()
      .begin_array()
      .end_array()
      .value(std::uint64_t{18446744073709551615ull})
      .value(std::int64_t{-9223372036854775807ll - 1})
      .end_array()
      .key("d")
      .raw(R"({"z":[1]})")
      .end_object();
  EXPECT_EQ(w.str(),
            R"({"a":1,"b":"x","c":[true,null,{},[],18446744073709551615,-9223372036854775808],"d":{"z":[1]}})");
}

TEST(ProtoJsonWriter, EscapesKeysToo) {
  json_writer w;
  w.begin_object().member("k\"\n", false).end_object();
  EXPECT_EQ(w.str(), R"({"k\"\n":false})");
}

}  // namespace
