#include "spec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "generator.hpp"
#include "util/failure.hpp"
#include "util/units.hpp"

namespace ferry::synthetic {
namespace {

using util::failure;

constexpr std::uint64_t max_keys = 1'000'000'000;
constexpr std::uint64_t max_object_size = 5ull << 40;  // S3's 5 TiB
constexpr std::size_t max_affix = 512;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

parse_result<std::uint64_t> parse_count(std::string_view text) {
  std::uint64_t mult = 1;
  std::string_view digits = text;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'k':
      case 'K':
        mult = 1'000;
        digits.remove_suffix(1);
        break;
      case 'M':
        mult = 1'000'000;
        digits.remove_suffix(1);
        break;
      case 'G':
        mult = 1'000'000'000;
        digits.remove_suffix(1);
        break;
      default:
        break;
    }
  }
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
    return failure("'" + std::string(text) + "' is not a count (examples: 2500, 10k, 1M)");
  if (v > max_keys / mult) return failure("'" + std::string(text) + "' is more than 1G keys");
  return v * mult;
}

parse_result<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    return failure("'" + std::string(text) + "' is not an unsigned integer");
  return v;
}

parse_result<std::uint64_t> parse_bytes(std::string_view text) {
  auto r = util::parse_size(trim(text));
  if (!r) return failure(r.error());
  if (*r > max_object_size) return failure("'" + std::string(text) + "' is over S3's 5 TiB object limit");
  return *r;
}

// "A-B", "<B" or "A".
parse_result<size_class> parse_range(std::string_view text) {
  size_class c;
  text = trim(text);
  if (!text.empty() && text.front() == '<') {
    auto hi = parse_bytes(text.substr(1));
    if (!hi) return failure(hi.error());
    if (*hi == 0) return failure("'<0' is an empty range");
    c.lo = 0;
    c.hi = *hi - 1;
    return c;
  }
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    auto v = parse_bytes(text);
    if (!v) return failure(v.error());
    c.lo = c.hi = *v;
    return c;
  }
  auto lo = parse_bytes(text.substr(0, dash));
  if (!lo) return failure(lo.error());
  auto hi = parse_bytes(text.substr(dash + 1));
  if (!hi) return failure(hi.error());
  if (*hi < *lo) return failure("'" + std::string(text) + "': the range ends before it starts");
  c.lo = *lo;
  c.hi = *hi;
  return c;
}

std::string format_size(std::uint64_t n) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && n >= 1024 && n % 1024 == 0) {
    n /= 1024;
    ++u;
  }
  return std::to_string(n) + units[u];
}

// "100KiB", "1KiB-1MiB", "<1MiB": what parse_range reads back.
std::string range_text(const size_class& c) {
  if (c.lo == c.hi) return format_size(c.lo);
  if (c.lo == 0 && c.hi != ~0ull && format_size(c.hi + 1).find_first_of("KMGT") != std::string::npos)
    return "<" + format_size(c.hi + 1);
  return format_size(c.lo) + "-" + format_size(c.hi);
}

unsigned digits_of(std::uint64_t n) {
  unsigned d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

struct civil {
  int y;
  unsigned m, d, hh, mm, ss;
};

civil to_civil(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto s = floor<seconds>(t);
  const auto dp = floor<days>(s);
  const year_month_day ymd{dp};
  const hh_mm_ss hms{s - dp};
  return {static_cast<int>(ymd.year()),
          static_cast<unsigned>(ymd.month()),
          static_cast<unsigned>(ymd.day()),
          static_cast<unsigned>(hms.hours().count()),
          static_cast<unsigned>(hms.minutes().count()),
          static_cast<unsigned>(hms.seconds().count())};
}

}  // namespace

parse_result<etag_mode> parse_etag_mode(std::string_view text) {
  if (text == "auto") return etag_mode::automatic;
  if (text == "md5") return etag_mode::md5;
  if (text == "multipart") return etag_mode::multipart;
  return failure("etag '" + std::string(text) + "' is none of auto, md5, multipart");
}

std::string_view to_string(etag_mode m) {
  switch (m) {
    case etag_mode::automatic:
      return "auto";
    case etag_mode::md5:
      return "md5";
    case etag_mode::multipart:
      return "multipart";
  }
  return "?";
}

std::uint64_t size_distribution::size_of(std::uint64_t seed, std::uint64_t index) const {
  if (classes.size() == 1 && classes[0].lo == classes[0].hi) return classes[0].lo;
  const std::uint64_t h = mix64(mix64(seed ^ 0x5A17E5EEDull) + index);
  // 53 random bits -> [0, 100).
  const double u = static_cast<double>(h >> 11) * (100.0 / 9007199254740992.0);
  const size_class* c = &classes.back();
  double acc = 0;
  for (const auto& k : classes) {
    acc += k.percent;
    if (u < acc) {
      c = &k;
      break;
    }
  }
  const std::uint64_t span = c->hi - c->lo;
  if (span == 0) return c->lo;
  const std::uint64_t r = mix64(h);
  return span == ~0ull ? r : c->lo + r % (span + 1);
}

