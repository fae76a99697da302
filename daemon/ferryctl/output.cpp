#include "output.hpp"

#include "proto/json_writer.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ferry::ctl {

std::string printable(std::string_view s) {
  const std::string valid = proto::sanitize_utf8(s);
  std::string out;
  out.reserve(valid.size());
  for (std::size_t i = 0; i < valid.size(); ++i) {
    const auto c = static_cast<unsigned char>(valid[i]);
    if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c == 0xC2 && i + 1 < valid.size() && static_cast<unsigned char>(valid[i + 1]) < 0xA0) {
      // C1 controls (U+0080..U+009F) include CSI, which terminals honour too.
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(valid[i + 1]));
      ++i;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string bytes(std::uint64_t n) { return util::format_bytes(n); }

std::string rate(double bytes_per_second) {
  if (bytes_per_second < 0) bytes_per_second = 0;
  return util::format_bytes(static_cast<std::uint64_t>(bytes_per_second)) + "/s";
}

std::string duration(std::chrono::seconds d) {
  long long s = std::max<long long>(0, d.count());
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

std::string age(std::chrono::seconds d) {
  const long long s = d.count();
  if (s < 1) return "just now";
  if (s < 60) return fmt::format("{}s ago", s);
  if (s < 3600) return fmt::format("{}m ago", s / 60);
  if (s < 86400) return fmt::format("{}h ago", s / 3600);
  return fmt::format("{}d ago", s / 86400);
}

namespace {

std::size_t width(std::string_view s) {
  // Code points, not bytes: close enough for alignment (no East Asian wide characters handling).
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace

std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  return table(rows, widths);
}

std::string table(const std::vector<std::vector<std::string>>& rows, std::vector<std::size_t>& widths) {
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - width(row[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace ferry::ctl
