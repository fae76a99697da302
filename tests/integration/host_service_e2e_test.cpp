// ferryd as a host service, end to end: every ferryctl command with --json parsed by the
// protocol's own parsers, job.events (watch, --wait), metrics over the socket and over HTTP,
// SIGTERM with work in flight, and bash completion. A real ferryd, a real s3rver; contents are
// read back with rclone.
#include "control/client.hpp"
#include "proto/messages.hpp"
#include "proto/rpc.hpp"
#include "support/e2e_fixture.hpp"
#include "support/pattern.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>

namespace ferry::test {
namespace {

using namespace std::chrono_literals;

class HostServiceE2E : public s3_e2e {
 protected:
  // Objects big enough that a copy through s3rver takes a few seconds: work is in flight when we act.
  void put_big(int count, std::size_t size) {
    std::map<std::string, std::string> files;
    for (int i = 0; i < count; ++i) files["big/" + std::to_string(i)] = pattern(size, static_cast<std::uint32_t>(i));
    put("src", files);
  }

  // One line per non-empty line of `text`.
  static std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) out.push_back(l);
    return out;
  }

  // A metric's value from Prometheus text: the first sample whose name and labels are `series`.
  static std::optional<double> sample(const std::string& text, const std::string& series) {
    for (const auto& l : lines(text))
      if (l.rfind(series + " ", 0) == 0) return std::stod(l.substr(series.size() + 1));
    return std::nullopt;
  }

  // GET path from 127.0.0.1:port with a raw socket; the whole answer (head and body).
  static std::string http_get(unsigned short port, const std::string& path) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return {};
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
      if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
        char buf[65536];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
      }
    }
    ::close(fd);
    return out;
  }
};

TEST_F(HostServiceE2E, WatchFollowsAJobToItsEndWithJsonEvents) {
  put_big(12, 4 << 20);
  ferryd d(remote_section("s3", s3_));
  auto created = d.ctl({"--json", "copy", "s3:src", "s3:dst"});
  ASSERT_EQ(created.exit_code, 0) << created.out << created.err;
  const auto id = job_of(created).id;

  auto w = d.ctl({"--json", "watch", id});
  ASSERT_EQ(w.exit_code, 0) << w.out << w.err << d.read_log();
  auto events = lines(w.out);
  ASSERT_FALSE(events.empty()) << w.err;
  std::uint64_t last_done = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    auto e = proto::parse_job_event(events[i]);
    ASSERT_TRUE(e) << events[i];
    EXPECT_EQ(e->job.id, id);
    EXPECT_GE(e->job.bytes.done, last_done) << "progress went backwards at event " << i;
    last_done = e->job.bytes.done;
    EXPECT_EQ(e->final, i + 1 == events.size()) << "only the last event is final";
  }
  auto last = proto::parse_job_event(events.back());
  EXPECT_EQ(last->job.state, proto::job_state::succeeded);
  EXPECT_EQ(last->job.objects.done, 12u);
  EXPECT_EQ(contents("dst"), contents("src"));

  // Watching an ended job answers at once with the job.
  auto again = d.ctl({"--json", "watch", id});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(job_of(again).state, proto::job_state::succeeded);
  // Without --json, and not on a terminal: the summary line.
  auto human = d.ctl({"watch", id});
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_NE(human.out.find(id + " succeeded: 12 objects"), std::string::npos) << human.out;
  // An unknown job: exit 1 and what to do.
  auto unknown = d.ctl({"watch", "j-999999"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("ferryctl jobs"), std::string::npos) << unknown.err;
}

