// lib/s3/xml: S3 response bodies (real shapes, encoded listings, <Error> in a 200) and hostile input.
#include "s3/xml.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace ferry::s3 {
namespace {

constexpr const char* ns = R"( xmlns="http://s3.amazonaws.com/doc/2006-03-01/")";

std::string doc(std::string root, std::string inner) {
  return R"(<?xml version="1.0" encoding="UTF-8"?>)"
         "\n<" +
         root + ns + ">" + inner + "</" + root + ">";
}

TEST(ParseListObjectsV2, PlainPage) {
  const auto body = doc("ListBucketResult", R"(
  <Name>bucket</Name><Prefix></Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>
  <IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>a/one.txt</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>big</Key><ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag><Size>18446744073709551615</Size></Contents>
  <CommonPrefixes><Prefix>photos/</Prefix></CommonPrefixes>)");
  auto page = parse_list_objects_v2(body);
  ASSERT_TRUE(page) << page.error().to_string();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "a/one.txt");
  EXPECT_EQ(page->objects[0].etag, "fba9dede5f27731c9771645a39863328");
  EXPECT_EQ(page->objects[0].size, 434234u);
  EXPECT_EQ(page->objects[0].last_modified, "2009-10-12T17:50:30.000Z");
  EXPECT_EQ(page->objects[0].storage_class, "STANDARD");
  EXPECT_EQ(page->objects[1].etag, "3858f62230ac3c915f300c664312c11f-9");
  EXPECT_EQ(page->objects[1].size, 18446744073709551615u);
  EXPECT_EQ(page->common_prefixes, std::vector<std::string>{"photos/"});
  EXPECT_TRUE(page->is_truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  EXPECT_EQ(page->key_count, 3u);
}

TEST(ParseListObjectsV2, UrlEncodedKeysArePrefixesDecoded) {
  const auto body = doc("ListBucketResult", R"(
  <EncodingType>url</EncodingType><Prefix>dir%2F</Prefix><IsTruncated>false</IsTruncated>
  <Contents><Key>dir/with+space%2Band+plus</Key><Size>1</Size></Contents>
  <Contents><Key>dir/%E6%97%A5%E6%9C%AC/%25%3F%23%3D%26~</Key><Size>2</Size></Contents>
  <Contents><Key>dir/trailing/</Key><Size>0</Size></Contents>
  <Contents><Key>+++</Key><Size>0</Size></Contents>
  <CommonPrefixes><Prefix>dir/sub+dir/</Prefix></CommonPrefixes>)");
  auto page = parse_list_objects_v2(body);
  ASSERT_TRUE(page) << page.error().to_string();
  ASSERT_EQ(page->objects.size(), 4u);
  EXPECT_EQ(page->objects[0].key, "dir/with space+and plus");
  EXPECT_EQ(page->objects[1].key, "dir/\xE6\x97\xA5\xE6\x9C\xAC/%?#=&~");
  EXPECT_EQ(page->objects[2].key, "dir/trailing/");
  EXPECT_EQ(page->objects[3].key, "   ");
  EXPECT_EQ(page->common_prefixes, std::vector<std::string>{"dir/sub dir/"});
  EXPECT_FALSE(page->is_truncated);
  EXPECT_EQ(page->key_count, 5u) << "KeyCount absent: objects + prefixes";
}

TEST(ParseListObjectsV2, UnencodedKeysAreTakenAsIs) {
  const auto body = doc("ListBucketResult", R"(<Contents><Key>a+b%20c &amp; &lt;d&gt;</Key></Contents>
  <Contents><Key>   </Key></Contents><Contents><Key><![CDATA[x<y]]></Key></Contents>)");
  auto page = parse_list_objects_v2(body);
  ASSERT_TRUE(page) << page.error().to_string();
  ASSERT_EQ(page->objects.size(), 3u);
  EXPECT_EQ(page->objects[0].key, "a+b%20c & <d>");
  EXPECT_EQ(page->objects[1].key, "   ") << "a key of spaces must not be trimmed away";
  EXPECT_EQ(page->objects[2].key, "x<y");
}

TEST(ParseListObjectsV2, EmptyBucket) {
  auto page = parse_list_objects_v2(doc("ListBucketResult", "<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated>"));
  ASSERT_TRUE(page);
  EXPECT_TRUE(page->objects.empty());
  EXPECT_FALSE(page->is_truncated);
}

TEST(ParseListObjectsV2, RejectsInconsistentPages) {
  struct bad_case {
    const char* why;
    std::string body;
  };
  const bad_case cases[] = {
      {"truncated without a token", doc("ListBucketResult", "<IsTruncated>true</IsTruncated>")},
      {"IsTruncated not a boolean", doc("ListBucketResult", "<IsTruncated>maybe</IsTruncated>")},
      {"negative size", doc("ListBucketResult", "<Contents><Key>k</Key><Size>-1</Size></Contents>")},
      {"size overflows", doc("ListBucketResult", "<Contents><Key>k</Key><Size>18446744073709551616</Size></Contents>")},
      {"size with junk", doc("ListBucketResult", "<Contents><Key>k</Key><Size>12abc</Size></Contents>")},
      {"empty key", doc("ListBucketResult", "<Contents><Key></Key></Contents>")},
      {"bad escape", doc("ListBucketResult", "<EncodingType>url</EncodingType><Contents><Key>a%zz</Key></Contents>")},
      {"wrong root", doc("ListAllMyBucketsResult", "")},
  };
  for (const auto& c : cases) {
    auto page = parse_list_objects_v2(c.body);
    ASSERT_FALSE(page) << c.why;
    EXPECT_EQ(page.error().code, "InvalidResponse") << c.why;
    EXPECT_TRUE(page.error().retryable) << c.why;
  }
}

TEST(ParseXml, MalformedAndTruncatedBodiesAreRetryableErrors) {
  const std::string full = doc("ListBucketResult", "<Contents><Key>k</Key><Size>1</Size></Contents>");
  // Every proper prefix of a valid body (a connection cut anywhere) is an error, never a crash.
  for (std::size_t n = 0; n < full.size(); ++n) {
    auto page = parse_list_objects_v2(std::string_view(full).substr(0, n));
    ASSERT_FALSE(page) << "prefix of " << n << " bytes parsed";
    EXPECT_TRUE(page.error().retryable);
  }
  for (const char* junk : {"", "not xml", "<html><body>502 Bad Gateway</body></html>", "\xFF\xFE\x00<", "<a><b></a>"}) {
    auto r = parse_initiate_multipart_upload(junk);
    ASSERT_FALSE(r) << junk;
    EXPECT_EQ(r.error().code, "InvalidResponse");
  }
}

TEST(ParseXml, HostileInputIsBoundedAndInert) {
  // Over the size cap: refused unread, not retryable.
  std::string huge = doc("ListBucketResult", std::string(max_xml_body, ' '));
  auto big = parse_list_objects_v2(huge);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, "ResponseTooLarge");
  EXPECT_FALSE(big.error().retryable);

