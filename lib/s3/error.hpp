#pragma once
// The one typed error of lib/s3: what went wrong with one S3 request, and whether trying
// again can help.
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace ferry::s3 {

struct error {
  // Declared so that error is no aggregate: an aggregate is "constructible" from an integer in
  // C++20, which makes result<std::size_t, error> ambiguous to build from a count.
  error() = default;

  unsigned http_status = 0;             // 0 when no response arrived (see transport)
  std::string code;                     // S3's <Code>, e.g. "NoSuchKey"; or a ferry code for local failures
  std::string message;                  // S3's <Message> or a description
  std::string request_id;               // x-amz-request-id / <RequestId>
  boost::system::error_code transport;  // connect/TLS/timeout/reset errors
  bool retryable = false;
  std::string server_date;  // the response's Date header, for clock-skew correction

  std::string to_string() const;  // one line for logs and job failures; never contains secrets
};

template <class T>
using result = boost::system::result<T, error>;

// Errors made here, not by a server.
error local_error(std::string code, std::string message);
error transport_error(boost::system::error_code ec, std::string_view what);

// Classifies a non-2xx response (or a 2xx whose body is an <Error> document) once, for every
// caller: status, parsed code/message/request id, and retryability after AWS "standard" mode
// (500/502/503/504, SlowDown, RequestTimeout, InternalError, RequestTimeTooSkewed...).
// `body` may be empty (HEAD) or malformed: the status alone then decides.
error classify_response(unsigned status, std::string_view body, std::string_view request_id_header,
                        std::string_view date_header);

bool is_retryable_code(std::string_view code, unsigned status);

}  // namespace ferry::s3
