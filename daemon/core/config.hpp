#pragma once
// ferryd's configuration: the TOML file (config/ferryd.toml documents every key) mapped one to
// one onto structs. Unknown keys and bad values are errors that name file:line.
#include "http/client.hpp"
#include "s3/client.hpp"
#include "sync/job_manager.hpp"

#include <boost/system/result.hpp>

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::daemon {

struct daemon_config {
  std::string path;                               // the file it was read from (load_config); SIGHUP reads it again
  std::string socket = "/run/ferry/ferryd.sock";  // control socket (JSON-RPC, see proto/PROTOCOL.md)
  std::string state_dir = "/var/lib/ferry";
  unsigned threads = 0;  // io threads; 0 = one per core
  std::string log_level = "info";
  // Members of this group may use the control socket too (besides root and ferryd's own user);
  // "" for none. Resolved when the config is read: an unknown group is a config error.
  std::string control_group;
  std::optional<gid_t> control_gid;
  // SIGTERM: how long in-flight parts may take to finish before ferryd exits anyway.
  std::chrono::milliseconds shutdown_grace{20'000};
  struct metrics_config {
    std::string listen;         // "127.0.0.1:9464" serves GET /metrics; "" (default): no listener
    bool allow_remote = false;  // listen on an address other than loopback
  } metrics;                    // [metrics]
  // [limits] bwlimit: the global cap, a rate or a timetable (rclone's syntax); "off" = none.
  std::string bwlimit = "off";
  http::timeouts timeouts;                           // [http]
  sync::engine_config engine;                        // [transfer]
  s3::retry_config retry;                            // [retry]
  s3::tuning_config tuning;                          // [transfer] *_concurrency: the adaptive limit per remote
  std::map<std::string, s3::remote_config> remotes;  // [remotes.NAME]
};

// Parses TOML text; `source` names it in errors ("/etc/ferry/ferryd.toml:12: ...").
boost::system::result<daemon_config, std::string> parse_config(std::string_view text, std::string_view source);
boost::system::result<daemon_config, std::string> load_config(const std::string& path);

}  // namespace ferry::daemon
