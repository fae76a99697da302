#pragma once
// The fixture of the end-to-end tests: a real s3rver with buckets "src" and "dst", objects written
// and read back with rclone (independently of ferry), and ferryctl's --json output parsed.
#include "proto/messages.hpp"
#include "support/ferryd.hpp"
#include "support/s3rver.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace ferry::test {

class s3_e2e : public ::testing::Test {
 protected:
  s3_e2e() {
    for (auto b : {"src", "dst"}) {
      auto r = s3_.rclone({"mkdir", std::string("s3rver:") + b});
      if (r.exit_code != 0) throw std::runtime_error("rclone mkdir: " + r.err);
    }
  }

  // Writes `files` (key -> content) into bucket with rclone.
  void put(const std::string& bucket, const std::map<std::string, std::string>& files) {
    temp_dir local;
    for (const auto& [k, v] : files) {
      auto p = local.path() / k;
      std::filesystem::create_directories(p.parent_path());
      std::ofstream(p, std::ios::binary) << v;
    }
    auto r = s3_.rclone({"copy", local.path().string(), "s3rver:" + bucket});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void remove(const std::string& bucket, const std::string& key) {
    auto r = s3_.rclone({"deletefile", "s3rver:" + bucket + "/" + key});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // key -> MD5 of what the bucket holds, as rclone computes it.
  std::map<std::string, std::string> contents(const std::string& bucket) {
    auto r = s3_.rclone({"md5sum", "--download", "s3rver:" + bucket});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, std::string> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      if (line.size() > 34) out[line.substr(34)] = line.substr(0, 32);
    }
    return out;
  }
  static std::string md5_of(const std::string& data);

  proto::job job_of(const run_result& r) {
    auto j = proto::parse_job(r.out.substr(0, r.out.find('\n')));
    if (!j) throw std::runtime_error("ferryctl --json printed no job: " + r.out + r.err);
    return *j;
  }
  proto::job status(const ferryd& d, const std::string& id) {
    auto r = d.ctl({"--json", "status", id});
    if (r.exit_code != 0) throw std::runtime_error("ferryctl status: " + r.out + r.err);
    return job_of(r);
  }
  // Polls (bounded) until pred(job) holds; returns the last job seen.
  template <class P>
  proto::job wait_until(const ferryd& d, const std::string& id, P pred, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto j = status(d, id);
      if (pred(j) || std::chrono::steady_clock::now() > deadline) return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  s3rver s3_;
};

inline std::string s3_e2e::md5_of(const std::string& data) {
  temp_dir t;
  auto p = t.path() / "f";
  std::ofstream(p, std::ios::binary) << data;
  auto r = run(process_options{.argv = {"md5sum", p.string()}}, std::chrono::seconds(10));
  return r.out.substr(0, 32);
}

}  // namespace ferry::test
