#pragma once
// Logging setup for ferryd and the tests: spdlog to stderr. Under systemd (JOURNAL_STREAM set)
// lines carry "<N>" priority prefixes and no timestamps, so the journal keeps levels and time.
#include <string>
#include <string_view>

namespace ferry::util {

// Parses "trace|debug|info|warn|error|critical|off"; false for anything else.
bool valid_log_level(std::string_view level);
void setup_logging(std::string_view level);

}  // namespace ferry::util
