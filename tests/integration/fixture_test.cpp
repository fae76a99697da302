// The test support itself: child processes, temp dirs, and the s3rver fixture that every integration test
// trusts as "a real S3". If these fail, failures elsewhere mean nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/s3rver.hpp"
#include "support/temp_dir.hpp"

namespace ferry::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

std::string md5_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1) return {};
  std::string hex;
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    hex += buf;
  }
  return hex;
}

std::string md5_base64(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr);
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, digest, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), static_cast<std::size_t>(n));
}

void write_file(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::string describe(const run_result& r) {
  return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") + "\nstdout:\n" + r.out +
         "\nstderr:\n" + r.err;
}

// A SigV4-signed request by curl (an independent signer). Returns the body; *status gets the HTTP status.
// curl 7.88 signs the query string in the order given: pass it already sorted and encoded.
std::string curl_s3(const s3rver& server, std::vector<std::string> args, int* status) {
  process_options o;
  o.argv = {"curl",        "-sS",
            "--max-time",  "30",
            "--aws-sigv4", "aws:amz:" + server.region() + ":s3",
            "--user",      std::string(s3rver::access_key_id) + ":" + std::string(s3rver::secret_access_key),
            "-H",          "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "-w",          "\n%{http_code}"};
  if (!server.ca_file().empty()) o.argv.insert(o.argv.end(), {"--cacert", server.ca_file().string()});
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  run_result r = run(o, 60s);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  auto nl = r.out.rfind('\n');
  *status = nl == std::string::npos ? 0 : std::atoi(r.out.c_str() + nl + 1);
  return nl == std::string::npos ? r.out : r.out.substr(0, nl);
}

// ---- process ----

TEST(Process, RunCapturesStdoutStderrAndExitCode) {
  run_result r = run({.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"}}, 10s);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(Process, RunSetsAndRemovesEnvironmentVariables) {
  ::setenv("FERRY_TEST_REMOVE_ME", "present", 1);
  run_result r = run({.argv = {"sh", "-c", "echo \"[$FERRY_TEST_ADDED][${FERRY_TEST_REMOVE_ME:-gone}]\""},
                      .env_set = {{"FERRY_TEST_ADDED", "a b"}},
                      .env_unset = {"FERRY_TEST_REMOVE_ME"}},
                     10s);
  ::unsetenv("FERRY_TEST_REMOVE_ME");
  EXPECT_EQ(r.out, "[a b][gone]\n") << describe(r);
}

TEST(Process, RunKillsACommandThatOutlivesItsTimeout) {
  const auto start = std::chrono::steady_clock::now();
  run_result r = run({.argv = {"sleep", "30"}}, 200ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(Process, StartingAMissingProgramThrows) {
  EXPECT_THROW(process({.argv = {"ferry-no-such-program-here"}}), std::system_error);
  EXPECT_THROW(process({.argv = {"/nonexistent/ferry-program"}}), std::system_error);
}

TEST(Process, KillEscalatesToSigkillWhenSigtermIsIgnored) {
  temp_dir dir;
  // The shell ignores SIGTERM and reports once it has, so the kill cannot race the trap.
  process p(
      {.argv = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"}, .stdout_path = dir / "out"});
  const auto ready_deadline = std::chrono::steady_clock::now() + 10s;
  while (std::filesystem::file_size(dir / "out") == 0 && std::chrono::steady_clock::now() < ready_deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(p.running());
  int status = p.kill(300ms);
  EXPECT_EQ(status, 128 + SIGKILL);
  EXPECT_FALSE(p.running());
}

TEST(Process, WaitForReportsTheExitStatusAndWritesOutputFiles) {
  temp_dir dir;
  process p({.argv = {"sh", "-c", "echo to-file; echo to-err >&2; exit 7"},
             .stdout_path = dir / "both",
             .stderr_path = dir / "both"});
  auto status = p.wait_for(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 7);
  std::ifstream in(dir / "both");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "to-file\nto-err\n");
}

// ---- temp_dir ----

TEST(TempDir, IsUniqueAndRemovedWithItsContents) {
  std::filesystem::path kept;
  {
    temp_dir a, b;
    EXPECT_NE(a.path(), b.path());
    EXPECT_TRUE(std::filesystem::is_directory(a.path()));
    std::filesystem::create_directories(a / "x/y");
    write_file(a / "x/y/z", "data");
    kept = a.path();
  }
  if (std::getenv("FERRY_KEEP_TEST_DIRS") == nullptr) {
    EXPECT_FALSE(std::filesystem::exists(kept));
  }
}

// ---- s3rver ----

TEST(S3rverFixture, HttpServerStoresAndListsAnObjectWithItsMd5) {
  s3rver server;
  EXPECT_EQ(server.endpoint(), "http://127.0.0.1:" + std::to_string(server.port()));
  EXPECT_TRUE(server.running());

  temp_dir local;
  const std::string content = "Ferry fixture test: a few bytes of content.\n";
  write_file(local / "hello.txt", content);

  run_result r = server.rclone({"mkdir", "s3rver:fixture-bucket"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = server.rclone({"copyto", (local / "hello.txt").string(), "s3rver:fixture-bucket/dir/hello.txt"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);

  r = server.rclone({"lsjson", "--hash", "-R", "--files-only", "s3rver:fixture-bucket"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.out, HasSubstr("\"Path\":\"dir/hello.txt\""));
  EXPECT_THAT(r.out, HasSubstr("\"Size\":" + std::to_string(content.size())));
  EXPECT_THAT(r.out, HasSubstr("\"md5\":\"" + md5_hex(content) + "\""));

  // --download hashes the bytes served, not the stored ETag.
  r = server.rclone({"md5sum", "--download", "s3rver:fixture-bucket"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, md5_hex(content) + "  dir/hello.txt\n");

  // The data lives where the fixture says.
  EXPECT_TRUE(std::filesystem::exists(server.data_dir() / "fixture-bucket/dir"));
}

TEST(S3rverFixture, TlsServerIsTrustedOnlyWithTheTestCa) {
  s3rver server({.tls = true});
  EXPECT_EQ(server.endpoint(), "https://localhost:" + std::to_string(server.port()));
  ASSERT_FALSE(server.ca_file().empty());
  ASSERT_TRUE(std::filesystem::exists(server.ca_file()));

  temp_dir local;
  const std::string content(100000, 'x');
  write_file(local / "blob", content);
  run_result r = server.rclone({"mkdir", "s3rver:tls-bucket"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = server.rclone({"copyto", (local / "blob").string(), "s3rver:tls-bucket/blob"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = server.rclone({"md5sum", "s3rver:tls-bucket"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, md5_hex(content) + "  blob\n");

  // Without --ca-cert the certificate is not trusted: TLS is real, not plain HTTP on another port.
  process_options o{.argv = {"rclone", "--config", server.rclone_config().string(), "--retries", "1",
                             "--low-level-retries", "1", "lsjson", "s3rver:tls-bucket"},
                    .env_unset = {"AWS_CA_BUNDLE"}};
  r = run(o, 60s);
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("certificate")) << describe(r);
}

TEST(S3rverFixture, WrongSecretKeyIsRejectedAndStoresNothing) {
  s3rver server;
  ASSERT_EQ(server.rclone({"mkdir", "s3rver:sig-bucket"}).exit_code, 0);
  temp_dir local;
  write_file(local / "f", "payload");

  run_result r = server.rclone({"lsjson", "s3rver,secret_access_key=WRONG:sig-bucket"});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("SignatureDoesNotMatch"));

  r = server.rclone({"copyto", (local / "f").string(), "s3rver,secret_access_key=WRONG:sig-bucket/f"});
  EXPECT_NE(r.exit_code, 0) << describe(r);

  r = server.rclone({"lsf", "-R", "s3rver:sig-bucket"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "") << "an object was stored by a request with a wrong signature";

  r = server.rclone({"lsjson", "s3rver,access_key_id=NOBODY:sig-bucket"});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("InvalidAccessKeyId"));

  // Unsigned requests are refused as well.
  process_options anon{.argv = {"curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}",
                                server.endpoint() + "/sig-bucket"}};
  r = run(anon, 60s);
  EXPECT_EQ(r.out, "403") << describe(r);
}

TEST(S3rverFixture, WrongRegionInTheSignatureScopeIsRejected) {
  s3rver server({.region = "eu-west-1"});
  run_result r = server.rclone({"mkdir", "s3rver:region-bucket"});  // the config says eu-west-1
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = server.rclone({"lsjson", "s3rver,region=us-east-1:region-bucket"});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("AuthorizationHeaderMalformed"));
}

TEST(S3rverFixture, BadContentMd5IsRejectedAndStoresNothing) {
  s3rver server;
  ASSERT_EQ(server.rclone({"mkdir", "s3rver:md5-bucket"}).exit_code, 0);
  temp_dir local;
  const std::string content = "bytes whose MD5 the client states";
  write_file(local / "body", content);

  int status = 0;
  std::string body = curl_s3(server,
                             {"-X", "PUT", "--data-binary", "@" + (local / "body").string(), "-H",
                              "Content-MD5: " + md5_base64("something else"), server.endpoint() + "/md5-bucket/bad"},
                             &status);
  EXPECT_EQ(status, 400);
  EXPECT_THAT(body, HasSubstr("<Code>BadDigest</Code>"));

  body = curl_s3(server,
                 {"-X", "PUT", "--data-binary", "@" + (local / "body").string(), "-H",
                  "Content-MD5: " + md5_base64(content), server.endpoint() + "/md5-bucket/good"},
                 &status);
  EXPECT_EQ(status, 200) << body;

  run_result r = server.rclone({"lsf", "s3rver:md5-bucket"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "good\n");
}

TEST(S3rverFixture, ListingIsInByteOrderAndPaginatesWithoutLoss) {
  s3rver server;
  ASSERT_EQ(server.rclone({"mkdir", "s3rver:order-bucket"}).exit_code, 0);
  temp_dir local;
  // Directory-walk order differs from S3's byte order for these ("a/b" sorts after "a-b" and "a.b").
  const std::vector<std::string> sorted = {"a-b", "a.b", "a/b", "a/b/c", "a0", "x", "x-1", "x/y/z", "z"};
  for (const auto& key : sorted) {
    write_file(local / "one", key);
    run_result r = server.rclone({"copyto", (local / "one").string(), "s3rver:order-bucket/" + key});
    ASSERT_EQ(r.exit_code, 0) << key << ": " << describe(r);
  }

  std::vector<std::string> listed;
  std::string token;
  int pages = 0;
  for (; pages < 20; ++pages) {
    std::string query =
        token.empty() ? "list-type=2&max-keys=2" : "continuation-token=" + token + "&list-type=2&max-keys=2";
    int status = 0;
    std::string xml = curl_s3(server, {server.endpoint() + "/order-bucket?" + query}, &status);
    ASSERT_EQ(status, 200) << xml;
    static const std::regex key_re("<Key>([^<]*)</Key>");
    for (auto it = std::sregex_iterator(xml.begin(), xml.end(), key_re); it != std::sregex_iterator(); ++it) {
      listed.push_back((*it)[1]);
    }
    static const std::regex token_re("<NextContinuationToken>([^<]*)</NextContinuationToken>");
    std::smatch m;
    if (!std::regex_search(xml, m, token_re)) break;
    // Percent-encode the opaque token the way SigV4 canonicalises it, so curl's signature matches.
    token.clear();
    for (unsigned char c : std::string(m[1])) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        token += static_cast<char>(c);
      } else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", c);
        token += buf;
      }
    }
  }
  EXPECT_EQ(listed, sorted);
  EXPECT_EQ(pages, 4);  // 9 keys, 2 per page: the 5th page has no continuation token

  // Common prefixes include "x/" although "x/y/z" is two levels down (plain s3rver drops it).
  run_result r = server.rclone({"lsf", "s3rver:order-bucket"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.out, HasSubstr("x/\n"));
  EXPECT_THAT(r.out, HasSubstr("a/\n"));
}

TEST(S3rverFixture, MultipartUploadGetsAnS3StyleEtagAndIntactContent) {
  s3rver server;
  ASSERT_EQ(server.rclone({"mkdir", "s3rver:mp-bucket"}).exit_code, 0);
  temp_dir local;
  std::string content;
  content.reserve(11 * 1024 * 1024);
  for (std::size_t i = 0; content.size() < 11 * 1024 * 1024; ++i) content += std::to_string(i * 7919) + ",";
  write_file(local / "big", content);

  run_result r = server.rclone(
      {"copyto", "--s3-upload-cutoff", "0", "--s3-chunk-size", "5M", (local / "big").string(), "s3rver:mp-bucket/big"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);

  int status = 0;
  std::string headers = curl_s3(server, {"-I", server.endpoint() + "/mp-bucket/big"}, &status);
  ASSERT_EQ(status, 200) << headers;
  EXPECT_TRUE(std::regex_search(headers, std::regex("ETag: \"[0-9a-f]{32}-3\"", std::regex::icase))) << headers;

  r = server.rclone({"md5sum", "--download", "s3rver:mp-bucket"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, md5_hex(content) + "  big\n");
}

TEST(S3rverFixture, RestartKeepsPortAndData) {
  s3rver server;
  ASSERT_EQ(server.rclone({"mkdir", "s3rver:keep-bucket"}).exit_code, 0);
  temp_dir local;
  write_file(local / "f", "survives a restart");
  ASSERT_EQ(server.rclone({"copyto", (local / "f").string(), "s3rver:keep-bucket/f"}).exit_code, 0);
  const auto port = server.port();

  server.stop();
  EXPECT_FALSE(server.running());
  run_result r = server.rclone({"lsf", "s3rver:keep-bucket", "--contimeout", "2s"});
  EXPECT_NE(r.exit_code, 0) << "a stopped server still answered: " << describe(r);

  server.restart();
  EXPECT_EQ(server.port(), port);
  r = server.rclone({"cat", "s3rver:keep-bucket/f"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "survives a restart");
}

TEST(S3rverFixture, PlainS3rverAlsoStarts) {
  s3rver server({.strict = false, .log_requests = false});
  run_result r = server.rclone({"mkdir", "s3rver:plain-bucket"});
  ASSERT_EQ(r.exit_code, 0) << describe(r) << server.read_log();
  r = server.rclone({"lsjson", "s3rver:plain-bucket"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
}

}  // namespace
}  // namespace ferry::test
