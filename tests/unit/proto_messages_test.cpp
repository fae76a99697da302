#include "proto/messages.hpp"
#include "proto/time.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

namespace proto = ferry::proto;
using namespace std::chrono;

const std::string tricky = "a \"quoted\" \\path\\ with\nnewline, tab\t, \x01, \xC3\xA9 and \xF0\x9F\x9A\xA2";

proto::job sample_job() {
  proto::job j;
  j.id = "j-000042";
  j.name = "nightly \xE2\x86\x92 backup";
  j.kind = "copy";
  j.source = "src:bucket/photos/";
  j.destination = "/srv/copy of photos";
  j.state = proto::job_state::failed;
  j.created_at = sys_days{2024y / 5 / 1} + 12h + 34min + 56s;
  j.started_at = j.created_at + 2s;
  j.finished_at = std::nullopt;
  j.objects = {1000, 990, 7, 3};
  j.bytes = {std::uint64_t{1} << 40, 123456789};
  j.copy_mode = "stream";
  j.copy = {3, 4, 1};
  j.error = tricky;
  j.failures = {{"photos/" + tricky, "NoSuchKey: gone"}, {"k2", "BadDigest"}};
  return j;
}

TEST(ProtoMessages, JobRoundTrips) {
  const auto j = sample_job();
  const std::string json = proto::to_json(j);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  auto back = proto::parse_job(json);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, j);
}

TEST(ProtoMessages, JobWireFormatIsAsDocumented) {
  proto::job j;
  j.id = "j-000001";
  j.kind = "copy";
  j.source = "a:b";
  j.destination = "c:d/e";
  j.created_at = sys_days{2024y / 1 / 2} + 3h + 4min + 5s;
  EXPECT_EQ(proto::to_json(j),
            R"({"id":"j-000001","name":"","kind":"copy","source":"a:b","destination":"c:d/e","state":"queued",)"
            R"("created_at":"2024-01-02T03:04:05Z","started_at":null,"finished_at":null,)"
            R"("objects":{"total":0,"done":0,"failed":0,"skipped":0},"bytes":{"total":0,"done":0},)"
            R"("copy_mode":"auto","copy":{"server_side":0,"streamed":0,"fallbacks":0},)"
            R"("error":null,"failures":[]})");
}

TEST(ProtoMessages, JobListRoundTrips) {
  proto::job_list_result l;
  EXPECT_EQ(proto::to_json(l), R"({"jobs":[]})");
  l.jobs = {sample_job(), sample_job()};
  l.jobs[1].id = "j-000043";
  l.jobs[1].state = proto::job_state::running;
  l.jobs[1].error.reset();
  l.jobs[1].failures.clear();
  auto back = proto::parse_job_list_result(proto::to_json(l));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, l);
}

TEST(ProtoMessages, DaemonStatusRoundTrips) {
  proto::daemon_status s;
  s.version = "0.1.0";
  s.pid = 4242;
  s.uptime_seconds = 86400;
  s.jobs = {10, 1, 2, 3, 4, 0};
  s.remotes = {"aws", "minio", tricky};
  auto back = proto::parse_daemon_status(proto::to_json(s));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, s);
}

TEST(ProtoMessages, ParamsRoundTrip) {
  proto::job_create_params c{"copy", "src:b/p", "/dst", "my job", "stream"};
  auto c2 = proto::parse_job_create_params(proto::to_json(c));
  ASSERT_TRUE(c2) << c2.error().message;
  EXPECT_EQ(*c2, c);
  c.name.reset();
  c.copy_mode.reset();
  EXPECT_EQ(proto::to_json(c), R"({"kind":"copy","source":"src:b/p","destination":"/dst"})");
  EXPECT_EQ(*proto::parse_job_create_params(proto::to_json(c)), c);

  auto bad_mode =
      proto::parse_job_create_params(R"({"kind":"copy","source":"a:b","destination":"c:d","copy_mode":"fast"})");
  ASSERT_FALSE(bad_mode);
  EXPECT_EQ(bad_mode.error().code, proto::code::invalid_params);
  EXPECT_NE(bad_mode.error().message.find("unknown copy mode 'fast'"), std::string::npos) << bad_mode.error().message;

  proto::job_get_params g{"j-000001"};
  EXPECT_EQ(*proto::parse_job_get_params(proto::to_json(g)), g);
  EXPECT_TRUE(proto::parse_job_list_params(proto::to_json(proto::job_list_params{})));
  EXPECT_TRUE(proto::parse_daemon_status_params(proto::to_json(proto::daemon_status_params{})));
}

TEST(ProtoMessages, CreateParamsNameMayBeNull) {
  auto p = proto::parse_job_create_params(R"({"kind":"copy","source":"a:b","destination":"c:d","name":null})");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_FALSE(p->name);
}

// The error for `json` as job.create params.
proto::error create_error(std::string_view json) {
  auto p = proto::parse_job_create_params(json);
  EXPECT_FALSE(p) << json;
  return p ? proto::error{} : p.error();
}

