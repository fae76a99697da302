#include "s3/retry.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>

#include <algorithm>
#include <array>
#include <random>

namespace ferry::s3 {

namespace {

double default_random() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

int parse_digits(std::string_view s, std::size_t pos, std::size_t n, bool& ok) {
  int v = 0;
  if (pos + n > s.size()) {
    ok = false;
    return 0;
  }
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') {
      ok = false;
      return 0;
    }
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::chrono::milliseconds backoff_delay(const retry_config& cfg, int attempt, bool throttled, const random_fn& rng) {
  const auto base = throttled ? cfg.throttle_base_delay : cfg.base_delay;
  // base * 2^(attempt-1), saturating at max_backoff without overflowing.
  auto ceiling = std::max(base, std::chrono::milliseconds(0));
  for (int i = 1; i < attempt && ceiling.count() > 0 && ceiling < cfg.max_backoff; ++i)
    ceiling = ceiling > cfg.max_backoff / 2 ? cfg.max_backoff : ceiling * 2;
  ceiling = std::min(ceiling, cfg.max_backoff);
  double r = rng ? rng() : default_random();
  if (!(r >= 0.0)) r = 0.0;  // also NaN
  if (r > 1.0) r = 1.0;
  return std::chrono::milliseconds(static_cast<std::int64_t>(r * static_cast<double>(ceiling.count())));
}

retry_quota::retry_quota(const retry_config& cfg)
    : tokens_(cfg.quota_capacity),
      capacity_(cfg.quota_capacity),
      retry_cost_(cfg.retry_cost),
      timeout_cost_(cfg.timeout_retry_cost),
      refund_(cfg.success_refund) {}

bool retry_quota::try_acquire(bool timeout) {
  const int cost = timeout ? timeout_cost_ : retry_cost_;
  std::lock_guard lock(mutex_);
  if (tokens_ < cost) return false;
  tokens_ -= cost;
  return true;
}

void retry_quota::on_success(bool retried) {
  std::lock_guard lock(mutex_);
  tokens_ = std::min(capacity_, tokens_ + (retried ? retry_cost_ : refund_));
}

int retry_quota::available() const {
  std::lock_guard lock(mutex_);
  return tokens_;
}

bool is_throttling(const error& e) {
  static constexpr std::array<std::string_view, 14> codes = {"Throttling",
                                                             "ThrottlingException",
                                                             "ThrottledException",
                                                             "RequestThrottledException",
                                                             "TooManyRequestsException",
                                                             "ProvisionedThroughputExceededException",
                                                             "TransactionInProgressException",
                                                             "RequestLimitExceeded",
                                                             "BandwidthLimitExceeded",
                                                             "LimitExceededException",
                                                             "RequestThrottled",
                                                             "SlowDown",
                                                             "EC2ThrottledException",
                                                             "TooManyRequests"};
  if (e.http_status == 429 || e.http_status == 503) return true;
  return std::find(codes.begin(), codes.end(), e.code) != codes.end();
}

bool is_timeout(const error& e) {
  if (e.transport) return e.transport == boost::asio::error::timed_out || e.transport == boost::beast::error::timeout;
  return e.http_status == 408 || e.code == "RequestTimeout";
}

bool is_clock_skew(const error& e) {
  return e.code == "RequestTimeTooSkewed" || e.code == "RequestExpired" || e.code == "RequestInTheFuture";
}

retry_decision decide_retry(const retry_config& cfg, retry_quota& quota, const error& e, int attempt,
                            const random_fn& rng) {
  if (!e.retryable) return {false, {}, "not retryable"};
  if (attempt >= cfg.max_attempts) return {false, {}, "max attempts reached"};
  if (!quota.try_acquire(is_timeout(e))) return {false, {}, "retry quota exhausted"};
  return {true, backoff_delay(cfg, attempt, is_throttling(e), rng), "retry"};
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s) {
  // Optional "Sun, " then "06 Nov 1994 08:49:37 GMT".
  if (const auto comma = s.find(','); comma != std::string_view::npos) {
    if (comma > 9) return std::nullopt;  // the longest day name, spelt out
    s.remove_prefix(comma + 1);
  }
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  // "06 Nov 1994 08:49:37 GMT" is exactly 24 characters.
  if (s.size() != 24 || s[2] != ' ' || s[6] != ' ' || s[11] != ' ' || s[14] != ':' || s[17] != ':' || s[20] != ' ')
    return std::nullopt;
  const auto zone = s.substr(21);
  if (zone != "GMT" && zone != "UTC") return std::nullopt;
  static constexpr std::array<std::string_view, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto it = std::find(months.begin(), months.end(), s.substr(3, 3));
  if (it == months.end()) return std::nullopt;
  bool ok = true;
  const int day = parse_digits(s, 0, 2, ok);
  const int year = parse_digits(s, 7, 4, ok);
  const int hh = parse_digits(s, 12, 2, ok);
  const int mm = parse_digits(s, 15, 2, ok);
  const int ss = parse_digits(s, 18, 2, ok);
  if (!ok || hh > 23 || mm > 59 || ss > 60) return std::nullopt;  // 60: a leap second
  using namespace std::chrono;
  const year_month_day ymd{std::chrono::year(year), month(static_cast<unsigned>(it - months.begin() + 1)),
                           std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return std::nullopt;
  return sys_days(ymd) + hours(hh) + minutes(mm) + seconds(ss);
}

std::optional<std::chrono::milliseconds> clock_offset_from_date(std::string_view server_date,
                                                                std::chrono::system_clock::time_point local_now) {
  const auto server = parse_http_date(server_date);
  if (!server) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*server - local_now);
}

}  // namespace ferry::s3
