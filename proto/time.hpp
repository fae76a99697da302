#pragma once
// Timestamps on the wire: RFC 3339 in UTC with whole seconds, "2024-05-01T12:34:56Z".
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::proto {

using timestamp = std::chrono::sys_seconds;

// "YYYY-MM-DDTHH:MM:SSZ" (years 0000-9999; others are clamped).
std::string format_rfc3339(timestamp t);

// Accepts any RFC 3339 date-time: 'T' or 't' or ' ' separator, optional fraction (truncated),
// 'Z'/'z' or a numeric offset. std::nullopt if malformed.
std::optional<timestamp> parse_rfc3339(std::string_view s);

}  // namespace ferry::proto
