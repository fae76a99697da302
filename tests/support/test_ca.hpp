#pragma once
// A throwaway certificate authority for TLS tests, made with the OpenSSL C API at test time
// (nothing checked in, nothing expires in the repository).
#include <filesystem>
#include <string>
#include <vector>

namespace ferry::test {

// Absolute paths of the PEM files make_test_ca wrote.
struct test_ca_files {
  std::string ca_cert;      // the CA certificate: what a client trusts (tls_config.ca_file, AWS_CA_BUNDLE)
  std::string server_cert;  // the server certificate, signed by the CA (e.g. s3rver --cert)
  std::string server_key;   // its unencrypted private key (e.g. s3rver --key)
};

// Writes ca.pem, server.pem and server-key.pem into `dir` (created if missing): a P-256 CA and
// a server certificate valid for one week whose subjectAltName lists `dns_names` and
// `ip_addresses` (default: DNS:localhost, IP:127.0.0.1). Throws std::runtime_error on failure.
test_ca_files make_test_ca(const std::filesystem::path& dir, const std::vector<std::string>& dns_names = {"localhost"},
                           const std::vector<std::string>& ip_addresses = {"127.0.0.1"});

}  // namespace ferry::test
