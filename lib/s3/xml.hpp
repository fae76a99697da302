#pragma once
// S3's XML bodies: parsing the responses ferry reads, building the two request bodies it sends.
// Parsing never trusts the input: bodies over max_xml_body are refused unread, anything malformed,
// truncated or of the wrong shape is an error value, never a crash or an exception.
//
// Errors from the parse_* functions:
//  - "InvalidResponse", retryable: the body is not the XML expected (truncated, not XML, wrong root,
//    a required element missing or not a number). A 2xx with a bad body usually means a cut
//    connection or a proxy's page, so trying again is worth it (attempts stay capped by the policy).
//  - "ResponseTooLarge", not retryable: more than max_xml_body bytes.
//  - the server's own error when the body is an <Error> document (S3 sends those with 200 for
//    CompleteMultipartUpload, CopyObject and UploadPartCopy), classified like any error response.
// ETags come back without their quotes; listing keys and prefixes are decoded when the response says
// <EncodingType>url</EncodingType>.
#include "s3/error.hpp"
#include "s3/types.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::s3 {

inline constexpr std::size_t max_xml_body = 16 * 1024 * 1024;
inline constexpr std::size_t max_delete_keys = 1000;  // S3's limit for one DeleteObjects

// The fields of an <Error> document (also <ErrorResponse><Error>).
struct error_document {
  std::string code, message, request_id;
};
// nullopt when the body is not an error document.
std::optional<error_document> parse_error_document(std::string_view body);

result<list_page> parse_list_objects_v2(std::string_view body);
// InitiateMultipartUploadResult: the upload id.
result<std::string> parse_initiate_multipart_upload(std::string_view body);
// CompleteMultipartUploadResult: the new object's ETag.
result<std::string> parse_complete_multipart_upload(std::string_view body);
result<parts_page> parse_list_parts(std::string_view body);
result<multipart_uploads_page> parse_list_multipart_uploads(std::string_view body);
result<delete_result> parse_delete_result(std::string_view body);
// CopyObjectResult or CopyPartResult.
result<copy_result> parse_copy_result(std::string_view body);

// Appends `s` as XML character data: markup characters as entities, control characters as &#N;
// (how S3 writes CR and LF in keys).
void append_xml_escaped(std::string& out, std::string_view s);

// <CompleteMultipartUpload>: parts sorted by part number, ETags quoted and escaped.
std::string build_complete_multipart_upload(const std::vector<part_info>& parts);
// <Delete>: keys escaped (CR, LF and other control characters as character references).
// More than max_delete_keys keys is a caller bug: throws std::length_error.
std::string build_delete_objects(const std::vector<std::string>& keys, bool quiet);

}  // namespace ferry::s3
