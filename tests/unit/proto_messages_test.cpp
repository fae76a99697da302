#include "proto/messages.hpp"
#include "proto/time.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

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
  j.priority = 55;
  j.options.delete_extraneous = true;
  j.options.max_delete = 0;
  j.options.force = true;
  j.options.include = {"*.jpg", tricky};
  j.options.exclude = {"**/.tmp/**"};
  j.options.min_size = 1;
  j.options.max_age = 86400;
  j.options.checksum = true;
  j.options.dry_run = true;
  j.options.interval = 600;
  j.plan = {{5, 50}, {std::uint64_t{1} << 62, 7}, {0, 0}};
  j.deleted = 12;
  j.delete_refused = "would delete 4210 objects, more than max_delete 100";
  j.passes = 3;
  j.last_pass_at = j.created_at + 60s;
  j.next_pass_at = j.created_at + 660s;
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
            R"("copy_mode":"auto","copy":{"server_side":0,"streamed":0,"fallbacks":0},"priority":10,)"
            R"("options":{"delete":false,"max_delete":null,"force":false,"include":[],"exclude":[],)"
            R"("min_size":null,"max_size":null,"min_age":null,"max_age":null,"checksum":false,"size_only":false,)"
            R"("dry_run":false,"interval":null,"bwlimit":null,"concurrency":null,"part_size":null},)"
            R"("plan":{"copy":{"objects":0,"bytes":0},"delete":{"objects":0,"bytes":0},)"
            R"("unchanged":{"objects":0,"bytes":0}},"deleted":0,"delete_refused":null,"passes":0,)"
            R"("last_pass_at":null,"next_pass_at":null,"error":null,"failures":[]})");
}

// A job object as a ferryd from before sync and mirror sent it.
constexpr std::string_view old_job_json =
    R"({"id":"j-000001","name":"","kind":"copy","source":"a:b","destination":"c:d/e","state":"succeeded",)"
    R"("created_at":"2024-01-02T03:04:05Z","started_at":null,"finished_at":"2024-01-02T03:05:00Z",)"
    R"("objects":{"total":3,"done":3,"failed":0,"skipped":1},"bytes":{"total":30,"done":30},)"
    R"("copy_mode":"auto","copy":{"server_side":0,"streamed":2,"fallbacks":0},)"
    R"("error":null,"failures":[]})";

TEST(ProtoMessages, OldJobWithoutTheSyncFieldsParsesWithDefaults) {
  auto j = proto::parse_job(old_job_json);
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(j->state, proto::job_state::succeeded);
  EXPECT_EQ(j->objects.done, 3u);
  EXPECT_EQ(j->priority, proto::default_priority);
  EXPECT_EQ(j->options, proto::job_options{});
  EXPECT_EQ(j->plan, proto::job_plan{});
  EXPECT_EQ(j->deleted, 0u);
  EXPECT_FALSE(j->delete_refused);
  EXPECT_EQ(j->passes, 0u);
  EXPECT_FALSE(j->last_pass_at);
  EXPECT_FALSE(j->next_pass_at);
}

TEST(ProtoMessages, JobSyncFieldsMayBePartialOrNull) {
  std::string json(old_job_json);
  json.insert(1, R"("priority":null,"options":{"delete":true,"include":["a"]},"plan":{"delete":{"objects":4}},)"
                 R"("passes":2,"next_pass_at":"2024-01-02T04:00:00Z","delete_refused":null,)");
  auto j = proto::parse_job(json);
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(j->priority, proto::default_priority);
  EXPECT_TRUE(j->options.delete_extraneous);
  EXPECT_EQ(j->options.include, std::vector<std::string>{"a"});
  EXPECT_FALSE(j->options.force);
  EXPECT_EQ(j->plan.to_delete.objects, 4u);
  EXPECT_EQ(j->plan.to_delete.bytes, 0u);
  EXPECT_EQ(j->plan.to_copy, proto::plan_counts{});
  EXPECT_EQ(j->passes, 2u);
  EXPECT_EQ(j->next_pass_at, sys_days{2024y / 1 / 2} + 4h);
}

