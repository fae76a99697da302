#pragma once
// Bucket specs from the command line or a buckets file, e.g.
//   name=src,keys=10000,size=100KiB,seed=1,prefix=obj/
//   name=mix,keys=1M,size=mixed:80%<1MiB,15%1MiB-10MiB,5%10MiB-200MiB,latency=20ms
//   name=dst,writable
// README.md documents every field. Parsing never throws; errors name the offending field.
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::synthetic {

template <class T>
using parse_result = boost::system::result<T, std::string>;

// What a synthetic object's ETag is. auto: its MD5 up to md5_etag_max bytes, multipart-style above.
enum class etag_mode { automatic, md5, multipart };
parse_result<etag_mode> parse_etag_mode(std::string_view text);
std::string_view to_string(etag_mode m);

// Object sizes: one or more classes, each a share of the keys and an inclusive byte range
// drawn uniformly. A fixed size is one class with lo == hi.
struct size_class {
  double percent = 100;
  std::uint64_t lo = 0, hi = 0;
};
struct size_distribution {
  std::vector<size_class> classes;  // percents add up to 100

  // The size of key number `index`: a deterministic function of (seed, index).
  std::uint64_t size_of(std::uint64_t seed, std::uint64_t index) const;
  std::uint64_t max_size() const;
};
// "100KiB", "1KiB-1MiB", "mixed:80%<1MiB,15%1MiB-10MiB,5%10MiB-200MiB" (';' may replace the commas).
parse_result<size_distribution> parse_size_distribution(std::string_view text);

struct bucket_spec {
  std::string name;
  bool writable = false;  // an empty bucket that keeps records of what is written to it
  std::uint64_t keys = 0;
  size_distribution sizes;
  std::uint64_t seed = 1;
  std::string prefix, suffix;  // key i is prefix + i zero-padded to `width` digits + suffix
  unsigned width = 0;          // 0 until parsed: then at least the digits of keys - 1
  std::chrono::milliseconds latency{0};
  std::optional<etag_mode> etag;  // nullopt: the server's --etag
  std::chrono::system_clock::time_point mtime;

  // The spec back as text (what the server prints at start-up).
  std::string describe() const;
};

// S3's rules for new bucket names, loosely: 3-63 of [a-z0-9.-], starting and ending alphanumeric.
bool valid_bucket_name(std::string_view name);

parse_result<bucket_spec> parse_bucket_spec(std::string_view text);
// One spec per line; blank lines and lines starting with '#' are skipped.
parse_result<std::vector<bucket_spec>> parse_bucket_file(const std::filesystem::path& path);

// "2024-01-01T00:00:00Z" <-> time_point (UTC, whole seconds).
parse_result<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);
// "2024-01-01T00:00:00.000Z", as S3 listings write it.
std::string iso8601(std::chrono::system_clock::time_point t);
// "Mon, 01 Jan 2024 00:00:00 GMT", as HTTP headers write it.
std::string http_date(std::chrono::system_clock::time_point t);

}  // namespace ferry::synthetic