std::uint64_t size_distribution::max_size() const {
  std::uint64_t m = 0;
  for (const auto& c : classes) m = std::max(m, c.hi);
  return m;
}

parse_result<size_distribution> parse_size_distribution(std::string_view text) {
  size_distribution d;
  text = trim(text);
  constexpr std::string_view mixed = "mixed:";
  if (!text.starts_with(mixed)) {
    auto c = parse_range(text);
    if (!c) return failure("size: " + c.error());
    d.classes.push_back(*c);
    return d;
  }
  std::string_view rest = text.substr(mixed.size());
  double total = 0;
  while (!rest.empty()) {
    const auto sep = rest.find_first_of(",;");
    const std::string_view item = trim(rest.substr(0, sep));
    rest = sep == std::string_view::npos ? std::string_view{} : rest.substr(sep + 1);
    if (item.empty()) continue;
    const auto pct = item.find('%');
    if (pct == std::string_view::npos) return failure("size: '" + std::string(item) + "' has no 'P%' share");
    double p = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + pct, p);
    if (ec != std::errc() || end != item.data() + pct || !(p > 0) || p > 100)
      return failure("size: '" + std::string(item) + "': the share must be a number in (0, 100]");
    auto c = parse_range(item.substr(pct + 1));
    if (!c) return failure("size: " + c.error());
    c->percent = p;
    total += p;
    d.classes.push_back(*c);
    if (d.classes.size() > 64) return failure("size: more than 64 classes");
  }
  if (d.classes.empty()) return failure("size: 'mixed:' lists no classes");
  if (std::abs(total - 100) > 1e-6)
    return failure("size: the shares add up to " + std::to_string(total) + "%, not 100%");
  return d;
}

bool valid_bucket_name(std::string_view name) {
  if (name.size() < 3 || name.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alnum(c) || c == '.' || c == '-'; });
}

