// bench/synthetic-s3 against real clients: rclone, awscli and curl must work against it unchanged, and
// what it serves and records must agree with its own manifest (--print-manifest), which the unit tests
// tie to the generator.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace ferry::test {
namespace {

using namespace std::chrono_literals;

#ifdef FERRY_SYNTHETIC_S3_BIN
constexpr const char* synthetic_bin = FERRY_SYNTHETIC_S3_BIN;
#else
constexpr const char* synthetic_bin = nullptr;  // configured with FERRY_BUILD_BENCH=OFF
#endif

constexpr std::string_view src_spec = "name=src,keys=2500,size=1KiB-48KiB,seed=7,prefix=obj/";
constexpr std::string_view listening = "synthetic-s3 listening on 127.0.0.1:";

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::filesystem::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

std::string describe(const run_result& r) {
  return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") + "\nstdout:\n" +
         r.out.substr(0, 4000) + "\nstderr:\n" + r.err.substr(0, 4000);
}

std::string md5_hex(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), d, &len, EVP_md5(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", d[i]);
    hex += buf;
  }
  return hex;
}

std::string md5_base64(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), d, &len, EVP_md5(), nullptr);
  unsigned char b64[64];
  const int n = EVP_EncodeBlock(b64, d, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), static_cast<std::size_t>(n));
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

std::vector<std::string> fields(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string f;
  std::istringstream in(line);
  while (std::getline(in, f, sep)) out.push_back(f);
  return out;
}

struct entry {
  std::uint64_t size = 0;
  std::string md5, etag;
};
using manifest = std::map<std::string, entry>;

// "key\tsize\tmd5\tetag" lines, as --print-manifest and /_synthetic/records?format=tsv write them.
manifest parse_tsv(const std::string& text) {
  manifest m;
  for (const auto& l : lines(text)) {
    auto f = fields(l, '\t');
    if (f.size() < 4) continue;
    m[f[0]] = entry{std::stoull(f[1]), f[2], f[3]};
  }
  return m;
}

// One synthetic-s3 process on a free port, with a writable bucket "dst", and configs for rclone and awscli.
class synthetic_server {
 public:
  explicit synthetic_server(std::vector<std::string> extra = {}) : dir_("ferry-synth") {
    process_options o;
    o.argv = {synthetic_bin,         "--port",     "0",   "--threads",     "2", "--bucket",
              std::string(src_spec), "--writable", "dst", "--log-requests"};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    o.stdout_path = dir_ / "out.log";
    o.stderr_path = dir_ / "err.log";
    child_.emplace(o);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      const std::string out = read_file(dir_ / "out.log");
      if (auto at = out.find(listening); at != std::string::npos && out.find('\n', at) != std::string::npos) {
        port_ = std::stoi(out.substr(at + listening.size()));
        break;
      }
      if (!child_->running() || std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("synthetic-s3 did not start:\n" + read_file(dir_ / "err.log"));
      std::this_thread::sleep_for(10ms);
    }
    endpoint_ = "http://127.0.0.1:" + std::to_string(port_);
    write_file(dir_ / "rclone.conf",
               "[syn]\ntype = s3\nprovider = Other\naccess_key_id = AKSYNTH\n"
               "secret_access_key = SECRETSYNTH\nendpoint = " +
                   endpoint_ + "\nregion = us-east-1\nforce_path_style = true\n");
  }

  const std::string& endpoint() const { return endpoint_; }
  const temp_dir& dir() const { return dir_; }
  std::string log() const { return read_file(dir_ / "err.log"); }

