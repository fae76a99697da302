#include "support/test_ca.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

namespace ferry::test {

namespace {

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
  void operator()(X509* p) const { X509_free(p); }
};
struct bio_free {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("make_test_ca: ") + what);
}

pkey_ptr make_key() {
  pkey_ptr k(EVP_EC_gen("P-256"));
  check(k != nullptr, "EVP_EC_gen");
  return k;
}

void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str());
  check(ext != nullptr, "X509V3_EXT_nconf_nid");
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  check(ok == 1, "X509_add_ext");
}

// A certificate for `key` named `cn`, signed by `issuer_key` (self-signed when issuer is null).
x509_ptr make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                   const std::vector<std::pair<int, std::string>>& exts) {
  x509_ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
  unsigned char serial[8];
  check(RAND_bytes(serial, sizeof serial) == 1, "RAND_bytes");
  serial[0] &= 0x7f;  // a positive serial number
  std::int64_t s = 0;
  for (unsigned char b : serial) s = (s << 8) | b;
  check(ASN1_INTEGER_set_int64(X509_get_serialNumber(cert.get()), s) == 1, "serial");
  check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7L * 24 * 3600) != nullptr, "notAfter");
  check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Ferry tests"), -1,
                                   -1, 0) == 1,
        "O");
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                   0) == 1,
        "CN");
  check(X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name) == 1, "issuer");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : exts) add_ext(cert.get(), &ctx, nid, value);
  check(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

void write_cert(const std::filesystem::path& p, X509* cert) {
  bio_ptr b(BIO_new_file(p.c_str(), "w"));
  check(b != nullptr, "open certificate file");
  check(PEM_write_bio_X509(b.get(), cert) == 1, "PEM_write_bio_X509");
}

void write_key(const std::filesystem::path& p, EVP_PKEY* key) {
  bio_ptr b(BIO_new_file(p.c_str(), "w"));
  check(b != nullptr, "open key file");
  check(PEM_write_bio_PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1, "PEM_write_bio_PrivateKey");
}

}  // namespace

test_ca_files make_test_ca(const std::filesystem::path& dir, const std::vector<std::string>& dns_names,
                           const std::vector<std::string>& ip_addresses) {
  std::filesystem::create_directories(dir);
  const auto abs = std::filesystem::absolute(dir);

  auto ca_key = make_key();
  auto ca = make_cert(ca_key.get(), "Ferry Test CA", nullptr, ca_key.get(),
                      {{NID_basic_constraints, "critical,CA:TRUE"},
                       {NID_key_usage, "critical,keyCertSign,cRLSign"},
                       {NID_subject_key_identifier, "hash"}});

  std::string san;
  for (const auto& d : dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& ip : ip_addresses) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  check(!san.empty(), "no subjectAltName given");
  auto server_key = make_key();
  auto server =
      make_cert(server_key.get(), dns_names.empty() ? ip_addresses.front() : dns_names.front(), ca.get(), ca_key.get(),
                {{NID_basic_constraints, "critical,CA:FALSE"},
                 {NID_key_usage, "critical,digitalSignature"},
                 {NID_ext_key_usage, "serverAuth"},
                 {NID_subject_alt_name, san},
                 {NID_subject_key_identifier, "hash"},
                 {NID_authority_key_identifier, "keyid:always"}});

  test_ca_files files{(abs / "ca.pem").string(), (abs / "server.pem").string(), (abs / "server-key.pem").string()};
  write_cert(files.ca_cert, ca.get());
  write_cert(files.server_cert, server.get());
  write_key(files.server_key, server_key.get());
  return files;
}

}  // namespace ferry::test
