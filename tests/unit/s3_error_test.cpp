// lib/s3/error: classification of responses and transport failures, and log-safe text.
#include "s3/error.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <gtest/gtest.h>

namespace ferry::s3 {
namespace {

TEST(ClassifyResponse, ErrorDocumentFieldsAndHeaders) {
  const auto e = classify_response(404,
                                   "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
                                   "<RequestId>DOCID</RequestId></Error>",
                                   "HEADERID", "Wed, 01 Mar 2023 12:00:00 GMT");
  EXPECT_EQ(e.http_status, 404u);
  EXPECT_EQ(e.code, "NoSuchKey");
  EXPECT_EQ(e.message, "The specified key does not exist.");
  EXPECT_EQ(e.request_id, "HEADERID") << "the header wins over the body";
  EXPECT_EQ(e.server_date, "Wed, 01 Mar 2023 12:00:00 GMT");
  EXPECT_FALSE(e.retryable);
  EXPECT_FALSE(e.transport);

  const auto from_doc =
      classify_response(403, "<Error><Code>AccessDenied</Code><RequestId>R</RequestId></Error>", "", "");
  EXPECT_EQ(from_doc.request_id, "R");
}

TEST(ClassifyResponse, RetryableStatusesAndCodes) {
  for (unsigned status : {500u, 502u, 503u, 504u, 429u, 408u})
    EXPECT_TRUE(classify_response(status, "", "", "").retryable) << status;
  for (const char* code : {"SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable",
                           "Throttling", "ThrottlingException", "RequestLimitExceeded", "IncompleteBody",
                           "OperationAborted", "RequestExpired", "PriorRequestNotComplete"}) {
    const auto e = classify_response(400, std::string("<Error><Code>") + code + "</Code></Error>", "", "");
    EXPECT_TRUE(e.retryable) << code;
  }
}

TEST(ClassifyResponse, NonRetryableStatusesAndCodes) {
  for (unsigned status : {400u, 401u, 403u, 404u, 405u, 409u, 411u, 412u, 416u, 501u})
    EXPECT_FALSE(classify_response(status, "", "", "").retryable) << status;
  for (const char* code :
       {"NoSuchKey", "NoSuchBucket", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "BadDigest",
        "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload", "PreconditionFailed", "MalformedXML"}) {
    const auto e = classify_response(400, std::string("<Error><Code>") + code + "</Code></Error>", "", "");
    EXPECT_FALSE(e.retryable) << code;
  }
}

TEST(ClassifyResponse, StatusAloneDecidesWithoutABody) {
  const auto head404 = classify_response(404, "", "id", "");
  EXPECT_EQ(head404.code, "NotFound");
  EXPECT_FALSE(head404.retryable);
  const auto head503 = classify_response(503, "", "", "");
  EXPECT_EQ(head503.code, "ServiceUnavailable");
  EXPECT_TRUE(head503.retryable);
  EXPECT_EQ(classify_response(412, "", "", "").code, "PreconditionFailed");
  EXPECT_EQ(classify_response(599, "", "", "").code, "HTTP599");
}

TEST(ClassifyResponse, NonXmlBodyIsQuotedBoundedAndOnOneLine) {
  const std::string html = "<html>\r\n<body>Bad gateway\n" + std::string(10'000, 'x') + "</body></html>";
  const auto e = classify_response(502, html, "", "");
  EXPECT_EQ(e.code, "BadGateway");
  EXPECT_TRUE(e.retryable);
  EXPECT_LT(e.message.size(), 300u);
  EXPECT_EQ(e.message.find('\n'), std::string::npos);
  EXPECT_NE(e.message.find("Bad gateway"), std::string::npos);
}

TEST(ClassifyResponse, A200WithAnErrorBody) {
  const auto e =
      classify_response(200, "<Error><Code>InternalError</Code><Message>Try again</Message></Error>", "", "");
  EXPECT_EQ(e.code, "InternalError");
  EXPECT_EQ(e.http_status, 200u);
  EXPECT_TRUE(e.retryable);
}

TEST(IsRetryableCode, ByCodeOrStatus) {
  EXPECT_TRUE(is_retryable_code("SlowDown", 503));
  EXPECT_TRUE(is_retryable_code("Anything", 500));
  EXPECT_TRUE(is_retryable_code("RequestTimeTooSkewed", 403));
  EXPECT_FALSE(is_retryable_code("AccessDenied", 403));
  EXPECT_FALSE(is_retryable_code("NotImplemented", 501));
}

TEST(TransportError, ConnectionFailuresRetryCancellationAndTlsDoNot) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  for (auto ec :
       {boost::system::error_code(asio::error::connection_reset), boost::system::error_code(asio::error::eof),
        boost::system::error_code(asio::error::timed_out), boost::system::error_code(asio::error::broken_pipe),
        boost::system::error_code(asio::error::connection_refused), boost::system::error_code(beast::error::timeout),
        boost::system::error_code(beast::http::error::end_of_stream),
        boost::system::error_code(beast::http::error::partial_message),
        boost::system::error_code(asio::ssl::error::stream_truncated)}) {
    const auto e = transport_error(ec, "GetObject b/k");
    EXPECT_TRUE(e.retryable) << ec.message();
    EXPECT_EQ(e.http_status, 0u);
    EXPECT_EQ(e.transport, ec);
  }
  for (auto ec : {boost::system::error_code(asio::error::operation_aborted),
                  boost::system::error_code(asio::error::host_not_found),
                  boost::system::error_code(beast::http::error::body_limit),
                  boost::system::error_code(static_cast<int>(0x0A000086), asio::error::get_ssl_category())}) {
    EXPECT_FALSE(transport_error(ec, "x").retryable) << ec.message();
  }
}

TEST(ErrorToString, OneLineWithStatusCodeMessageAndRequestId) {
  auto e = classify_response(404, "<Error><Code>NoSuchKey</Code><Message>gone\nreally</Message></Error>", "RID", "");
  EXPECT_EQ(e.to_string(), "HTTP 404 NoSuchKey: gone really (request id RID)");
  e = classify_response(503, "<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>", "", "");
  EXPECT_EQ(e.to_string(), "HTTP 503 SlowDown: Reduce [retryable]");
  const auto t = transport_error(boost::asio::error::connection_reset, "PutObject b/k");
  EXPECT_EQ(t.to_string().rfind("PutObject b/k: ", 0), 0u) << t.to_string();
  EXPECT_NE(t.to_string().find("[retryable]"), std::string::npos);
  EXPECT_EQ(local_error("TooManyKeys", "1001 keys").to_string(), "TooManyKeys: 1001 keys");
}

}  // namespace
}  // namespace ferry::s3
