#include "commands.hpp"

#include "control/client.hpp"
#include "output.hpp"
#include "proto/messages.hpp"

#include <fmt/format.h>

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>

namespace ferry::ctl {

namespace {

using steady = std::chrono::steady_clock;
using control::call_error;

std::atomic<bool> interrupted{false};
extern "C" void on_sigint(int) { interrupted.store(true); }

// How often ferryd sends --wait and watch an event, how long one may be late, and how often a line
// is printed when stderr is not a terminal.
constexpr auto event_interval = std::chrono::milliseconds(500);
constexpr auto event_grace = std::chrono::seconds(30);
constexpr auto log_interval = std::chrono::seconds(5);

int report(const call_error& e) {
  std::fprintf(stderr, "ferryctl: %s\n", printable(e.message).c_str());
  switch (e.what) {
    case call_error::kind::unreachable:
    case call_error::kind::transport:
      return exit_unreachable;
    case call_error::kind::interrupted:
      return exit_interrupted;
    case call_error::kind::rpc:
      return e.code == proto::code::permission_denied || e.code == proto::code::unavailable ? exit_unreachable
                                                                                            : exit_failed;
  }
  return exit_failed;
}

int report_malformed(const proto::error& e) {
  std::fprintf(stderr, "ferryctl: %s\n", printable(e.message).c_str());
  return exit_unreachable;
}

control::call_result<control::client> connect(const globals& g) {
  control::client_options o;
  o.abort = &interrupted;
  return control::client::connect(g.socket, o);
}

// ferryd resolves paths itself, from its own working directory: make ./x and ../x absolute here.
std::string resolve_local(const std::string& s) {
  if (s == "." || s == ".." || s.starts_with("./") || s.starts_with("../")) {
    std::error_code ec;
    auto p = std::filesystem::absolute(s, ec);
    if (!ec) return p.lexically_normal().string();
  }
  return s;
}

void print_json_line(const std::string& json) { std::fwrite((json + "\n").data(), 1, json.size() + 1, stdout); }

std::chrono::seconds since(proto::timestamp t) {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - t);
}

std::string objects_cell(const proto::job& j) {
  std::string s = fmt::format("{}/{}", j.objects.done, j.objects.total);
  if (j.objects.failed > 0) s += fmt::format(" ({} failed)", j.objects.failed);
  return s;
}

std::string bytes_cell(const proto::job& j) { return bytes(j.bytes.done) + "/" + bytes(j.bytes.total); }

// "in 45s" for a time to come, "3m ago" for one past.
std::string relative(proto::timestamp t) {
  const auto d = since(t);
  return d.count() < 0 ? "in " + duration(-d) : age(d);
}

std::string time_cell(const std::optional<proto::timestamp>& t) {
  if (!t) return "-";
  return proto::format_rfc3339(*t) + " (" + relative(*t) + ")";
}

std::string plan_cell(const proto::plan_counts& c) { return fmt::format("{} ({})", c.objects, bytes(c.bytes)); }

std::string plan_line(const proto::job_plan& p) {
  return fmt::format("{} to copy, {} to delete, {} unchanged", plan_cell(p.to_copy), plan_cell(p.to_delete),
                     plan_cell(p.unchanged));
}

bool is_copy(const proto::job& j) { return j.kind == proto::kind_copy; }
bool is_mirror(const proto::job& j) { return j.kind == proto::kind_mirror; }

// The options that differ from the defaults, as ferryctl's flags: "delete, include *.jpg, interval 5m00s".
std::string options_cell(const proto::job_options& o) {
  std::vector<std::string> parts;
  if (o.delete_extraneous) parts.emplace_back("delete");
  if (o.max_delete) parts.push_back(fmt::format("max-delete {}", *o.max_delete));
  if (o.force) parts.emplace_back("force");
  for (const auto& g : o.include) parts.push_back("include " + printable(g));
  for (const auto& g : o.exclude) parts.push_back("exclude " + printable(g));
  if (o.min_size) parts.push_back("min-size " + bytes(*o.min_size));
  if (o.max_size) parts.push_back("max-size " + bytes(*o.max_size));
  if (o.min_age) parts.push_back("min-age " + duration(std::chrono::seconds(*o.min_age)));
  if (o.max_age) parts.push_back("max-age " + duration(std::chrono::seconds(*o.max_age)));
  if (o.checksum) parts.emplace_back("checksum");
  if (o.size_only) parts.emplace_back("size-only");
  if (o.dry_run) parts.emplace_back("dry run");
  if (o.interval) parts.push_back("interval " + duration(std::chrono::seconds(*o.interval)));
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : ", ") + p;
  return s;
}

