#pragma once
// The job-creating commands (copy, sync, mirror): one set of options shared by the three, its
// translation into job.create params, and when --wait is done. Header-only so that the unit tests
// can use it without linking ferryctl. Sizes and durations are parsed here; ranges and which
// option suits which kind are ferryd's to check (so that its message is the one operators see).
#include "proto/messages.hpp"
#include "util/failure.hpp"
#include "util/units.hpp"

#include <CLI/CLI.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::ctl {

// The command line of `ferryctl copy|sync|mirror`, as typed.
struct create_options {
  std::string kind{proto::kind_copy};
  std::string source, destination;
  std::optional<std::string> name;
  std::optional<std::string> copy_mode;
  std::optional<int> priority;
  bool delete_extraneous = false;
  std::optional<std::uint64_t> max_delete;
  bool force = false;
  std::vector<std::string> include, exclude;
  std::optional<std::string> min_size, max_size;          // SIZE: "10M", "1GiB"
  std::optional<std::string> min_age, max_age, interval;  // DUR: "90s", "5m", "2h"
  bool checksum = false;
  bool size_only = false;
  bool dry_run = false;
  bool wait = false;
  std::optional<std::string> bwlimit;   // RATE: "10M", "10M:2M" (upload:download), "off"
  std::optional<std::string> schedule;  // TIMETABLE: "Mon-08:00,512K 19:00,10M 23:00,off"
  std::optional<std::uint64_t> concurrency;
  std::optional<std::string> part_size;  // SIZE
};

// Adds the subcommand `kind` ("copy", "sync" or "mirror") to `app`, filling `o` when parsed.
inline CLI::App* add_create_command(CLI::App& app, std::string_view kind, std::string_view description,
                                    create_options& o) {
  o.kind = std::string(kind);
  auto* c = app.add_subcommand(std::string(kind), std::string(description));
  c->add_option("SRC", o.source, "source location")->required();
  c->add_option("DST", o.destination, "destination location")->required();
  c->add_option("--name", o.name, "a name for the job")->type_name("NAME");
  c->add_option("--copy-mode", o.copy_mode,
                "auto: server-side copy where possible (default); server: server-side or fail; stream: through ferryd")
      ->check(CLI::IsMember({"auto", "server", "stream"}));
  c->add_option("--priority", o.priority, "the job's weight in sharing transfer slots, 1 to 100 (default 10)")
      ->type_name("P");
  c->add_flag("--delete", o.delete_extraneous, "sync/mirror: delete destination objects the source does not have");
  c->add_option("--max-delete", o.max_delete,
                "refuse a pass's deletions beyond N objects (default: 10% of the destination's objects)")
      ->type_name("N");
  c->add_flag("--force", o.force, "delete even beyond --max-delete");
  // One pattern per occurrence: otherwise `--include '*.jpg' SRC DST` would swallow SRC and DST.
  c->add_option("--include", o.include, "only objects whose key matches this glob (repeatable)")
      ->allow_extra_args(false)
      ->type_name("GLOB");
  c->add_option("--exclude", o.exclude, "skip objects whose key matches this glob (repeatable)")
      ->allow_extra_args(false)
      ->type_name("GLOB");
  c->add_option("--min-size", o.min_size, "only objects of at least SIZE (e.g. 10M, 1GiB)")->type_name("SIZE");
  c->add_option("--max-size", o.max_size, "only objects of at most SIZE")->type_name("SIZE");
  c->add_option("--min-age", o.min_age, "only objects unchanged for at least DUR (e.g. 90s, 5m, 2h, 7d)")
      ->type_name("DUR");
  c->add_option("--max-age", o.max_age, "only objects changed within DUR")->type_name("DUR");
  c->add_flag("--checksum", o.checksum, "decide what changed by content hashes, not times");
  c->add_flag("--size-only", o.size_only, "decide what changed by size alone");
  c->add_flag("--dry-run", o.dry_run, "plan only: show what would be copied and deleted (implies --wait)");
  c->add_option("--interval", o.interval, "mirror: time between passes (default 60s, at most 7d)")->type_name("DUR");
  c->add_option(
       "--bwlimit", o.bwlimit,
       "cap this job's bandwidth: RATE in bytes/s (10M, 512K; UP:DOWN like 10M:2M; off); global caps apply too")
      ->type_name("RATE");
  c->add_option("--schedule", o.schedule,
                "a timetable of caps, rclone's syntax: \"Mon-08:00,512K 19:00,10M 23:00,off\" (instead of --bwlimit)")
      ->type_name("TIMETABLE");
  c->add_option("--concurrency", o.concurrency,
                "fixed requests in flight per endpoint (default: adaptive, measured per path)")
      ->type_name("N");
  c->add_option("--part-size", o.part_size, "fixed multipart part size, 5MiB..5GiB (default: adaptive)")
      ->type_name("SIZE");
  c->add_flag("--wait", o.wait,
              kind == proto::kind_mirror
                  ? "wait for the first pass, showing progress; the mirror keeps running (Ctrl-C stops waiting only)"
                  : "wait for the job to finish, showing progress (Ctrl-C stops waiting only)");
  return c;
}

