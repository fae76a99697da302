#pragma once
// ferryctl's human output: text from ferryd made safe for a terminal, sizes, ages, durations,
// aligned tables.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::ctl {

// `s` with control characters and invalid UTF-8 replaced, so that text from outside (object keys,
// S3 error messages, job names) cannot move the cursor or recolour the terminal.
std::string printable(std::string_view s);

// "1.5 KiB", "512 B".
std::string bytes(std::uint64_t n);
// "3.2 MiB/s".
std::string rate(double bytes_per_second);
// "45s", "3m12s", "2h05m", "3d04h".
std::string duration(std::chrono::seconds d);
// "just now", "45s ago", "3m ago", "5h ago", "2d ago".
std::string age(std::chrono::seconds d);

// Rows of cells printed with each column padded to its widest cell (in code points), two spaces
// apart; the last column is not padded.
std::string table(const std::vector<std::vector<std::string>>& rows);
// The same for rows that come in batches: `widths` carries the columns' widths from one batch to
// the next (they only grow), so a long listing stays aligned without being held in memory.
std::string table(const std::vector<std::vector<std::string>>& rows, std::vector<std::size_t>& widths);

}  // namespace ferry::ctl