parse_result<bucket_spec> parse_bucket_spec(std::string_view text) {
  bucket_spec s;
  s.mtime = std::chrono::system_clock::time_point(std::chrono::seconds(1704067200));  // 2024-01-01T00:00:00Z
  // Split on ',' but keep "mixed:" lists together: a piece without '=' continues the previous value.
  std::vector<std::pair<std::string, std::string>> fields;
  std::string_view rest = text;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view piece = rest.substr(0, comma);
    const auto eq = piece.find('=');
    const bool continues = !fields.empty() && fields.back().first == "size" &&
                           fields.back().second.starts_with("mixed:") &&
                           (eq == std::string_view::npos || piece.find('%') < eq);
    if (continues) {
      fields.back().second.append(",").append(piece);
    } else if (eq == std::string_view::npos) {
      fields.emplace_back(std::string(trim(piece)), std::string());
    } else {
      fields.emplace_back(std::string(trim(piece.substr(0, eq))), std::string(piece.substr(eq + 1)));
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  bool has_keys = false, has_size = false, has_width = false;
  for (const auto& [k, v] : fields) {
    const std::string_view value = trim(v);
    if (k == "name") {
      s.name = std::string(value);
    } else if (k == "writable") {
      if (!value.empty() && value != "true") return failure("writable takes no value");
      s.writable = true;
    } else if (k == "keys") {
      auto r = parse_count(value);
      if (!r) return failure("keys: " + r.error());
      s.keys = *r;
      has_keys = true;
    } else if (k == "size") {
      auto r = parse_size_distribution(value);
      if (!r) return failure(r.error());
      s.sizes = std::move(*r);
      has_size = true;
    } else if (k == "seed") {
      auto r = parse_u64(value);
      if (!r) return failure("seed: " + r.error());
      s.seed = *r;
    } else if (k == "prefix" || k == "suffix") {
      if (v.size() > max_affix) return failure(k + ": longer than 512 bytes");
      (k == "prefix" ? s.prefix : s.suffix) = v;  // untrimmed: spaces may be part of keys
      if (k == "suffix" && !v.empty() && v.front() >= '0' && v.front() <= '9')
        return failure("suffix: must not start with a digit (keys would be ambiguous)");
    } else if (k == "width") {
      auto r = parse_u64(value);
      if (!r || *r == 0 || *r > 19) return failure("width: a number of digits from 1 to 19");
      s.width = static_cast<unsigned>(*r);
      has_width = true;
    } else if (k == "latency") {
      auto r = util::parse_duration(value);
      if (!r) return failure("latency: " + r.error());
      if (*r > std::chrono::minutes(10)) return failure("latency: at most 10m");
      s.latency = *r;
    } else if (k == "etag") {
      auto r = parse_etag_mode(value);
      if (!r) return failure(r.error());
      s.etag = *r;
    } else if (k == "mtime") {
      auto r = parse_iso8601(value);
      if (!r) return failure("mtime: " + r.error());
      s.mtime = *r;
    } else {
      return failure("unknown field '" + k +
                     "' (known: name, keys, size, seed, prefix, suffix, width, latency, "
                     "etag, mtime, writable)");
    }
  }
  if (s.name.empty()) return failure("name= is missing");
  if (!valid_bucket_name(s.name)) return failure("'" + s.name + "' is not a valid bucket name (3-63 of a-z 0-9 . -)");
  if (s.writable) {
    if (has_keys || has_size) return failure("a writable bucket starts empty: no keys= or size=");
    return s;
  }
  if (!has_keys) return failure("keys= is missing (or say writable)");
  if (!has_size) s.sizes.classes.push_back({100, 1024, 1024});
  const unsigned need = digits_of(s.keys == 0 ? 0 : s.keys - 1);
  if (!has_width) s.width = need;
  if (s.width < need)
    return failure("width: " + std::to_string(s.width) + " digits cannot number " + std::to_string(s.keys) + " keys");
  if (s.prefix.size() + s.width + s.suffix.size() > 1024) return failure("keys would be longer than 1024 bytes");
  return s;
}

std::string bucket_spec::describe() const {
  if (writable) return "name=" + name + ",writable";
  std::string out = "name=" + name + ",keys=" + std::to_string(keys) + ",size=";
  if (sizes.classes.size() == 1 && sizes.classes[0].percent == 100) {
    out += range_text(sizes.classes[0]);
  } else {
    out += "mixed:";
    for (std::size_t i = 0; i < sizes.classes.size(); ++i) {
      const auto& c = sizes.classes[i];
      char pct[32];
      std::snprintf(pct, sizeof pct, "%g%%", c.percent);
      out += (i ? ";" : "") + std::string(pct) + range_text(c);
    }
  }
  out += ",seed=" + std::to_string(seed) + ",width=" + std::to_string(width);
  if (!prefix.empty()) out += ",prefix=" + prefix;
  if (!suffix.empty()) out += ",suffix=" + suffix;
  if (latency.count() > 0) out += ",latency=" + std::to_string(latency.count()) + "ms";
  if (etag) out += ",etag=" + std::string(to_string(*etag));
  out += ",mtime=" + iso8601(mtime);
  return out;
}

parse_result<std::vector<bucket_spec>> parse_bucket_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return failure("cannot read " + path.string());
  std::vector<bucket_spec> out;
  std::string line;
  for (unsigned n = 1; std::getline(in, line); ++n) {
    const std::string_view l = trim(line);
    if (l.empty() || l.front() == '#') continue;
    if (l.size() > 64 * 1024) return failure(path.string() + ":" + std::to_string(n) + ": line too long");
    auto s = parse_bucket_spec(l);
    if (!s) return failure(path.string() + ":" + std::to_string(n) + ": " + s.error());
    out.push_back(std::move(*s));
    if (out.size() > 10'000) return failure(path.string() + ": more than 10000 buckets");
  }
  return out;
}

parse_result<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  int y = 0;
  unsigned mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char z = 0;
  std::string t(text);
  // Fractional seconds (S3 writes ".000") are accepted and dropped.
  if (const auto dot = t.find('.');
      dot == 19 && t.size() > 21 && t.back() == 'Z' &&
      std::all_of(t.begin() + 20, t.end() - 1, [](char c) { return c >= '0' && c <= '9'; }))
    t = t.substr(0, 19) + "Z";
  if (std::sscanf(t.c_str(), "%4d-%2u-%2uT%2u:%2u:%2u%c", &y, &mo, &d, &h, &mi, &s, &z) != 7 || z != 'Z' ||
      t.size() != 20)
    return failure("'" + std::string(text) + "' is not YYYY-MM-DDTHH:MM:SS[.fff]Z");
  using namespace std::chrono;
  const year_month_day ymd{year(y), month(mo), day(d)};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return failure("'" + t + "' is not a valid date");
  return system_clock::time_point(sys_days(ymd)) + hours(h) + minutes(mi) + seconds(s);
}

std::string iso8601(std::chrono::system_clock::time_point t) {
  const civil c = to_civil(t);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02u:%02u:%02u.000Z", c.y, c.m, c.d, c.hh, c.mm, c.ss);
  return buf;
}

std::string http_date(std::chrono::system_clock::time_point t) {
  static constexpr const char* wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* mn[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const civil c = to_civil(t);
  const std::chrono::weekday w{std::chrono::floor<std::chrono::days>(t)};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02u:%02u:%02u GMT", wd[w.c_encoding()], c.d, mn[c.m - 1], c.y, c.hh,
                c.mm, c.ss);
  return buf;
}

}  // namespace ferry::synthetic
