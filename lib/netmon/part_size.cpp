#include "netmon/part_size.hpp"

#include <algorithm>
#include <cmath>

namespace ferry::netmon {

namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return a / b + (a % b != 0 ? 1 : 0); }
std::uint64_t round_up_mib(std::uint64_t v) { return ceil_div(v, mib) * mib; }

// Doubles above 2^64 (or NaN) must not reach an integer conversion.
std::uint64_t to_bytes(double v) {
  if (!(v > 0)) return 0;
  if (v >= 1.8e19) return UINT64_MAX / 2;
  return static_cast<std::uint64_t>(v);
}

}  // namespace

std::uint64_t choose_part_size(const part_inputs& in) {
  const std::uint64_t floor = std::max(in.floor, mib);
  const std::uint64_t ceiling = std::max(in.ceiling, floor);

  std::uint64_t part = floor;
  if (in.conn_throughput > 0) {
    const double rtts = std::chrono::duration<double>(in.min_rtt).count() * in.rtt_multiple;
    const double seconds = std::max(std::chrono::duration<double>(in.min_part_time).count(), rtts);
    part = to_bytes(in.conn_throughput * seconds);
  }
  if (in.error_rate > 0) {
    part = std::min(part, to_bytes(static_cast<double>(in.resend_budget) / std::min(in.error_rate, 1.0)));
  }
  part = std::clamp(part, floor, ceiling);

  // S3's limits win over the configuration.
  const std::uint64_t lower =
      std::min(s3_max_part, std::max(s3_min_part, round_up_mib(ceil_div(in.object_size, s3_max_parts))));
  part = std::clamp(round_up_mib(part), lower, s3_max_part);

  if (in.object_size > part) {
    const auto parts = ceil_div(in.object_size, part);
    const auto even = round_up_mib(ceil_div(in.object_size, parts));
    if (even >= std::max(lower, std::min(floor, part))) part = std::min(part, even);
  }
  return part;
}

}  // namespace ferry::netmon
