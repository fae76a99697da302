// kill -9 in the middle of a multipart copy, then a restart: the job resumes by itself, sends only
// the parts the destination lacks (counted in the destination server's own request log, not from
// ferryd's numbers), and the object arrives byte for byte.
#include "proto/messages.hpp"
#include "support/ferryd.hpp"
#include "support/pattern.hpp"
#include "support/s3rver.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace ferry::test {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t object_size = 300ull << 20;
constexpr std::uint64_t part_size = 8ull << 20;
constexpr int part_concurrency = 4;
constexpr int parts = static_cast<int>((object_size + part_size - 1) / part_size);  // 38

std::string read_from(const std::filesystem::path& p, std::size_t offset = 0) {
  std::ifstream in(p, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// UploadPart requests in the strict s3rver's log ("request <-- PUT /b/k?partNumber=..." when a
// request arrives, "request --> PUT /b/k?partNumber=... 200" when it was answered).
struct part_counts {
  int started = 0, completed = 0;
};
part_counts count_part_puts(const std::string& log, const std::string& path) {
  part_counts c;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("PUT " + path + "?") == std::string::npos || line.find("partNumber=") == std::string::npos) continue;
    if (line.starts_with("request <-- ")) ++c.started;
    if (line.starts_with("request --> ") && line.ends_with(" 200")) ++c.completed;
  }
  return c;
}

std::string md5_of_file(const std::filesystem::path& p) {
  auto r = run(process_options{.argv = {"md5sum", p.string()}}, 60s);
  return r.out.substr(0, 32);
}

TEST(CrashResume, KillNineMidMultipartThenRestartSendsOnlyTheMissingParts) {
  s3rver src, dst;
  temp_dir local;
  const auto file = local.path() / "big.bin";
  {
    std::ofstream out(file, std::ios::binary);
    const std::string chunk = test::pattern(1 << 20, 7);
    for (std::uint64_t i = 0; i < object_size / chunk.size(); ++i) {
      std::string c = chunk;
      std::memcpy(c.data(), &i, sizeof i);  // every MiB different
      out << c;
    }
  }
  const std::string want = md5_of_file(file);
  ASSERT_EQ(src.rclone({"mkdir", "s3rver:data"}).exit_code, 0);
  auto up = src.rclone({"copy", local.path().string(), "s3rver:data"}, 300s);
  ASSERT_EQ(up.exit_code, 0) << up.err;
  ASSERT_EQ(dst.rclone({"mkdir", "s3rver:backup"}).exit_code, 0);

  ferryd d(remote_section("src", src) + remote_section("dst", dst), "info",
           "[transfer]\npart_size = \"8MiB\"\npart_concurrency = " + std::to_string(part_concurrency) + "\n");
  auto r = d.ctl({"--json", "copy", "src:data", "dst:backup"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << d.read_log();
  auto job = proto::parse_job(r.out.substr(0, r.out.find('\n')));
  ASSERT_TRUE(job) << r.out;

  // Half the parts at the destination, then a crash.
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  part_counts seen;
  while ((seen = count_part_puts(read_from(dst.log_file()), "/backup/big.bin")).completed < parts / 2) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the copy did not get half way in 180 s\n" << d.read_log();
    std::this_thread::sleep_for(20ms);
  }
  d.kill9();
  std::this_thread::sleep_for(1s);  // requests cut by the kill end at the server
  const std::string before = read_from(dst.log_file());
  const auto at_kill = count_part_puts(before, "/backup/big.bin");
  ASSERT_LT(at_kill.completed, parts) << "the copy finished before the kill";

  d.restart();
  proto::job last;
  for (const auto until = std::chrono::steady_clock::now() + 240s;;) {
    auto s = d.ctl({"--json", "status", job->id});
    ASSERT_EQ(s.exit_code, 0) << s.out << s.err;
    last = *proto::parse_job(s.out.substr(0, s.out.find('\n')));
    if (proto::is_terminal(last.state)) break;
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "the resumed job did not finish\n" << d.read_log();
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(last.state, proto::job_state::succeeded) << d.read_log();
  EXPECT_NE(d.read_log().find("resuming"), std::string::npos) << d.read_log();

  const auto after = count_part_puts(read_from(dst.log_file(), before.size()), "/backup/big.bin");
  const int missing = parts - at_kill.completed;
  std::printf("parts: %d in all; answered before the kill: %d (started %d); sent after the restart: %d (started %d)\n",
              parts, at_kill.completed, at_kill.started, after.completed, after.started);
  // Parts the server had answered can still be resent if ferryd had not recorded them yet: at most
  // the ones in flight when it died.
  EXPECT_GE(after.completed, missing);
  EXPECT_LE(after.completed, missing + part_concurrency)
      << "completed before the kill: " << at_kill.completed << ", sent after the restart: " << after.completed;
  EXPECT_LE(after.started, missing + part_concurrency);

  // Byte for byte, read back by rclone.
  auto sum = dst.rclone({"md5sum", "--download", "s3rver:backup/big.bin"}, 300s);
  ASSERT_EQ(sum.exit_code, 0) << sum.err;
  EXPECT_EQ(sum.out.substr(0, 32), want);
  // Nothing left behind: the upload was completed, not abandoned.
  auto report = d.ctl({"--json", "report", job->id});
  EXPECT_NE(report.out.find("\"result\":\"verified\""), std::string::npos) << report.out;
}

}  // namespace
}  // namespace ferry::test
