#pragma once
// Digests and encodings ferry needs for integrity and signing: MD5 (Content-MD5, ETags),
// SHA-256 and HMAC-SHA256 (SigV4), CRC32C (x-amz-checksum-crc32c), hex and base64.
// OpenSSL EVP and ISA-L underneath. An OpenSSL call that fails after a successful self-test can
// only mean memory exhaustion or a broken provider: that is treated as a bug and throws
// std::runtime_error. Call hash_self_test() once at startup to turn a missing algorithm (MD5
// under a FIPS-only provider) into a clean startup error instead.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::util {

using md5_digest = std::array<std::uint8_t, 16>;
using sha256_digest = std::array<std::uint8_t, 32>;

// Incremental MD5. Not thread-safe; movable.
class md5_hasher {
 public:
  md5_hasher();
  ~md5_hasher();
  md5_hasher(md5_hasher&&) noexcept;
  md5_hasher& operator=(md5_hasher&&) noexcept;

  void update(std::span<const std::byte> data);
  void update(std::span<const std::uint8_t> data);
  void update(std::string_view data);
  // The digest of everything fed so far; the hasher then starts over, empty.
  md5_digest finish();

 private:
  struct ctx;
  std::unique_ptr<ctx> ctx_;
};

// Incremental SHA-256, same contract as md5_hasher.
class sha256_hasher {
 public:
  sha256_hasher();
  ~sha256_hasher();
  sha256_hasher(sha256_hasher&&) noexcept;
  sha256_hasher& operator=(sha256_hasher&&) noexcept;

  void update(std::span<const std::byte> data);
  void update(std::span<const std::uint8_t> data);
  void update(std::string_view data);
  sha256_digest finish();

 private:
  struct ctx;
  std::unique_ptr<ctx> ctx_;
};

// Incremental CRC32C (Castagnoli, as S3's x-amz-checksum-crc32c), hardware-accelerated by ISA-L.
class crc32c_hasher {
 public:
  void update(std::span<const std::byte> data);
  void update(std::span<const std::uint8_t> data);
  void update(std::string_view data);
  // The CRC of everything fed so far (the hasher may keep going).
  std::uint32_t value() const { return ~state_; }
  // value() as 4 big-endian bytes: what x-amz-checksum-crc32c carries, base64-encoded.
  std::array<std::uint8_t, 4> big_endian() const;

 private:
  std::uint32_t state_ = 0xFFFFFFFFu;
};

// One-shot helpers.
md5_digest md5(std::string_view data);
md5_digest md5(std::span<const std::uint8_t> data);
sha256_digest sha256(std::string_view data);
sha256_digest sha256(std::span<const std::uint8_t> data);
std::uint32_t crc32c(std::string_view data);
// The CRC32C of A||B from crc32c(A), crc32c(B) and B's length, without the bytes (zlib's
// crc32_combine, for the Castagnoli polynomial): whole-object checksums from per-part ones.
std::uint32_t crc32c_combine(std::uint32_t crc1, std::uint32_t crc2, std::uint64_t len2);
sha256_digest hmac_sha256(std::span<const std::uint8_t> key, std::string_view data);
sha256_digest hmac_sha256(std::string_view key, std::string_view data);

// Lower-case hex.
std::string to_hex(std::span<const std::uint8_t> data);
std::string to_hex(std::string_view data);
// Hex (either case) back to bytes; nullopt unless the whole text is pairs of hex digits.
std::optional<std::vector<std::uint8_t>> from_hex(std::string_view hex);
// Standard base64 with padding (RFC 4648 §4).
std::string base64_encode(std::span<const std::uint8_t> data);
std::string base64_encode(std::string_view data);
// Strict: padded, standard alphabet, no whitespace; nullopt for anything else.
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);

// Checks that every algorithm above is usable; false with a reason otherwise. For startup.
bool hash_self_test(std::string* why = nullptr);

}  // namespace ferry::util
