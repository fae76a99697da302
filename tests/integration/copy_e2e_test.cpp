// The first end-to-end path: ferryctl asks a real ferryd, over its Unix socket, to copy a prefix
// between two real s3rver instances; rclone then checks the result independently.
#include "proto/messages.hpp"
#include "support/ferryd.hpp"
#include "support/s3rver.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

namespace ferry::test {
namespace {

// Files of awkward names and sizes, uploaded to `remote:bucket/prefix` with rclone.
std::vector<std::pair<std::string, std::size_t>> sample_files() {
  return {{"empty", 0},
          {"one-byte", 1},
          {"with space.txt", 1000},
          {"unicode-ü-日本.bin", 4096},
          {"plus+sign", 77},
          {"percent%25", 10},
          {"hash#tag", 10},
          {"equals=amp&", 10},
          {"question?mark", 10},
          {"deep/a/b/c/d/file.bin", 300'000},
          {"big.bin", 5 * 1024 * 1024 + 1}};
}

void upload_samples(const s3rver& s, const std::string& bucket, const std::string& prefix) {
  temp_dir local;
  std::mt19937 rng(42);
  for (const auto& [name, size] : sample_files()) {
    auto path = local.path() / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    for (std::size_t i = 0; i < size; ++i) out.put(static_cast<char>(rng()));
  }
  auto mk = s.rclone({"mkdir", "s3rver:" + bucket});
  ASSERT_EQ(mk.exit_code, 0) << mk.err;
  auto cp = s.rclone({"copy", local.path().string(), "s3rver:" + bucket + "/" + prefix});
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
}

// rclone check between two servers: a combined config with both remotes.
run_result rclone_check(const s3rver& a, const std::string& a_path, const s3rver& b, const std::string& b_path) {
  temp_dir dir;
  auto conf = dir.path() / "rclone.conf";
  std::ofstream out(conf);
  for (auto [name, s] : {std::pair{"a", &a}, std::pair{"b", &b}}) {
    out << "[" << name << "]\ntype = s3\nprovider = Other\naccess_key_id = S3RVER\nsecret_access_key = S3RVER\n"
        << "endpoint = " << s->endpoint() << "\nforce_path_style = true\nregion = " << s->region() << "\n\n";
  }
  out.close();
  process_options o;
  o.argv = {"rclone", "--config", conf.string(), "--retries",  "1", "--low-level-retries",
            "1",      "check",    "a:" + a_path, "b:" + b_path};
  if (!a.ca_file().empty()) {  // each server has its own test CA: one bundle trusts both
    auto bundle = dir.path() / "cas.pem";
    std::ofstream cas(bundle);
    for (const auto* s : {&a, &b}) cas << std::ifstream(s->ca_file()).rdbuf();
    cas.close();
    o.argv.insert(o.argv.begin() + 3, {"--ca-cert", bundle.string()});
  }
  o.env_unset = {"AWS_CA_BUNDLE"};  // rclone refuses to start with it set
  return run(o, std::chrono::seconds(120));
}

proto::job last_job_line(const run_result& r) {
  auto line = r.out.substr(0, r.out.find('\n'));
  auto j = proto::parse_job(line);
  if (!j) throw std::runtime_error("ferryctl --json printed no job: " + r.out + r.err);
  return *j;
}

class CopyE2E : public ::testing::TestWithParam<bool> {
 protected:
  CopyE2E() : src_(s3rver_options{.tls = GetParam()}), dst_(s3rver_options{.tls = GetParam()}) {}
  s3rver src_, dst_;
};

INSTANTIATE_TEST_SUITE_P(Transport, CopyE2E, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "tls" : "http"; });

TEST_P(CopyE2E, CopyWaitCopiesEveryObjectAndRcloneAgrees) {
  upload_samples(src_, "source", "photos");
  ASSERT_EQ(dst_.rclone({"mkdir", "s3rver:backup"}).exit_code, 0);
  ferryd d(remote_section("src", src_) + remote_section("dst", dst_));

  auto r = d.ctl({"--json", "copy", "src:source/photos", "dst:backup/2024", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << d.read_log();
  auto job = last_job_line(r);
  EXPECT_EQ(job.state, proto::job_state::succeeded);
  EXPECT_EQ(job.objects.total, sample_files().size());
  EXPECT_EQ(job.objects.done, sample_files().size());
  EXPECT_EQ(job.objects.failed, 0u);
  std::uint64_t bytes = 0;
  for (const auto& f : sample_files()) bytes += f.second;
  EXPECT_EQ(job.bytes.done, bytes);

  auto check = rclone_check(src_, "source/photos", dst_, "backup/2024");
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_NE(check.err.find(std::to_string(sample_files().size()) + " matching files"), std::string::npos) << check.err;
}

TEST_P(CopyE2E, JobsAndStatusShowTheFinishedJob) {
  upload_samples(src_, "source", "p");
  ASSERT_EQ(dst_.rclone({"mkdir", "s3rver:backup"}).exit_code, 0);
  ferryd d(remote_section("src", src_) + remote_section("dst", dst_));
  auto r = d.ctl({"copy", "src:source/p", "dst:backup", "--name", "nightly", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("succeeded"), std::string::npos) << r.out;

  auto jobs = d.ctl({"jobs"});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_NE(jobs.out.find("j-000001"), std::string::npos) << jobs.out;
  EXPECT_NE(jobs.out.find("nightly"), std::string::npos) << jobs.out;

  auto json = d.ctl({"--json", "jobs"});
  ASSERT_EQ(json.exit_code, 0);
  auto list = proto::parse_job_list_result(json.out.substr(0, json.out.find('\n')));
  ASSERT_TRUE(list) << json.out;
  ASSERT_EQ(list->jobs.size(), 1u);
  EXPECT_EQ(list->jobs[0].name, "nightly");
  EXPECT_EQ(list->jobs[0].objects.done, sample_files().size());

  auto status = d.ctl({"--json", "status"});
  ASSERT_EQ(status.exit_code, 0);
  auto st = proto::parse_daemon_status(status.out.substr(0, status.out.find('\n')));
  ASSERT_TRUE(st) << status.out;
  EXPECT_EQ(st->jobs.succeeded, 1u);
  EXPECT_EQ(st->remotes, (std::vector<std::string>{"dst", "src"}));
}

TEST(CopyE2ETls, WithoutTheCaTheJobFailsWithACertificateError) {
  s3rver src(s3rver_options{.tls = true});
  s3rver dst(s3rver_options{.tls = true});
  ferryd d(remote_section("src", src, /*with_ca=*/false) + remote_section("dst", dst));
  auto r = d.ctl({"copy", "src:source", "dst:backup", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("certificate verify failed"), std::string::npos) << r.err;
}

TEST(CopyE2EErrors, AMissingSourceBucketFailsTheJobWithTheServersReason) {
  s3rver src, dst;
  ferryd d(remote_section("src", src) + remote_section("dst", dst));
  auto r = d.ctl({"copy", "src:no-such-bucket", "dst:backup", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("NoSuchBucket"), std::string::npos) << r.err;
}

TEST(CopyE2EErrors, BadLocationsAreRefusedBeforeAJobExists) {
  s3rver src;
  ferryd d(remote_section("src", src));
  auto unknown = d.ctl({"copy", "src:bucket", "nowhere:bucket"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.out << unknown.err;
  EXPECT_NE(unknown.err.find("no remote named 'nowhere'"), std::string::npos) << unknown.err;
  auto malformed = d.ctl({"copy", "src:Bad_Bucket", "src:bucket"});
  EXPECT_EQ(malformed.exit_code, 1);
  EXPECT_NE(malformed.err.find("bucket name"), std::string::npos) << malformed.err;
  auto jobs = d.ctl({"--json", "jobs"});
  auto list = proto::parse_job_list_result(jobs.out.substr(0, jobs.out.find('\n')));
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->jobs.empty());
}

TEST(CopyE2EErrors, FerryctlWithoutADaemonExitsThreeAndSaysWhatToDo) {
  temp_dir dir;
  auto r = run(process_options{.argv = {ferryctl_path(), "--socket", (dir.path() / "none.sock").string(), "jobs"}},
               std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("is ferryd running"), std::string::npos) << r.err;
}

// No secret is ever logged, at any level: the most verbose run, with a secret that appears nowhere
// else, must not print it in ferryd's log or in any ferryctl output.
TEST(CopyE2ESecrets, TraceLevelLogsNeverContainTheSecret) {
  const std::string key_id = "AKIAFERRYTESTKEY0001", secret = "ferry-Secret-9f8e7d6c5b4a";
  s3rver src(s3rver_options{.extra_keys = {{key_id, secret}}});
  s3rver dst(s3rver_options{.extra_keys = {{key_id, secret}}});
  upload_samples(src, "source", "s");
  ASSERT_EQ(dst.rclone({"mkdir", "s3rver:backup"}).exit_code, 0);
  ferryd d(remote_section("src", src, true, key_id, secret) + remote_section("dst", dst, true, key_id, secret) +
               "[remotes.broken]\nendpoint = \"http://127.0.0.1:1\"\naccess_key_id = \"" + key_id +
               "\"\nsecret_access_key = \"" + secret + "\"\n",
           "trace");
  auto ok = d.ctl({"--json", "copy", "src:source/s", "dst:backup", "--wait"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err << d.read_log();
  auto failed = d.ctl({"copy", "broken:bucket", "dst:backup", "--wait"});
  EXPECT_EQ(failed.exit_code, 1);
  auto status = d.ctl({"--json", "status", "j-000002"});
  const std::string log = d.read_log();
  EXPECT_GT(log.size(), 1000u);  // trace level really logged
  for (const std::string* text : std::initializer_list<const std::string*>{&log, &ok.out, &ok.err, &failed.out,
                                                                           &failed.err, &status.out, &status.err})
    EXPECT_EQ(text->find(secret), std::string::npos) << *text;
}

TEST(FerrydCheckConfig, ValidatesAndNamesTheLineOfAMistake) {
  temp_dir dir;
  auto good = dir.path() / "good.toml";
  std::ofstream(good) << "socket = \"/tmp/x.sock\"\n";
  auto ok = run(process_options{.argv = {ferryd_path(), "--config", good.string(), "--check-config"}},
                std::chrono::seconds(30));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  auto bad = dir.path() / "bad.toml";
  std::ofstream(bad) << "socket = \"/tmp/x.sock\"\n\n[remotes.x]\nendpoint = \"https://h\"\nsecret = \"s\"\n";
  auto r = run(process_options{.argv = {ferryd_path(), "--config", bad.string(), "--check-config"}},
               std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.toml:5: unknown key 'secret' in [remotes.x]"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ferry::test
