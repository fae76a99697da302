#pragma once
// The error half of every control-protocol exchange: a JSON-RPC error {code, message}, and the
// codes ferry uses (see PROTOCOL.md for when each is sent).
#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <string>

namespace ferry::proto {

namespace code {
inline constexpr int parse_error = -32700;      // the line is not valid JSON (or not UTF-8)
inline constexpr int invalid_request = -32600;  // valid JSON, not a valid request; line too large
inline constexpr int method_not_found = -32601;
inline constexpr int invalid_params = -32602;  // params missing a field, of a wrong type, ...
inline constexpr int internal_error = -32603;  // a bug or a handler timeout in ferryd
inline constexpr int job_not_found = -32001;
inline constexpr int bad_location = -32002;       // unknown remote, malformed REMOTE:BUCKET/PREFIX
inline constexpr int permission_denied = -32003;  // the peer may not use the control socket
inline constexpr int unavailable = -32004;        // too many connections, or ferryd is stopping
}  // namespace code

// A JSON-RPC error object; also what every parse function of proto/ returns on failure.
struct error {
  int code = code::internal_error;
  std::string message;

  friend bool operator==(const error&, const error&) = default;
};

template <class T>
using result = boost::system::result<T, error>;

// Lets result<T>::value() throw (std::runtime_error with the message); for tests and startup only.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

}  // namespace ferry::proto
