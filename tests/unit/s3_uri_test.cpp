// lib/s3/uri: S3's URI encoding, decoding of encoding-type=url listings, object paths.
#include "s3/uri.hpp"

#include <gtest/gtest.h>

namespace ferry::s3 {
namespace {

TEST(UriEncode, KeepsUnreservedAndEncodesEverythingElseUpperCase) {
  EXPECT_EQ(uri_encode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(uri_encode("a b+c*d$e%f?g#h=i&j:k@l!m'n(o)p,q;r"),
            "a%20b%2Bc%2Ad%24e%25f%3Fg%23h%3Di%26j%3Ak%40l%21m%27n%28o%29p%2Cq%3Br");
  EXPECT_EQ(uri_encode("\xC3\xBC\xFF"), "%C3%BC%FF");
  EXPECT_EQ(uri_encode(std::string_view("\0", 1)), "%00");
}

TEST(UriEncode, SlashKeptInPathsAndEncodedInQueryValues) {
  EXPECT_EQ(uri_encode("a/b/", false), "a/b/");
  EXPECT_EQ(uri_encode("a/b/", true), "a%2Fb%2F");
  EXPECT_EQ(uri_encode("a/b"), "a%2Fb");  // default: query rules
}

TEST(UriDecode, UndoesEscapesInEitherCase) {
  EXPECT_EQ(uri_decode("a%20b%2fc%2F%c3%bc"), "a b/c/\xC3\xBC");
  EXPECT_EQ(uri_decode("%00"), std::string("\0", 1));
}

TEST(UriDecode, PlusIsASpaceOnlyInFormMode) {
  EXPECT_EQ(uri_decode("a+b%2Bc", true), "a b+c");
  EXPECT_EQ(uri_decode("a+b%2Bc", false), "a+b+c");
}

TEST(UriDecode, RejectsMalformedEscapes) {
  for (const char* bad : {"%", "%2", "a%G0", "%0g", "abc%"}) EXPECT_FALSE(uri_decode(bad).has_value()) << bad;
}

TEST(UriRoundTrip, AwkwardKeysSurviveEncodeThenDecode) {
  const std::string keys[] = {
      "plain.txt",       "with space/and  two", "plus+sign",
      "tilde~",          "percent%41literal",   "question?hash#equals=amp&",
      "trailing/slash/", "/leading//double",    "unicode/\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E/caf\xC3\xA9",
      "ctl\x01\x7F"};
  for (const auto& k : keys) {
    for (bool encode_slash : {false, true}) {
      auto back = uri_decode(uri_encode(k, encode_slash));
      ASSERT_TRUE(back.has_value()) << k;
      EXPECT_EQ(*back, k);
    }
    // What S3 sends under encoding-type=url: form encoding, space as '+'.
    std::string form = uri_encode(k);
    for (std::size_t p = 0; (p = form.find("%20", p)) != std::string::npos;) form.replace(p, 3, "+");
    EXPECT_EQ(uri_decode(form, true), k);
  }
}

TEST(ObjectPath, PathStyleAndVirtualHosted) {
  EXPECT_EQ(object_path("bucket", "dir/file name.txt", true), "/bucket/dir/file%20name.txt");
  EXPECT_EQ(object_path("bucket", "dir/file name.txt", false), "/dir/file%20name.txt");
  EXPECT_EQ(object_path("bucket", "a+b/c~d/", true), "/bucket/a%2Bb/c~d/");
  EXPECT_EQ(object_path("bucket", "test$file.text", false), "/test%24file.text");
  EXPECT_EQ(object_path("bucket", "", true), "/bucket");
  EXPECT_EQ(object_path("bucket", "", false), "/");
}

TEST(BucketPath, PathStyleAndVirtualHosted) {
  EXPECT_EQ(bucket_path("my.bucket-1", true), "/my.bucket-1");
  EXPECT_EQ(bucket_path("my.bucket-1", false), "/");
}

TEST(QueryString, EncodesNamesAndValuesAndKeepsEmptyValues) {
  EXPECT_EQ(query_string({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(query_string({{"prefix", "a b/c"}, {"list-type", "2"}}), "prefix=a%20b%2Fc&list-type=2");
  EXPECT_EQ(query_string({}), "");
}

}  // namespace
}  // namespace ferry::s3