TEST(ProtoMessages, JobSyncFieldsOfTheWrongTypeAreReported) {
  const auto bad = [](std::string_view member) {
    std::string json(old_job_json);
    json.insert(1, std::string(member) + ",");
    auto j = proto::parse_job(json);
    EXPECT_FALSE(j) << member;
    return j ? std::string() : j.error().message;
  };
  EXPECT_EQ(bad(R"("options":[])"), "result.options: expected an object, got an array");
  EXPECT_EQ(bad(R"("options":{"delete":"yes"})"), "result.options.delete: expected a boolean, got a string");
  EXPECT_EQ(bad(R"("plan":{"copy":{"objects":-1}})"),
            "result.plan.copy.objects: expected a non-negative integer, got a number");
  EXPECT_EQ(bad(R"("passes":"two")"), "result.passes: expected a non-negative integer, got a string");
  EXPECT_EQ(bad(R"("last_pass_at":"soon")"), "result.last_pass_at: expected an RFC 3339 timestamp");
  EXPECT_EQ(bad(R"("priority":1.5)"), "result.priority: expected an integer, got a number");
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
  proto::job_create_params c{"copy", "src:b/p", "/dst", "my job", "stream", std::nullopt, {}};
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
  EXPECT_EQ(create_error(R"({"kind":"backup","source":"a:b","destination":"c:d"})").message,
            "params.kind: unknown job kind 'backup' (known: copy, sync, mirror)");
  EXPECT_EQ(create_error(R"({"kind":"copy","source":"","destination":"c:d"})").message,
            "params.source: must not be empty");
  EXPECT_EQ(create_error(R"({"kind":"copy","source":"a:b","destination":"c:d","name":"a\u001bb"})").message,
            "params.name: must not contain control characters");
  EXPECT_EQ(create_error(R"(["copy","a:b","c:d"])").message, "params: expected an object, got an array");
  const std::string long_name(proto::max_name_bytes + 1, 'n');
  EXPECT_EQ(create_error(R"({"kind":"copy","source":"a:b","destination":"c:d","name":")" + long_name + "\"}").message,
            "params.name: too long (257 bytes, at most 256)");
}

proto::job_create_params full_create_params() {
  proto::job_create_params c{"mirror", "src:b/p", "/dst", "m", "auto", 100, {}};
  auto& o = c.options;
  o.delete_extraneous = true;
  o.max_delete = 250;
  o.force = true;
  o.include = {"*.jpg", "2024/**"};
  o.exclude = {std::string(proto::max_pattern_bytes, 'x')};
  o.min_size = 0;
  o.max_size = std::uint64_t{1} << 40;
  o.min_age = 90;
  o.max_age = std::numeric_limits<std::uint64_t>::max();
  o.checksum = true;
  o.size_only = true;  // a combination ferryd refuses; the parser does not
  o.dry_run = true;
  o.interval = proto::max_interval_seconds;
  return c;
}

