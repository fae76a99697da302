// ferry_fault_proxy: the fault proxy as a process, for bench and soak scripts (README.md in this folder).
//   ferry_fault_proxy --listen 127.0.0.1:0 --upstream 127.0.0.1:9000 --delay 25ms --jitter 2ms
//                     --rules storm.json --control 127.0.0.1:0
// Prints "listening on ADDRESS:PORT" (and "control on ADDRESS:PORT") once ready; runs until SIGINT/SIGTERM.
#include "fault/fault_config.hpp"
#include "fault/fault_control.hpp"
#include "fault/fault_proxy.hpp"

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>

namespace {

using ferry::test::parse_duration;

// "HOST:PORT" (the last colon splits; "[::1]:80" loses its brackets).
bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned long n = 0;
  try {
    std::size_t used = 0;
    n = std::stoul(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || n > 65535) return false;
  } catch (const std::exception&) {
    return false;
  }
  port = static_cast<std::uint16_t>(n);
  return true;
}

int fail(const std::string& message) {
  std::cerr << "ferry_fault_proxy: " << message << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"HTTP fault-injection and network-emulation proxy (plain HTTP only)"};
  std::string listen = "127.0.0.1:0", upstream, rules_file, control;
  std::string delay = "0", jitter = "0", stall = "0", stall_every = "0";
  std::uint64_t seed = 1;
  std::size_t queue_limit = 8 << 20;
  app.add_option("--listen", listen, "ADDRESS:PORT to accept clients on (port 0: any)")->capture_default_str();
  app.add_option("--upstream", upstream, "HOST:PORT of the plain-HTTP server to relay to")->required();
  app.add_option("--delay", delay, "one-way delay each direction, e.g. 25ms (RTT = 2 x delay)");
  app.add_option("--jitter", jitter, "uniform jitter added to the delay, +/-, e.g. 2ms (order is kept)");
  app.add_option("--stall", stall, "stop all relaying this long (with --stall-every: periodically)");
  app.add_option("--stall-every", stall_every, "period of the --stall stalls, e.g. 30s");
  app.add_option("--rules", rules_file, "rules document (JSON, README.md)");
  app.add_option("--control", control, "ADDRESS:PORT for PUT /rules and GET /stats");
  app.add_option("--seed", seed, "seed of the share draws")->capture_default_str();
  app.add_option("--queue-limit", queue_limit, "bytes queued per direction per connection before reads pause")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  ferry::test::fault_proxy_options options;
  options.seed = seed;
  options.queue_limit = queue_limit;
  if (!split_host_port(listen, options.listen_address, options.listen_port)) return fail("bad --listen " + listen);
  if (!split_host_port(upstream, options.upstream_host, options.upstream_port)) {
    return fail("bad --upstream " + upstream);
  }
  auto d = parse_duration(delay), j = parse_duration(jitter), s = parse_duration(stall),
       every = parse_duration(stall_every);
  if (!d || !j || !s || !every) return fail("bad duration (use 25ms, 1.5s, 500us, 2m)");
  options.delay = *d;
  options.jitter = *j;
  std::optional<ferry::test::fault_config> config;
  if (!rules_file.empty()) {
    std::ifstream in(rules_file, std::ios::binary);
    if (!in) return fail("cannot read " + rules_file);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string error;
    config = ferry::test::parse_fault_config(text, error);
    if (!config) return fail(rules_file + ": " + error);
  }
  std::string control_host;
  std::uint16_t control_port = 0;
  if (!control.empty() && !split_host_port(control, control_host, control_port)) {
    return fail("bad --control " + control);
  }

  // Blocked before any thread starts, so only sigwait below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  try {
    ferry::test::fault_proxy proxy(options);
    if (config) ferry::test::apply_config(proxy, *config);  // the file's delay wins over --delay
    if (*s > std::chrono::microseconds(0)) {
      proxy.set_stall(std::chrono::duration_cast<std::chrono::milliseconds>(*s),
                      std::chrono::duration_cast<std::chrono::milliseconds>(*every));
    }
    std::optional<ferry::test::fault_control> control_server;
    if (!control.empty()) control_server.emplace(proxy, control_host, control_port);
    std::cout << "listening on " << options.listen_address << ":" << proxy.port() << " -> " << upstream << "\n";
    if (control_server) std::cout << "control on " << control_host << ":" << control_server->port() << "\n";
    std::cout.flush();
    int sig = 0;
    sigwait(&signals, &sig);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}
