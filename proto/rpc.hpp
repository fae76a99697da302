#pragma once
// JSON-RPC 2.0 framing: one JSON object per '\n'-terminated line. Parses requests (server side)
// and responses (client side) and builds both as lines. No I/O here.
#include "proto/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace ferry::proto {

// The longest request line a server accepts, excluding the '\n'.
inline constexpr std::size_t max_request_bytes = std::size_t{1} << 20;
// The longest response line a client accepts, excluding the '\n' (job.list can be large).
inline constexpr std::size_t max_response_bytes = std::size_t{64} << 20;

// A request id: null, an integer, or a string (fractional numbers are refused).
using request_id = std::variant<std::nullptr_t, std::int64_t, std::string>;

// The id as JSON text, e.g. `7`, `"abc"`, `null`.
std::string to_json(const request_id& id);

struct request {
  std::string method;
  std::optional<request_id> id;  // nullopt: a notification, which gets no reply
  std::string params = "{}";     // the params value as JSON text, exactly as sent; "{}" when absent

  bool is_notification() const { return !id; }
};

// Why a line is not a request, and the id to answer with (null unless it could be read).
struct bad_request {
  error err;  // parse_error or invalid_request
  request_id id = nullptr;
};

// Parses one line (without its '\n'). Batches (arrays) are refused with invalid_request.
boost::system::result<request, bad_request> parse_request(std::string_view line);

struct response {
  request_id id = nullptr;
  result<std::string> outcome{std::string{}};  // the result as JSON text (exact bytes), or the error
};

// Parses one response line (without its '\n'); a malformed line fails with internal_error.
result<response> parse_response(std::string_view line);

// Lines, each ending in '\n'. `params_json` / `result_json` must be JSON produced by json_writer;
// a raw newline in them (only possible as whitespace in valid JSON) is turned into a space.
std::string request_line(const request_id& id, std::string_view method, std::string_view params_json);
std::string notification_line(std::string_view method, std::string_view params_json);
std::string result_line(const request_id& id, std::string_view result_json);
std::string error_line(const request_id& id, const error& e);

}  // namespace ferry::proto
