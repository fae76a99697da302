#include "ratelimit/timetable.hpp"

#include "util/failure.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>

namespace ferry::ratelimit {
namespace {

using util::failure;

constexpr int minutes_per_day = 24 * 60;
constexpr int minutes_per_week = 7 * minutes_per_day;
// Limits on operator input: a timetable is a line on a command line or in a config file.
constexpr std::size_t max_text = 4096;
constexpr std::size_t max_entries = 256;

constexpr std::array<const char*, 7> day_names{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 7> full_day_names{"sunday",   "monday", "tuesday", "wednesday",
                                                    "thursday", "friday", "saturday"};
// K, M, G, T, P: rclone's binary multiples.
constexpr std::string_view unit_letters = "kmgtp";

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

double unit_multiplier(std::size_t unit_index) { return std::ldexp(1.0, 10 * static_cast<int>(unit_index + 1)); }

// Why `text` is not a rate, or empty when it is one (its value in `out`).
std::string rate_problem(std::string_view text, std::uint64_t& out) {
  static constexpr const char* want =
      "want a number of KiB/s, a number with a unit B, K, M, G, T or P (e.g. 512K, 1.5M), or off";
  const std::string s = util::ascii_lower(text);
  if (s == "off") {
    out = 0;
    return {};
  }
  if (s.empty()) return "empty; " + std::string(want);
  if (s.front() == '-') return "must not be negative";
  std::string_view num = s;
  double mult = 1024;  // a plain number is KiB/s
  const char last = s.back();
  auto symbol = [&](char c) -> bool {
    const auto i = unit_letters.find(c);
    if (i == std::string_view::npos) return false;
    mult = unit_multiplier(i);
    return true;
  };
  if ((last >= '0' && last <= '9') || last == '.') {
    // no unit
  } else if (last == 'b' && s.size() > 2 && s[s.size() - 2] == 'i') {  // KiB, MiB, ...
    if (!symbol(s[s.size() - 3])) return want;
    num.remove_suffix(3);
  } else if (last == 'b') {
    mult = 1;
    num.remove_suffix(1);
  } else if (last == 'i' && s.size() > 1) {  // Ki, Mi, ...
    if (!symbol(s[s.size() - 2])) return want;
    num.remove_suffix(2);
  } else {
    if (!symbol(last)) return want;
    num.remove_suffix(1);
  }
  // Digits with at most one '.', at least one digit: no signs, exponents, inf or nan.
  const auto digits = std::count_if(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; });
  const auto dots = std::count(num.begin(), num.end(), '.');
  if (digits == 0 || dots > 1 || static_cast<std::size_t>(digits + dots) != num.size()) return want;
  double v = 0;
  const auto r = std::from_chars(num.data(), num.data() + num.size(), v);
  if (r.ec != std::errc() || r.ptr != num.data() + num.size()) return want;
  const double bytes = std::floor(v * mult + 0.5);
  if (!(bytes < 1.8e19)) return "too large";
  if (v > 0 && bytes < 1) return "below 1 B/s";
  out = static_cast<std::uint64_t>(bytes);
  return {};
}

// Why `text` is not RATE or UP:DOWN ("bad rate ..." naming the bad part, with `context` after the name), or
// empty when it is (its value in `out`).
std::string bandwidth_problem(std::string_view text, std::string_view context, bandwidth& out) {
  auto bad = [&](std::string_view part, const std::string& why) {
    return "bad rate " + quoted(part) + std::string(context) + ": " + why;
  };
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    auto p = rate_problem(text, out.up);
    out.down = out.up;
    return p.empty() ? p : bad(text, p);
  }
  const auto up = text.substr(0, colon);
  const auto down = text.substr(colon + 1);
  if (down.find(':') != std::string_view::npos) return bad(text, "want RATE or UP:DOWN");
  if (auto p = rate_problem(up, out.up); !p.empty()) return bad(up, p);
  if (auto p = rate_problem(down, out.down); !p.empty()) return bad(down, p);
  return {};
}

int parse_day(std::string_view text) {
  const std::string s = util::ascii_lower(text);
  for (int d = 0; d < 7; ++d)
    if (s == util::ascii_lower(day_names[d]) || s == full_day_names[d]) return d;
  return -1;
}

// Minute of the day for exactly "HH:MM", or -1.
int parse_time(std::string_view s) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (s.size() != 5 || !digit(s[0]) || !digit(s[1]) || s[2] != ':' || !digit(s[3]) || !digit(s[4])) return -1;
  const int h = (s[0] - '0') * 10 + (s[1] - '0');
  const int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (h > 23 || m > 59) return -1;
  return h * 60 + m;
}

