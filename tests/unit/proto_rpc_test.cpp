#include "proto/rpc.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

namespace proto = ferry::proto;

proto::bad_request bad(std::string_view line) {
  auto r = proto::parse_request(line);
  EXPECT_FALSE(r) << line;
  return r ? proto::bad_request{} : r.error();
}

TEST(ProtoRpc, ParsesARequestKeepingParamsBytesExactly) {
  auto r =
      proto::parse_request(R"({"jsonrpc":"2.0","id":7,"method":"job.get","params":{ "id" : "j-1",  "x":[1, 2] } })");
  ASSERT_TRUE(r) << r.error().err.message;
  EXPECT_EQ(r->method, "job.get");
  ASSERT_TRUE(r->id);
  EXPECT_EQ(*r->id, proto::request_id{std::int64_t{7}});
  EXPECT_EQ(r->params, R"({ "id" : "j-1",  "x":[1, 2] })");
  EXPECT_FALSE(r->is_notification());
}

TEST(ProtoRpc, AcceptsStringAndNullIdsAndMissingOrArrayParams) {
  auto s = proto::parse_request(R"({"jsonrpc":"2.0","id":"abc","method":"m"})");
  ASSERT_TRUE(s);
  EXPECT_EQ(*s->id, proto::request_id{std::string("abc")});
  EXPECT_EQ(s->params, "{}");
  auto n = proto::parse_request(R"({"id":null,"method":"m","jsonrpc":"2.0","params":[1,{"a":2}]})");
  ASSERT_TRUE(n);
  EXPECT_EQ(*n->id, proto::request_id{nullptr});
  EXPECT_EQ(n->params, R"([1,{"a":2}])");
}

TEST(ProtoRpc, ARequestWithoutIdIsANotification) {
  auto r = proto::parse_request(R"({"jsonrpc":"2.0","method":"daemon.status"})");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_notification());
}

TEST(ProtoRpc, UnparsableLinesAreParseErrorsWithNullId) {
  for (std::string_view line : {"{", "not json", "{\"jsonrpc\":\"2.0\",}", "{} {}", "\xFF", ""}) {
    auto e = bad(line);
    EXPECT_EQ(e.err.code, proto::code::parse_error) << line;
    EXPECT_EQ(e.id, proto::request_id{nullptr});
  }
  // Invalid UTF-8 inside a string is refused, not passed to handlers.
  auto u = bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"n\":\"\xC0\xAF\"}}");
  EXPECT_EQ(u.err.code, proto::code::parse_error);
  EXPECT_EQ(u.err.message, "parse error: not valid UTF-8");
  // So is absurd nesting.
  auto d = bad(R"({"jsonrpc":"2.0","id":1,"method":"m","params":)" + std::string(64, '[') + std::string(64, ']') + "}");
  EXPECT_EQ(d.err.code, proto::code::parse_error);
}

TEST(ProtoRpc, InvalidRequestsAre32600AndEchoTheIdWhenReadable) {
  auto batch = bad(R"([{"jsonrpc":"2.0","id":1,"method":"m"}])");
  EXPECT_EQ(batch.err.code, proto::code::invalid_request);
  EXPECT_EQ(batch.err.message, "batch requests are not supported");
  EXPECT_EQ(bad("[]").err.code, proto::code::invalid_request);
  EXPECT_EQ(bad("42").err.message, "a request must be a JSON object");

  auto version = bad(R"({"jsonrpc":"1.0","id":5,"method":"m"})");
  EXPECT_EQ(version.err.code, proto::code::invalid_request);
  EXPECT_EQ(version.err.message, "jsonrpc must be \"2.0\"");
  EXPECT_EQ(version.id, proto::request_id{std::int64_t{5}});

  EXPECT_EQ(bad(R"({"jsonrpc":"2.0","id":"x","method":1})").err.message, "method must be a string");
  EXPECT_EQ(bad(R"({"jsonrpc":"2.0","id":"x"})").err.message, "method is missing");
  EXPECT_EQ(bad(R"({"jsonrpc":"2.0","id":"x","method":"m","params":"p"})").err.message,
            "params must be an object or an array");
  EXPECT_EQ(bad(R"({"jsonrpc":"2.0","id":"x","method":"m","params":null})").err.code, proto::code::invalid_request);
  auto frac = bad(R"({"jsonrpc":"2.0","id":1.5,"method":"m"})");
  EXPECT_EQ(frac.err.message, "id must be a string, an integer or null");
  EXPECT_EQ(frac.id, proto::request_id{nullptr});
  EXPECT_EQ(bad(R"({"jsonrpc":"2.0","id":{},"method":"m"})").err.code, proto::code::invalid_request);
}