// What `jobs` shows beyond the counters: a dry run's plan, deletions, a mirror's passes.
std::string detail_cell(const proto::job& j) {
  std::vector<std::string> parts;
  if (j.options.dry_run)
    parts.push_back(fmt::format("dry run: {} to copy, {} to delete", j.plan.to_copy.objects, j.plan.to_delete.objects));
  else if (j.deleted > 0)
    parts.push_back(fmt::format("{} deleted", j.deleted));
  if (j.delete_refused) parts.emplace_back("deletions refused");
  if (is_mirror(j)) {
    std::string p = fmt::format("{} pass{}", j.passes, j.passes == 1 ? "" : "es");
    if (j.next_pass_at && !proto::is_terminal(j.state)) p += ", next " + relative(*j.next_pass_at);
    parts.push_back(std::move(p));
  }
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : "; ") + p;
  return s;
}

// "j-000001 running  12/40 objects  1.2 GiB/3.0 GiB  45.1 MiB/s  ETA 41s"
std::string progress_line(const proto::job_event& e) {
  const auto& j = e.job;
  std::string s =
      fmt::format("{} {}  {} objects  {}", printable(j.id), proto::to_string(j.state), objects_cell(j), bytes_cell(j));
  if (e.rate_bps > 0) s += "  " + rate(static_cast<double>(e.rate_bps));
  if (e.eta_seconds) s += "  ETA " + duration(std::chrono::seconds(*e.eta_seconds));
  return s;
}

std::size_t terminal_columns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

void print_failures(const proto::job& j) {
  if (j.error) std::fprintf(stderr, "error: %s\n", printable(*j.error).c_str());
  if (j.failures.empty()) return;
  std::fprintf(stderr, "failed objects:\n");
  for (const auto& f : j.failures)
    std::fprintf(stderr, "  %s: %s\n", printable(f.key).c_str(), printable(f.error).c_str());
  if (j.objects.failed > j.failures.size())
    std::fprintf(stderr, "  ... and %llu more\n",
                 static_cast<unsigned long long>(j.objects.failed - j.failures.size()));
}

void print_delete_refused(const proto::job& j) {
  if (j.delete_refused) std::fprintf(stderr, "deletions refused: %s\n", printable(*j.delete_refused).c_str());
}

// A dry run's answer: the plan.
void print_plan(const proto::job& j) {
  const std::vector<std::vector<std::string>> rows{
      {"", "OBJECTS", "BYTES"},
      {"copy", std::to_string(j.plan.to_copy.objects), bytes(j.plan.to_copy.bytes)},
      {"delete", std::to_string(j.plan.to_delete.objects), bytes(j.plan.to_delete.bytes)},
      {"unchanged", std::to_string(j.plan.unchanged.objects), bytes(j.plan.unchanged.bytes)},
  };
  std::fputs(table(rows).c_str(), stdout);
  std::printf("dry run: nothing was changed\n");
  print_delete_refused(j);
  if (!wait_ok(j)) print_failures(j);
}

void print_summary(const proto::job& j) {
  const auto start = j.started_at.value_or(j.created_at);
  const auto end = j.finished_at.value_or(proto::timestamp(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())));
  const auto took = std::chrono::duration_cast<std::chrono::seconds>(end - start);
  std::string line =
      fmt::format("{} {}: {} objects ({} skipped, {} failed), {} in {}", printable(j.id), proto::to_string(j.state),
                  j.objects.done, j.objects.skipped, j.objects.failed, bytes(j.bytes.done), duration(took));
  if (took.count() > 0)
    line += " (" + rate(static_cast<double>(j.bytes.done) / static_cast<double>(took.count())) + ")";
  std::printf("%s\n", line.c_str());
  if (!is_copy(j))
    std::printf("plan: %s; %llu deleted\n", plan_line(j.plan).c_str(), static_cast<unsigned long long>(j.deleted));
  if (is_mirror(j) && !proto::is_terminal(j.state)) {
    std::string next = j.next_pass_at ? " (next pass " + relative(*j.next_pass_at) + ")" : "";
    std::printf("mirror: %llu pass%s done%s; it keeps running until cancelled (ferryctl cancel %s)\n",
                static_cast<unsigned long long>(j.passes), j.passes == 1 ? "" : "es", next.c_str(),
                printable(j.id).c_str());
  }
  print_delete_refused(j);
  if (!wait_ok(j)) print_failures(j);
}

