#pragma once
// S3's URI encoding rules, for request targets, signing and encoding-type=url listings.
// Keys are bytes (normally UTF-8); nothing here normalises paths or Unicode.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::s3 {

// SigV4's UriEncode: A-Z a-z 0-9 - . _ ~ are kept, every other byte becomes %XX (upper-case hex).
// '/' is kept when !encode_slash (object paths) and encoded otherwise (query names and values).
std::string uri_encode(std::string_view s, bool encode_slash = true);

// Undoes %XX (either case). With plus_as_space, '+' means ' ' (form encoding: S3 encodes listing
// keys that way under encoding-type=url, and sends a literal '+' as %2B). nullopt when a '%' is not
// followed by two hex digits.
std::optional<std::string> uri_decode(std::string_view s, bool plus_as_space = false);

// The request path of an object: "/bucket/key" (path style) or "/key" (virtual-hosted), the key
// encoded with '/' kept. An empty key gives the bucket's path.
std::string object_path(std::string_view bucket, std::string_view key, bool path_style);

// The request path of a bucket: "/bucket" (path style) or "/" (virtual-hosted).
std::string bucket_path(std::string_view bucket, bool path_style);

// "name=value&..." in the given order, names and values encoded (an empty value keeps "name=").
std::string query_string(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace ferry::s3