TEST(ProtoMessages, CreateParamsWithEveryOptionRoundTrip) {
  const auto c = full_create_params();
  const std::string json = proto::to_json(c);
  for (const char* wire : {R"("priority":100)", R"("delete":true)", R"("max_delete":250)", R"("force":true)",
                           R"("include":["*.jpg","2024/**"])", R"("min_size":0)", R"("min_age":90)",
                           R"("checksum":true)", R"("size_only":true)", R"("dry_run":true)", R"("interval":604800)"})
    EXPECT_NE(json.find(wire), std::string::npos) << wire << " in " << json;
  auto back = proto::parse_job_create_params(json);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, c);
}

TEST(ProtoMessages, CreateParamsAcceptEveryKindAndLeaveCombinationsToFerryd) {
  for (auto kind : {proto::kind_copy, proto::kind_sync, proto::kind_mirror}) {
    const std::string json = R"({"kind":")" + std::string(kind) +
                             R"(","source":"a:b","destination":"c:d","delete":true,"interval":5,)"
                             R"("checksum":true,"size_only":true,"min_size":10,"max_size":1})";
    auto p = proto::parse_job_create_params(json);
    ASSERT_TRUE(p) << kind << ": " << p.error().message;
    EXPECT_EQ(p->kind, kind);
    EXPECT_TRUE(p->options.delete_extraneous);
    EXPECT_EQ(p->options.interval, 5u);
  }
}

TEST(ProtoMessages, CreateParamsOptionsMayBeNullOrFalseMeaningTheDefault) {
  auto p = proto::parse_job_create_params(
      R"({"kind":"sync","source":"a:b","destination":"c:d","priority":null,"delete":false,"max_delete":null,)"
      R"("include":null,"exclude":[],"interval":null,"dry_run":null})");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_FALSE(p->priority);
  EXPECT_EQ(p->options, proto::job_options{});
  // Defaults are not sent: an older ferryd still accepts the request.
  EXPECT_EQ(proto::to_json(*p), R"({"kind":"sync","source":"a:b","destination":"c:d"})");
}

TEST(ProtoMessages, CreateParamsOptionsAreStrict) {
  const auto err = [](std::string members) {
    return create_error(R"({"kind":"sync","source":"a:b","destination":"c:d",)" + members + "}").message;
  };
  EXPECT_EQ(err(R"("priority":0)"), "params.priority: must be between 1 and 100 (got 0)");
  EXPECT_EQ(err(R"("priority":101)"), "params.priority: must be between 1 and 100 (got 101)");
  EXPECT_EQ(err(R"("priority":-5)"), "params.priority: must be between 1 and 100 (got -5)");
  EXPECT_EQ(err(R"("priority":2.5)"), "params.priority: expected an integer, got a number");
  EXPECT_EQ(err(R"("priority":"10")"), "params.priority: expected an integer, got a string");
  EXPECT_EQ(err(R"("interval":0)"), "params.interval: must be between 1 and 604800 seconds (got 0)");
  EXPECT_EQ(err(R"("interval":604801)"), "params.interval: must be between 1 and 604800 seconds (got 604801)");
  EXPECT_EQ(err(R"("delete":"yes")"), "params.delete: expected a boolean, got a string");
  EXPECT_EQ(err(R"("force":1)"), "params.force: expected a boolean, got a number");
  EXPECT_EQ(err(R"("dry_run":{})"), "params.dry_run: expected a boolean, got an object");
  EXPECT_EQ(err(R"("max_delete":-1)"), "params.max_delete: expected a non-negative integer, got a number");
  EXPECT_EQ(err(R"("min_size":1.5)"), "params.min_size: expected a non-negative integer, got a number");
  EXPECT_EQ(err(R"("max_age":"1h")"), "params.max_age: expected a non-negative integer, got a string");
  EXPECT_EQ(err(R"("include":"*.jpg")"), "params.include: expected an array, got a string");
  EXPECT_EQ(err(R"("exclude":["a",7])"), "params.exclude[1]: expected a string, got a number");
  EXPECT_EQ(err(R"("include":[""])"), "params.include[0]: must not be empty");
  EXPECT_EQ(err(R"("include":[")" + std::string(proto::max_pattern_bytes + 1, 'x') + R"("])"),
            "params.include[0]: too long (1025 bytes, at most 1024)");
  EXPECT_EQ(err(R"("delete":true,"delete":false)"), "params: duplicate field 'delete'");
  EXPECT_EQ(err(R"("delete_extraneous":true)"), "params: unknown field 'delete_extraneous'");
  EXPECT_EQ(err(R"("options":{})"), "params: unknown field 'options'");

  const auto patterns = [](std::size_t n) {
    std::string a = "[";
    for (std::size_t i = 0; i < n; ++i) a += std::string(i ? "," : "") + "\"p" + std::to_string(i) + "\"";
    return a + "]";
  };
  EXPECT_EQ(err(R"("exclude":)" + patterns(proto::max_patterns + 1)),
            "params.exclude: too many items (65, at most 64)");
  auto ok = proto::parse_job_create_params(R"({"kind":"sync","source":"a:b","destination":"c:d","include":)" +
                                           patterns(proto::max_patterns) + "}");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->options.include.size(), proto::max_patterns);
  EXPECT_EQ(ok->options.include.back(), "p63");
}

TEST(ProtoMessages, CancelParamsRoundTripAndAreStrict) {
  const proto::job_cancel_params c{"j-000007"};
  EXPECT_EQ(proto::to_json(c), R"({"id":"j-000007"})");
  EXPECT_EQ(*proto::parse_job_cancel_params(proto::to_json(c)), c);
  EXPECT_EQ(proto::parse_job_cancel_params("{}").error().message, "params.id: missing");
  EXPECT_EQ(proto::parse_job_cancel_params(R"({"id":""})").error().message, "params.id: must not be empty");
  auto e = proto::parse_job_cancel_params(R"({"id":"j-1","force":true})");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, proto::code::invalid_params);
  EXPECT_EQ(e.error().message, "params: unknown field 'force'");
}

TEST(ProtoMessages, ReportParamsHaveDefaultsAndLimits) {
  auto d = proto::parse_job_report_params(R"({"id":"j-1"})");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->after, 0u);
  EXPECT_EQ(d->limit, proto::default_report_limit);

  const proto::job_report_params p{"j-2", std::numeric_limits<std::uint64_t>::max(), proto::max_report_limit};
  EXPECT_EQ(*proto::parse_job_report_params(proto::to_json(p)), p);
  auto one = proto::parse_job_report_params(R"({"id":"j-1","after":null,"limit":1})");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->limit, 1u);

  const auto err = [](std::string_view json) {
    auto r = proto::parse_job_report_params(json);
    EXPECT_FALSE(r) << json;
    return r ? proto::error{} : r.error();
  };
  EXPECT_EQ(err(R"({"id":"j-1","limit":0})").message, "params.limit: must be between 1 and 10000 (got 0)");
  EXPECT_EQ(err(R"({"id":"j-1","limit":10001})").message, "params.limit: must be between 1 and 10000 (got 10001)");
  EXPECT_EQ(err(R"({"id":"j-1","after":-1})").message, "params.after: expected a non-negative integer, got a number");
  EXPECT_EQ(err(R"({"id":"j-1","limit":"all"})").message,
            "params.limit: expected a non-negative integer, got a string");
  EXPECT_EQ(err(R"({"after":3})").message, "params.id: missing");
  const auto unknown = err(R"({"id":"j-1","offset":3})");
  EXPECT_EQ(unknown.code, proto::code::invalid_params);
  EXPECT_EQ(unknown.message, "params: unknown field 'offset'");
}

proto::integrity_record_entry sample_record() {
  proto::integrity_record_entry e;
  e.seq = 41;
  e.key = "2024/" + tricky;
  e.size = 2097152;
  e.md5 = "9e107d9d372bb6826bd81d3542a419d6";
  e.crc32c = 0x0000abcd;
  e.sha256 = "";
  e.source_etag = "\"9e107d9d372bb6826bd81d3542a419d6\"";
  e.destination_etag = "\"9e107d9d372bb6826bd81d3542a419d6-2\"";
  e.method = "multipart-etag";
  e.result = proto::integrity_result::mismatch;
  e.error = "ETag differs: " + tricky;
  e.time = sys_days{2024y / 5 / 1} + 12h + 3min + 7s;
  return e;
}

TEST(ProtoMessages, ReportResultRoundTrips) {
  proto::job_report_result r;
  EXPECT_EQ(proto::to_json(r), R"({"records":[],"next_after":0,"more":false})");
  r.records = {sample_record(), sample_record()};
  r.records[1].seq = 43;
  r.records[1].crc32c = 0xFFFFFFFF;
  r.records[1].result = proto::integrity_result::verified;
  r.records[1].error.clear();
  r.next_after = 43;
  r.more = true;
  const std::string json = proto::to_json(r);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  auto back = proto::parse_job_report_result(json);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, r);
}

TEST(ProtoMessages, ReportRecordWireFormatIsAsDocumented) {
  proto::integrity_record_entry e;
  e.seq = 1;
  e.key = "a";
  e.size = 3;
  e.md5 = "900150983cd24fb0d6963f7d28e17f72";
  e.crc32c = 0x364b3fb7;
  e.method = "etag=md5";
  e.result = proto::integrity_result::verified;
  e.time = sys_days{2024y / 1 / 2} + 3h + 4min + 5s;
  EXPECT_EQ(proto::to_json(e), R"({"seq":1,"key":"a","size":3,"md5":"900150983cd24fb0d6963f7d28e17f72",)"
                               R"("crc32c":"364b3fb7","sha256":"","source_etag":"","destination_etag":"",)"
                               R"("method":"etag=md5","result":"verified","error":"","time":"2024-01-02T03:04:05Z"})");
  e.crc32c = 0xA;
  EXPECT_NE(proto::to_json(e).find(R"("crc32c":"0000000a")"), std::string::npos);
}

TEST(ProtoMessages, ReportResultIsLenientButChecksWhatItReads) {
  // Unknown members ignored; optional text members may be absent or null.
  auto ok = proto::parse_job_report_result(
      R"({"records":[{"seq":1,"key":"k","size":0,"crc32c":"DEADBEEF","result":"failed","time":"2024-01-02T03:04:05Z",)"
      R"("md5":null,"extra":[1]}],"next_after":1,"more":false,"new":{}})");
  ASSERT_TRUE(ok) << ok.error().message;
  ASSERT_EQ(ok->records.size(), 1u);
  EXPECT_EQ(ok->records[0].crc32c, 0xDEADBEEFu);
  EXPECT_EQ(ok->records[0].md5, "");
  EXPECT_EQ(ok->records[0].result, proto::integrity_result::failed);

  const auto bad = [](std::string_view record) {
    auto r =
        proto::parse_job_report_result(R"({"records":[)" + std::string(record) + R"(],"next_after":1,"more":false})");
    EXPECT_FALSE(r) << record;
    return r ? std::string() : r.error().message;
  };
  const std::string base = R"("seq":1,"key":"k","size":0,"time":"2024-01-02T03:04:05Z")";
  EXPECT_EQ(bad("{" + base + R"(,"crc32c":"abc","result":"verified"})"),
            "result.records[0].crc32c: expected 8 hex digits");
  EXPECT_EQ(bad("{" + base + R"(,"crc32c":"0000000g","result":"verified"})"),
            "result.records[0].crc32c: expected 8 hex digits");
  EXPECT_EQ(bad("{" + base + R"(,"crc32c":"00000000","result":"ok"})"),
            "result.records[0].result: unknown result 'ok'");
  EXPECT_EQ(bad("{" + base + R"(,"crc32c":"00000000"})"), "result.records[0].result: missing");
  auto no_more = proto::parse_job_report_result(R"({"records":[],"next_after":0})");
  ASSERT_FALSE(no_more);
  EXPECT_EQ(no_more.error().code, proto::code::internal_error);
  EXPECT_EQ(no_more.error().message, "result.more: missing");
}

TEST(ProtoMessages, IntegrityResultsHaveStableNames) {
  EXPECT_EQ(proto::to_string(proto::integrity_result::verified), "verified");
  EXPECT_EQ(proto::to_string(proto::integrity_result::mismatch), "mismatch");
  EXPECT_EQ(proto::to_string(proto::integrity_result::failed), "failed");
  EXPECT_EQ(proto::parse_integrity_result("mismatch"), proto::integrity_result::mismatch);
  EXPECT_FALSE(proto::parse_integrity_result("Verified"));
}

TEST(ProtoMessages, NewMethodsHaveTheirWireNames) {
  EXPECT_EQ(proto::method::job_cancel, "job.cancel");
  EXPECT_EQ(proto::method::job_report, "job.report");
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

namespace {

TEST(ProtoMessages, JobEventsParamsHaveBoundsAndADefaultInterval) {
  auto p = proto::parse_job_events_params(R"({"id":"j-000001"})");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->interval_ms, proto::default_event_interval_ms);
  EXPECT_EQ(proto::parse_job_events_params(proto::to_json(proto::job_events_params{"j-2", 250})).value(),
            (proto::job_events_params{"j-2", 250}));
  for (const char* bad : {R"({"id":"j-1","interval_ms":99})", R"({"id":"j-1","interval_ms":60001})", R"({"id":""})",
                          R"({"id":"j-1","follow":true})", R"({"interval_ms":500})"}) {
    auto r = proto::parse_job_events_params(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, proto::code::invalid_params) << bad;
  }
}

TEST(ProtoMessages, AJobEventRoundTripsWithAndWithoutAnEta) {
  proto::job_event e;
  e.job.id = "j-000009";
  e.job.kind = "sync";
  e.job.state = proto::job_state::running;
  e.job.bytes = {1000, 400};
  e.rate_bps = 200;
  e.eta_seconds = 3;
  EXPECT_EQ(proto::parse_job_event(proto::to_json(e)).value(), e);
  e.eta_seconds.reset();
  e.final = true;
  const auto json = proto::to_json(e);
  EXPECT_EQ(json.find("eta_seconds\":3"), std::string::npos);
  EXPECT_EQ(proto::parse_job_event(json).value(), e);
}

TEST(ProtoMessages, LimitsMessagesRoundTripAndSetNeedsABwlimit) {
  proto::limits_result l;
  l.global = {"global", "Mon-08:00,512K 19:00,10M", 524288, 524288, 1000, 2000};
  l.jobs.push_back({"j-000001", "1M:off", 1048576, 0, 0, 0});
  EXPECT_EQ(proto::parse_limits_result(proto::to_json(l)).value(), l);
  auto s = proto::parse_limits_set_params(R"({"job":"j-000001","bwlimit":"10M"})");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->job, "j-000001");
  EXPECT_EQ(proto::parse_limits_set_params(R"({"bwlimit":"off"})").value().job, std::nullopt);
  EXPECT_FALSE(proto::parse_limits_set_params(R"({"job":"j-1"})"));
  EXPECT_FALSE(proto::parse_limits_set_params(R"({"bwlimit":""})"));
  EXPECT_FALSE(proto::parse_limits_set_params(R"({"bwlimit":"1M","scope":"x"})"));
}

TEST(ProtoMessages, FixedConcurrencyAndPartSizeAreCheckedAgainstS3Limits) {
  auto ok = proto::parse_job_create_params(
      R"({"kind":"copy","source":"a:b","destination":"c:d","bwlimit":"10M","concurrency":8,"part_size":16777216})");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->options.bwlimit, "10M");
  EXPECT_EQ(ok->options.concurrency, 8u);
  EXPECT_EQ(ok->options.part_size, 16u << 20);
  EXPECT_EQ(proto::parse_job_create_params(proto::to_json(*ok)).value(), *ok);
  for (const char* bad : {R"({"kind":"copy","source":"a:b","destination":"c:d","concurrency":0})",
                          R"({"kind":"copy","source":"a:b","destination":"c:d","part_size":1048576})",
                          R"({"kind":"copy","source":"a:b","destination":"c:d","part_size":6000000000})"}) {
    auto r = proto::parse_job_create_params(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("must be between"), std::string::npos) << r.error().message;
  }
}

}  // namespace
