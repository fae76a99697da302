#include "s3/error.hpp"

#include "s3/xml.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <array>

namespace ferry::s3 {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;

// Server text goes into logs and job verdicts: one line, bounded, no control characters.
std::string printable(std::string_view s, std::size_t limit) {
  std::string out;
  out.reserve(std::min(s.size(), limit));
  for (const char ch : s) {
    if (out.size() >= limit) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(ch);
    out += (c < 0x20 || c == 0x7F) ? ' ' : ch;
  }
  return out;
}

std::string code_for_status(unsigned status) {
  switch (status) {
    case 301:
      return "PermanentRedirect";
    case 304:
      return "NotModified";
    case 307:
      return "TemporaryRedirect";
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "AccessDenied";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 408:
      return "RequestTimeout";
    case 409:
      return "Conflict";
    case 411:
      return "MissingContentLength";
    case 412:
      return "PreconditionFailed";
    case 416:
      return "InvalidRange";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 501:
      return "NotImplemented";
    case 502:
      return "BadGateway";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "GatewayTimeout";
    default:
      return "HTTP" + std::to_string(status);
  }
}

// Codes AWS "standard" mode retries whatever the status: throttling, transient faults, and clock
// skew (the caller corrects its clock from the Date header before the retry). IncompleteBody and
// OperationAborted are S3's own "try again" answers.
constexpr std::array<std::string_view, 26> retryable_codes = {
    // throttling
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "EC2ThrottledException",
    "PriorRequestNotComplete",
    // transient
    "RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable", "IncompleteBody",
    "OperationAborted",
    // clock skew
    "RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture",
    // status-derived names of retryable statuses, for HEAD responses without a body
    "TooManyRequests", "BadGateway", "GatewayTimeout"};

}  // namespace

std::string error::to_string() const {
  std::string out;
  if (transport) {
    out = printable(message, 512);
    out += ": ";
    out += printable(transport.message(), 256);
    out += " [";
    out += transport.category().name();
    out += ':';
    out += std::to_string(transport.value());
    out += ']';
  } else {
    if (http_status != 0) out = "HTTP " + std::to_string(http_status) + " ";
    out += printable(code, 128);
    if (!message.empty()) {
      out += ": ";
      out += printable(message, 512);
    }
  }
  if (!request_id.empty()) {
    out += " (request id ";
    out += printable(request_id, 128);
    out += ')';
  }
  if (retryable) out += " [retryable]";
  return out;
}

error local_error(std::string code, std::string message) {
  error e;
  e.code = std::move(code);
  e.message = std::move(message);
  return e;
}

error transport_error(boost::system::error_code ec, std::string_view what) {
  error e;
  e.code = "TransportError";
  e.message = std::string(what);
  e.transport = ec;
  // Retryable unless trying again cannot change the outcome: cancellation (the caller is stopping),
  // TLS handshake failures (certificate, protocol), an unknown host, a response over our limits.
  const auto& cat = ec.category();
  bool retry = true;
  if (ec == asio::error::operation_aborted || ec == asio::error::host_not_found || ec == asio::error::message_size ||
      ec == asio::error::no_protocol_option || ec == asio::error::address_family_not_supported)
    retry = false;
  else if (cat == asio::error::get_ssl_category())  // handshake / verification failures
    retry = false;
  else if (ec == beast::http::error::body_limit || ec == beast::http::error::header_limit ||
           ec == beast::http::error::buffer_overflow)
    retry = false;
  e.retryable = retry;
  return e;
}

error classify_response(unsigned status, std::string_view body, std::string_view request_id_header,
                        std::string_view date_header) {
  error e;
  e.http_status = status;
  e.request_id = std::string(request_id_header);
  e.server_date = std::string(date_header);
  if (auto doc = parse_error_document(body)) {
    e.code = doc->code.empty() ? code_for_status(status) : std::move(doc->code);
    e.message = std::move(doc->message);
    if (e.request_id.empty()) e.request_id = std::move(doc->request_id);
  } else if (status >= 200 && status < 300) {
    e.code = "InvalidResponse";  // a 2xx handed to us as an error, without an <Error> body
    e.message = "unexpected response body";
  } else {
    e.code = code_for_status(status);
    if (!body.empty()) e.message = "non-XML error body: " + printable(body, 200);
  }
  e.retryable = (status >= 200 && status < 300 && e.code == "InvalidResponse") || is_retryable_code(e.code, status);
  return e;
}

bool is_retryable_code(std::string_view code, unsigned status) {
  if (status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504) return true;
  for (const auto c : retryable_codes)
    if (c == code) return true;
  return false;
}

}  // namespace ferry::s3
