#include "fault/fault_config.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <initializer_list>

namespace ferry::test {

namespace json = boost::json;

namespace {

constexpr std::size_t max_document_bytes = 1 << 20;
constexpr std::size_t max_rules = 1000;

// The keys of `o` that are not in `known`, as an error message; empty if there are none (typos fail loudly).
std::string unknown_keys(const json::object& o, std::initializer_list<std::string_view> known) {
  for (const auto& kv : o) {
    bool found = false;
    for (auto k : known) found = found || kv.key() == k;
    if (!found) return "unknown key \"" + std::string(kv.key()) + "\"";
  }
  return {};
}

std::optional<double> number(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return std::nullopt;
}

std::optional<std::uint64_t> unsigned_number(const json::value& v) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0) return static_cast<std::uint64_t>(v.get_int64());
  if (v.is_double() && v.get_double() >= 0 && v.get_double() < 1.8e19 && std::floor(v.get_double()) == v.get_double()) {
    return static_cast<std::uint64_t>(v.get_double());
  }
  return std::nullopt;
}

std::optional<std::chrono::microseconds> milliseconds(const json::value& v) {
  auto n = number(v);
  if (!n || !(*n >= 0) || *n > 1e12) return std::nullopt;
  return std::chrono::microseconds(static_cast<std::int64_t>(std::llround(*n * 1000)));
}

std::optional<fault_rule> parse_rule(const json::value& v, std::string& error) {
  if (!v.is_object()) {
    error = "a rule must be an object";
    return std::nullopt;
  }
  const json::object& o = v.get_object();
  error =
      unknown_keys(o, {"name", "method", "target_contains", "target_regex", "objects_only", "share", "times", "action",
                       "direction", "ms", "status", "code", "bytes", "after_bytes", "offset", "delta", "bytes_per_s"});
  if (!error.empty()) return std::nullopt;
  fault_rule r;
  auto fail = [&](std::string why) {
    error = std::move(why);
    return std::nullopt;
  };
  auto string_of = [&](std::string_view key, std::string& out) {
    if (auto* f = o.if_contains(key)) {
      if (!f->is_string()) return false;
      out = std::string(f->get_string());
    }
    return true;
  };
  if (!string_of("name", r.name)) return fail("name must be a string");
  if (!string_of("target_contains", r.target_contains)) return fail("target_contains must be a string");
  if (!string_of("target_regex", r.target_regex)) return fail("target_regex must be a string");
  if (auto* f = o.if_contains("method")) {
    if (f->is_string()) {
      r.methods.emplace_back(f->get_string());
    } else if (f->is_array()) {
      for (const auto& m : f->get_array()) {
        if (!m.is_string()) return fail("method must be a string or an array of strings");
        r.methods.emplace_back(m.get_string());
      }
    } else {
      return fail("method must be a string or an array of strings");
    }
  }
  if (auto* f = o.if_contains("objects_only")) {
    if (!f->is_bool()) return fail("objects_only must be true or false");
    r.objects_only = f->get_bool();
  }
  if (auto* f = o.if_contains("share")) {
    auto n = number(*f);
    if (!n) return fail("share must be a number");
    r.share = *n;
  }
  if (auto* f = o.if_contains("times")) {
    auto n = unsigned_number(*f);
    if (!n) return fail("times must be a whole number >= 0");
    r.times = *n;
  }

  const json::value* kind = o.if_contains("action");
  if (!kind || !kind->is_string()) return fail("action is required: a string");
  const std::string_view action = kind->get_string();
  fault_action& a = r.action;
  auto need_ms = [&](std::chrono::milliseconds& out) {
    auto* f = o.if_contains("ms");
    auto us = f ? milliseconds(*f) : std::nullopt;
    if (!us) return false;
    out = std::chrono::duration_cast<std::chrono::milliseconds>(*us);
    return true;
  };
  auto uint_field = [&](std::string_view key, std::uint64_t& out) {
    if (auto* f = o.if_contains(key)) {
      auto n = unsigned_number(*f);
      if (!n) return false;
      out = *n;
    }
    return true;
  };
  if (action == "latency") {
    a.kind = fault_kind::latency;
    if (!need_ms(a.duration)) return fail("latency needs \"ms\" >= 0");
  } else if (action == "status") {
    a.kind = fault_kind::status;
    std::uint64_t status = 503;
    if (!uint_field("status", status) || status > 999) return fail("status must be an HTTP status");
    a.status = static_cast<unsigned>(status);
    if (!string_of("code", a.code)) return fail("code must be a string");
  } else if (action == "reset" || action == "truncate") {
    a.kind = action == "reset" ? fault_kind::reset : fault_kind::truncate;
    if (!uint_field("bytes", a.bytes)) return fail("bytes must be a whole number >= 0");
  } else if (action == "stall") {
    a.kind = fault_kind::stall;
    a.direction = fault_direction::response;
    if (!need_ms(a.duration)) return fail("stall needs \"ms\" >= 0");
    if (o.contains("after_bytes")) {
      std::uint64_t n = 0;
      if (!uint_field("after_bytes", n)) return fail("after_bytes must be a whole number >= 0");
      a.after_bytes = n;
    }
  } else if (action == "flip_bit") {
    a.kind = fault_kind::flip_bit;
    if (!uint_field("offset", a.offset)) return fail("offset must be a whole number >= 0");
  } else if (action == "wrong_content_length") {
    a.kind = fault_kind::wrong_content_length;
    auto* f = o.if_contains("delta");
    if (!f || !(f->is_int64() || f->is_uint64()) || (f->is_uint64() && f->get_uint64() > (1ull << 62))) {
      return fail("wrong_content_length needs \"delta\", a whole number");
    }
    a.delta = f->is_int64() ? f->get_int64() : static_cast<std::int64_t>(f->get_uint64());
  } else if (action == "trickle") {
    a.kind = fault_kind::trickle;
    if (!o.contains("bytes_per_s") || !uint_field("bytes_per_s", a.bytes_per_second)) {
      return fail("trickle needs \"bytes_per_s\"");
    }
  } else {
    return fail("unknown action \"" + std::string(action) +
                "\" (latency, status, reset, truncate, stall, flip_bit, wrong_content_length, trickle)");
  }
  if (auto* f = o.if_contains("direction")) {
    const std::string_view d = f->is_string() ? std::string_view(f->get_string()) : std::string_view();
    if (d == "auto") {
      a.direction = fault_direction::automatic;
    } else if (d == "request") {
      a.direction = fault_direction::request;
    } else if (d == "response") {
      a.direction = fault_direction::response;
    } else {
      return fail("direction must be \"auto\", \"request\" or \"response\"");
    }
  }
  if (std::string why = validate(r); !why.empty()) return fail(why);
  return r;
}

}  // namespace