// --wait and `watch`: follows the job through job.events, drawing a live line on a terminal and a
// plain line every few seconds otherwise (or, for `watch --json`, every event as a JSON line).
// `follow` (watch): until the job ends or pauses; otherwise until wait_done().
int wait_for(control::client& c, const globals& g, proto::job j, std::string json, bool dry_run, bool follow) {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked poll() must return
  ::sigaction(SIGINT, &sa, nullptr);

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  const bool json_events = follow && g.json;
  bool printed_events = false;
  bool line_shown = false;
  auto last_log = steady::now();
  auto clear_line = [&] {
    if (line_shown) std::fputs("\r\033[K", stderr);
    line_shown = false;
  };
  auto ended = [&](const proto::job& x) {
    return follow ? (proto::is_terminal(x.state) || x.state == proto::job_state::paused) : wait_done(x);
  };

  if (!ended(j)) {
    proto::job_events_params p{j.id, static_cast<std::uint64_t>(event_interval.count())};
    auto sub = c.call(proto::method::job_events, proto::to_json(p));
    if (!sub) return report(sub.error());
    auto first = proto::parse_job(*sub);
    if (!first) return report_malformed(first.error());
    j = std::move(*first);
    json = std::move(*sub);
  }
  while (!ended(j)) {
    auto n = c.next_notification(proto::notification::job_event, event_interval + event_grace);
    if (!n) {
      clear_line();
      if (n.error().what == call_error::kind::interrupted) break;
      return report(n.error());
    }
    auto e = proto::parse_job_event(*n);
    if (!e) {
      clear_line();
      return report_malformed(e.error());
    }
    j = e->job;
    json = proto::to_json(e->job);
    const auto now = steady::now();
    if (json_events) {
      printed_events = true;
      print_json_line(*n);
      std::fflush(stdout);
    } else if (tty) {
      std::string line = progress_line(*e);
      const std::size_t cols = terminal_columns();
      if (line.size() >= cols) line.resize(cols - 1);
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
      line_shown = true;
    } else if (now - last_log >= log_interval) {
      std::fprintf(stderr, "%s\n", progress_line(*e).c_str());
      last_log = now;
    }
    if (e->final) break;
  }
  clear_line();
  if (!ended(j)) {
    std::fprintf(stderr, "ferryctl: stopped waiting; job %s continues in ferryd (ferryctl status %s)\n",
                 printable(j.id).c_str(), printable(j.id).c_str());
    return exit_interrupted;
  }
  if (json_events && printed_events) {
    // Every event went out already; the last one holds the final job.
  } else if (g.json) {
    print_json_line(json);
    if (!wait_ok(j)) print_failures(j);
  } else if (dry_run) {
    print_plan(j);
  } else {
    print_summary(j);
  }
  if (follow && !proto::is_terminal(j.state)) return j.objects.failed > 0 || j.error ? exit_failed : exit_ok;
  return wait_ok(j) ? exit_ok : exit_failed;
}

}  // namespace

int run_create(const globals& g, const create_options& o) {
  auto p = make_create_params(o);
  if (!p) {
    std::fprintf(stderr, "ferryctl: %s\n", printable(p.error()).c_str());
    return exit_usage;
  }
  p->source = resolve_local(p->source);
  p->destination = resolve_local(p->destination);
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::job_create, proto::to_json(*p));
  if (!r) return report(r.error());
  auto j = proto::parse_job(*r);
  if (!j) return report_malformed(j.error());
  if (waits(o)) return wait_for(*c, g, std::move(*j), std::move(*r), o.dry_run, false);
  if (g.json)
    print_json_line(*r);
  else
    std::printf("%s\n", printable(j->id).c_str());
  return exit_ok;
}

