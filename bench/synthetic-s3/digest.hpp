#pragma once
// A copyable incremental MD5: a multipart upload's running whole-object digest is cloned before a part
// streams into it, so a part that fails half-way leaves the running digest as it was.
#include <openssl/evp.h>

#include <cstddef>
#include <span>
#include <stdexcept>

#include "util/hash.hpp"

namespace ferry::synthetic {

class md5_ctx {
 public:
  md5_ctx() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, md(), nullptr) != 1) throw std::runtime_error("MD5 init failed");
  }
  md5_ctx(const md5_ctx& o) : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_MD_CTX_copy_ex(ctx_, o.ctx_) != 1) throw std::runtime_error("MD5 copy failed");
  }
  md5_ctx& operator=(const md5_ctx& o) {
    if (this != &o && EVP_MD_CTX_copy_ex(ctx_, o.ctx_) != 1) throw std::runtime_error("MD5 copy failed");
    return *this;
  }
  ~md5_ctx() { EVP_MD_CTX_free(ctx_); }

  void update(std::span<const std::byte> b) {
    if (!b.empty() && EVP_DigestUpdate(ctx_, b.data(), b.size()) != 1) throw std::runtime_error("MD5 update failed");
  }
  // The digest so far; the context itself is left as it was (finishes a copy).
  util::md5_digest digest() const {
    md5_ctx copy(*this);
    util::md5_digest out{};
    unsigned len = 0;
    if (EVP_DigestFinal_ex(copy.ctx_, out.data(), &len) != 1 || len != out.size())
      throw std::runtime_error("MD5 final failed");
    return out;
  }

 private:
  static const EVP_MD* md() {
    static EVP_MD* m = EVP_MD_fetch(nullptr, "MD5", nullptr);  // fetched once: implicit fetches are slow
    return m;
  }
  EVP_MD_CTX* ctx_;
};

}  // namespace ferry::synthetic
