#pragma once
// The S3 endpoint: path-style HTTP/1.1 (keep-alive, Expect: 100-continue, aws-chunked bodies) on one
// address, served by `threads` io threads plus as many hashing threads, so MD5 work for listings and
// big objects never stalls other connections. Beast stays in server.cpp.
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "store.hpp"

namespace ferry::synthetic {

struct server_config {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port
  unsigned threads = 0;    // io threads, and hashing threads; 0: one per core
  std::size_t max_connections = 10'000;
  std::chrono::milliseconds idle_timeout{120'000};  // a connection with no progress for this long is closed
  std::size_t header_limit = 64 * 1024;
  std::uint64_t max_object_size = 5ull << 30;  // single PUT and one part, as S3
  std::uint64_t max_copy_size = 5ull << 30;    // CopyObject source, as S3
  std::size_t max_xml_body = 8 << 20;          // CompleteMultipartUpload, Delete, CreateBucket bodies
  std::uint64_t min_part_size = 5ull << 20;    // all parts but the last, checked at completion
  std::uint64_t origin_hash_limit = 1 << 20;   // see store::find_origin
  bool verify_payload_hash = true;             // check a hex x-amz-content-sha256 against the body
  bool verify_signatures = false;              // SigV4 with access_key/secret_key (header or presigned)
  std::string access_key, secret_key;
  std::string region = "us-east-1";
  bool log_requests = false;
};

class server {
 public:
  server(store& s, server_config cfg);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and listens; the bound port (cfg.port or the one picked).
  boost::system::result<std::uint16_t, std::string> listen();
  // Serves on cfg.threads threads until stop(), SIGINT or SIGTERM.
  void run();
  // From any thread.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ferry::synthetic