int run_jobs(const globals& g) {
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::job_list, proto::to_json(proto::job_list_params{}));
  if (!r) return report(r.error());
  if (g.json) {
    print_json_line(*r);
    return exit_ok;
  }
  auto l = proto::parse_job_list_result(*r);
  if (!l) return report_malformed(l.error());
  if (l->jobs.empty()) {
    std::printf("no jobs\n");
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows{{"ID", "NAME", "KIND", "STATE", "OBJECTS", "BYTES", "AGE", "DETAIL"}};
  for (const auto& j : l->jobs) {
    std::string name = printable(j.name);
    if (name.empty()) name = "-";
    rows.push_back({printable(j.id), name, printable(j.kind), std::string(proto::to_string(j.state)), objects_cell(j),
                    bytes_cell(j), age(since(j.created_at)), detail_cell(j)});
  }
  std::fputs(table(rows).c_str(), stdout);
  return exit_ok;
}

int run_daemon_status(const globals& g) {
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::daemon_status, proto::to_json(proto::daemon_status_params{}));
  if (!r) return report(r.error());
  if (g.json) {
    print_json_line(*r);
    return exit_ok;
  }
  auto s = proto::parse_daemon_status(*r);
  if (!s) return report_malformed(s.error());
  std::string remotes;
  for (const auto& name : s->remotes) remotes += (remotes.empty() ? "" : ", ") + printable(name);
  std::printf("ferryd %s (pid %lld), up %s\n", printable(s->version).c_str(), static_cast<long long>(s->pid),
              duration(std::chrono::seconds(s->uptime_seconds)).c_str());
  std::printf("jobs: %llu total, %llu queued, %llu running, %llu succeeded, %llu failed, %llu cancelled\n",
              static_cast<unsigned long long>(s->jobs.total), static_cast<unsigned long long>(s->jobs.queued),
              static_cast<unsigned long long>(s->jobs.running), static_cast<unsigned long long>(s->jobs.succeeded),
              static_cast<unsigned long long>(s->jobs.failed), static_cast<unsigned long long>(s->jobs.cancelled));
  std::printf("remotes: %s\n", remotes.empty() ? "(none)" : remotes.c_str());
  const auto& b = s->bandwidth;
  std::printf("bandwidth: cap %s up, %s down (%s); now %s up, %s down\n",
              b.up_bps ? rate(static_cast<double>(b.up_bps)).c_str() : "off",
              b.down_bps ? rate(static_cast<double>(b.down_bps)).c_str() : "off", printable(b.bwlimit).c_str(),
              rate(static_cast<double>(b.rate_up_bps)).c_str(), rate(static_cast<double>(b.rate_down_bps)).c_str());
  if (!s->paths.empty()) {
    auto ms = [](const std::optional<double>& v) { return v ? fmt::format("{:.1f} ms", *v) : std::string("-"); };
    std::vector<std::vector<std::string>> rows{
        {"REMOTE", "QUALITY", "MIN RTT", "SRTT", "THROUGHPUT", "ERRORS", "THROTTLED", "CONCURRENCY", "PART SIZE"}};
    for (const auto& p : s->paths)
      rows.push_back({printable(p.remote), printable(p.quality), ms(p.min_rtt_ms), ms(p.srtt_ms),
                      rate(static_cast<double>(p.throughput_bps)), fmt::format("{:.1f}%", p.error_rate * 100),
                      fmt::format("{:.1f}%", p.throttle_rate * 100),
                      fmt::format("{} ({} in flight)", p.concurrency_limit, p.in_flight),
                      p.part_size ? bytes(p.part_size) : std::string("-")});
    std::fputs(table(rows).c_str(), stdout);
  }
  return exit_ok;
}