  // Entity expansion ("billion laughs"): pugixml expands no DTD entities.
  const std::string bomb =
      R"(<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">)"
      R"(<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">)"
      R"(<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>)"
      R"(<InitiateMultipartUploadResult><UploadId>&lol3;</UploadId></InitiateMultipartUploadResult>)";
  auto id = parse_initiate_multipart_upload(bomb);
  if (id) {
    EXPECT_LT(id->size(), 64u);  // the reference stays as text, or the parse fails: both are fine
  }

  // External entities are never fetched.
  const std::string xxe = R"(<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>)"
                          R"(<InitiateMultipartUploadResult><UploadId>&x;</UploadId></InitiateMultipartUploadResult>)";
  auto x = parse_initiate_multipart_upload(xxe);
  if (x) {
    EXPECT_EQ(x->find("root:"), std::string::npos);
  }

  // Deep nesting: no recursion to overflow.
  std::string deep;
  for (int i = 0; i < 200'000; ++i) deep += "<a>";
  for (int i = 0; i < 200'000; ++i) deep += "</a>";
  auto d = parse_list_objects_v2(deep);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, "InvalidResponse");

  // A very long element name is not echoed whole into the error message.
  const std::string long_root = "<" + std::string(100'000, 'x') + "/>";
  auto lr = parse_list_parts(long_root);
  ASSERT_FALSE(lr);
  EXPECT_LT(lr.error().message.size(), 300u);
}

TEST(ParseErrorDocument, FieldsAndWrappedForm) {
  auto e = parse_error_document(R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist</Message>
<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>)");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "NoSuchKey");
  EXPECT_EQ(e->message, "The resource you requested does not exist");
  EXPECT_EQ(e->request_id, "4442587FB7D0A2F9");

  auto w = parse_error_document(
      "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
      "<RequestId>abc</RequestId></ErrorResponse>");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->code, "Throttling");
  EXPECT_EQ(w->request_id, "abc");

  EXPECT_FALSE(parse_error_document(""));
  EXPECT_FALSE(parse_error_document("<html/>"));
  EXPECT_FALSE(parse_error_document("<Error><Code>Trunc"));
}

