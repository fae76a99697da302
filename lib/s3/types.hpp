#pragma once
// Plain values of the S3 API as ferry uses them: listings, heads, multipart bookkeeping.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ferry::s3 {

struct object_summary {
  std::string key;  // decoded (encoding-type=url undone)
  std::uint64_t size = 0;
  std::string etag;           // without quotes
  std::string last_modified;  // ISO 8601 as sent
  std::string storage_class;
};

struct list_page {
  std::vector<object_summary> objects;
  std::vector<std::string> common_prefixes;  // decoded
  bool is_truncated = false;
  std::string next_continuation_token;
  std::uint64_t key_count = 0;
};

struct multipart_upload_ref {
  std::string key;
  std::string upload_id;
  std::string initiated;
};

struct multipart_uploads_page {
  std::vector<multipart_upload_ref> uploads;
  bool is_truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};

struct part_info {
  int part_number = 0;
  std::string etag;  // without quotes
  std::uint64_t size = 0;
};

struct parts_page {
  std::vector<part_info> parts;
  bool is_truncated = false;
  int next_part_number_marker = 0;
};

struct copy_result {
  std::string etag;  // without quotes
  std::string last_modified;
};

struct delete_result {
  std::vector<std::string> deleted;
  struct failure {
    std::string key, code, message;
  };
  std::vector<failure> errors;
};

// Metadata that travels with an object: the standard headers ferry preserves, and x-amz-meta-*.
struct object_metadata {
  std::string content_type, content_encoding, content_disposition, content_language, cache_control, expires;
  std::map<std::string, std::string> user;  // x-amz-meta-NAME -> value, NAME lower-case
};

struct object_head {
  std::uint64_t size = 0;
  std::string etag;  // without quotes
  std::string last_modified;
  object_metadata metadata;
  std::optional<std::string> checksum_crc32c;  // x-amz-checksum-crc32c when the server returned one
};

}  // namespace ferry::s3
