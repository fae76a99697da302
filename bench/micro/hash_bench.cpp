// Per-byte cost of integrity: MD5 and CRC32C, alone and together in one pass as the copier feeds them
// (each chunk to both while it is in cache). SHA-256 for reference (optional in ferry). The argument
// is the chunk size; 256 KiB is the copier's read size. Counter s_per_GiB is CPU seconds per GiB:
// bench/run takes BM_Md5Crc32c/262144 as "the cost of MD5+CRC32C alone" for the large-object target.
#include "util/hash.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

namespace ferry::util {
namespace {

constexpr std::size_t buffer_bytes = 4 << 20;
constexpr double gib = 1024.0 * 1024.0 * 1024.0;

const std::vector<char>& random_buffer() {
  static const std::vector<char> buf = [] {
    std::vector<char> b(buffer_bytes);
    std::mt19937_64 rng(1);
    for (auto& c : b) c = static_cast<char>(rng());
    return b;
  }();
  return buf;
}

template <class Fn>
void run_chunks(benchmark::State& state, Fn&& fn) {
  const auto& buf = random_buffer();
  const auto chunk = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    for (std::size_t off = 0; off < buf.size(); off += chunk) fn(std::string_view(buf.data() + off, chunk));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(buf.size()));
  state.counters["s_per_GiB"] =
      benchmark::Counter(static_cast<double>(buf.size()) / gib,
                         benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_Md5(benchmark::State& state) {
  md5_hasher md5;
  run_chunks(state, [&](std::string_view c) { md5.update(c); });
  benchmark::DoNotOptimize(md5.finish());
}

void BM_Crc32c(benchmark::State& state) {
  crc32c_hasher crc;
  run_chunks(state, [&](std::string_view c) { crc.update(c); });
  benchmark::DoNotOptimize(crc.value());
}

void BM_Md5Crc32c(benchmark::State& state) {
  md5_hasher md5;
  crc32c_hasher crc;
  run_chunks(state, [&](std::string_view c) {
    md5.update(c);
    crc.update(c);
  });
  benchmark::DoNotOptimize(md5.finish());
  benchmark::DoNotOptimize(crc.value());
}

void BM_Sha256(benchmark::State& state) {
  sha256_hasher sha;
  run_chunks(state, [&](std::string_view c) { sha.update(c); });
  benchmark::DoNotOptimize(sha.finish());
}

BENCHMARK(BM_Md5)->Arg(16 << 10)->Arg(256 << 10);
BENCHMARK(BM_Crc32c)->Arg(16 << 10)->Arg(256 << 10);
BENCHMARK(BM_Md5Crc32c)->Arg(16 << 10)->Arg(256 << 10);
BENCHMARK(BM_Sha256)->Arg(256 << 10);

}  // namespace
}  // namespace ferry::util