TEST_F(HostServiceE2E, JobEventsSubscriptionEndsWhenTheClientSendsAnotherRequest) {
  put_big(8, 4 << 20);
  ferryd d(remote_section("s3", s3_));
  auto created = d.ctl({"--json", "mirror", "s3:src", "s3:dst", "--interval", "1h"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto id = job_of(created).id;

  // Speak the protocol directly: subscribe, take two events, then ask something else on the
  // same connection and get its answer (the subscription is over).
  auto c = control::client::connect(d.socket().string());
  ASSERT_TRUE(c) << c.error().message;
  auto sub = c->call(proto::method::job_events, "{\"id\":\"" + id + "\",\"interval_ms\":100}");
  ASSERT_TRUE(sub) << sub.error().message;
  EXPECT_EQ(proto::parse_job(*sub)->id, id);
  for (int i = 0; i < 2; ++i) {
    auto n = c->next_notification(proto::notification::job_event, 10s);
    ASSERT_TRUE(n) << n.error().message;
    ASSERT_TRUE(proto::parse_job_event(*n)) << *n;
  }
  auto status = c->call(proto::method::daemon_status, "{}");
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_TRUE(proto::parse_daemon_status(*status)) << *status;

  // Bad params get invalid_params; an unknown job, job_not_found.
  auto bad = c->call(proto::method::job_events, "{\"id\":\"" + id + "\",\"interval_ms\":5}");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, proto::code::invalid_params) << bad.error().message;
  auto missing = c->call(proto::method::job_events, "{\"id\":\"j-999999\"}");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, proto::code::job_not_found);
  EXPECT_EQ(d.ctl({"cancel", id}).exit_code, 0);
}

