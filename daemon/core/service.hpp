#pragma once
// ferryd as a running service: io threads, one S3 client per remote, the job manager, and the
// control socket that exposes them (proto/PROTOCOL.md). main() only parses flags and calls run().
#include "core/config.hpp"

#include <memory>
#include <string>

namespace ferry::daemon {

class service {
 public:
  // Resolves every remote's credentials and builds the clients; throws std::runtime_error with an
  // operator-readable reason when that fails (startup only).
  explicit service(daemon_config cfg);
  ~service();

  // Serves until SIGTERM or SIGINT (or stop()); returns the process exit code.
  int run();
  // Asks run() to return; safe from any thread.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ferry::daemon
