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

// How often --wait asks for the job, and how often it prints when stderr is not a terminal.
constexpr auto poll_interval = std::chrono::milliseconds(300);
constexpr auto log_interval = std::chrono::seconds(5);
constexpr auto rate_window = std::chrono::seconds(5);

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

std::string time_cell(const std::optional<proto::timestamp>& t) {
  if (!t) return "-";
  return proto::format_rfc3339(*t) + " (" + age(since(*t)) + ")";
}

// Smoothed transfer rate over the last few seconds of samples.
class rate_meter {
 public:
  void add(steady::time_point t, std::uint64_t bytes_done) {
    samples_.emplace_back(t, bytes_done);
    while (samples_.size() > 2 && t - samples_.front().first > rate_window) samples_.pop_front();
  }
  std::optional<double> bytes_per_second() const {
    if (samples_.size() < 2) return std::nullopt;
    const auto span = std::chrono::duration<double>(samples_.back().first - samples_.front().first).count();
    if (span < 0.5 || samples_.back().second < samples_.front().second) return std::nullopt;
    return static_cast<double>(samples_.back().second - samples_.front().second) / span;
  }

 private:
  std::deque<std::pair<steady::time_point, std::uint64_t>> samples_;
};

std::string progress_line(const proto::job& j, const rate_meter& m) {
  std::string s =
      fmt::format("{} {}  {} objects  {}", printable(j.id), proto::to_string(j.state), objects_cell(j), bytes_cell(j));
  if (auto r = m.bytes_per_second()) s += "  " + rate(*r);
  return s;
}

std::size_t terminal_columns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

// Waits up to `d`, returning early (false) on Ctrl-C.
bool pause(std::chrono::milliseconds d) {
  const auto end = steady::now() + d;
  while (!interrupted.load()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - steady::now()).count();
    if (left <= 0) return true;
    ::poll(nullptr, 0, static_cast<int>(left));  // EINTR on SIGINT
  }
  return false;
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

bool job_ok(const proto::job& j) { return j.state == proto::job_state::succeeded && j.objects.failed == 0; }

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
  if (!job_ok(j)) print_failures(j);
}

int wait_for(control::client& c, const globals& g, proto::job j, std::string json) {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked poll() must return
  ::sigaction(SIGINT, &sa, nullptr);

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  rate_meter meter;
  bool line_shown = false;
  auto last_log = steady::now();
  auto clear_line = [&] {
    if (line_shown) std::fputs("\r\033[K", stderr);
    line_shown = false;
  };

  for (;;) {
    const auto now = steady::now();
    meter.add(now, j.bytes.done);
    if (proto::is_terminal(j.state)) break;
    if (tty) {
      std::string line = progress_line(j, meter);
      const std::size_t cols = terminal_columns();
      if (line.size() >= cols) line.resize(cols - 1);
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
      line_shown = true;
    } else if (now - last_log >= log_interval) {
      std::fprintf(stderr, "%s\n", progress_line(j, meter).c_str());
      last_log = now;
    }
    if (!pause(poll_interval)) break;
    auto r = c.call(proto::method::job_get, proto::to_json(proto::job_get_params{j.id}));
    if (!r) {
      clear_line();
      if (r.error().what == call_error::kind::interrupted) break;
      return report(r.error());
    }
    auto parsed = proto::parse_job(*r);
    if (!parsed) {
      clear_line();
      return report_malformed(parsed.error());
    }
    j = std::move(*parsed);
    json = std::move(*r);
  }
  clear_line();
  if (!proto::is_terminal(j.state)) {
    std::fprintf(stderr, "ferryctl: stopped waiting; job %s continues in ferryd (ferryctl status %s)\n",
                 printable(j.id).c_str(), printable(j.id).c_str());
    return exit_interrupted;
  }
  if (g.json) {
    print_json_line(json);
    if (!job_ok(j)) print_failures(j);
  } else {
    print_summary(j);
  }
  return job_ok(j) ? exit_ok : exit_failed;
}

}  // namespace

int run_copy(const globals& g, const copy_options& o) {
  auto c = connect(g);
  if (!c) return report(c.error());
  const proto::job_create_params p{std::string(proto::kind_copy), resolve_local(o.source), resolve_local(o.destination),
                                   o.name, o.copy_mode};
  auto r = c->call(proto::method::job_create, proto::to_json(p));
  if (!r) return report(r.error());
  auto j = proto::parse_job(*r);
  if (!j) return report_malformed(j.error());
  if (o.wait) return wait_for(*c, g, std::move(*j), std::move(*r));
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
  std::vector<std::vector<std::string>> rows{{"ID", "NAME", "KIND", "STATE", "OBJECTS", "BYTES", "AGE"}};
  for (const auto& j : l->jobs) {
    std::string name = printable(j.name);
    if (name.empty()) name = "-";
    rows.push_back({printable(j.id), name, printable(j.kind), std::string(proto::to_string(j.state)), objects_cell(j),
                    bytes_cell(j), age(since(j.created_at))});
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
  return exit_ok;
}

int run_job_status(const globals& g, const std::string& id) {
  auto c = connect(g);
  if (!c) return report(c.error());
  auto r = c->call(proto::method::job_get, proto::to_json(proto::job_get_params{id}));
  if (!r) return report(r.error());
  if (g.json) {
    print_json_line(*r);
    return exit_ok;
  }
  auto j = proto::parse_job(*r);
  if (!j) return report_malformed(j.error());
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
      {"error", j->error ? printable(*j->error) : "-"},
  };
  std::fputs(table(rows).c_str(), stdout);
  if (!j->failures.empty()) {
    std::printf("failed objects:\n");
    for (const auto& f : j->failures) std::printf("  %s: %s\n", printable(f.key).c_str(), printable(f.error).c_str());
    if (j->objects.failed > j->failures.size())
      std::printf("  ... and %llu more\n", static_cast<unsigned long long>(j->objects.failed - j->failures.size()));
  }
  return exit_ok;
}

}  // namespace ferry::ctl
