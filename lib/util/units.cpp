#include "util/units.hpp"
#include "util/failure.hpp"

#include <charconv>
#include <cstdio>
#include <limits>

namespace ferry::util {
namespace {

// Splits "12.5MiB" into 12.5 and "MiB"; fails on an empty or non-numeric lead.
bool split_number(std::string_view text, double& value, std::string_view& unit) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return false;
  auto r = std::from_chars(text.data(), text.data() + i, value);
  if (r.ec != std::errc() || r.ptr != text.data() + i) return false;
  unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return true;
}

}  // namespace

boost::system::result<std::chrono::milliseconds, std::string> parse_duration(std::string_view text) {
  double v = 0;
  std::string_view unit;
  const std::string bad = "'" + std::string(text) + "' is not a duration (examples: 250ms, 10s, 5m, 1h)";
  if (!split_number(text, v, unit)) return util::failure(bad);
  double ms = 0;
  if (unit == "ms")
    ms = v;
  else if (unit == "s" || unit.empty())
    ms = v * 1000;
  else if (unit == "m")
    ms = v * 60'000;
  else if (unit == "h")
    ms = v * 3'600'000;
  else if (unit == "d")
    ms = v * 86'400'000;
  else
    return util::failure(bad);
  if (ms > 1e15) return util::failure("'" + std::string(text) + "' is too long a duration");
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

boost::system::result<std::uint64_t, std::string> parse_size(std::string_view text) {
  double v = 0;
  std::string_view unit;
  const std::string bad = "'" + std::string(text) + "' is not a size (examples: 512, 64KiB, 5MiB, 1G)";
  if (!split_number(text, v, unit)) return util::failure(bad);
  double mult = 1;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "K" || unit == "KiB" || unit == "k")
    mult = 1024.0;
  else if (unit == "M" || unit == "MiB")
    mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "GiB")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TiB")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else
    return util::failure(bad);
  double bytes = v * mult;
  if (bytes >= static_cast<double>(std::numeric_limits<std::uint64_t>::max()))
    return util::failure("'" + std::string(text) + "' is too large");
  return static_cast<std::uint64_t>(bytes);
}

std::string format_bytes(std::uint64_t n) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace ferry::util
