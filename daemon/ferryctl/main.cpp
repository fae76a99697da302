// ferryctl: the operator's client for ferryd. Talks JSON-RPC over ferryd's control socket
// (proto/PROTOCOL.md). Exit codes: 0 ok, 1 the job or the request failed, 2 usage, 3 cannot reach
// ferryd, 130 interrupted while waiting.
#include "commands.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdlib>

int main(int argc, char** argv) {
  namespace ctl = ferry::ctl;
  CLI::App app{"ferryctl: control ferryd, the Ferry S3 transfer daemon"};
  app.footer(
      "Locations: REMOTE:BUCKET[/PREFIX] (a remote of ferryd's config) or an absolute path on ferryd's host\n"
      "(./ and ../ paths are made absolute here).\n"
      "Exit codes: 0 ok; 1 the job failed or ferryd refused the request; 2 usage error; 3 cannot reach\n"
      "ferryd; 130 interrupted while waiting (the job keeps running).");
  app.set_version_flag("--version", std::string(FERRY_VERSION));
  app.require_subcommand(1);
  app.fallthrough();

  ctl::globals g;
  if (const char* env = std::getenv("FERRY_SOCKET"); env != nullptr && *env != '\0') g.socket = env;
  app.add_option("--socket", g.socket, "ferryd's control socket ($FERRY_SOCKET)")->capture_default_str();
  app.add_flag("--json", g.json, "print results as JSON (one line, as ferryd sent it)");

  ctl::copy_options copy;
  auto* c = app.add_subcommand("copy", "copy every object from SRC to DST (a job run by ferryd)");
  c->add_option("SRC", copy.source, "source location")->required();
  c->add_option("DST", copy.destination, "destination location")->required();
  c->add_option("--name", copy.name, "a name for the job");
  c->add_option("--copy-mode", copy.copy_mode,
                "auto: server-side copy where possible (default); server: server-side or fail; stream: through ferryd")
      ->check(CLI::IsMember({"auto", "server", "stream"}));
  c->add_flag("--wait", copy.wait, "wait for the job to finish, showing progress (Ctrl-C stops waiting only)");

  app.add_subcommand("jobs", "list jobs");

  std::string status_job;
  auto* s = app.add_subcommand("status", "ferryd's status, or one job in detail");
  s->add_option("JOB", status_job, "a job id");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : ctl::exit_usage;
  }

  if (c->parsed()) return ctl::run_copy(g, copy);
  if (app.got_subcommand("jobs")) return ctl::run_jobs(g);
  if (s->parsed()) return status_job.empty() ? ctl::run_daemon_status(g) : ctl::run_job_status(g, status_job);
  return ctl::exit_usage;
}
