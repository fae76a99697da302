#pragma once
// The fault proxy's JSON: the rules document (a --rules file, or a PUT /rules body; schema in README.md) and
// the stats document (GET /stats). Parsing checks everything and never throws.
#include "fault/fault_proxy.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::test {

// A rules document: each part that is present is applied, the others are left as they are.
struct fault_config {
  std::optional<std::uint64_t> seed;
  std::optional<std::chrono::microseconds> delay, jitter;
  std::optional<std::chrono::milliseconds> stall, stall_every;
  std::optional<std::vector<fault_rule>> rules;
};

// The document in `json`, or nullopt with `error` saying what is wrong and where.
std::optional<fault_config> parse_fault_config(std::string_view json, std::string& error);

// Applies the parts of `config` that are present: seed, rules, delay and jitter, stall.
void apply_config(fault_proxy& proxy, const fault_config& config);

// {"requests", "connections", "rules": [{"name", "fired"}], "recent": [the last `recent` records]}.
std::string stats_json(const fault_stats& stats, std::size_t recent);

// "25ms", "1.5s", "500us", "2m", or a bare number of milliseconds; nullopt if malformed or negative.
std::optional<std::chrono::microseconds> parse_duration(std::string_view text);

}  // namespace ferry::test