TEST(ParseInitiateMultipartUpload, UploadId) {
  auto id = parse_initiate_multipart_upload(
      doc("InitiateMultipartUploadResult", "<Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId>"));
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, "VXBsb2FkIElE");
  EXPECT_FALSE(parse_initiate_multipart_upload(doc("InitiateMultipartUploadResult", "<UploadId></UploadId>")));
}

TEST(ParseCompleteMultipartUpload, EtagWithoutQuotes) {
  auto etag = parse_complete_multipart_upload(doc("CompleteMultipartUploadResult",
                                                  "<Location>http://b.s3.amazonaws.com/k</Location><Bucket>b</Bucket>"
                                                  "<Key>k</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"));
  ASSERT_TRUE(etag);
  EXPECT_EQ(*etag, "3858f62230ac3c915f300c664312c11f-9");
}

TEST(ParseCompleteMultipartUpload, LeadingWhitespaceFromKeepAlivesIsAccepted) {
  // S3 may send whitespace while it assembles the object, before the XML declaration.
  auto etag = parse_complete_multipart_upload(
      "\n \n \n<?xml "
      "version=\"1.0\"?><CompleteMultipartUploadResult><ETag>\"e\"</ETag></CompleteMultipartUploadResult>");
  ASSERT_TRUE(etag) << etag.error().to_string();
  EXPECT_EQ(*etag, "e");
}

TEST(ParseCompleteMultipartUpload, ErrorInsideA200IsAnError) {
  const std::string body = R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message>
<RequestId>656c76696e6727732072657175657374</RequestId><HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId></Error>)";
  auto r = parse_complete_multipart_upload(body);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "InternalError");
  EXPECT_EQ(r.error().http_status, 200u);
  EXPECT_EQ(r.error().request_id, "656c76696e6727732072657175657374");
  EXPECT_TRUE(r.error().retryable);

  auto denied = parse_complete_multipart_upload("<Error><Code>InvalidPart</Code><Message>m</Message></Error>");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, "InvalidPart");
  EXPECT_FALSE(denied.error().retryable);
}

TEST(ParseCopyResult, ObjectAndPartResultsAndErrorIn200) {
  auto obj = parse_copy_result(doc("CopyObjectResult",
                                   "<LastModified>2009-10-28T22:32:00.000Z</LastModified>"
                                   "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"));
  ASSERT_TRUE(obj);
  EXPECT_EQ(obj->etag, "9b2cf535f27731c974343645a3985328");
  EXPECT_EQ(obj->last_modified, "2009-10-28T22:32:00.000Z");

  auto part = parse_copy_result(
      doc("CopyPartResult", "<LastModified>2011-04-11T20:34:56.000Z</LastModified><ETag>\"b20b\"</ETag>"));
  ASSERT_TRUE(part);
  EXPECT_EQ(part->etag, "b20b");

  auto err = parse_copy_result("<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>");
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().code, "SlowDown");
  EXPECT_TRUE(err.error().retryable);

  EXPECT_FALSE(parse_copy_result(doc("CopyObjectResult", "<LastModified>x</LastModified>")));
}

