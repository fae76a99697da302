#pragma once
// ferryctl's commands; each returns the process exit code.
#include "args.hpp"

#include <optional>
#include <string>

namespace ferry::ctl {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failed = 1;  // the job failed, or ferryd refused the request
inline constexpr int exit_usage = 2;
inline constexpr int exit_unreachable = 3;  // ferryd not running, socket refused, connection lost
inline constexpr int exit_interrupted = 130;

struct globals {
  std::string socket = "/run/ferry/ferryd.sock";
  bool json = false;
};

int run_create(const globals& g, const create_options& o);  // copy, sync, mirror
int run_jobs(const globals& g);
int run_daemon_status(const globals& g);
int run_job_status(const globals& g, const std::string& id);
int run_report(const globals& g, const std::string& id);
int run_cancel(const globals& g, const std::string& id);
int run_pause(const globals& g, const std::string& id);
int run_resume(const globals& g, const std::string& id);
int run_delete(const globals& g, const std::string& id);
int run_remotes(const globals& g);
int run_reload(const globals& g);
int run_watch(const globals& g, const std::string& id);
int run_metrics(const globals& g);
int run_limits(const globals& g);
// `bwlimit`: a rate or a timetable; "off" removes the cap.
int run_limits_set(const globals& g, const std::optional<std::string>& job, const std::string& bwlimit);
int run_remote_test(const globals& g, const std::string& name, const std::optional<std::string>& bucket);

}  // namespace ferry::ctl
