#pragma once
// AWS Signature Version 4 for S3, header form, in stages that can each be checked against AWS's
// published examples: canonical request -> string to sign -> signing key -> signature ->
// Authorization. sign_request() strings them together for the S3 client. No presigned URLs, no
// aws-chunked signing (unsigned payload or trailers only).
#include "http/client.hpp"
#include "s3/credentials.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::s3 {

// x-amz-content-sha256 for a body that is not hashed (TLS and Content-MD5 protect it instead).
inline constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";
// The hex SHA-256 of an empty body: e3b0c442...b855.
std::string empty_payload_sha256();

struct sign_params {
  credentials creds;
  std::string region;
  std::string service = "s3";
  std::chrono::system_clock::time_point now;  // local clock plus any skew learnt from the server
};

// Signs in place: sets x-amz-date, x-amz-content-sha256 = payload_hash, x-amz-security-token
// (removed when there is no session token) and Authorization. Signs host (host_header: exactly the
// Host value the http client will send), every x-amz-* header, and content-md5, content-type,
// range and date when present. req.target is the already-encoded "/path?query": the canonical URI
// and query are rebuilt from it (decoded, then re-encoded by S3's rules; a malformed %-escape is
// taken literally). Re-signing a request (a retry) replaces the previous signature.
void sign_request(http::request& req, std::string_view host_header, std::string_view payload_hash,
                  const sign_params& p);

namespace sigv4 {

using query_params = std::vector<std::pair<std::string, std::string>>;  // decoded name, value
using header_fields = std::vector<std::pair<std::string, std::string>>;

// "20130524T000000Z" and "20130524" (UTC).
std::string amz_date(std::chrono::system_clock::time_point t);
std::string date_stamp(std::chrono::system_clock::time_point t);

// The canonical URI of an encoded path: decoded, then encoded again with '/' kept (so that
// different but equivalent encodings sign alike, as S3 compares them). "" becomes "/".
std::string canonical_uri(std::string_view encoded_path);
// Decoded pairs of an encoded query string ("a=1&b" -> {a,1},{b,""}).
query_params parse_query(std::string_view encoded_query);
// Names and values encoded, sorted by encoded name then value, "name=value" joined by '&'.
std::string canonical_query(query_params params);

// The canonical request. `headers` may hold fields that are not signed; only those named in
// `signed_headers` (any case) take part: names lower-cased, values trimmed with inner runs of
// spaces collapsed, repeated fields joined by ',', sorted by name.
std::string canonical_request(std::string_view method, std::string_view canonical_uri, const query_params& query,
                              const header_fields& headers, const std::vector<std::string>& signed_headers,
                              std::string_view payload_hash);
// "host;range;x-amz-date": the signed header names, lower-cased, sorted, unique.
std::string signed_header_list(const std::vector<std::string>& signed_headers);

// "20130524/us-east-1/s3/aws4_request".
std::string credential_scope(std::string_view date, std::string_view region, std::string_view service);
std::string string_to_sign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request);
std::array<std::uint8_t, 32> signing_key(std::string_view secret, std::string_view date, std::string_view region,
                                         std::string_view service);
// Lower-case hex HMAC-SHA256 of the string to sign.
std::string signature(const std::array<std::uint8_t, 32>& key, std::string_view string_to_sign);
// "AWS4-HMAC-SHA256 Credential=ID/SCOPE, SignedHeaders=..., Signature=...".
std::string authorization(std::string_view access_key_id, std::string_view scope, std::string_view signed_headers,
                          std::string_view signature);

}  // namespace sigv4

}  // namespace ferry::s3