TEST(ParseListParts, PartsAndMarker) {
  auto page = parse_list_parts(doc("ListPartsResult", R"(
  <Bucket>b</Bucket><Key>k</Key><UploadId>id</UploadId><PartNumberMarker>1</PartNumberMarker>
  <NextPartNumberMarker>3</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>2</PartNumber><LastModified>2010-11-10T20:48:34.000Z</LastModified>
    <ETag>"7778aef83f66abc1fa1e8477f296d394"</ETag><Size>10485760</Size></Part>
  <Part><PartNumber>3</PartNumber><ETag>"aaaa18db4cc2f85cedef654fccc4a4x8"</ETag><Size>10485760</Size></Part>)"));
  ASSERT_TRUE(page) << page.error().to_string();
  ASSERT_EQ(page->parts.size(), 2u);
  EXPECT_EQ(page->parts[0].part_number, 2);
  EXPECT_EQ(page->parts[0].etag, "7778aef83f66abc1fa1e8477f296d394");
  EXPECT_EQ(page->parts[0].size, 10485760u);
  EXPECT_TRUE(page->is_truncated);
  EXPECT_EQ(page->next_part_number_marker, 3);

  EXPECT_FALSE(parse_list_parts(doc("ListPartsResult", "<Part><PartNumber>0</PartNumber></Part>")));
  EXPECT_FALSE(parse_list_parts(doc("ListPartsResult", "<Part><PartNumber>x</PartNumber></Part>")));
  EXPECT_FALSE(parse_list_parts(doc("ListPartsResult", "<IsTruncated>true</IsTruncated>")));
}

TEST(ParseListMultipartUploads, UploadsAndEncodedMarkers) {
  auto page = parse_list_multipart_uploads(doc("ListMultipartUploadsResult", R"(
  <Bucket>b</Bucket><EncodingType>url</EncodingType><NextKeyMarker>my+movie.m2ts</NextKeyMarker>
  <NextUploadIdMarker>YW55IGlkZWEgd2h5</NextUploadIdMarker><IsTruncated>true</IsTruncated>
  <Upload><Key>my%2Bdivisor</Key><UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>
    <Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>
  <Upload><Key>my+movie.m2ts</Key><UploadId>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId></Upload>)"));
  ASSERT_TRUE(page) << page.error().to_string();
  ASSERT_EQ(page->uploads.size(), 2u);
  EXPECT_EQ(page->uploads[0].key, "my+divisor");
  EXPECT_EQ(page->uploads[0].initiated, "2010-11-10T20:48:33.000Z");
  EXPECT_EQ(page->uploads[1].key, "my movie.m2ts");
  EXPECT_EQ(page->next_key_marker, "my movie.m2ts");
  EXPECT_EQ(page->next_upload_id_marker, "YW55IGlkZWEgd2h5");
  EXPECT_TRUE(page->is_truncated);

  EXPECT_FALSE(parse_list_multipart_uploads(doc("ListMultipartUploadsResult", "<Upload><Key>k</Key></Upload>")));
}

TEST(ParseDeleteResult, DeletedAndErrors) {
  auto r = parse_delete_result(doc("DeleteResult", R"(
  <Deleted><Key>sample1.txt</Key></Deleted>
  <Error><Key>sample2.txt</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
  <Deleted><Key>a &amp; b</Key></Deleted>)"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->deleted, (std::vector<std::string>{"sample1.txt", "a & b"}));
  ASSERT_EQ(r->errors.size(), 1u);
  EXPECT_EQ(r->errors[0].key, "sample2.txt");
  EXPECT_EQ(r->errors[0].code, "AccessDenied");
  EXPECT_EQ(r->errors[0].message, "Access Denied");
}

TEST(BuildCompleteMultipartUpload, SortedQuotedEscapedAndReparsable) {
  const std::vector<part_info> parts{{2, "bbb", 5}, {1, "a\"<&", 5}, {10, "ccc", 1}};
  const auto xml = build_complete_multipart_upload(parts);
  EXPECT_EQ(xml, R"(<?xml version="1.0" encoding="UTF-8"?>)"
                 R"(<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
                 R"(<Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;&lt;&amp;&quot;</ETag></Part>)"
                 R"(<Part><PartNumber>2</PartNumber><ETag>&quot;bbb&quot;</ETag></Part>)"
                 R"(<Part><PartNumber>10</PartNumber><ETag>&quot;ccc&quot;</ETag></Part>)"
                 R"(</CompleteMultipartUpload>)");
}

TEST(BuildDeleteObjects, EscapesKeysAndHonoursQuiet) {
  const auto xml = build_delete_objects({"plain", "a&b<c>\"d'", "line\r\nbreak", "tab\there"}, true);
  EXPECT_EQ(xml, R"(<?xml version="1.0" encoding="UTF-8"?>)"
                 R"(<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>)"
                 R"(<Object><Key>plain</Key></Object>)"
                 R"(<Object><Key>a&amp;b&lt;c&gt;&quot;d&apos;</Key></Object>)"
                 R"(<Object><Key>line&#13;&#10;break</Key></Object>)"
                 R"(<Object><Key>tab&#9;here</Key></Object>)"
                 R"(</Delete>)");
  EXPECT_EQ(build_delete_objects({"k"}, false).find("<Quiet>"), std::string::npos);
}

TEST(BuildDeleteObjects, MoreThanAThousandKeysIsABug) {
  EXPECT_NO_THROW(build_delete_objects(std::vector<std::string>(max_delete_keys, "k"), true));
  EXPECT_THROW(build_delete_objects(std::vector<std::string>(max_delete_keys + 1, "k"), true), std::length_error);
}

}  // namespace
}  // namespace ferry::s3