std::optional<fault_config> parse_fault_config(std::string_view text, std::string& error) {
  if (text.size() > max_document_bytes) {
    error = "the document is larger than 1 MiB";
    return std::nullopt;
  }
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) {
    error = "not JSON: " + ec.message();
    return std::nullopt;
  }
  fault_config config;
  const json::value* rules = nullptr;
  if (doc.is_array()) {  // a bare rule list
    rules = &doc;
  } else if (doc.is_object()) {
    const json::object& o = doc.get_object();
    error = unknown_keys(o, {"seed", "delay_ms", "jitter_ms", "stall_ms", "stall_every_ms", "rules"});
    if (!error.empty()) return std::nullopt;
    if (auto* f = o.if_contains("seed")) {
      config.seed = unsigned_number(*f);
      if (!config.seed) {
        error = "seed must be a whole number >= 0";
        return std::nullopt;
      }
    }
    for (auto [key, out] : {std::pair{"delay_ms", &config.delay}, std::pair{"jitter_ms", &config.jitter}}) {
      if (auto* f = o.if_contains(key)) {
        *out = milliseconds(*f);
        if (!*out) {
          error = std::string(key) + " must be a number >= 0";
          return std::nullopt;
        }
      }
    }
    for (auto [key, out] : {std::pair{"stall_ms", &config.stall}, std::pair{"stall_every_ms", &config.stall_every}}) {
      if (auto* f = o.if_contains(key)) {
        auto us = milliseconds(*f);
        if (!us) {
          error = std::string(key) + " must be a number >= 0";
          return std::nullopt;
        }
        *out = std::chrono::duration_cast<std::chrono::milliseconds>(*us);
      }
    }
    rules = o.if_contains("rules");
  } else {
    error = "the document must be an object or an array of rules";
    return std::nullopt;
  }
  if (rules) {
    if (!rules->is_array() || rules->get_array().size() > max_rules) {
      error = "rules must be an array of at most 1000 rules";
      return std::nullopt;
    }
    config.rules.emplace();
    for (std::size_t i = 0; i < rules->get_array().size(); ++i) {
      auto r = parse_rule(rules->get_array()[i], error);
      if (!r) {
        error = "rules[" + std::to_string(i) + "]: " + error;
        return std::nullopt;
      }
      config.rules->push_back(std::move(*r));
    }
  }
  error.clear();
  return config;
}

void apply_config(fault_proxy& proxy, const fault_config& config) {
  if (config.seed) proxy.set_seed(*config.seed);
  if (config.rules) proxy.set_rules(*config.rules);
  if (config.delay || config.jitter) {
    proxy.set_delay(config.delay.value_or(std::chrono::microseconds(0)),
                    config.jitter.value_or(std::chrono::microseconds(0)));
  }
  if (config.stall || config.stall_every) {
    proxy.set_stall(config.stall.value_or(std::chrono::milliseconds(0)),
                    config.stall_every.value_or(std::chrono::milliseconds(0)));
  }
}

std::string stats_json(const fault_stats& stats, std::size_t recent) {
  json::object out;
  out["requests"] = stats.requests;
  out["connections"] = stats.connections;
  json::array rules;
  for (std::size_t i = 0; i < stats.rule_names.size(); ++i) {
    rules.push_back(json::object{{"name", stats.rule_names[i]}, {"fired", stats.fired[i]}});
  }
  out["rules"] = std::move(rules);
  json::array records;
  const std::size_t first = stats.records.size() > recent ? stats.records.size() - recent : 0;
  for (std::size_t i = first; i < stats.records.size(); ++i) {
    const request_record& r = stats.records[i];
    json::object o{{"id", r.id}, {"method", r.method}, {"target", r.target}, {"status", r.status}};
    o["fault"] = r.fault ? json::value(to_string(*r.fault)) : json::value(nullptr);
    o["rule"] = r.rule ? json::value(*r.rule) : json::value(nullptr);
    records.push_back(std::move(o));
  }
  out["recent"] = std::move(records);
  return json::serialize(out);
}

std::optional<std::chrono::microseconds> parse_duration(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || !(value >= 0) || value > 1e12) return std::nullopt;
  const std::string_view unit(end, text.data() + text.size() - end);
  double us = 0;
  if (unit.empty() || unit == "ms") {
    us = value * 1e3;
  } else if (unit == "us") {
    us = value;
  } else if (unit == "s") {
    us = value * 1e6;
  } else if (unit == "m") {
    us = value * 60e6;
  } else {
    return std::nullopt;
  }
  return std::chrono::microseconds(static_cast<std::int64_t>(std::llround(us)));
}

}  // namespace ferry::test