TEST(ProtoRpc, LinesOverTheLimitAreRefused) {
  const std::string big(proto::max_request_bytes + 1, ' ');
  auto e = bad(big);
  EXPECT_EQ(e.err.code, proto::code::invalid_request);
  EXPECT_NE(e.err.message.find("too large"), std::string::npos);
}

TEST(ProtoRpc, BuildsLinesThatParseBack) {
  const std::string req = proto::request_line(std::string("id\n1"), "job.create", "{\"a\":\n1}");
  ASSERT_EQ(req.back(), '\n');
  EXPECT_EQ(req.find('\n'), req.size() - 1);
  auto r = proto::parse_request(std::string_view(req).substr(0, req.size() - 1));
  ASSERT_TRUE(r) << r.error().err.message;
  EXPECT_EQ(r->method, "job.create");
  EXPECT_EQ(*r->id, proto::request_id{std::string("id\n1")});
  EXPECT_EQ(r->params, "{\"a\": 1}");

  EXPECT_EQ(proto::notification_line("m", "{}"), "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{}}\n");
  EXPECT_EQ(proto::result_line(std::int64_t{3}, "{\"x\":1}"), "{\"jsonrpc\":\"2.0\",\"result\":{\"x\":1},\"id\":3}\n");
  EXPECT_EQ(proto::error_line(nullptr, {proto::code::method_not_found, "no \"such\" method"}),
            "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32601,\"message\":\"no \\\"such\\\" method\"},\"id\":null}\n");
}

TEST(ProtoRpc, ParsesResponsesKeepingResultBytesExactly) {
  auto r = proto::parse_response(R"({"jsonrpc":"2.0","result":{"b": [1, 2], "a":"\u00e9"},"id":9})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->id, proto::request_id{std::int64_t{9}});
  ASSERT_TRUE(r->outcome);
  EXPECT_EQ(*r->outcome, R"({"b": [1, 2], "a":"\u00e9"})");

  auto scalar = proto::parse_response(R"({"jsonrpc":"2.0","id":"s","result":"done"})");
  ASSERT_TRUE(scalar);
  EXPECT_EQ(*scalar->outcome, R"("done")");

  auto e = proto::parse_response(
      R"({"jsonrpc":"2.0","error":{"code":-32001,"message":"job not found: j-9","data":{}},"id":1})");
  ASSERT_TRUE(e);
  ASSERT_FALSE(e->outcome);
  EXPECT_EQ(e->outcome.error(), (proto::error{proto::code::job_not_found, "job not found: j-9"}));
}

TEST(ProtoRpc, MalformedResponsesAreInternalErrors) {
  for (std::string_view line : {R"({"jsonrpc":"2.0","id":1})", R"({"jsonrpc":"2.0","id":1,"result":1,"error":{}})",
                                R"({"jsonrpc":"2.0","result":1})", R"({"result":1,"id":1})",
                                R"({"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}})",
                                R"({"jsonrpc":"2.0","id":1,"error":{"code":1}})", "[1]", "garbage"}) {
    auto r = proto::parse_response(line);
    ASSERT_FALSE(r) << line;
    EXPECT_EQ(r.error().code, proto::code::internal_error);
    EXPECT_NE(r.error().message.find("malformed response from ferryd"), std::string::npos) << r.error().message;
  }
}

}  // namespace
