// ferryctl: the operator's client for ferryd. Talks JSON-RPC over ferryd's control socket
// (proto/PROTOCOL.md). Exit codes: 0 ok, 1 the job or the request failed, 2 usage, 3 cannot reach
// ferryd, 130 interrupted while waiting.
#include "commands.hpp"
#include "proto/messages.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
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

  // One set of options for the three job kinds: ferryd refuses an option its kind cannot use.
  ctl::create_options create[3];
  CLI::App* creators[] = {
      ctl::add_create_command(app, ferry::proto::kind_copy, "copy every object from SRC to DST (a job run by ferryd)",
                              create[0]),
      ctl::add_create_command(app, ferry::proto::kind_sync,
                              "copy what is new or changed at SRC to DST; --delete removes what SRC does not have",
                              create[1]),
      ctl::add_create_command(app, ferry::proto::kind_mirror,
                              "sync SRC to DST again and again (every --interval) until cancelled", create[2]),
  };

  app.add_subcommand("jobs", "list jobs");

  std::string status_job;
  auto* s = app.add_subcommand("status", "ferryd's status, or one job in detail");
  s->add_option("JOB", status_job, "a job id");

  std::string report_job;
  auto* rep = app.add_subcommand("report", "a job's integrity records: what was verified, how, and what was not");
  rep->add_option("JOB", report_job, "a job id")->required();

  std::string watch_job;
  auto* wat = app.add_subcommand("watch", "follow a job's progress live until it ends (Ctrl-C stops watching only)");
  wat->add_option("JOB", watch_job, "a job id")->required();
  app.add_subcommand("metrics", "ferryd's metrics in the Prometheus text format");

  auto* lim = app.add_subcommand("limits", "bandwidth caps in force (global and per job), and their measured rates");
  auto* lim_set = lim->add_subcommand("set", "change a cap now, without restarting jobs");
  std::string limit_rate;
  std::optional<std::string> limit_job;
  auto* lim_bw = lim_set
                     ->add_option("--bwlimit", limit_rate,
                                  "RATE (10M, 512K, UP:DOWN like 10M:2M, off) or a timetable "
                                  "(\"Mon-08:00,512K 19:00,10M 23:00,off\")")
                     ->type_name("RATE");
  lim_set->add_option("--schedule", limit_rate, "the same as --bwlimit (a timetable)")
      ->type_name("TIMETABLE")
      ->excludes(lim_bw);
  lim_set->add_option("--job", limit_job, "cap this job (default: the global cap, until ferryd restarts or reloads)");

  std::string cancel_job;
  auto* can = app.add_subcommand("cancel", "cancel a job (its transfers stop; a finished job is left as it is)");
  can->add_option("JOB", cancel_job, "a job id")->required();

  std::string pause_job, resume_job, delete_job;
  auto* pau =
      app.add_subcommand("pause", "pause a job (transfers stop, uploads are kept; ferryctl resume JOB goes on)");
  pau->add_option("JOB", pause_job, "a job id")->required();
  auto* res = app.add_subcommand("resume", "resume a paused job (verified objects are not copied again)");
  res->add_option("JOB", resume_job, "a job id")->required();
  auto* del = app.add_subcommand("rm", "forget an ended or paused job and its records");
  del->add_option("JOB", delete_job, "a job id")->required();

  app.add_subcommand("remotes", "the remotes ferryd is configured with (never their secrets)");
  app.add_subcommand("reload", "make ferryd read its config file again (as SIGHUP does); jobs keep running");
  auto* remote = app.add_subcommand("remote", "work with one remote");
  std::string test_name;
  std::optional<std::string> test_bucket;
  auto* test = remote->add_subcommand("test", "reach the remote, check its credentials, report the latency");
  test->add_option("NAME", test_name, "a remote's name")->required();
  test->add_option("--bucket", test_bucket, "HEAD this bucket (default: one no one uses; its 404 is the answer)");
  remote->require_subcommand(1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : ctl::exit_usage;
  }

  for (int i = 0; i < 3; ++i)
    if (creators[i]->parsed()) return ctl::run_create(g, create[i]);
  if (app.got_subcommand("jobs")) return ctl::run_jobs(g);
  if (s->parsed()) return status_job.empty() ? ctl::run_daemon_status(g) : ctl::run_job_status(g, status_job);
  if (rep->parsed()) return ctl::run_report(g, report_job);
  if (wat->parsed()) return ctl::run_watch(g, watch_job);
  if (app.got_subcommand("metrics")) return ctl::run_metrics(g);
  if (lim_set->parsed()) {
    if (limit_rate.empty()) {
      std::fprintf(stderr, "ferryctl: limits set needs --bwlimit RATE (or --schedule TIMETABLE)\n");
      return ctl::exit_usage;
    }
    return ctl::run_limits_set(g, limit_job, limit_rate);
  }
  if (lim->parsed()) return ctl::run_limits(g);
  if (can->parsed()) return ctl::run_cancel(g, cancel_job);
  if (pau->parsed()) return ctl::run_pause(g, pause_job);
  if (res->parsed()) return ctl::run_resume(g, resume_job);
  if (del->parsed()) return ctl::run_delete(g, delete_job);
  if (app.got_subcommand("remotes")) return ctl::run_remotes(g);
  if (app.got_subcommand("reload")) return ctl::run_reload(g);
  if (test->parsed()) return ctl::run_remote_test(g, test_name, test_bucket);
  return ctl::exit_usage;
}
