// sync and mirror jobs end to end: ferryctl drives a real ferryd against a real s3rver; what the
// destination holds is read back with rclone, independently of ferry.
#include "proto/messages.hpp"
#include "support/e2e_fixture.hpp"
#include "support/ferryd.hpp"
#include "support/pattern.hpp"
#include "support/s3rver.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace ferry::test {
namespace {

using namespace std::chrono_literals;

class SyncE2E : public s3_e2e {};

TEST_F(SyncE2E, SyncKeepsExtraneousObjectsUnlessAskedToDelete) {
  put("src", {{"a", "alpha"}, {"b", "bravo"}, {"dir/c", "charlie"}});
  put("dst", {{"a", "alpha"}, {"x", "extra"}});
  ferryd d(remote_section("s3", s3_));

  auto first = d.ctl({"--json", "sync", "s3:src", "s3:dst", "--wait"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err << d.read_log();
  auto j = job_of(first);
  EXPECT_EQ(j.kind, "sync");
  EXPECT_EQ(j.plan.to_copy.objects, 2u);
  EXPECT_EQ(j.plan.unchanged.objects, 1u);
  EXPECT_EQ(j.deleted, 0u);
  EXPECT_EQ(contents("dst"),
            (std::map<std::string, std::string>{
                {"a", md5_of("alpha")}, {"b", md5_of("bravo")}, {"dir/c", md5_of("charlie")}, {"x", md5_of("extra")}}));

  auto second = d.ctl({"--json", "sync", "s3:src", "s3:dst", "--delete", "--wait"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err << d.read_log();
  j = job_of(second);
  EXPECT_EQ(j.plan.to_copy.objects, 0u);
  EXPECT_EQ(j.plan.unchanged.objects, 3u);
  EXPECT_EQ(j.plan.to_delete.objects, 1u);
  EXPECT_EQ(j.deleted, 1u);
  EXPECT_EQ(contents("dst"), contents("src"));
}

TEST_F(SyncE2E, MaxDeleteRefusesAndForceOverrides) {
  put("src", {{"keep", "k"}});
  put("dst", {{"keep", "k"}, {"old1", "1"}, {"old2", "2"}, {"old3", "3"}});
  ferryd d(remote_section("s3", s3_));

  auto refused = d.ctl({"--json", "sync", "s3:src", "s3:dst", "--delete", "--max-delete", "2", "--wait"});
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  auto j = job_of(refused);
  EXPECT_EQ(j.state, proto::job_state::failed);
  ASSERT_TRUE(j.delete_refused.has_value());
  EXPECT_NE(j.delete_refused->find("refusing to delete 3"), std::string::npos) << *j.delete_refused;
  EXPECT_EQ(j.deleted, 0u);
  EXPECT_EQ(contents("dst").size(), 4u);

  // The default cap is 10% of the destination: 3 of 4 is refused as well.
  auto by_default = d.ctl({"--json", "sync", "s3:src", "s3:dst", "--delete", "--wait"});
  EXPECT_EQ(by_default.exit_code, 1);
  EXPECT_EQ(contents("dst").size(), 4u);

  auto forced = d.ctl({"--json", "sync", "s3:src", "s3:dst", "--delete", "--max-delete", "2", "--force", "--wait"});
  ASSERT_EQ(forced.exit_code, 0) << forced.out << forced.err << d.read_log();
  EXPECT_EQ(job_of(forced).deleted, 3u);
  EXPECT_EQ(contents("dst"), contents("src"));
}

TEST_F(SyncE2E, FiltersChooseWhatIsCopied) {
  put("src", {{"a.jpg", "a"},
              {"b.txt", "b"},
              {"dir/c.jpg", "c"},
              {"dir/big.jpg", test::pattern(200'000, 3)},
              {"tmp/d.jpg", "d"}});
  ferryd d(remote_section("s3", s3_));
  auto r = d.ctl({"--json", "copy", "s3:src", "s3:dst", "--include", "*.jpg", "--exclude", "tmp/**", "--max-size",
                  "100K", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << d.read_log();
  auto got = contents("dst");
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"a.jpg", md5_of("a")}, {"dir/c.jpg", md5_of("c")}}));
  EXPECT_EQ(job_of(r).objects.total, 2u);
}

TEST_F(SyncE2E, DryRunPrintsThePlanAndChangesNothing) {
  put("src", {{"new", "n"}, {"same", "s"}, {"changed", "version 2"}});
  put("dst", {{"same", "s"}, {"changed", "version 1"}, {"gone", "g"}});
  const auto before = contents("dst");
  ferryd d(remote_section("s3", s3_));

  auto human = d.ctl({"sync", "s3:src", "s3:dst", "--delete", "--force", "--dry-run"});
  ASSERT_EQ(human.exit_code, 0) << human.out << human.err << d.read_log();
  EXPECT_NE(human.out.find("dry run"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("copy"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("delete"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("unchanged"), std::string::npos) << human.out;

  auto json = d.ctl({"--json", "sync", "s3:src", "s3:dst", "--delete", "--force", "--dry-run"});
  ASSERT_EQ(json.exit_code, 0) << json.out << json.err;
  auto j = job_of(json);
  EXPECT_EQ(j.plan.to_copy.objects, 2u);  // new, changed
  EXPECT_EQ(j.plan.to_copy.bytes, 1u + 9u);
  EXPECT_EQ(j.plan.unchanged.objects, 1u);
  EXPECT_EQ(j.plan.to_delete.objects, 1u);
  EXPECT_EQ(j.deleted, 0u);
  EXPECT_EQ(contents("dst"), before);
}

TEST_F(SyncE2E, MirrorPicksUpNewChangedAndDeletedObjectsWithinOneInterval) {
  put("src", {{"a", "one"}, {"b", "two"}, {"c", "three"}});
  ferryd d(remote_section("s3", s3_));
  auto r = d.ctl({"--json", "mirror", "s3:src", "s3:dst", "--delete", "--interval", "2s", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << d.read_log();
  const auto id = job_of(r).id;
  EXPECT_EQ(contents("dst"), contents("src"));

  put("src", {{"new", "fresh"}, {"b", "two, changed"}});
  remove("src", "c");
  const auto changed_at = status(d, id).passes;
  // The pass that starts after the change (at most one interval later) must carry all three.
  auto j = wait_until(
      d, id, [&](const proto::job& j) { return j.passes >= changed_at + 2; }, 30s);
  ASSERT_GE(j.passes, changed_at + 2) << d.read_log();
  EXPECT_EQ(contents("dst"), (std::map<std::string, std::string>{
                                 {"a", md5_of("one")}, {"b", md5_of("two, changed")}, {"new", md5_of("fresh")}}));
  EXPECT_EQ(j.state, proto::job_state::running);
  EXPECT_GE(j.deleted, 1u);

  auto cancelled = d.ctl({"--json", "cancel", id});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.out << cancelled.err;
  auto end = wait_until(
      d, id, [](const proto::job& j) { return j.state == proto::job_state::cancelled; }, 20s);
  EXPECT_EQ(end.state, proto::job_state::cancelled);
}

TEST_F(SyncE2E, LocalDirectoryMirrorReactsToANewFileWithinFiveSeconds) {
  temp_dir src;
  std::ofstream(src.path() / "first.txt") << "first";
  ferryd d(remote_section("s3", s3_));
  auto r = d.ctl({"--json", "mirror", src.path().string(), "s3:dst", "--interval", "1h", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << d.read_log();
  ASSERT_EQ(contents("dst").count("first.txt"), 1u);

  std::filesystem::create_directories(src.path() / "sub");
  std::ofstream(src.path() / "sub" / "second.txt") << "second";
  const auto written = std::chrono::steady_clock::now();
  bool arrived = false;
  while (!arrived && std::chrono::steady_clock::now() - written < 5s) {
    auto ls = s3_.rclone({"lsf", "-R", "s3rver:dst"});
    arrived = ls.out.find("sub/second.txt") != std::string::npos;
    if (!arrived) std::this_thread::sleep_for(200ms);
  }
  EXPECT_TRUE(arrived) << "sub/second.txt did not reach the bucket within 5 s\n" << d.read_log();
  EXPECT_EQ(contents("dst")["sub/second.txt"], md5_of("second"));
}

TEST_F(SyncE2E, ReportPrintsEveryIntegrityRecord) {
  put("src", {{"a", "alpha"}, {"b", test::pattern(70'000, 1)}});
  ferryd d(remote_section("s3", s3_));
  auto r = d.ctl({"--json", "copy", "s3:src", "s3:dst", "--copy-mode", "stream", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << d.read_log();
  const auto id = job_of(r).id;

  auto human = d.ctl({"report", id});
  ASSERT_EQ(human.exit_code, 0) << human.out << human.err;
  EXPECT_NE(human.out.find(md5_of("alpha")), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("2 verified"), std::string::npos) << human.out;

  auto json = d.ctl({"--json", "report", id});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_NE(json.out.find("\"key\":\"a\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"key\":\"b\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"result\":\"verified\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"md5\":\"" + md5_of("alpha") + "\""), std::string::npos) << json.out;
}

TEST_F(SyncE2E, PauseSurvivesARestartResumeGoesOnAndRmForgetsTheJob) {
  put("src", {{"a", "one"}});
  ferryd d(remote_section("s3", s3_));
  auto r = d.ctl({"--json", "mirror", "s3:src", "s3:dst", "--interval", "1h", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << d.read_log();
  const auto id = job_of(r).id;

  auto busy = d.ctl({"rm", id});
  EXPECT_NE(busy.exit_code, 0);
  EXPECT_NE((busy.out + busy.err).find("cancel or pause it first"), std::string::npos) << busy.out << busy.err;

  auto paused = d.ctl({"pause", id});
  ASSERT_EQ(paused.exit_code, 0) << paused.out << paused.err;
  auto j = wait_until(
      d, id, [](const proto::job& j) { return j.state == proto::job_state::paused; }, 20s);
  ASSERT_EQ(j.state, proto::job_state::paused) << d.read_log();

  // Paused stays paused across a restart: nothing runs until resumed.
  d.restart();
  put("src", {{"b", "two"}});
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(status(d, id).state, proto::job_state::paused);
  EXPECT_EQ(contents("dst").count("b"), 0u);

  auto resumed = d.ctl({"--json", "resume", id});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  j = wait_until(
      d, id, [](const proto::job& j) { return j.state == proto::job_state::running && j.passes >= 2; }, 20s);
  EXPECT_EQ(j.state, proto::job_state::running) << d.read_log();
  EXPECT_EQ(contents("dst"), contents("src"));

  ASSERT_EQ(d.ctl({"cancel", id}).exit_code, 0);
  wait_until(
      d, id, [](const proto::job& j) { return j.state == proto::job_state::cancelled; }, 20s);
  auto rm = d.ctl({"rm", id});
  ASSERT_EQ(rm.exit_code, 0) << rm.out << rm.err;
  auto gone = d.ctl({"status", id});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_EQ(d.ctl({"jobs"}).out.find(id), std::string::npos);
  // Forgotten for good: a restart does not bring it back.
  d.restart();
  EXPECT_NE(d.ctl({"status", id}).exit_code, 0);
}

TEST_F(SyncE2E, RemotesAreListedWithoutSecretsAndTestedForReachAndCredentials) {
  const std::string unreachable =
      "[remotes.nowhere]\nendpoint = \"http://127.0.0.1:1\"\nregion = \"us-east-1\"\npath_style = true\n"
      "access_key_id = \"AKIDNOWHERE\"\nsecret_access_key = \"never-printed-secret\"\n";
  ferryd d(remote_section("s3", s3_) + remote_section("badkey", s3_, true, "S3RVER", "wrong-secret-value") +
           unreachable);

  auto list = d.ctl({"--json", "remotes"});
  ASSERT_EQ(list.exit_code, 0) << list.out << list.err;
  auto l = proto::parse_remote_list_result(list.out.substr(0, list.out.find('\n')));
  ASSERT_TRUE(l) << list.out;
  ASSERT_EQ(l->remotes.size(), 3u);
  EXPECT_EQ(l->remotes[1].name, "nowhere");
  EXPECT_EQ(l->remotes[1].endpoint, "http://127.0.0.1:1");
  EXPECT_EQ(l->remotes[1].credentials, "static");
  auto human = d.ctl({"remotes"});
  for (const auto* secret : {"never-printed-secret", "wrong-secret-value"}) {
    EXPECT_EQ(list.out.find(secret), std::string::npos);
    EXPECT_EQ(human.out.find(secret), std::string::npos);
    EXPECT_EQ(d.read_log().find(secret), std::string::npos);
  }

  auto good = d.ctl({"--json", "remote", "test", "s3"});
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  auto g = proto::parse_remote_test_result(good.out.substr(0, good.out.find('\n')));
  ASSERT_TRUE(g) << good.out;
  EXPECT_TRUE(g->reachable);
  EXPECT_TRUE(g->credentials_ok) << g->detail;

  auto bad = d.ctl({"--json", "remote", "test", "badkey"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  auto b = proto::parse_remote_test_result(bad.out.substr(0, bad.out.find('\n')));
  ASSERT_TRUE(b) << bad.out;
  EXPECT_TRUE(b->reachable);
  EXPECT_FALSE(b->credentials_ok) << b->detail;

  auto none = d.ctl({"remote", "test", "nowhere"});
  EXPECT_EQ(none.exit_code, 1) << none.out << none.err;
  EXPECT_NE(none.out.find("NOT reachable"), std::string::npos) << none.out;

  auto unknown = d.ctl({"remote", "test", "missing"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE((unknown.out + unknown.err).find("no remote named 'missing'"), std::string::npos) << unknown.err;
}

TEST_F(SyncE2E, SighupReloadsRemotesAndLogLevelWithoutStoppingJobsAndABadFileChangesNothing) {
  put("src", {{"a", "one"}});
  ferryd d(remote_section("s3", s3_), "info");
  auto r = d.ctl({"--json", "mirror", "s3:src", "s3:dst", "--interval", "1h", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << d.read_log();
  const auto id = job_of(r).id;
  auto remote_names = [&] {
    auto l = proto::parse_remote_list_result(d.ctl({"--json", "remotes"}).out);
    std::vector<std::string> names;
    if (l)
      for (const auto& x : l->remotes) names.push_back(x.name);
    return names;
  };

  std::string text;
  {
    std::ifstream in(d.config_file());
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  const auto at = text.find("log_level = \"info\"");
  ASSERT_NE(at, std::string::npos) << text;
  std::string next = text;
  next.replace(at, std::string("log_level = \"info\"").size(), "log_level = \"debug\"");
  std::ofstream(d.config_file()) << next << "\n" << remote_section("second", s3_);
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  std::vector<std::string> names;
  for (int i = 0; i < 100 && (names = remote_names()).size() < 2; ++i) std::this_thread::sleep_for(100ms);
  EXPECT_EQ(names, (std::vector<std::string>{"s3", "second"})) << d.read_log();
  EXPECT_NE(d.read_log().find("config reloaded"), std::string::npos);
  EXPECT_NE(d.read_log().find("remotes added: second"), std::string::npos) << d.read_log();
  auto j = status(d, id);
  EXPECT_EQ(j.state, proto::job_state::running);  // the mirror did not notice

  // A broken file: the reload is refused with file:line, and nothing changes.
  std::ofstream(d.config_file()) << next << "\nno_such_key = 1\n";
  auto bad = d.ctl({"reload"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE((bad.out + bad.err).find("no_such_key"), std::string::npos) << bad.out << bad.err;
  EXPECT_EQ(remote_names(), (std::vector<std::string>{"s3", "second"}));
  // The new remote works.
  put("src", {{"b", "two"}});
  auto copy = d.ctl({"copy", "second:src", "second:dst/copy", "--wait"});
  EXPECT_EQ(copy.exit_code, 0) << copy.out << copy.err << d.read_log();
}

}  // namespace
}  // namespace ferry::test