namespace {

// Calls a method whose result is a job object. With --json the raw line is printed and nullopt
// returned with `exit` set, as on any failure; otherwise the parsed job.
std::optional<proto::job> call_for_job(const globals& g, std::string_view method, const std::string& params,
                                       int& exit) {
  auto c = connect(g);
  if (!c) {
    exit = report(c.error());
    return std::nullopt;
  }
  auto r = c->call(method, params);
  if (!r) {
    exit = report(r.error());
    return std::nullopt;
  }
  exit = exit_ok;
  if (g.json) {
    print_json_line(*r);
    return std::nullopt;
  }
  auto j = proto::parse_job(*r);
  if (!j) {
    exit = report_malformed(j.error());
    return std::nullopt;
  }
  return std::move(*j);
}

}  // namespace

int run_job_status(const globals& g, const std::string& id) {
  int exit = exit_ok;
  auto j = call_for_job(g, proto::method::job_get, proto::to_json(proto::job_get_params{id}), exit);
  if (!j) return exit;
  std::vector<std::vector<std::string>> rows{
      {"job", printable(j->id)},
      {"name", j->name.empty() ? "-" : printable(j->name)},
      {"kind", printable(j->kind)},
      {"source", printable(j->source)},
      {"destination", printable(j->destination)},
      {"state", std::string(proto::to_string(j->state))},
      {"created", time_cell(j->created_at)},
      {"started", time_cell(j->started_at)},
      {"finished", time_cell(j->finished_at)},
      {"objects", fmt::format("{}/{} done ({} skipped), {} failed", j->objects.done, j->objects.total,
                              j->objects.skipped, j->objects.failed)},
      {"bytes", bytes_cell(*j)},
      {"priority", std::to_string(j->priority)},
  };
  if (const auto o = options_cell(j->options); !o.empty()) rows.push_back({"options", o});
  if (!is_copy(*j) || j->options.dry_run) rows.push_back({"plan", plan_line(j->plan)});
  if (!is_copy(*j)) {
    rows.push_back({"deleted", std::to_string(j->deleted)});
    if (j->delete_refused) rows.push_back({"delete refused", printable(*j->delete_refused)});
    rows.push_back({"passes", std::to_string(j->passes)});
    rows.push_back({"last pass", time_cell(j->last_pass_at)});
  }
  if (is_mirror(*j)) rows.push_back({"next pass", time_cell(j->next_pass_at)});
  rows.push_back({"error", j->error ? printable(*j->error) : "-"});
  std::fputs(table(rows).c_str(), stdout);
  if (!j->failures.empty()) {
    std::printf("failed objects:\n");
    for (const auto& f : j->failures) std::printf("  %s: %s\n", printable(f.key).c_str(), printable(f.error).c_str());
    if (j->objects.failed > j->failures.size())
      std::printf("  ... and %llu more\n", static_cast<unsigned long long>(j->objects.failed - j->failures.size()));
  }
  return exit_ok;
}

