#include "util/hash.hpp"

#include <charconv>

#include <isa-l.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <utility>

namespace ferry::util {

namespace {

[[noreturn]] void fail(const char* what) { throw std::runtime_error(std::string("OpenSSL: ") + what + " failed"); }

// Fetched once: implicit fetching in every EVP_DigestInit_ex is slow in OpenSSL 3. Never freed
// (process lifetime). nullptr when the provider lacks the algorithm.
const EVP_MD* md5_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "MD5", nullptr);
  return md;
}
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct md_ctx {
  EVP_MD_CTX* ctx = nullptr;
  const EVP_MD* md = nullptr;

  md_ctx(const EVP_MD* m, const char* name) : md(m) {
    if (md == nullptr) fail(name);
    ctx = EVP_MD_CTX_new();
    if (ctx == nullptr) fail("EVP_MD_CTX_new");
    init();
  }
  ~md_ctx() { EVP_MD_CTX_free(ctx); }
  md_ctx(const md_ctx&) = delete;
  md_ctx& operator=(const md_ctx&) = delete;

  void init() {
    if (EVP_DigestInit_ex(ctx, md, nullptr) != 1) fail("EVP_DigestInit_ex");
  }
  void update(const void* p, std::size_t n) {
    if (n == 0) return;
    if (EVP_DigestUpdate(ctx, p, n) != 1) fail("EVP_DigestUpdate");
  }
  template <std::size_t N>
  std::array<std::uint8_t, N> finish() {
    std::array<std::uint8_t, N> out{};
    unsigned len = 0;
    if (EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != N) fail("EVP_DigestFinal_ex");
    init();
    return out;
  }
};

template <std::size_t N>
std::array<std::uint8_t, N> one_shot(const EVP_MD* md, const char* name, const void* p, std::size_t n) {
  if (md == nullptr) fail(name);
  std::array<std::uint8_t, N> out{};
  unsigned len = 0;
  if (EVP_Digest(p, n, out.data(), &len, md, nullptr) != 1 || len != N) fail("EVP_Digest");
  return out;
}

std::uint32_t crc_update(std::uint32_t state, const void* p, std::size_t n) {
  auto* bytes = static_cast<unsigned char*>(const_cast<void*>(p));  // ISA-L's signature; it only reads
  while (n > 0) {
    const std::size_t chunk = std::min<std::size_t>(n, 1u << 30);  // crc32_iscsi takes an int length
    state = crc32_iscsi(bytes, static_cast<int>(chunk), state);
    bytes += chunk;
    n -= chunk;
  }
  return state;
}

// CRC32C's polynomial, bit-reflected: bit 31 holds x^0 and bit 0 holds x^31, as in the CRC itself.
constexpr std::uint32_t crc32c_poly = 0x82F63B78u;

// a(x) * b(x) modulo the polynomial, both reflected (zlib's multmodp).
constexpr std::uint32_t crc_multmodp(std::uint32_t a, std::uint32_t b) {
  if (a == 0) return 0;  // the loop below ends at a's lowest set bit
  std::uint32_t m = 1u << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ crc32c_poly : b >> 1;
  }
  return p;
}

// x^(8 * 2^k) modulo the polynomial for k = 0..63: appending 2^k zero bytes to a message
// multiplies its CRC register by table[k].
constexpr std::array<std::uint32_t, 64> make_zero_bytes_table() {
  std::array<std::uint32_t, 64> t{};
  std::uint32_t p = 1u << 30;                          // x^1
  for (int i = 0; i < 3; ++i) p = crc_multmodp(p, p);  // x^8: one zero byte
  for (auto& v : t) {
    v = p;
    p = crc_multmodp(p, p);
  }
  return t;
}
constexpr auto crc_zero_bytes = make_zero_bytes_table();

constexpr std::string_view b64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(const std::uint8_t* p, std::size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4 + 1);
  // EVP_EncodeBlock takes an int length: encode in slices that are multiples of 3 bytes.
  constexpr std::size_t slice = 3u << 26;
  while (n > 0) {
    const std::size_t take = std::min(n, slice);
    const std::size_t old = out.size();
    out.resize(old + (take + 2) / 3 * 4 + 1);
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + old), p, static_cast<int>(take));
    if (written < 0) fail("EVP_EncodeBlock");
    out.resize(old + static_cast<std::size_t>(written));
    p += take;
    n -= take;
  }
  return out;
}

}  // namespace

struct md5_hasher::ctx : md_ctx {
  ctx() : md_ctx(md5_md(), "MD5") {}
};
md5_hasher::md5_hasher() : ctx_(std::make_unique<ctx>()) {}
md5_hasher::~md5_hasher() = default;
md5_hasher::md5_hasher(md5_hasher&&) noexcept = default;
md5_hasher& md5_hasher::operator=(md5_hasher&&) noexcept = default;
void md5_hasher::update(std::span<const std::byte> d) { ctx_->update(d.data(), d.size()); }
void md5_hasher::update(std::span<const std::uint8_t> d) { ctx_->update(d.data(), d.size()); }
void md5_hasher::update(std::string_view d) { ctx_->update(d.data(), d.size()); }
md5_digest md5_hasher::finish() { return ctx_->finish<16>(); }

struct sha256_hasher::ctx : md_ctx {
  ctx() : md_ctx(sha256_md(), "SHA256") {}
};
sha256_hasher::sha256_hasher() : ctx_(std::make_unique<ctx>()) {}
sha256_hasher::~sha256_hasher() = default;
sha256_hasher::sha256_hasher(sha256_hasher&&) noexcept = default;
sha256_hasher& sha256_hasher::operator=(sha256_hasher&&) noexcept = default;
void sha256_hasher::update(std::span<const std::byte> d) { ctx_->update(d.data(), d.size()); }
void sha256_hasher::update(std::span<const std::uint8_t> d) { ctx_->update(d.data(), d.size()); }
void sha256_hasher::update(std::string_view d) { ctx_->update(d.data(), d.size()); }
sha256_digest sha256_hasher::finish() { return ctx_->finish<32>(); }

