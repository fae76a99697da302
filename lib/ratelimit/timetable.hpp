#pragma once
// Bandwidth limits in rclone's --bwlimit syntax: one rate ("10M", "10M:100K" for UP:DOWN, "off"), or a weekly
// timetable of "[Day-]HH:MM,RATE" entries separated by spaces or ';' ("Mon-08:00,512K 19:00,10M 23:00,off").
// Pure: says which rate is in force when; applying it to buckets is the limiter's job.
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::ratelimit {

// Bytes per second each way; 0 = unlimited.
struct bandwidth {
  std::uint64_t up = 0;
  std::uint64_t down = 0;
  bool operator==(const bandwidth&) const = default;
};

// One rclone rate: a plain number is KiB/s; suffixes B, K, M, G, T, P (powers of 1024, any case, optionally
// followed by "i" or "iB"); decimals allowed; "off" and "0" = unlimited. Not util::parse_size: its plain
// number means bytes and its suffixes are case-sensitive.
boost::system::result<std::uint64_t, std::string> parse_rate(std::string_view text);
// The shortest form parse_rate reads back exactly: "10M", "1.5K", "1000B", "off".
std::string format_rate(std::uint64_t bytes_per_second);

class timetable {
 public:
  // Unlimited both ways, at all times.
  timetable() = default;
  // One rate at all times.
  static timetable constant(bandwidth bw);
  // Errors name the bad token and what was expected.
  static boost::system::result<timetable, std::string> parse(std::string_view text);

  // The rate in force at t in local time.
  bandwidth at(std::chrono::system_clock::time_point t) const;
  // The same for weekday 0=Sun..6=Sat and minute of the day 0..1439: the latest entry at or before it in the
  // week, else (before the week's first entry) the week's last.
  bandwidth at(int weekday, int minute_of_day) const;
  // The next instant after t when the rate in force changes; nullopt when it never does.
  std::optional<std::chrono::system_clock::time_point> next_change(std::chrono::system_clock::time_point t) const;
  // Minutes from the start of the given minute to the next change; nullopt when it never changes.
  std::optional<int> next_change(int weekday, int minute_of_day) const;

  // Canonical text that parse reads back to an equal timetable.
  std::string to_string() const;
  // True when the same rate is in force all week.
  bool is_constant() const;

  bool operator==(const timetable& o) const { return to_string() == o.to_string(); }

 private:
  // One entry as written: day -1 = every day.
  struct entry {
    int day = -1;
    int minute = 0;
    bandwidth bw;
  };
  // The week expanded: every-day entries become seven slots; sorted by minute of the week (Sun 00:00 = 0).
  struct slot {
    int minute_of_week = 0;
    bandwidth bw;
  };
  std::size_t slot_index(int minute_of_week) const;

  std::vector<entry> entries_;  // empty: a single rate, slots_ has one slot
  std::vector<slot> slots_{slot{}};
};

}  // namespace ferry::ratelimit