TEST_F(HostServiceE2E, MetricsOverTheSocketAndOverHttpCountWhatWasCopied) {
  put("src", {{"a", "alpha"}, {"b", "bravo"}, {"c/d", "delta"}});
  ferryd d(remote_section("s3", s3_), "debug", "[metrics]\nlisten = \"127.0.0.1:0\"\n");
  auto r = d.ctl({"--json", "copy", "s3:src", "s3:dst", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << d.read_log();
  const auto id = job_of(r).id;

  auto m = d.ctl({"metrics"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_EQ(sample(m.out, "ferry_job_objects_total{job=\"" + id + "\",result=\"verified\"}"), 3.0) << m.out;
  EXPECT_EQ(sample(m.out, "ferry_objects_total{result=\"failed\"}"), 0.0);
  EXPECT_EQ(sample(m.out, "ferry_jobs{state=\"succeeded\"}"), 1.0);
  EXPECT_GE(sample(m.out, "ferry_s3_requests_total{remote=\"s3\"}").value_or(0), 4.0);
  // Each S3 operation ferry used has a latency histogram whose +Inf bucket equals its count (within one
  // endpoint the copies are server-side: CopyObject).
  const auto copies = sample(m.out, "ferry_s3_request_duration_seconds_count{remote=\"s3\",op=\"CopyObject\"}");
  ASSERT_TRUE(copies) << m.out;
  EXPECT_GE(*copies, 3.0);
  EXPECT_EQ(sample(m.out, "ferry_s3_request_duration_seconds_bucket{remote=\"s3\",op=\"CopyObject\",le=\"+Inf\"}"),
            copies);
  EXPECT_TRUE(sample(m.out, "ferry_s3_request_duration_seconds_count{remote=\"s3\",op=\"ListObjectsV2\"}"));
  EXPECT_NE(m.out.find("# TYPE ferry_s3_request_duration_seconds histogram"), std::string::npos);

  auto js = d.ctl({"--json", "metrics"});
  ASSERT_EQ(js.exit_code, 0);
  auto parsed = proto::parse_daemon_metrics_result(js.out.substr(0, js.out.find('\n')));
  ASSERT_TRUE(parsed) << js.out;
  EXPECT_NE(parsed->text.find("ferry_job_objects_total{job=\"" + id + "\""), std::string::npos);

  // The HTTP listener: its port is in the log.
  std::smatch port;
  const auto log = d.read_log();
  ASSERT_TRUE(std::regex_search(log, port, std::regex(R"(serving http://127\.0\.0\.1:(\d+)/metrics)"))) << log;
  const auto p = static_cast<unsigned short>(std::stoi(port[1]));
  const auto page = http_get(p, "/metrics");
  EXPECT_EQ(page.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << page.substr(0, 200);
  EXPECT_NE(page.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_EQ(sample(page.substr(page.find("\r\n\r\n") + 4), "ferry_objects_total{result=\"verified\"}"), 3.0);
  EXPECT_EQ(http_get(p, "/other").rfind("HTTP/1.1 404", 0), 0u);
}

TEST_F(HostServiceE2E, AMetricsListenerOffLoopbackNeedsAllowRemote) {
  ferryd ok(remote_section("s3", s3_));  // for the binary's path
  temp_dir t;
  const auto cfg = t.path() / "ferryd.toml";
  std::ofstream(cfg) << "socket = \"" << (t.path() / "s").string() << "\"\nstate_dir = \"" << (t.path() / "st").string()
                     << "\"\n[metrics]\nlisten = \"0.0.0.0:0\"\n";
  auto r = run(process_options{.argv = {ferryd_path(), "--config", cfg.string(), "--check-config"}}, 20s);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("allow_remote"), std::string::npos) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("ferryd.toml:4"), std::string::npos) << r.out << r.err;
}

TEST_F(HostServiceE2E, EveryCommandAnswersJsonThatTheProtocolParsersAccept) {
  put("src", {{"a", "alpha"}});
  ferryd d(remote_section("s3", s3_));
  auto first = [](const run_result& r) { return r.out.substr(0, r.out.find('\n')); };

  auto created = d.ctl({"--json", "sync", "s3:src", "s3:dst", "--wait"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto id = job_of(created).id;
  auto jobs = d.ctl({"--json", "jobs"});
  ASSERT_EQ(jobs.exit_code, 0);
  auto list = proto::parse_job_list_result(first(jobs));
  ASSERT_TRUE(list) << jobs.out;
  ASSERT_EQ(list->jobs.size(), 1u);
  EXPECT_EQ(list->jobs[0].id, id);

  auto st = d.ctl({"--json", "status"});
  ASSERT_EQ(st.exit_code, 0);
  auto ds = proto::parse_daemon_status(first(st));
  ASSERT_TRUE(ds) << st.out;
  EXPECT_EQ(ds->jobs.succeeded, 1u);
  EXPECT_EQ(ds->remotes, std::vector<std::string>{"s3"});

  EXPECT_EQ(job_of(d.ctl({"--json", "status", id})).objects.done, 1u);
  auto rep = d.ctl({"--json", "report", id});
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  // One JSON array of every record: read it with the page parser.
  auto page = proto::parse_job_report_result("{\"records\":" + first(rep) + ",\"next_after\":0,\"more\":false}");
  ASSERT_TRUE(page) << rep.out;
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].result, proto::integrity_result::verified);

  auto remotes = d.ctl({"--json", "remotes"});
  ASSERT_TRUE(proto::parse_remote_list_result(first(remotes))) << remotes.out;
  auto test = d.ctl({"--json", "remote", "test", "s3"});
  auto tr = proto::parse_remote_test_result(first(test));
  ASSERT_TRUE(tr) << test.out << test.err;
  EXPECT_TRUE(tr->credentials_ok);
  auto reload = d.ctl({"--json", "reload"});
  ASSERT_EQ(reload.exit_code, 0) << reload.err;
  EXPECT_TRUE(proto::parse_daemon_reload_result(first(reload)));

  auto mirror = d.ctl({"--json", "mirror", "s3:src", "s3:dst", "--interval", "1h", "--wait"});
  ASSERT_EQ(mirror.exit_code, 0) << mirror.err;
  const auto mid = job_of(mirror).id;
  for (const char* verb : {"pause", "resume", "cancel"}) {
    auto r = d.ctl({"--json", verb, mid});
    ASSERT_EQ(r.exit_code, 0) << verb << ": " << r.out << r.err;
    EXPECT_EQ(job_of(r).id, mid) << verb;
    if (std::string(verb) == "pause")
      wait_until(
          d, mid, [](const proto::job& j) { return j.state == proto::job_state::paused; }, 20s);
  }
  wait_until(
      d, mid, [](const proto::job& j) { return j.state == proto::job_state::cancelled; }, 20s);
  auto rm = d.ctl({"--json", "rm", mid});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(job_of(rm).id, mid);

  // Usage errors exit 2; an unreachable ferryd exits 3 and says what to check.
  EXPECT_EQ(d.ctl({"copy", "s3:src"}).exit_code, 2);
  EXPECT_EQ(d.ctl({"frobnicate"}).exit_code, 2);
  auto nobody = run(process_options{.argv = {ferryctl_path(), "--socket", "/nonexistent/ferryd.sock", "jobs"}}, 20s);
  EXPECT_EQ(nobody.exit_code, 3);
  EXPECT_NE(nobody.err.find("is ferryd running?"), std::string::npos) << nobody.err;
}

TEST_F(HostServiceE2E, SigtermWithWorkInFlightExitsZeroAndTheJobFinishesAfterARestart) {
  put_big(16, 6 << 20);
  ferryd d(remote_section("s3", s3_), "debug", "shutdown_grace = \"15s\"\n");
  auto created = d.ctl({"--json", "copy", "s3:src", "s3:dst"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto id = job_of(created).id;
  auto j = wait_until(
      d, id, [](const proto::job& j) { return j.objects.done >= 1; }, 60s);
  ASSERT_GE(j.objects.done, 1u);
  ASSERT_LT(j.objects.done, 16u) << "the copy ended before SIGTERM: make it bigger";

  const auto began = std::chrono::steady_clock::now();
  EXPECT_EQ(d.stop(), 0) << d.read_log();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 25s);
  const auto log = d.read_log();
  EXPECT_NE(log.find("stopping"), std::string::npos);
  EXPECT_NE(log.find("ferryd stopped"), std::string::npos) << log;

  d.restart();
  j = wait_until(
      d, id, [](const proto::job& j) { return proto::is_terminal(j.state); }, 120s);
  EXPECT_EQ(j.state, proto::job_state::succeeded) << d.read_log();
  EXPECT_EQ(j.objects.failed, 0u);
  EXPECT_EQ(contents("dst"), contents("src"));
}

TEST_F(HostServiceE2E, LimitsAreShownAndChangedAtRuntimeAndAJobCapHoldsItsUploads) {
  ferryd d(remote_section("s3", s3_), "debug", "[limits]\nbwlimit = \"off\"\n");
  auto parse = [](const run_result& r) {
    auto l = proto::parse_limits_result(r.out.substr(0, r.out.find('\n')));
    if (!l) throw std::runtime_error("limits --json: " + r.out + r.err);
    return *l;
  };
  auto l = parse(d.ctl({"--json", "limits"}));
  EXPECT_EQ(l.global.scope, "global");
  EXPECT_EQ(l.global.bwlimit, "off");
  EXPECT_EQ(l.global.up_bps, 0u);

  l = parse(d.ctl({"--json", "limits", "set", "--bwlimit", "2M:512K"}));
  EXPECT_EQ(l.global.up_bps, 2u << 20);
  EXPECT_EQ(l.global.down_bps, 512u << 10);
  auto bad = d.ctl({"limits", "set", "--bwlimit", "Mon-25:00,1M"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("25:00"), std::string::npos) << bad.err;
  EXPECT_EQ(d.ctl({"limits", "set"}).exit_code, 2);
  l = parse(d.ctl({"--json", "limits", "set", "--bwlimit", "off"}));
  EXPECT_EQ(l.global.up_bps, 0u);

  // A job capped at 1 MiB/s upload: 3 MiB from a local directory take about 3 s (the first 64 KiB
  // of burst aside), and the cap is listed while the job runs.
  temp_dir local;
  std::ofstream(local.path() / "f", std::ios::binary) << pattern(3 << 20, 7);
  const auto began = std::chrono::steady_clock::now();
  auto created = d.ctl({"--json", "copy", local.path().string(), "s3:dst", "--bwlimit", "1M"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto id = job_of(created).id;
  EXPECT_EQ(job_of(created).options.bwlimit, "1M");
  l = parse(d.ctl({"--json", "limits"}));
  ASSERT_EQ(l.jobs.size(), 1u);
  EXPECT_EQ(l.jobs[0].scope, id);
  EXPECT_EQ(l.jobs[0].up_bps, 1u << 20);
  auto j = wait_until(
      d, id, [](const proto::job& j) { return proto::is_terminal(j.state); }, 60s);
  const auto took = std::chrono::steady_clock::now() - began;
  EXPECT_EQ(j.state, proto::job_state::succeeded) << d.read_log();
  EXPECT_GE(took, 2s) << "3 MiB at 1 MiB/s went faster than the cap allows";
  EXPECT_EQ(contents("dst").at("f"), md5_of(pattern(3 << 20, 7)));

  // limits set --job on a running job changes its cap at once and is kept with the job.
  std::ofstream(local.path() / "g", std::ios::binary) << pattern(8 << 20, 8);
  auto slow = d.ctl({"--json", "copy", local.path().string(), "s3:dst", "--bwlimit", "256K"});
  ASSERT_EQ(slow.exit_code, 0) << slow.err;
  const auto sid = job_of(slow).id;
  auto changed = d.ctl({"--json", "limits", "set", "--job", sid, "--bwlimit", "off"});
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  j = wait_until(
      d, sid, [](const proto::job& j) { return proto::is_terminal(j.state); }, 20s);
  EXPECT_EQ(j.state, proto::job_state::succeeded) << "8 MiB at 256 KiB/s would take 32 s: the change did not apply";
  EXPECT_FALSE(j.options.bwlimit) << *j.options.bwlimit;
  auto unknown = d.ctl({"limits", "set", "--job", "j-999999", "--bwlimit", "1M"});
  EXPECT_EQ(unknown.exit_code, 1);
  auto both = d.ctl({"copy", local.path().string(), "s3:dst", "--bwlimit", "1M", "--schedule", "08:00,1M"});
  EXPECT_EQ(both.exit_code, 2);
}

TEST_F(HostServiceE2E, BashCompletionOffersCommandsJobIdsAndRemotes) {
  put("src", {{"a", "alpha"}});
  ferryd d(remote_section("s3", s3_));
  const auto id = job_of(d.ctl({"--json", "copy", "s3:src", "s3:dst", "--wait"})).id;
  const std::string script = std::string(FERRY_SOURCE_DIR) + "/daemon/ferryctl/ferryctl.bash";
  const std::string bindir = std::filesystem::path(ferryctl_path()).parent_path().string();
  auto complete = [&](const std::string& words, int cword) {
    const std::string cmd = "source '" + script + "'; COMP_WORDS=(" + words + "); COMP_CWORD=" + std::to_string(cword) +
                            "; _ferryctl; printf '%s\\n' \"${COMPREPLY[@]}\"";
    auto r =
        run(process_options{.argv = {"bash", "-c", cmd},
                            .env_set = {{"PATH", bindir + ":/usr/bin:/bin"}, {"FERRY_SOCKET", d.socket().string()}}},
            20s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return lines(r.out);
  };
  auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  auto cmds = complete("ferryctl pa", 1);
  EXPECT_TRUE(has(cmds, "pause"));
  EXPECT_FALSE(has(cmds, "copy"));
  EXPECT_TRUE(has(complete("ferryctl status ''", 2), id));
  EXPECT_TRUE(has(complete("ferryctl remote test ''", 3), "s3"));
  EXPECT_TRUE(has(complete("ferryctl copy ''", 2), "s3:"));
  EXPECT_TRUE(has(complete("ferryctl sync s3:src s3:dst --del", 4), "--delete"));
}

}  // namespace
}  // namespace ferry::test