std::string format_time(int minute) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d:%02d", (minute / 60) % 100, minute % 60);
  return buf;
}

std::string format_bandwidth(const bandwidth& bw) {
  if (bw.up == bw.down) return format_rate(bw.up);
  return format_rate(bw.up) + ":" + format_rate(bw.down);
}

// Monday first, as people read a week; every-day entries before all.
int display_order(int day) { return day < 0 ? -1 : (day + 6) % 7; }

}  // namespace

boost::system::result<std::uint64_t, std::string> parse_rate(std::string_view text) {
  std::uint64_t v = 0;
  if (auto p = rate_problem(text, v); !p.empty()) return failure("bad rate " + quoted(text) + ": " + p);
  return v;
}

std::string format_rate(std::uint64_t bps) {
  if (bps == 0) return "off";
  static constexpr std::array<char, 5> suffix{'K', 'M', 'G', 'T', 'P'};
  // The largest unit that reads back exactly, as an integer or a short decimal (1536 -> "1.5K"); else bytes.
  for (std::size_t i = suffix.size(); i-- > 0;) {
    const auto mult = std::uint64_t{1} << (10 * (i + 1));
    if (bps < mult) continue;
    if (bps % mult == 0) return std::to_string(bps / mult) + suffix[i];
    for (int decimals = 1; decimals <= 3; ++decimals) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.*f%c", decimals, static_cast<double>(bps) / static_cast<double>(mult),
                    suffix[i]);
      std::uint64_t back = 0;
      if (rate_problem(buf, back).empty() && back == bps) return buf;
    }
  }
  return std::to_string(bps) + "B";
}

timetable timetable::constant(bandwidth bw) {
  timetable t;
  t.slots_ = {slot{0, bw}};
  return t;
}

