#include "transfer/object_copy.hpp"

#include "util/hash.hpp"

#include <charconv>
#include <optional>
#include <vector>

namespace ferry::transfer {

// S3's limit for a single PutObject.
constexpr std::uint64_t max_single_put = 5ull * 1024 * 1024 * 1024;

bool etag_is_md5(std::string_view etag) {
  if (etag.size() != 32) return false;
  for (char c : etag)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

namespace {

copy_outcome failed(copy_outcome o, const s3::error& e) {
  o.error = e.to_string();
  o.retryable = e.retryable;
  return o;
}

// "9e107d9d..." -> 16 raw bytes; nullopt unless exactly hex.
std::optional<std::vector<std::uint8_t>> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  std::vector<std::uint8_t> out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    auto r = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
    if (r.ec != std::errc() || r.ptr != hex.data() + i + 2) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(v));
  }
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

asio::awaitable<copy_outcome> stream_copy(const object_location& src, const object_location& dst) {
  copy_outcome out;
  const s3::get_params whole;  // a named object: GCC 12 mis-destroys default-argument temporaries in coroutines
  auto got = co_await src.client->get_object(src.bucket, src.key, whole);
  if (!got) co_return failed(std::move(out), got.error());
  s3::object_stream& in = *got;
  out.source_etag = in.head.etag;
  const std::uint64_t size = in.head.size;
  if (!in.response.content_length()) {
    out.error = "source sent no Content-Length for " + src.key;
    out.retryable = true;
    co_return out;
  }
  if (size > max_single_put) {
    out.error = "object is larger than 5 GiB; multipart copy is not available yet";
    co_return out;
  }

  util::md5_hasher md5;
  util::crc32c_hasher crc;
  std::uint64_t streamed = 0;
  // The PUT pulls from the GET: each chunk the destination socket can take is read from the
  // source socket and hashed on the way, so both sides apply backpressure to each other.
  http::body_source source = [&](std::span<char> buf) -> asio::awaitable<http::result<std::size_t>> {
    if (streamed == size) co_return std::size_t{0};
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - streamed));
    auto n = co_await in.read_some(buf.first(want));
    if (!n) co_return n.error();
    if (*n == 0) co_return http::error_code(asio::error::eof);  // source ended short
    auto bytes = std::as_bytes(buf.first(*n));
    md5.update(bytes);
    crc.update(bytes);
    streamed += *n;
    co_return *n;
  };

  s3::put_params put;
  put.metadata = in.head.metadata;
  if (etag_is_md5(out.source_etag)) {
    // The source's MD5 travels as Content-MD5: the destination itself rejects a body that
    // differs from what the source stored (BadDigest), so corruption in between never commits.
    auto raw = from_hex(out.source_etag);
    if (raw) put.content_md5 = util::base64_encode(*raw);
  }
  auto put_res = co_await dst.client->put_object(dst.bucket, dst.key, s3::body::streamed(source, size), put);
  out.bytes = streamed;
  out.md5_hex = util::to_hex(md5.finish());
  out.crc32c = crc.value();
  if (!put_res) co_return failed(std::move(out), put_res.error());
  out.destination_etag = put_res->etag;

  if (streamed != size) {
    out.error = "streamed " + std::to_string(streamed) + " of " + std::to_string(size) + " bytes";
    out.retryable = true;
    co_return out;
  }
  if (etag_is_md5(out.source_etag) && lower(out.source_etag) != out.md5_hex) {
    out.error = "source bytes do not match the source ETag (read " + out.md5_hex + ", ETag " + out.source_etag + ")";
    out.retryable = true;
    co_return out;
  }
  if (!etag_is_md5(out.destination_etag)) {
    // Not an MD5 (SSE-KMS, some gateways): nothing to compare here; never counted as verified.
    out.error = "destination ETag '" + out.destination_etag + "' is not an MD5; cannot verify";
    co_return out;
  }
  if (lower(out.destination_etag) != out.md5_hex) {
    out.error = "destination ETag " + out.destination_etag + " != MD5 of the bytes sent " + out.md5_hex;
    out.retryable = true;
    co_return out;
  }
  out.method = verify_method::etag_md5;
  out.verified = true;
  co_return out;
}

}  // namespace ferry::transfer