int run_report(const globals& g, const std::string& id) {
  auto c = connect(g);
  if (!c) return report(c.error());
  std::uint64_t counts[3] = {0, 0, 0};  // by integrity_result
  // The records not verified, shown again after the table with why (bounded like a job's failures).
  std::vector<proto::integrity_record_entry> problems;
  // KEY, the one column of unbounded width, comes last so that it needs no padding; the others
  // start at their usual widths ("mismatch", "1023.9 KiB"), so pages printed apart line up.
  std::vector<std::size_t> widths{8, 10, 0, 0, 8, 0};
  bool any = false;
  std::uint64_t after = 0;
  for (;;) {
    const proto::job_report_params p{id, after, proto::default_report_limit};
    auto r = c->call(proto::method::job_report, proto::to_json(p));
    if (!r) {
      if (g.json && any) std::fputs("\n", stdout);
      return report(r.error());
    }
    auto page = proto::parse_job_report_result(*r);
    if (!page) {
      if (g.json && any) std::fputs("\n", stdout);
      return report_malformed(page.error());
    }
    // Pages go out as they come: a report may hold millions of records.
    std::vector<std::vector<std::string>> rows;
    if (!g.json && !any && !page->records.empty()) rows.push_back({"RESULT", "SIZE", "METHOD", "MD5", "CRC32C", "KEY"});
    for (const auto& e : page->records) {
      ++counts[static_cast<int>(e.result)];
      if (e.result != proto::integrity_result::verified && problems.size() < proto::max_failures_listed)
        problems.push_back(e);
      if (g.json) {
        std::fputs(any ? "," : "[", stdout);
        std::fputs(proto::to_json(e).c_str(), stdout);
      } else {
        rows.push_back({std::string(proto::to_string(e.result)), bytes(e.size),
                        e.method.empty() ? "-" : printable(e.method), e.md5.empty() ? "-" : printable(e.md5),
                        fmt::format("{:08x}", e.crc32c), printable(e.key)});
      }
      any = true;
    }
    if (!g.json) std::fputs(table(rows, widths).c_str(), stdout);
    if (!page->more) break;
    if (page->next_after <= after) {
      if (g.json && any) std::fputs("\n", stdout);
      return report_malformed(proto::error{proto::code::internal_error, "ferryd's job.report did not advance"});
    }
    after = page->next_after;
  }
  const auto verified = counts[static_cast<int>(proto::integrity_result::verified)];
  const auto mismatch = counts[static_cast<int>(proto::integrity_result::mismatch)];
  const auto failed = counts[static_cast<int>(proto::integrity_result::failed)];
  if (g.json) {
    std::fputs(any ? "]\n" : "[]\n", stdout);
  } else {
    if (!problems.empty()) {
      std::printf("not verified:\n");
      for (const auto& e : problems)
        std::printf("  %s %s: %s\n", std::string(proto::to_string(e.result)).c_str(), printable(e.key).c_str(),
                    e.error.empty() ? "-" : printable(e.error).c_str());
      if (mismatch + failed > problems.size())
        std::printf("  ... and %llu more\n", static_cast<unsigned long long>(mismatch + failed - problems.size()));
    }
    std::printf("%llu verified, %llu mismatch, %llu failed\n", static_cast<unsigned long long>(verified),
                static_cast<unsigned long long>(mismatch), static_cast<unsigned long long>(failed));
  }
  return mismatch + failed == 0 ? exit_ok : exit_failed;
}

int run_cancel(const globals& g, const std::string& id) {
  int exit = exit_ok;
  auto j = call_for_job(g, proto::method::job_cancel, proto::to_json(proto::job_cancel_params{id}), exit);
  if (!j) return exit;
  const std::string state(proto::to_string(j->state));
  if (!proto::is_terminal(j->state))
    std::printf("%s %s: cancelling (it becomes cancelled once its transfers stop)\n", printable(j->id).c_str(),
                state.c_str());
  else if (j->state == proto::job_state::cancelled)
    std::printf("%s cancelled\n", printable(j->id).c_str());
  else
    std::printf("%s %s: already finished, nothing to cancel\n", printable(j->id).c_str(), state.c_str());
  return exit_ok;
}

int run_pause(const globals& g, const std::string& id) {
  int exit = exit_ok;
  auto j = call_for_job(g, proto::method::job_pause, proto::to_json(proto::job_pause_params{id}), exit);
  if (!j) return exit;
  if (j->state == proto::job_state::paused)
    std::printf("%s paused\n", printable(j->id).c_str());
  else if (proto::is_terminal(j->state))
    std::printf("%s %s: already finished, nothing to pause\n", printable(j->id).c_str(),
                std::string(proto::to_string(j->state)).c_str());
  else
    std::printf("%s pausing (it becomes paused once its transfers stop; ferryctl resume %s)\n",
                printable(j->id).c_str(), printable(j->id).c_str());
  return exit_ok;
}

int run_resume(const globals& g, const std::string& id) {
  int exit = exit_ok;
  auto j = call_for_job(g, proto::method::job_resume, proto::to_json(proto::job_resume_params{id}), exit);
  if (!j) return exit;
  std::printf("%s resumed: %s\n", printable(j->id).c_str(), std::string(proto::to_string(j->state)).c_str());
  return exit_ok;
}

int run_delete(const globals& g, const std::string& id) {
  int exit = exit_ok;
  auto j = call_for_job(g, proto::method::job_delete, proto::to_json(proto::job_delete_params{id}), exit);
  if (!j) return exit;
  std::printf("%s deleted (with its records)\n", printable(j->id).c_str());
  return exit_ok;
}