TEST(ProtoMessages, CreateParamsErrorsNameTheFieldAndTheProblem) {
  auto e = create_error(R"({"kind":"copy","destination":"c:d"})");
  EXPECT_EQ(e.code, proto::code::invalid_params);
  EXPECT_EQ(e.message, "params.source: missing");

  EXPECT_EQ(create_error(R"({"kind":"copy","source":7,"destination":"c:d"})").message,
            "params.source: expected a string, got a number");
  EXPECT_EQ(create_error(R"({"kind":"copy","source":"a:b","destination":"c:d","name":[]})").message,
            "params.name: expected a string, got an array");
  EXPECT_EQ(create_error(R"({"kind":"copy","source":"a:b","destination":"c:d","nmae":"x"})").message,
            "params: unknown field 'nmae'");
  EXPECT_EQ(create_error(R"({"kind":"copy","source":"a:b","source":"x:y","destination":"c:d"})").message,
            "params: duplicate field 'source'");
  EXPECT_EQ(create_error(R"({"kind":"sync","source":"a:b","destination":"c:d"})").message,
            "params.kind: unknown job kind 'sync' (known: copy)");
  EXPECT_EQ(create_error(R"({"kind":"copy","source":"","destination":"c:d"})").message,
            "params.source: must not be empty");
  EXPECT_EQ(create_error(R"({"kind":"copy","source":"a:b","destination":"c:d","name":"a\u001bb"})").message,
            "params.name: must not contain control characters");
  EXPECT_EQ(create_error(R"(["copy","a:b","c:d"])").message, "params: expected an object, got an array");
  const std::string long_name(proto::max_name_bytes + 1, 'n');
  EXPECT_EQ(create_error(R"({"kind":"copy","source":"a:b","destination":"c:d","name":")" + long_name + "\"}").message,
            "params.name: too long (257 bytes, at most 256)");
}

TEST(ProtoMessages, GetAndListParamsAreStrict) {
  auto g = proto::parse_job_get_params("{}");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().message, "params.id: missing");
  auto l = proto::parse_job_list_params(R"({"all":true})");
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, proto::code::invalid_params);
  EXPECT_EQ(l.error().message, "params: unknown field 'all'");
  EXPECT_FALSE(proto::parse_daemon_status_params("[]"));
}

TEST(ProtoMessages, ResultParsersIgnoreUnknownFieldsButNameBadOnesWithTheirPath) {
  auto j = sample_job();
  std::string json = proto::to_json(j);
  json.insert(1, R"("added_in_v2":{"x":[1,2]},)");
  auto ok = proto::parse_job(json);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(*ok, j);

  auto bad = proto::parse_job_list_result(R"({"jobs":[)" + proto::to_json(j) + "," +
                                          std::string(R"({"id":"j-2","objects":{"total":"many"}})") + "]}");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, proto::code::internal_error);
  EXPECT_EQ(bad.error().message, "result.jobs[1].kind: missing");

  std::string wrong = proto::to_json(j);
  wrong.replace(wrong.find("\"done\":990"), 10, "\"done\":-1");
  EXPECT_EQ(proto::parse_job(wrong).error().message,
            "result.objects.done: expected a non-negative integer, got a number");

  std::string bad_state = proto::to_json(j);
  bad_state.replace(bad_state.find("\"failed\""), 8, "\"exploded\"");
  EXPECT_EQ(proto::parse_job(bad_state).error().message, "result.state: unknown job state 'exploded'");

  std::string bad_time = proto::to_json(j);
  bad_time.replace(bad_time.find("2024-05-01T12:34:56Z"), 20, "yesterday");
  EXPECT_EQ(proto::parse_job(bad_time).error().message, "result.created_at: expected an RFC 3339 timestamp");
}

TEST(ProtoMessages, MalformedJsonIsReported) {
  auto r = proto::parse_job("{\"id\":");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("result"), std::string::npos);
  auto deep = proto::parse_job_get_params(std::string(100, '[') + std::string(100, ']'));
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().code, proto::code::invalid_params);
  EXPECT_NE(deep.error().message.find("nested deeper"), std::string::npos);
}

TEST(ProtoMessages, JobStatesHaveStableNames) {
  EXPECT_EQ(proto::to_string(proto::job_state::cancelled), "cancelled");
  EXPECT_EQ(proto::parse_job_state("succeeded"), proto::job_state::succeeded);
  EXPECT_FALSE(proto::parse_job_state("Succeeded"));
  EXPECT_TRUE(proto::is_terminal(proto::job_state::failed));
  EXPECT_FALSE(proto::is_terminal(proto::job_state::running));
}

TEST(ProtoTime, FormatsAndParsesRfc3339) {
  const proto::timestamp t = sys_days{2024y / 2 / 29} + 23h + 59min + 58s;
  EXPECT_EQ(proto::format_rfc3339(t), "2024-02-29T23:59:58Z");
  EXPECT_EQ(proto::parse_rfc3339("2024-02-29T23:59:58Z"), t);
  EXPECT_EQ(proto::parse_rfc3339("2024-02-29t23:59:58.999z"), t);
  EXPECT_EQ(proto::parse_rfc3339("2024-03-01T01:29:58+01:30"), t);
  EXPECT_EQ(proto::parse_rfc3339("2024-02-29T20:59:58-03:00"), t);
  EXPECT_EQ(proto::format_rfc3339(proto::timestamp{}), "1970-01-01T00:00:00Z");
}

TEST(ProtoTime, RejectsMalformedTimestamps) {
  for (const char* s :
       {"", "2024-02-30T00:00:00Z", "2024-02-29T24:00:00Z", "2024-02-29T23:59:58", "2024-02-29T23:59:58Zjunk",
        "2024-02-29 23:59", "2024-02-29T23:59:58.Z", "2024-02-29T23:59:58+1:00", "24-02-29T23:59:58Z"})
    EXPECT_FALSE(proto::parse_rfc3339(s)) << s;
}

}  // namespace
