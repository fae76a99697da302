#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace ferry::test {

struct s3rver_options {
  // https://localhost:PORT with a certificate from make_test_ca (ca_file() is what a client trusts).
  bool tls = false;
  // tests/support/s3rver_strict.js: s3rver with SigV4, Content-MD5 and payload hashes verified, listings in
  // byte order, multipart completion checked (see that file). false: s3rver as published, which accepts any
  // SigV4 signature.
  bool strict = true;
  // s3rver's per-request log into log_file(); false keeps only start-up lines.
  bool log_requests = true;
  // The region every SigV4 scope must name (strict only).
  std::string region = "us-east-1";
  // Smallest part but the last one that CompleteMultipartUpload accepts, as in S3 (strict only).
  std::uint64_t min_part_size = 5 * 1024 * 1024;
  // More key pairs (id, secret) the server accepts besides S3RVER/S3RVER (strict only): tests that grep
  // logs for a secret need one that appears nowhere else.
  std::vector<std::pair<std::string, std::string>> extra_keys{};
  // How long start-up (node loading s3rver, then listening) may take.
  std::chrono::milliseconds start_timeout = std::chrono::seconds(20);
};

// A real S3 server (s3rver 3.7.1 from tests/node_modules, run by node) on 127.0.0.1 and a free port, with
// its data in a temp dir; stopped and removed on destruction. Credentials: S3RVER / S3RVER.
// The constructor throws std::runtime_error with what to do when it cannot start; in particular when
// tests/node_modules is missing ("run scripts/setup-deps.sh"): a test using it fails, never skips.
class s3rver {
 public:
  static constexpr std::string_view access_key_id = "S3RVER";
  static constexpr std::string_view secret_access_key = "S3RVER";

  explicit s3rver(s3rver_options options = {});
  s3rver(const s3rver&) = delete;
  s3rver& operator=(const s3rver&) = delete;
  ~s3rver();

  // "http://127.0.0.1:PORT", or "https://localhost:PORT" with TLS (the certificate names localhost).
  const std::string& endpoint() const { return endpoint_; }
  std::uint16_t port() const { return port_; }
  const std::string& region() const { return options_.region; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::filesystem::path& log_file() const { return log_file_; }
  // The CA certificate (PEM) that signed the server's certificate; empty without TLS.
  const std::filesystem::path& ca_file() const { return ca_file_; }
  // An rclone config with one remote, "s3rver", for this server (provider Other, path style, SigV4).
  const std::filesystem::path& rclone_config() const { return rclone_config_; }
  // The log so far, for failure messages.
  std::string read_log() const;

  // Kills the server (SIGTERM, then SIGKILL): for tests of a server that goes away.
  void stop();
  // Starts it again on the same port with the same data (stops it first if running).
  void restart();
  bool running();

  // Runs `rclone ARGS...` against this server with rclone_config() (and --ca-cert with TLS), AWS_CA_BUNDLE
  // removed from its environment, one attempt per operation (--retries 1 --low-level-retries 1; later
  // flags in ARGS override). Paths name the remote, e.g. {"mkdir", "s3rver:bucket"}; a connection string
  // overrides settings, e.g. "s3rver,secret_access_key=WRONG:bucket".
  run_result rclone(const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;

  // tests/node_modules of the source tree, where scripts/setup-deps.sh installs s3rver.
  static std::filesystem::path node_modules();

 private:
  void start(std::uint16_t port);

  s3rver_options options_;
  temp_dir dir_;
  std::filesystem::path data_dir_;
  std::filesystem::path log_file_;
  std::filesystem::path ca_file_, cert_file_, key_file_;
  std::filesystem::path rclone_config_;
  std::uint16_t port_ = 0;
  std::string endpoint_;
  std::optional<process> child_;
};

}  // namespace ferry::test
