#include "proto/rpc.hpp"

#include "proto/detail/dom.hpp"
#include "proto/json_writer.hpp"

namespace ferry::proto {

namespace dom = detail::dom;
namespace ondemand = simdjson::ondemand;

namespace {

// The exact bytes of member `key` of the top-level object in `text` (already validated by the DOM
// parser, so this second, on-demand pass cannot meet malformed JSON).
std::optional<std::string> raw_member(const simdjson::padded_string& text, std::string_view key) {
  ondemand::parser p;
  ondemand::document doc;
  if (p.iterate(text).get(doc) != simdjson::SUCCESS) return std::nullopt;
  ondemand::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return std::nullopt;
  ondemand::value v;
  if (obj.find_field_unordered(key).get(v) != simdjson::SUCCESS) return std::nullopt;
  ondemand::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return std::nullopt;
  std::string_view raw;
  if (t == ondemand::json_type::object) {
    ondemand::object o;
    if (v.get_object().get(o) != simdjson::SUCCESS || o.raw_json().get(raw) != simdjson::SUCCESS) return std::nullopt;
  } else if (t == ondemand::json_type::array) {
    ondemand::array a;
    if (v.get_array().get(a) != simdjson::SUCCESS || a.raw_json().get(raw) != simdjson::SUCCESS) return std::nullopt;
  } else {
    raw = v.raw_json_token();
  }
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\r' || raw.back() == '\n'))
    raw.remove_suffix(1);
  return std::string(raw);
}

// Reads an id member; false if it has a type JSON-RPC does not allow (we also refuse fractions).
bool read_id(dom::element e, request_id& out) {
  std::string_view s;
  std::int64_t i = 0;
  if (e.is_null()) {
    out = nullptr;
  } else if (e.get_string().get(s) == simdjson::SUCCESS) {
    out = std::string(s);
  } else if (e.type() == dom::element_type::INT64 && e.get_int64().get(i) == simdjson::SUCCESS) {
    out = i;
  } else {
    return false;
  }
  return true;
}

void write_id(json_writer& w, const request_id& id) {
  if (std::holds_alternative<std::nullptr_t>(id))
    w.null();
  else if (auto* i = std::get_if<std::int64_t>(&id))
    w.value(*i);
  else
    w.value(std::get<std::string>(id));
}

std::string one_line(std::string_view json) {
  std::string s(json);
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

constexpr std::string_view jsonrpc_version = "2.0";

}  // namespace

std::string to_json(const request_id& id) {
  json_writer w;
  write_id(w, id);
  return w.take();
}

boost::system::result<request, bad_request> parse_request(std::string_view line) {
  if (line.size() > max_request_bytes)
    return bad_request{{code::invalid_request, "request too large (more than 1 MiB)"}, nullptr};
  const simdjson::padded_string text(line);
  dom::parser p;
  auto root = detail::parse_dom(p, text, code::parse_error, "parse error");
  if (!root) return bad_request{root.error(), nullptr};

  if (root->is_array()) return bad_request{{code::invalid_request, "batch requests are not supported"}, nullptr};
  dom::object obj;
  if (root->get_object().get(obj) != simdjson::SUCCESS)
    return bad_request{{code::invalid_request, "a request must be a JSON object"}, nullptr};

  request req;
  request_id id = nullptr;
  dom::element e;
  if (obj.at_key("id").get(e) == simdjson::SUCCESS) {
    if (!read_id(e, id))
      return bad_request{{code::invalid_request, "id must be a string, an integer or null"}, nullptr};
    req.id = id;
  }
  auto invalid = [&](std::string msg) { return bad_request{{code::invalid_request, std::move(msg)}, id}; };

  std::string_view s;
  if (obj.at_key("jsonrpc").get(e) != simdjson::SUCCESS || e.get_string().get(s) != simdjson::SUCCESS ||
      s != jsonrpc_version)
    return invalid("jsonrpc must be \"2.0\"");
  if (obj.at_key("method").get(e) != simdjson::SUCCESS) return invalid("method is missing");
  if (e.get_string().get(s) != simdjson::SUCCESS) return invalid("method must be a string");
  if (s.empty() || s.size() > 128) return invalid("method must be 1 to 128 bytes");
  if (detail::check_text(s, detail::text_rule::no_control))
    return invalid("method must not contain control characters");
  req.method = std::string(s);

  if (obj.at_key("params").get(e) == simdjson::SUCCESS) {
    if (!e.is_object() && !e.is_array()) return invalid("params must be an object or an array");
    auto raw = raw_member(text, "params");
    if (!raw) return bad_request{{code::internal_error, "cannot extract params"}, id};
    req.params = std::move(*raw);
  }
  return req;
}

result<response> parse_response(std::string_view line) {
  auto bad = [](std::string msg) { return error{code::internal_error, "malformed response from ferryd: " + msg}; };
  if (line.size() > max_response_bytes) return bad("too large");
  const simdjson::padded_string text(line);
  dom::parser p;
  auto root = detail::parse_dom(p, text, code::internal_error, "malformed response from ferryd");
  if (!root) return root.error();
  dom::object obj;
  if (root->get_object().get(obj) != simdjson::SUCCESS) return bad("not a JSON object");

  response r;
  dom::element e;
  std::string_view s;
  if (obj.at_key("jsonrpc").get(e) != simdjson::SUCCESS || e.get_string().get(s) != simdjson::SUCCESS ||
      s != jsonrpc_version)
    return bad("jsonrpc is not \"2.0\"");
  if (obj.at_key("id").get(e) != simdjson::SUCCESS || !read_id(e, r.id)) return bad("missing or invalid id");

  const bool has_result = obj.at_key("result").get(e) == simdjson::SUCCESS;
  dom::element err;
  const bool has_error = obj.at_key("error").get(err) == simdjson::SUCCESS;
  if (has_result == has_error) return bad("exactly one of result and error must be present");
  if (has_result) {
    auto raw = raw_member(text, "result");
    if (!raw) return bad("cannot extract result");
    r.outcome = std::move(*raw);
    return r;
  }
  dom::object eo;
  std::int64_t code = 0;
  if (err.get_object().get(eo) != simdjson::SUCCESS) return bad("error is not an object");
  if (eo.at_key("code").get(e) != simdjson::SUCCESS || e.get_int64().get(code) != simdjson::SUCCESS ||
      code < INT32_MIN || code > INT32_MAX)
    return bad("error.code is not an integer");
  if (eo.at_key("message").get(e) != simdjson::SUCCESS || e.get_string().get(s) != simdjson::SUCCESS)
    return bad("error.message is not a string");
  r.outcome = error{static_cast<int>(code), std::string(s)};
  return r;
}

std::string request_line(const request_id& id, std::string_view method, std::string_view params_json) {
  json_writer w;
  w.begin_object().member("jsonrpc", jsonrpc_version).member("method", method).key("params").raw(one_line(params_json));
  w.key("id");
  write_id(w, id);
  w.end_object();
  return w.take() + "\n";
}

std::string notification_line(std::string_view method, std::string_view params_json) {
  json_writer w;
  w.begin_object().member("jsonrpc", jsonrpc_version).member("method", method).key("params").raw(one_line(params_json));
  w.end_object();
  return w.take() + "\n";
}

std::string result_line(const request_id& id, std::string_view result_json) {
  json_writer w;
  w.begin_object().member("jsonrpc", jsonrpc_version).key("result").raw(one_line(result_json)).key("id");
  write_id(w, id);
  w.end_object();
  return w.take() + "\n";
}

std::string error_line(const request_id& id, const error& e) {
  json_writer w;
  w.begin_object()
      .member("jsonrpc", jsonrpc_version)
      .key("error")
      .begin_object()
      .member("code", e.code)
      .member("message", e.message)
      .end_object()
      .key("id");
  write_id(w, id);
  w.end_object();
  return w.take() + "\n";
}

}  // namespace ferry::proto
