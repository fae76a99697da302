#include "core/config.hpp"
#include "util/failure.hpp"

#include "ratelimit/timetable.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <toml++/toml.h>
#include <boost/asio/ip/address.hpp>

#include <grp.h>

#include <fstream>
#include <set>
#include <sstream>

namespace ferry::daemon {
namespace {

// Config errors carry file:line so the operator can go straight to the offending key.
struct config_error {
  std::string text;
};

std::string where(std::string_view source, const toml::node& n) {
  return std::string(source) + ":" + std::to_string(n.source().begin.line);
}

void reject_unknown(const toml::table& t, const std::set<std::string>& known, std::string_view source,
                    std::string_view section) {
  for (const auto& [k, v] : t) {
    if (!known.contains(std::string(k.str())))
      throw config_error{where(source, v) + ": unknown key '" + std::string(k.str()) + "'" +
                         (section.empty() ? "" : " in [" + std::string(section) + "]")};
  }
}

template <class T>
T get_or(const toml::table& t, std::string_view key, T fallback, std::string_view source) {
  const toml::node* n = t.get(key);
  if (!n) return fallback;
  auto v = n->value<T>();
  if (!v) {
    std::string type = std::is_same_v<T, std::string> ? "a string"
                       : std::is_same_v<T, bool>      ? "true or false"
                                                      : "a number";
    throw config_error{where(source, *n) + ": '" + std::string(key) + "' must be " + type};
  }
  return *v;
}

std::chrono::milliseconds duration_or(const toml::table& t, std::string_view key, std::chrono::milliseconds fallback,
                                      std::string_view source) {
  const toml::node* n = t.get(key);
  if (!n) return fallback;
  auto s = n->value<std::string>();
  if (!s) throw config_error{where(source, *n) + ": '" + std::string(key) + "' must be a duration string like \"10s\""};
  auto d = util::parse_duration(*s);
  if (!d) throw config_error{where(source, *n) + ": " + std::string(key) + ": " + d.error()};
  return *d;
}

std::int64_t int_in(const toml::table& t, std::string_view key, std::int64_t fallback, std::int64_t lo, std::int64_t hi,
                    std::string_view source) {
  auto v = get_or<std::int64_t>(t, key, fallback, source);
  if (v < lo || v > hi)
    throw config_error{where(source, *t.get(key)) + ": '" + std::string(key) + "' must be between " +
                       std::to_string(lo) + " and " + std::to_string(hi)};
  return v;
}

// A size as a string ("64MiB") within [lo, hi].
std::uint64_t size_in(const toml::table& t, std::string_view key, std::uint64_t fallback, std::uint64_t lo,
                      std::uint64_t hi, std::string_view source) {
  const toml::node* n = t.get(key);
  if (!n) return fallback;
  auto s = n->value<std::string>();
  if (!s) throw config_error{where(source, *n) + ": '" + std::string(key) + "' must be a size string like \"64MiB\""};
  auto v = util::parse_size(*s);
  if (!v) throw config_error{where(source, *n) + ": " + std::string(key) + ": " + v.error()};
  if (*v < lo || *v > hi)
    throw config_error{where(source, *n) + ": '" + std::string(key) + "' must be between " + util::format_bytes(lo) +
                       " and " + util::format_bytes(hi)};
  return *v;
}

s3::remote_config parse_remote(const std::string& name, const toml::table& t, std::string_view source,
                               const s3::retry_config& retry) {
  reject_unknown(t,
                 {"endpoint", "region", "path_style", "access_key_id", "secret_access_key", "session_token",
                  "credentials", "ca_file", "max_connections"},
                 source, "remotes." + name);
  s3::remote_config r;
  r.name = name;
  r.endpoint = get_or<std::string>(t, "endpoint", "", source);
  if (r.endpoint.empty()) throw config_error{where(source, t) + ": [remotes." + name + "] needs an endpoint"};
  if (!http::parse_origin(r.endpoint))
    throw config_error{where(source, *t.get("endpoint")) + ": endpoint '" + r.endpoint +
                       "' is not a URL like https://s3.eu-west-1.amazonaws.com"};
  r.region = get_or<std::string>(t, "region", "us-east-1", source);
  r.path_style = get_or<bool>(t, "path_style", false, source);
  r.credentials.access_key_id = get_or<std::string>(t, "access_key_id", "", source);
  r.credentials.secret_access_key = get_or<std::string>(t, "secret_access_key", "", source);
  r.credentials.session_token = get_or<std::string>(t, "session_token", "", source);
  r.credentials.source = get_or<std::string>(t, "credentials", "", source);
  const bool static_keys = !r.credentials.access_key_id.empty() || !r.credentials.secret_access_key.empty();
  if (static_keys && !r.credentials.source.empty())
    throw config_error{where(source, t) + ": [remotes." + name + "] has both static keys and 'credentials'; keep one"};
  if (!static_keys && r.credentials.source.empty())
    throw config_error{where(source, t) + ": [remotes." + name +
                       "] needs access_key_id + secret_access_key, or credentials = \"env\" | \"profile:NAME\" | "
                       "\"systemd:NAME\""};
  r.ca_file = get_or<std::string>(t, "ca_file", "", source);
  r.max_connections = static_cast<std::size_t>(int_in(t, "max_connections", 256, 1, 65536, source));
  r.retry = retry;
  return r;
}

daemon_config parse(const toml::table& root, std::string_view source) {
  reject_unknown(root,
                 {"socket", "state_dir", "threads", "log_level", "control_group", "shutdown_grace", "http", "transfer",
                  "sync", "state", "retry", "metrics", "limits", "remotes"},
                 source, "");
  daemon_config c;
  c.socket = get_or<std::string>(root, "socket", c.socket, source);
  c.state_dir = get_or<std::string>(root, "state_dir", c.state_dir, source);
  c.threads = static_cast<unsigned>(int_in(root, "threads", 0, 0, 1024, source));
  c.log_level = get_or<std::string>(root, "log_level", c.log_level, source);
  c.control_group = get_or<std::string>(root, "control_group", "", source);
  if (!c.control_group.empty()) {
    std::vector<char> buf(16384);
    group gr{};
    group* found = nullptr;
    if (::getgrnam_r(c.control_group.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || !found)
      throw config_error{where(source, *root.get("control_group")) + ": control_group '" + c.control_group +
                         "' is not a group on this host (getent group " + c.control_group + ")"};
    c.control_gid = gr.gr_gid;
  }
  c.shutdown_grace = duration_or(root, "shutdown_grace", c.shutdown_grace, source);
  if (c.shutdown_grace < std::chrono::milliseconds(0) || c.shutdown_grace > std::chrono::hours(1))
    throw config_error{where(source, *root.get("shutdown_grace")) + ": shutdown_grace must be between 0s and 1h"};
  if (const auto* m = root.get_as<toml::table>("metrics")) {
    reject_unknown(*m, {"listen", "allow_remote"}, source, "metrics");
    c.metrics.listen = get_or<std::string>(*m, "listen", "", source);
    c.metrics.allow_remote = get_or<bool>(*m, "allow_remote", false, source);
    if (!c.metrics.listen.empty()) {
      const auto at = where(source, *m->get("listen"));
      const auto colon = c.metrics.listen.rfind(':');
      std::string host = colon == std::string::npos ? std::string() : c.metrics.listen.substr(0, colon);
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      boost::system::error_code ec;
      const auto addr = boost::asio::ip::make_address(host, ec);
      if (colon == std::string::npos || ec)
        throw config_error{at + ": listen must be ADDRESS:PORT with an IP address, e.g. \"127.0.0.1:9464\""};
      if (!addr.is_loopback() && !c.metrics.allow_remote)
        throw config_error{at + ": listen " + c.metrics.listen +
                           " is not a loopback address: set allow_remote = true to serve metrics beyond this host"};
    }
  }
  if (const auto* l = root.get_as<toml::table>("limits")) {
    reject_unknown(*l, {"bwlimit"}, source, "limits");
    c.bwlimit = get_or<std::string>(*l, "bwlimit", "off", source);
    if (auto tt = ratelimit::timetable::parse(c.bwlimit); !tt)
      throw config_error{where(source, *l->get("bwlimit")) + ": bwlimit: " + tt.error()};
  }
  if (!util::valid_log_level(c.log_level))
    throw config_error{where(source, *root.get("log_level")) +
                       ": log_level must be one of trace, debug, info, warn, "
                       "error, critical, off"};
  if (const auto* h = root.get_as<toml::table>("http")) {
    reject_unknown(*h, {"connect_timeout", "tls_timeout", "first_byte_timeout", "idle_timeout", "keepalive"}, source,
                   "http");
    c.timeouts.connect = duration_or(*h, "connect_timeout", c.timeouts.connect, source);
    c.timeouts.tls_handshake = duration_or(*h, "tls_timeout", c.timeouts.tls_handshake, source);
    c.timeouts.first_byte = duration_or(*h, "first_byte_timeout", c.timeouts.first_byte, source);
    c.timeouts.idle = duration_or(*h, "idle_timeout", c.timeouts.idle, source);
    c.timeouts.keepalive = duration_or(*h, "keepalive", c.timeouts.keepalive, source);
  }
  if (const auto* tr = root.get_as<toml::table>("transfer")) {
    reject_unknown(*tr,
                   {"object_concurrency", "object_attempts", "multipart_threshold", "part_size", "part_concurrency",
                    "memory_budget", "sha256", "small_object_slots", "medium_object_slots", "large_object_slots",
                    "small_object_size", "max_part_size", "min_concurrency", "max_concurrency", "initial_concurrency"},
                   source, "transfer");
    c.engine.object_concurrency =
        static_cast<int>(int_in(*tr, "object_concurrency", c.engine.object_concurrency, 1, 100000, source));
    auto& l = c.engine.lanes;
    l.small_slots = static_cast<int>(int_in(*tr, "small_object_slots", l.small_slots, 1, 4096, source));
    l.medium_slots = static_cast<int>(int_in(*tr, "medium_object_slots", l.medium_slots, 1, 4096, source));
    l.large_slots = static_cast<int>(int_in(*tr, "large_object_slots", l.large_slots, 1, 4096, source));
    l.small_below = size_in(*tr, "small_object_size", l.small_below, 1, 5ull << 30, source);
    c.engine.object_attempts = static_cast<int>(int_in(*tr, "object_attempts", 3, 1, 100, source));
    auto& t = c.engine.transfer;
    t.multipart_threshold = size_in(*tr, "multipart_threshold", t.multipart_threshold, 5ull << 20, 5ull << 30, source);
    t.part_size = size_in(*tr, "part_size", t.part_size, 5ull << 20, 5ull << 30, source);
    // A part size set here is fixed; otherwise it is the floor of the measured, adaptive one.
    t.adaptive_part_size = tr->get("part_size") == nullptr;
    t.part_size_ceiling = size_in(*tr, "max_part_size", t.part_size_ceiling, 5ull << 20, 5ull << 30, source);
    auto& cc = c.tuning.controller;
    cc.min_limit = static_cast<std::size_t>(int_in(*tr, "min_concurrency", 4, 1, 4096, source));
    cc.max_limit = static_cast<std::size_t>(int_in(*tr, "max_concurrency", 256, 1, 4096, source));
    cc.initial_limit = static_cast<std::size_t>(int_in(*tr, "initial_concurrency", 16, 1, 4096, source));
    if (cc.min_limit > cc.max_limit || cc.initial_limit < cc.min_limit || cc.initial_limit > cc.max_limit)
      throw config_error{where(source, *tr) +
                         ": [transfer] needs min_concurrency <= initial_concurrency <= max_concurrency"};
    t.part_concurrency = static_cast<int>(int_in(*tr, "part_concurrency", t.part_concurrency, 1, 256, source));
    t.sha256 = get_or<bool>(*tr, "sha256", t.sha256, source);
    c.engine.memory_budget = size_in(*tr, "memory_budget", c.engine.memory_budget, 16ull << 20, 1ull << 40, source);
  }
  // Objects at or above the multipart threshold are the large lane's.
  c.engine.lanes.large_from = std::max(c.engine.transfer.multipart_threshold, c.engine.lanes.small_below + 1);
  if (const auto* sy = root.get_as<toml::table>("sync")) {
    reject_unknown(*sy, {"mirror_interval", "mirror_full_every", "watch_settle"}, source, "sync");
    c.engine.mirror_interval = std::chrono::duration_cast<std::chrono::seconds>(
        duration_or(*sy, "mirror_interval", std::chrono::milliseconds(c.engine.mirror_interval), source));
    if (c.engine.mirror_interval.count() < 1)
      throw config_error{where(source, *sy->get("mirror_interval")) + ": mirror_interval must be at least 1s"};
    c.engine.mirror_full_every =
        static_cast<int>(int_in(*sy, "mirror_full_every", c.engine.mirror_full_every, 1, 1000000, source));
    c.engine.watch_settle = std::chrono::duration_cast<std::chrono::milliseconds>(
        duration_or(*sy, "watch_settle", c.engine.watch_settle, source));
  }
  if (const auto* st = root.get_as<toml::table>("state")) {
    reject_unknown(*st, {"durability"}, source, "state");
    const auto d = get_or<std::string>(*st, "durability", "wal", source);
    if (d == "wal")
      c.engine.progress_durability = state::durability::wal;
    else if (d == "fsync")
      c.engine.progress_durability = state::durability::fsync;
    else
      throw config_error{where(source, *st->get("durability")) + ": durability must be \"wal\" or \"fsync\""};
  }
  if (const auto* rt = root.get_as<toml::table>("retry")) {
    reject_unknown(*rt, {"max_attempts"}, source, "retry");
    c.retry.max_attempts = static_cast<int>(int_in(*rt, "max_attempts", c.retry.max_attempts, 1, 100, source));
  }
  if (const auto* n = root.get("remotes")) {
    const auto* remotes = n->as_table();
    if (!remotes) throw config_error{where(source, *n) + ": 'remotes' must be a table of [remotes.NAME] sections"};
    for (const auto& [name, v] : *remotes) {
      const auto* t = v.as_table();
      if (!t) throw config_error{where(source, v) + ": remotes." + std::string(name.str()) + " must be a table"};
      std::string nm(name.str());
      for (char ch : nm)
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-'))
          throw config_error{where(source, v) + ": remote name '" + nm + "' may hold only letters, digits, '_', '-'"};
      c.remotes.emplace(nm, parse_remote(nm, *t, source, c.retry));
    }
  }
  return c;
}

}  // namespace

boost::system::result<daemon_config, std::string> parse_config(std::string_view text, std::string_view source) {
  try {
    auto root = toml::parse(text, source);
    return parse(root, source);
  } catch (const toml::parse_error& e) {
    return util::failure(std::string(source) + ":" + std::to_string(e.source().begin.line) + ": " +
                         std::string(e.description()));
  } catch (const config_error& e) {
    return util::failure(e.text);
  }
}

boost::system::result<daemon_config, std::string> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::failure("cannot read config file " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  auto c = parse_config(ss.str(), path);
  if (c) c->path = path;
  return c;
}

}  // namespace ferry::daemon
