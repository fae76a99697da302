#pragma once
// Multipart part size for one object on one path: a pure function of what the monitor measured.
//
// 1. Wanted: one connection's throughput x max(min_part_time, rtt_multiple x min RTT). A part then
//    lasts many round trips, so its fixed costs (the request's round trip, the response wait, TCP
//    slow start after idle) stay a few percent of its time: at 2 s and 50 ms, 1 RTT is 2.5%. On a
//    fast long path this is the bandwidth-delay product argument: 100 MB/s per connection -> 200 MB.
//    Unknown throughput: the configured floor.
// 2. Failures resend whole parts: expected resent bytes per part = part x error_rate, capped at
//    resend_budget (16 MiB by default: at 1% errors parts stay <= 1.6 GiB, at 10% <= 160 MiB, at
//    30% <= 53 MiB).
// 3. Clamped to the configured [floor, ceiling] (default 8 MiB..256 MiB), then to S3's hard limits,
//    which win over the configuration: >= 5 MiB, <= 5 GiB, and at most 10,000 parts (part >=
//    ceil(size / 10000)).
// 4. Evened out (a 70 MiB object in 64 MiB parts becomes 2 x 35 MiB, not 64 + 6) and rounded up to
//    a whole MiB.
// The result may exceed the object (one part). Objects above 10,000 x 5 GiB cannot be uploaded in
// parts at all; they get 5 GiB and the upload fails at S3.
#include <chrono>
#include <cstdint>

namespace ferry::netmon {

inline constexpr std::uint64_t mib = 1024 * 1024;
inline constexpr std::uint64_t s3_min_part = 5 * mib;         // every part but the last
inline constexpr std::uint64_t s3_max_part = 5 * 1024 * mib;  // 5 GiB
inline constexpr std::uint64_t s3_max_parts = 10'000;

// What choose_part_size looks at; defaults are the documented policy.
struct part_inputs {
  std::uint64_t object_size = 0;
  double conn_throughput = 0;                     // bytes/s of one connection (snapshot::conn_throughput); 0: unknown
  std::chrono::steady_clock::duration min_rtt{};  // zero: unknown
  double error_rate = 0;                          // share of part requests failing, [0, 1]
  std::uint64_t floor = 8 * mib;                  // configured bounds
  std::uint64_t ceiling = 256 * mib;
  std::chrono::milliseconds min_part_time{2000};  // a part should take at least this long...
  unsigned rtt_multiple = 40;                     // ...and this many round trips
  std::uint64_t resend_budget = 16 * mib;         // cap on part x error_rate
};

// The part size in bytes (a multiple of 1 MiB) for the inputs above.
std::uint64_t choose_part_size(const part_inputs& in);

}  // namespace ferry::netmon
