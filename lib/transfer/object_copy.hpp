#pragma once
// Copies one object between two S3 locations by streaming: GET -> hashers -> PUT, in the
// http layer's bounded chunks, never the whole object in memory. Verifies while it streams.
// Single-part only (objects up to 5 GiB); multipart and server-side copy build on this.
#include "s3/client.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>

namespace ferry::transfer {

namespace asio = boost::asio;

struct object_location {
  s3::client* client = nullptr;
  std::string bucket;
  std::string key;
};

// How a verdict was reached, recorded with it.
enum class verify_method {
  none,            // not verified (the copy failed before a comparison could be made)
  etag_md5,        // destination ETag == MD5 computed while streaming (== source ETag when it is an MD5)
};

struct copy_outcome {
  bool verified = false;  // true only if the comparison was made and matched
  std::uint64_t bytes = 0;
  std::string md5_hex;      // computed over every byte streamed
  std::uint32_t crc32c = 0;  // computed over every byte streamed
  std::string source_etag, destination_etag;
  verify_method method = verify_method::none;
  std::string error;      // empty on success; one line, no secrets
  bool retryable = false;  // worth another attempt (transport error, throttling, mismatch)
};

// True for a 32-hex-digit ETag: an MD5 of a single-part, non-KMS object.
bool etag_is_md5(std::string_view etag);

asio::awaitable<copy_outcome> stream_copy(const object_location& src, const object_location& dst);

}  // namespace ferry::transfer
