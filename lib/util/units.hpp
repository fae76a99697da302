#pragma once
// Human units in config files and on command lines: durations ("250ms", "10s", "5m", "1h")
// and sizes ("512", "64KiB", "5MiB", "1G"; K/M/G/T and KiB.. are powers of 1024).
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::util {

boost::system::result<std::chrono::milliseconds, std::string> parse_duration(std::string_view text);
boost::system::result<std::uint64_t, std::string> parse_size(std::string_view text);
// 1536 -> "1.5 KiB"; binary units, one decimal.
std::string format_bytes(std::uint64_t n);

}  // namespace ferry::util