int run_remotes(const globals& g) {
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::remote_list, proto::to_json(proto::remote_list_params{}));
  if (!r) return report(r.error());
  if (g.json) {
    print_json_line(*r);
    return exit_ok;
  }
  auto l = proto::parse_remote_list_result(*r);
  if (!l) return report_malformed(l.error());
  std::vector<std::vector<std::string>> rows{{"NAME", "ENDPOINT", "REGION", "ADDRESSING", "CREDENTIALS"}};
  for (const auto& x : l->remotes)
    rows.push_back({printable(x.name), printable(x.endpoint), printable(x.region),
                    x.path_style ? "path-style" : "virtual-hosted", printable(x.credentials)});
  std::fputs(table(rows).c_str(), stdout);
  return exit_ok;
}

int run_remote_test(const globals& g, const std::string& name, const std::optional<std::string>& bucket) {
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::remote_test, proto::to_json(proto::remote_test_params{name, bucket}));
  if (!r) return report(r.error());
  auto t = proto::parse_remote_test_result(*r);
  if (!t) return report_malformed(t.error());
  if (g.json) {
    print_json_line(*r);
  } else {
    std::printf("%s: %s, %s (%llu ms): %s\n", printable(t->name).c_str(), t->reachable ? "reachable" : "NOT reachable",
                t->credentials_ok ? "credentials accepted" : "credentials NOT accepted",
                static_cast<unsigned long long>(t->latency_ms), printable(t->detail).c_str());
  }
  return t->reachable && t->credentials_ok ? exit_ok : exit_failed;
}

int run_reload(const globals& g) {
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::daemon_reload, "{}");
  if (!r) return report(r.error());
  if (g.json) {
    print_json_line(*r);
    return exit_ok;
  }
  auto s = proto::parse_daemon_reload_result(*r);
  if (!s) return report_malformed(s.error());
  std::printf("reloaded: %s\n", printable(s->summary).c_str());
  return exit_ok;
}

int run_watch(const globals& g, const std::string& id) {
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::job_get, proto::to_json(proto::job_get_params{id}));
  if (!r) return report(r.error());
  auto j = proto::parse_job(*r);
  if (!j) return report_malformed(j.error());
  return wait_for(*c, g, std::move(*j), std::move(*r), false, true);
}

int run_metrics(const globals& g) {
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::daemon_metrics, proto::to_json(proto::daemon_status_params{}));
  if (!r) return report(r.error());
  if (g.json) {
    print_json_line(*r);
    return exit_ok;
  }
  auto m = proto::parse_daemon_metrics_result(*r);
  if (!m) return report_malformed(m.error());
  std::fwrite(m->text.data(), 1, m->text.size(), stdout);
  return exit_ok;
}

namespace {

std::string cap_cell(std::uint64_t bps) { return bps == 0 ? std::string("off") : rate(static_cast<double>(bps)); }

int print_limits(const globals& g, const std::string& json) {
  if (g.json) {
    print_json_line(json);
    return exit_ok;
  }
  auto l = proto::parse_limits_result(json);
  if (!l) return report_malformed(l.error());
  std::vector<std::vector<std::string>> rows{{"SCOPE", "CAP UP", "CAP DOWN", "RATE UP", "RATE DOWN", "BWLIMIT"}};
  auto row = [&](const proto::limit_info& i) {
    rows.push_back({printable(i.scope), cap_cell(i.up_bps), cap_cell(i.down_bps),
                    rate(static_cast<double>(i.rate_up_bps)), rate(static_cast<double>(i.rate_down_bps)),
                    printable(i.bwlimit)});
  };
  row(l->global);
  for (const auto& j : l->jobs) row(j);
  std::fputs(table(rows).c_str(), stdout);
  return exit_ok;
}

}  // namespace

int run_limits(const globals& g) {
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::limits_get, "{}");
  if (!r) return report(r.error());
  return print_limits(g, *r);
}

int run_limits_set(const globals& g, const std::optional<std::string>& job, const std::string& bwlimit) {
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::limits_set, proto::to_json(proto::limits_set_params{job, bwlimit}));
  if (!r) return report(r.error());
  return print_limits(g, *r);
}

}  // namespace ferry::ctl