namespace args_detail {

using number_arg = boost::system::result<std::optional<std::uint64_t>, std::string>;

inline number_arg size_arg(std::string_view flag, const std::optional<std::string>& text) {
  if (!text) return std::optional<std::uint64_t>{};
  auto n = util::parse_size(*text);
  if (!n) return util::failure(std::string(flag) + ": " + n.error());
  return std::optional<std::uint64_t>(*n);
}

// Whole seconds: the protocol counts ages and intervals in seconds.
inline number_arg seconds_arg(std::string_view flag, const std::optional<std::string>& text) {
  if (!text) return std::optional<std::uint64_t>{};
  auto d = util::parse_duration(*text);
  if (!d) return util::failure(std::string(flag) + ": " + d.error());
  if (d->count() < 0 || d->count() % 1000 != 0)
    return util::failure(std::string(flag) + ": '" + *text + "' is not a whole number of seconds");
  return std::optional<std::uint64_t>(static_cast<std::uint64_t>(d->count() / 1000));
}

}  // namespace args_detail

// The job.create params for `o` (locations exactly as given), or a usage error naming the option.
inline boost::system::result<proto::job_create_params, std::string> make_create_params(const create_options& o) {
  proto::job_create_params p;
  p.kind = o.kind;
  p.source = o.source;
  p.destination = o.destination;
  p.name = o.name;
  p.copy_mode = o.copy_mode;
  p.priority = o.priority;
  auto& opt = p.options;
  opt.delete_extraneous = o.delete_extraneous;
  opt.max_delete = o.max_delete;
  opt.force = o.force;
  opt.include = o.include;
  opt.exclude = o.exclude;
  opt.checksum = o.checksum;
  opt.size_only = o.size_only;
  opt.dry_run = o.dry_run;
  if (o.bwlimit && o.schedule)
    return util::failure(std::string("--bwlimit and --schedule: give one (a timetable may hold a single rate)"));
  opt.bwlimit = o.schedule ? o.schedule : o.bwlimit;
  opt.concurrency = o.concurrency;
  const struct {
    std::string_view flag;
    const std::optional<std::string>& text;
    std::optional<std::uint64_t>& out;
    bool is_size;
  } numbers[] = {
      {"--min-size", o.min_size, opt.min_size, true},  {"--max-size", o.max_size, opt.max_size, true},
      {"--min-age", o.min_age, opt.min_age, false},    {"--max-age", o.max_age, opt.max_age, false},
      {"--interval", o.interval, opt.interval, false}, {"--part-size", o.part_size, opt.part_size, true},
  };
  for (const auto& n : numbers) {
    auto v = n.is_size ? args_detail::size_arg(n.flag, n.text) : args_detail::seconds_arg(n.flag, n.text);
    if (!v) return util::failure(v.error());
    n.out = *v;
  }
  return p;
}

// --wait, and a dry run (which ends by itself and whose plan is the answer), wait.
inline bool waits(const create_options& o) { return o.wait || o.dry_run; }

// Waiting is over when the job has ended or was paused, or, for a mirror (which runs until
// cancelled), when its first pass has completed.
inline bool wait_done(const proto::job& j) {
  return proto::is_terminal(j.state) || j.state == proto::job_state::paused ||
         (j.kind == proto::kind_mirror && j.passes >= 1);
}

// The verdict of a finished wait: no failed object and no job error, and the job succeeded (a
// mirror: still runs after its first pass).
inline bool wait_ok(const proto::job& j) {
  if (j.objects.failed > 0 || j.error) return false;
  if (proto::is_terminal(j.state)) return j.state == proto::job_state::succeeded;
  return j.kind == proto::kind_mirror && j.passes >= 1;
}

}  // namespace ferry::ctl
