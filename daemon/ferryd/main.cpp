// ferryd: the Ferry transfer daemon. Reads its config, serves the control socket, runs jobs.
#include "core/config.hpp"
#include "core/service.hpp"
#include "util/hash.hpp"
#include "util/log.hpp"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <malloc.h>
#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  // Staged parts are megabytes each: allocate them with mmap and give them back on free, every
  // time. glibc otherwise raises its mmap threshold after the first free and keeps later parts in
  // the heap, where freed memory stays resident (measured: bench/transfer_rss.sh).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  CLI::App app{"ferryd: S3 transfer daemon (driven by ferryctl over its control socket)"};
  std::string config_path = "/etc/ferry/ferryd.toml";
  bool check_only = false;
  app.add_option("-c,--config", config_path, "config file")->capture_default_str();
  app.add_flag("--check-config", check_only, "validate the config file and exit (0 = valid)");
  app.set_version_flag("--version", std::string(FERRY_VERSION));
  CLI11_PARSE(app, argc, argv);

  auto cfg = ferry::daemon::load_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "ferryd: %s\n", cfg.error().c_str());
    return 2;
  }
  if (check_only) {
    std::printf("%s: OK (%zu remotes)\n", config_path.c_str(), cfg->remotes.size());
    return 0;
  }
  ferry::util::setup_logging(cfg->log_level);
  // MD5 verifies every object: a host whose OpenSSL refuses it (FIPS-only) must not start.
  if (std::string why; !ferry::util::hash_self_test(&why)) {
    spdlog::critical("ferryd cannot start: {}", why);
    return 1;
  }
  try {
    ferry::daemon::service svc(std::move(*cfg));
    return svc.run();
  } catch (const std::exception& e) {
    spdlog::critical("ferryd cannot start: {}", e.what());
    return 1;
  }
}