void crc32c_hasher::update(std::span<const std::byte> d) { state_ = crc_update(state_, d.data(), d.size()); }
void crc32c_hasher::update(std::span<const std::uint8_t> d) { state_ = crc_update(state_, d.data(), d.size()); }
void crc32c_hasher::update(std::string_view d) { state_ = crc_update(state_, d.data(), d.size()); }
std::array<std::uint8_t, 4> crc32c_hasher::big_endian() const {
  const std::uint32_t v = value();
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
          static_cast<std::uint8_t>(v)};
}

md5_digest md5(std::string_view d) { return one_shot<16>(md5_md(), "MD5", d.data(), d.size()); }
md5_digest md5(std::span<const std::uint8_t> d) { return one_shot<16>(md5_md(), "MD5", d.data(), d.size()); }
sha256_digest sha256(std::string_view d) { return one_shot<32>(sha256_md(), "SHA256", d.data(), d.size()); }
sha256_digest sha256(std::span<const std::uint8_t> d) {
  return one_shot<32>(sha256_md(), "SHA256", d.data(), d.size());
}
std::uint32_t crc32c(std::string_view d) { return ~crc_update(0xFFFFFFFFu, d.data(), d.size()); }

std::uint32_t crc32c_combine(std::uint32_t crc1, std::uint32_t crc2, std::uint64_t len2) {
  // crc(A||B) = crc(A) * x^(8 len2) + crc(B) modulo the polynomial: with the initial value and the
  // final xor both all ones, the terms they add to the right-hand side cancel.
  std::uint32_t shift = 1u << 31;  // x^0
  for (std::size_t k = 0; len2 != 0; ++k, len2 >>= 1)
    if (len2 & 1) shift = crc_multmodp(crc_zero_bytes[k], shift);
  return crc_multmodp(shift, crc1) ^ crc2;
}

sha256_digest hmac_sha256(std::span<const std::uint8_t> key, std::string_view data) {
  if (key.size() > static_cast<std::size_t>(INT_MAX)) fail("HMAC key length");
  const EVP_MD* md = sha256_md();
  if (md == nullptr) fail("SHA256");
  sha256_digest out{};
  unsigned len = 0;
  // HMAC() wants a non-null key pointer even for an empty key.
  static const unsigned char empty = 0;
  const unsigned char* k = key.empty() ? &empty : key.data();
  if (HMAC(md, k, static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           out.data(), &len) == nullptr ||
      len != out.size())
    fail("HMAC");
  return out;
}

sha256_digest hmac_sha256(std::string_view key, std::string_view data) {
  return hmac_sha256(std::span(reinterpret_cast<const std::uint8_t*>(key.data()), key.size()), data);
}

std::string to_hex(std::span<const std::uint8_t> data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(data.size() * 2, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 0x0F];
  }
  return out;
}

std::string to_hex(std::string_view data) {
  return to_hex(std::span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

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

std::string base64_encode(std::span<const std::uint8_t> data) { return b64_encode(data.data(), data.size()); }

std::string base64_encode(std::string_view data) {
  return b64_encode(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
}

std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
  // EVP_DecodeBlock is lenient (skips surrounding whitespace, ignores what padding means):
  // validate strictly first, then let it do the arithmetic.
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  for (std::size_t i = 0; i < text.size() - pad; ++i)
    if (b64_alphabet.find(text[i]) == std::string_view::npos) return std::nullopt;
  // Non-canonical trailing bits (e.g. "QR==") would decode to the same bytes as "QQ==": refuse.
  if (pad > 0) {
    const auto last = b64_alphabet.find(text[text.size() - pad - 1]);
    if ((pad == 2 && (last & 0x0F) != 0) || (pad == 1 && (last & 0x03) != 0)) return std::nullopt;
  }
  std::vector<std::uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  constexpr std::size_t slice = 4u << 26;  // EVP_DecodeBlock takes an int length
  for (std::size_t pos = 0; pos < text.size(); pos += slice) {
    const std::size_t take = std::min(slice, text.size() - pos);
    const std::size_t old = out.size();
    out.resize(old + take / 4 * 3);
    const int n = EVP_DecodeBlock(out.data() + old, reinterpret_cast<const unsigned char*>(text.data() + pos),
                                  static_cast<int>(take));
    if (n < 0 || static_cast<std::size_t>(n) != take / 4 * 3) return std::nullopt;
  }
  out.resize(out.size() - pad);
  return out;
}

bool hash_self_test(std::string* why) {
  auto no = [&](const char* reason) {
    if (why != nullptr) *why = reason;
    return false;
  };
  if (md5_md() == nullptr) return no("MD5 is not available from the OpenSSL provider (FIPS mode?)");
  if (sha256_md() == nullptr) return no("SHA-256 is not available from the OpenSSL provider");
  try {
    if (to_hex(md5("abc")) != "900150983cd24fb0d6963f7d28e17f72") return no("MD5 self-test failed");
    if (to_hex(sha256("abc")) != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
      return no("SHA-256 self-test failed");
    (void)hmac_sha256(std::string_view("key"), "data");
  } catch (const std::exception& e) {
    if (why != nullptr) *why = e.what();
    return false;
  }
  if (crc32c("123456789") != 0xE3069283u) return no("CRC32C self-test failed");
  return true;
}

}  // namespace ferry::util