  run_result rclone(std::vector<std::string> args) const {
    process_options o;
    o.argv = {"rclone", "--config", (dir_ / "rclone.conf").string(), "--retries", "1", "--low-level-retries", "1"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env_unset = {"AWS_CA_BUNDLE", "RCLONE_CONFIG", "RCLONE_CA_CERT"};
    return run(o, 60s);
  }

  run_result aws(std::vector<std::string> args) const {
    process_options o;
    o.argv = {"aws", "--endpoint-url", endpoint_};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env_set = {{"AWS_ACCESS_KEY_ID", "AKSYNTH"},
                 {"AWS_SECRET_ACCESS_KEY", "SECRETSYNTH"},
                 {"AWS_DEFAULT_REGION", "us-east-1"},
                 {"AWS_CONFIG_FILE", "/dev/null"},
                 {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
                 {"AWS_MAX_ATTEMPTS", "1"}};
    o.env_unset = {"AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_SESSION_TOKEN"};
    return run(o, 60s);
  }

  // curl -sS ... URL; the HTTP status lands in *status, the body is returned.
  std::string curl(std::vector<std::string> args, const std::string& path, int* status) const {
    process_options o;
    o.argv = {"curl", "-sS", "--max-time", "30", "-w", "\n%{http_code}"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.argv.push_back(endpoint_ + path);
    run_result r = run(o, 40s);
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    const auto nl = r.out.rfind('\n');
    *status = nl == std::string::npos ? 0 : std::atoi(r.out.c_str() + nl + 1);
    return nl == std::string::npos ? r.out : r.out.substr(0, nl);
  }

  std::string get(const std::string& path, int* status = nullptr) const {
    int s = 0;
    std::string body = curl({}, path, &s);
    if (status) *status = s;
    return body;
  }

 private:
  temp_dir dir_;
  std::optional<process> child_;
  int port_ = 0;
  std::string endpoint_;
};

// The manifest of src_spec, from the binary itself.
const manifest& src_manifest() {
  static const manifest m = [] {
    run_result r = run({.argv = {synthetic_bin, "--print-manifest", std::string(src_spec)}}, 60s);
    if (r.exit_code != 0) throw std::runtime_error("--print-manifest failed: " + describe(r));
    return parse_tsv(r.out);
  }();
  return m;
}

class SyntheticS3 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (synthetic_bin == nullptr) GTEST_SKIP() << "configured with FERRY_BUILD_BENCH=OFF: no synthetic-s3 binary";
    ASSERT_EQ(src_manifest().size(), 2500u);
  }
};

TEST_F(SyntheticS3, ManifestIsDeterministicAndMatchesTheSpec) {
  const auto& m = src_manifest();
  EXPECT_EQ(m.begin()->first, "obj/0000");
  EXPECT_EQ(m.rbegin()->first, "obj/2499");
  for (const auto& [k, e] : m) {
    ASSERT_GE(e.size, 1024u) << k;
    ASSERT_LE(e.size, 48u * 1024) << k;
    ASSERT_EQ(e.md5.size(), 32u) << k;
    ASSERT_EQ(e.etag, e.md5) << k;  // small objects: the ETag is the MD5
  }
  run_result again = run({.argv = {synthetic_bin, "--print-manifest", std::string(src_spec)}}, 60s);
  EXPECT_EQ(parse_tsv(again.out).at("obj/1234").md5, m.at("obj/1234").md5);
}

TEST_F(SyntheticS3, RcloneListsEveryKeyAcrossPages) {
  synthetic_server s;
  run_result r = s.rclone({"ls", "syn:src"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  manifest listed;
  for (const auto& l : lines(r.out)) {
    std::istringstream in(l);
    std::uint64_t size = 0;
    std::string key;
    in >> size >> key;
    listed[key].size = size;
  }
  ASSERT_EQ(listed.size(), 2500u);
  for (const auto& [k, e] : src_manifest()) ASSERT_EQ(listed[k].size, e.size) << k;
  // rclone asked for 1000 keys a page: three pages.
  const std::string stats = s.get("/_synthetic/stats");
  EXPECT_NE(stats.find("\"ListObjects\":3"), std::string::npos) << stats;
}

TEST_F(SyntheticS3, RcloneMd5sumAndDownloadsAgreeWithTheManifest) {
  synthetic_server s;
  // From the ETags in the listing, then from the bytes themselves.
  for (const std::string how : {"", "--download"}) {
    std::vector<std::string> args = {"md5sum", "syn:src", "--include", "obj/00[0-1]?"};
    if (!how.empty()) args.push_back(how);
    run_result r = s.rclone(args);
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    const auto got = lines(r.out);
    ASSERT_EQ(got.size(), 20u) << r.out;
    for (const auto& l : got) {
      const std::string md5 = l.substr(0, 32), key = l.substr(34);
      EXPECT_EQ(md5, src_manifest().at(key).md5) << key << " " << how;
    }
  }
}

TEST_F(SyntheticS3, CopiesIntoAWritableBucketAreRecordedWithTheSourceSizeAndMd5) {
  synthetic_server s;
  // Server-side copies (CopyObject), then bytes through a local directory (GetObject, PutObject).
  run_result cp = s.rclone({"copy", "syn:src", "syn:dst", "--include", "obj/01[0-4]?"});
  ASSERT_EQ(cp.exit_code, 0) << describe(cp);
  const auto local = s.dir() / "local";
  run_result down = s.rclone({"copy", "syn:src/obj", local.string(), "--include", "02[0-4]?"});
  ASSERT_EQ(down.exit_code, 0) << describe(down);
  run_result up = s.rclone({"copy", local.string(), "syn:dst/obj"});
  ASSERT_EQ(up.exit_code, 0) << describe(up);

  const manifest rec = parse_tsv(s.get("/_synthetic/records?bucket=dst&format=tsv"));
  ASSERT_EQ(rec.size(), 100u);
  for (const auto& [k, e] : rec) {
    const auto& want = src_manifest().at(k);
    EXPECT_EQ(e.size, want.size) << k;
    EXPECT_EQ(e.md5, want.md5) << k;
    EXPECT_EQ(e.etag, want.md5) << k;
  }
  const std::string json = s.get("/_synthetic/records?bucket=dst");
  EXPECT_NE(json.find("\"how\":\"copy\""), std::string::npos);
  EXPECT_NE(json.find("\"how\":\"put\""), std::string::npos);
  // The records list what rclone lists.
  run_result ls = s.rclone({"lsf", "-R", "--files-only", "syn:dst"});
  ASSERT_EQ(ls.exit_code, 0) << describe(ls);
  EXPECT_EQ(lines(ls.out).size(), 100u);
  // Written copies of synthetic objects read back.
  run_result back = s.rclone({"md5sum", "--download", "syn:dst/obj", "--include", "020?"});
  ASSERT_EQ(back.exit_code, 0) << describe(back);
  ASSERT_EQ(lines(back.out).size(), 10u);
  for (const auto& l : lines(back.out)) EXPECT_EQ(l.substr(0, 32), src_manifest().at("obj/" + l.substr(34)).md5);
}

TEST_F(SyntheticS3, RcloneMultipartUploadGetsAPartsEtagAndTheWholeMd5) {
  synthetic_server s;
  std::string data(12 * 1000 * 1000 + 123, '\0');
  std::mt19937_64 rng(3);
  for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  write_file(s.dir() / "big.bin", data);
  run_result r = s.rclone({"copyto", (s.dir() / "big.bin").string(), "syn:dst/big.bin", "--s3-upload-cutoff", "5M",
                           "--s3-chunk-size", "5M", "--s3-upload-concurrency", "3"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const manifest rec = parse_tsv(s.get("/_synthetic/records?bucket=dst&format=tsv"));
  ASSERT_TRUE(rec.contains("big.bin"));
  const auto& e = rec.at("big.bin");
  EXPECT_EQ(e.size, data.size());
  EXPECT_EQ(e.md5, md5_hex(data));
  EXPECT_TRUE(e.etag.ends_with("-3")) << e.etag;
  EXPECT_NE(s.log().find("CompleteMultipartUpload"), std::string::npos);
}

TEST_F(SyntheticS3, RangeGetsReturnTheBytesOfTheWholeObject) {
  synthetic_server s;
  const std::string key = "obj/0005";
  int status = 0;
  const std::string whole = s.get("/src/" + key, &status);
  ASSERT_EQ(status, 200);
  ASSERT_EQ(whole.size(), src_manifest().at(key).size);
  EXPECT_EQ(md5_hex(whole), src_manifest().at(key).md5);
  const std::string mid = s.curl({"-r", "1000-2999"}, "/src/" + key, &status);
  EXPECT_EQ(status, 206);
  EXPECT_EQ(mid, whole.substr(1000, 2000));
  const std::string tail = s.curl({"-H", "Range: bytes=-100"}, "/src/" + key, &status);
  EXPECT_EQ(status, 206);
  EXPECT_EQ(tail, whole.substr(whole.size() - 100));
  s.curl({"-r", std::to_string(whole.size()) + "-"}, "/src/" + key, &status);
  EXPECT_EQ(status, 416);
  // rclone cat --offset/--count ranges too.
  run_result r = s.rclone({"cat", "--offset", "17", "--count", "333", "syn:src/" + key});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, whole.substr(17, 333));
}

TEST_F(SyntheticS3, AwsCliListsDownloadsAndUploads) {
  synthetic_server s;
  run_result ls = s.aws({"s3", "ls", "s3://src/obj/"});
  ASSERT_EQ(ls.exit_code, 0) << describe(ls);
  EXPECT_EQ(lines(ls.out).size(), 2500u);
  const auto file = s.dir() / "o3";
  run_result down = s.aws({"s3", "cp", "s3://src/obj/0003", file.string()});
  ASSERT_EQ(down.exit_code, 0) << describe(down);
  const std::string bytes = read_file(file);
  EXPECT_EQ(md5_hex(bytes), src_manifest().at("obj/0003").md5);
  run_result up = s.aws({"s3", "cp", file.string(), "s3://dst/aws/o3"});
  ASSERT_EQ(up.exit_code, 0) << describe(up);
  const manifest rec = parse_tsv(s.get("/_synthetic/records?bucket=dst&format=tsv"));
  ASSERT_TRUE(rec.contains("aws/o3"));
  EXPECT_EQ(rec.at("aws/o3").md5, src_manifest().at("obj/0003").md5);
  run_result buckets = s.aws({"s3", "ls"});
  ASSERT_EQ(buckets.exit_code, 0) << describe(buckets);
  EXPECT_NE(buckets.out.find(" src"), std::string::npos);
  EXPECT_NE(buckets.out.find(" dst"), std::string::npos);
}

TEST_F(SyntheticS3, AWrongContentMd5IsBadDigestAndNothingIsRecorded) {
  synthetic_server s;
  write_file(s.dir() / "h.txt", "hello\n");
  int status = 0;
  const std::string body =
      s.curl({"-T", (s.dir() / "h.txt").string(), "-H", "Content-MD5: " + md5_base64("other")}, "/dst/h.txt", &status);
  EXPECT_EQ(status, 400);
  EXPECT_NE(body.find("<Code>BadDigest</Code>"), std::string::npos) << body;
  s.curl({"-T", (s.dir() / "h.txt").string(), "-H", "Content-MD5: " + md5_base64("hello\n")}, "/dst/ok.txt", &status);
  EXPECT_EQ(status, 200);
  const manifest rec = parse_tsv(s.get("/_synthetic/records?bucket=dst&format=tsv"));
  EXPECT_FALSE(rec.contains("h.txt"));
  ASSERT_TRUE(rec.contains("ok.txt"));
  EXPECT_EQ(rec.at("ok.txt").md5, md5_hex("hello\n"));
}

TEST_F(SyntheticS3, VerifySignaturesAcceptsTheRightSecretOnly) {
  synthetic_server s({"--verify-signatures", "--access-key", "AKSYNTH", "--secret-key", "SECRETSYNTH"});
  run_result ok = s.rclone({"lsf", "syn:src"});
  ASSERT_EQ(ok.exit_code, 0) << describe(ok);
  EXPECT_EQ(ok.out, "obj/\n");
  run_result ok2 = s.rclone({"lsf", "syn:src/obj", "--include", "000?"});
  ASSERT_EQ(ok2.exit_code, 0) << describe(ok2);
  EXPECT_EQ(lines(ok2.out).size(), 10u);
  run_result bad = s.rclone({"lsf", "syn,secret_access_key=WRONG:src/obj"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("SignatureDoesNotMatch"), std::string::npos) << describe(bad);
}

}  // namespace
}  // namespace ferry::test