boost::system::result<timetable, std::string> timetable::parse(std::string_view text) {
  static constexpr const char* want_entry = "want [Day-]HH:MM,RATE (e.g. Mon-08:00,512K or 19:00,10M:1M)";
  if (text.size() > max_text)
    return failure("bandwidth limit too long (" + std::to_string(text.size()) + " characters, at most " +
                   std::to_string(max_text) + ")");
  // rclone separates entries with spaces or (for shells and Docker) semicolons.
  std::vector<std::string_view> tokens;
  for (std::size_t i = 0; i < text.size();) {
    auto sep = [](char c) { return c == ' ' || c == '\t' || c == ';'; };
    if (sep(text[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && !sep(text[j])) ++j;
    tokens.push_back(text.substr(i, j - i));
    if (tokens.size() > max_entries)
      return failure("too many entries in the bandwidth timetable (at most " + std::to_string(max_entries) + ")");
    i = j;
  }
  if (tokens.empty())
    return failure("empty bandwidth limit: want a rate (10M, 10M:100K, off) or a timetable (Mon-08:00,512K 19:00,10M)");

  if (tokens.size() == 1 && tokens[0].find(',') == std::string_view::npos) {
    bandwidth bw;
    if (auto p = bandwidth_problem(tokens[0], "", bw); !p.empty()) return failure(p);
    return constant(bw);
  }

  timetable t;
  t.slots_.clear();
  // minute of the week -> the token that set it, to name both sides of a clash.
  std::map<int, std::string_view> taken;
  for (const auto tok : tokens) {
    const auto comma = tok.find(',');
    if (comma == std::string_view::npos) return failure("bad entry " + quoted(tok) + ": missing comma, " + want_entry);
    const auto when = tok.substr(0, comma);
    const auto rate = tok.substr(comma + 1);
    if (rate.find(',') != std::string_view::npos) return failure("bad entry " + quoted(tok) + ": " + want_entry);
    entry e;
    auto time_text = when;
    if (const auto dash = when.find('-'); dash != std::string_view::npos) {
      const auto day_text = when.substr(0, dash);
      e.day = parse_day(day_text);
      if (e.day < 0)
        return failure("bad day " + quoted(day_text) + " in " + quoted(tok) +
                       ": want Mon, Tue, Wed, Thu, Fri, Sat or Sun");
      time_text = when.substr(dash + 1);
    }
    e.minute = parse_time(time_text);
    if (e.minute < 0)
      return failure("bad time " + quoted(time_text) + " in " + quoted(tok) + ": want HH:MM, 00:00-23:59");
    if (auto p = bandwidth_problem(rate, " in " + quoted(tok), e.bw); !p.empty()) return failure(p);
    for (int d = 0; d < 7; ++d) {
      if (e.day >= 0 && d != e.day) continue;
      const int mow = d * minutes_per_day + e.minute;
      const auto [it, fresh] = taken.emplace(mow, tok);
      if (!fresh) {
        const bool every_day = e.day < 0 && it->second.find('-') == std::string_view::npos;
        const std::string name = every_day ? format_time(e.minute) : day_names[d] + ("-" + format_time(e.minute));
        return failure("duplicate time " + name + " in " + quoted(tok) + " (also in " + quoted(it->second) + ")");
      }
      t.slots_.push_back(slot{mow, e.bw});
    }
    t.entries_.push_back(e);
  }
  std::sort(t.slots_.begin(), t.slots_.end(),
            [](const slot& a, const slot& b) { return a.minute_of_week < b.minute_of_week; });
  std::sort(t.entries_.begin(), t.entries_.end(), [](const entry& a, const entry& b) {
    return std::pair(display_order(a.day), a.minute) < std::pair(display_order(b.day), b.minute);
  });
  return t;
}

std::size_t timetable::slot_index(int minute_of_week) const {
  const auto it = std::upper_bound(slots_.begin(), slots_.end(), minute_of_week,
                                   [](int m, const slot& s) { return m < s.minute_of_week; });
  // Before the week's first entry: the last entry of the week before is still in force.
  if (it == slots_.begin()) return slots_.size() - 1;
  return static_cast<std::size_t>(it - slots_.begin()) - 1;
}

bandwidth timetable::at(int weekday, int minute_of_day) const {
  weekday = ((weekday % 7) + 7) % 7;
  minute_of_day = std::clamp(minute_of_day, 0, minutes_per_day - 1);
  return slots_[slot_index(weekday * minutes_per_day + minute_of_day)].bw;
}

std::optional<int> timetable::next_change(int weekday, int minute_of_day) const {
  if (is_constant()) return std::nullopt;
  weekday = ((weekday % 7) + 7) % 7;
  minute_of_day = std::clamp(minute_of_day, 0, minutes_per_day - 1);
  const int now = weekday * minutes_per_day + minute_of_day;
  const std::size_t cur = slot_index(now);
  for (std::size_t j = 1; j <= slots_.size(); ++j) {
    const slot& s = slots_[(cur + j) % slots_.size()];
    if (s.bw == slots_[cur].bw) continue;
    const int delta = (s.minute_of_week - now + minutes_per_week) % minutes_per_week;
    return delta == 0 ? minutes_per_week : delta;
  }
  return std::nullopt;
}

namespace {

bool local_tm(std::chrono::system_clock::time_point t, std::tm& out) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  return localtime_r(&tt, &out) != nullptr;
}

}  // namespace

bandwidth timetable::at(std::chrono::system_clock::time_point t) const {
  if (slots_.size() == 1) return slots_[0].bw;
  std::tm lt{};
  if (!local_tm(t, lt)) return slots_[0].bw;
  return at(lt.tm_wday, lt.tm_hour * 60 + lt.tm_min);
}

std::optional<std::chrono::system_clock::time_point> timetable::next_change(
    std::chrono::system_clock::time_point t) const {
  if (is_constant()) return std::nullopt;
  std::tm lt{};
  if (!local_tm(t, lt)) return t + std::chrono::minutes(1);
  const auto minutes = next_change(lt.tm_wday, lt.tm_hour * 60 + lt.tm_min);
  if (!minutes) return std::nullopt;
  // Wall-clock arithmetic, so a change at 08:00 stays at 08:00 across a DST switch.
  lt.tm_sec = 0;
  lt.tm_min += *minutes;
  lt.tm_isdst = -1;
  const std::time_t when = std::mktime(&lt);
  if (when == static_cast<std::time_t>(-1)) return t + std::chrono::minutes(*minutes);
  const auto r = std::chrono::system_clock::from_time_t(when);
  // A wall-clock hour repeated at the end of DST can map the target before t: look again a minute on.
  return r > t ? r : t + std::chrono::minutes(1);
}

std::string timetable::to_string() const {
  if (entries_.empty()) return format_bandwidth(slots_[0].bw);
  std::string out;
  for (const auto& e : entries_) {
    if (!out.empty()) out += ' ';
    if (e.day >= 0) {
      out += day_names[e.day];
      out += '-';
    }
    out += format_time(e.minute);
    out += ',';
    out += format_bandwidth(e.bw);
  }
  return out;
}

bool timetable::is_constant() const {
  return std::all_of(slots_.begin(), slots_.end(), [&](const slot& s) { return s.bw == slots_[0].bw; });
}

}  // namespace ferry::ratelimit
