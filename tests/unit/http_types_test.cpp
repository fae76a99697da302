#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/error.hpp>

#include "http/client.hpp"

namespace http = ferry::http;

TEST(HttpHeaderList, SetReplacesEveryFieldCaseInsensitively) {
  http::header_list h;
  h.add("X-Amz-Meta-A", "1");
  h.add("x-amz-meta-a", "2");
  h.add("Other", "o");
  h.set("X-AMZ-META-A", "3");
  ASSERT_EQ(h.items.size(), 2u);
  EXPECT_EQ(h.items[0].first, "Other");
  EXPECT_EQ(h.items[1].first, "X-AMZ-META-A");
  EXPECT_EQ(h.get("x-amz-meta-a"), "3");
}

TEST(HttpHeaderList, AddKeepsDuplicatesAndGetReturnsTheFirst) {
  http::header_list h;
  h.add("Via", "a");
  h.add("via", "b");
  EXPECT_EQ(h.items.size(), 2u);
  EXPECT_EQ(h.get("VIA"), "a");
  EXPECT_FALSE(h.get("Missing").has_value());
  h.erase("Via");
  EXPECT_TRUE(h.items.empty());
}

TEST(HttpOrigin, HttpsDefaultsToPort443AndIgnoresPath) {
  auto o = http::parse_origin("https://s3.eu-west-1.amazonaws.com/bucket/key?x=1");
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->scheme, "https");
  EXPECT_EQ(o->host, "s3.eu-west-1.amazonaws.com");
  EXPECT_EQ(o->port, 443);
  EXPECT_TRUE(o->tls());
  EXPECT_EQ(o->host_header(), "s3.eu-west-1.amazonaws.com");
}

TEST(HttpOrigin, ExplicitPortAppearsInHostHeader) {
  auto o = http::parse_origin("http://127.0.0.1:9000");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->port, 9000);
  EXPECT_FALSE(o->tls());
  EXPECT_EQ(o->host_header(), "127.0.0.1:9000");
  auto d = http::parse_origin("http://minio:80/");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->host_header(), "minio");
}

TEST(HttpOrigin, SchemeAndHostAreLowerCased) {
  auto o = http::parse_origin("HTTPS://S3.Example.COM:8443");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->scheme, "https");
  EXPECT_EQ(o->host, "s3.example.com");
  EXPECT_EQ(*o, (http::origin{"https", "s3.example.com", 8443}));
}

TEST(HttpOrigin, Ipv6LiteralIsStoredBareAndBracketedInHost) {
  auto o = http::parse_origin("http://[::1]:9000/x");
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->host_header(), "[::1]:9000");
}

TEST(HttpOrigin, RejectsOtherSchemesBadPortsAndGarbage) {
  EXPECT_FALSE(http::parse_origin("ftp://example.com"));
  EXPECT_FALSE(http::parse_origin("http://example.com:0"));
  EXPECT_FALSE(http::parse_origin("http://example.com:70000"));
  EXPECT_FALSE(http::parse_origin("not a url"));
  EXPECT_FALSE(http::parse_origin("http://"));
  EXPECT_FALSE(http::parse_origin(""));
}

TEST(HttpCaFile, ComesFromAwsCaBundle) {
  ::setenv("AWS_CA_BUNDLE", "/etc/ssl/extra.pem", 1);
  EXPECT_EQ(http::ca_file_from_env(), "/etc/ssl/extra.pem");
  ::unsetenv("AWS_CA_BUNDLE");
  EXPECT_EQ(http::ca_file_from_env(), "");
}

TEST(HttpCertificateError, OnlyTlsVerificationFailuresQualify) {
  EXPECT_FALSE(http::is_certificate_error(boost::asio::error::connection_refused));
  EXPECT_FALSE(http::is_certificate_error(boost::asio::error::timed_out));
  EXPECT_FALSE(http::is_certificate_error({}));
}
