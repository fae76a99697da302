#include "sync/job_options.hpp"

#include <boost/json.hpp>

namespace ferry::sync {

namespace json = boost::json;

namespace {

json::array to_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

}  // namespace

std::string encode_job_options(const job_options& o) {
  json::object j;
  j["delete"] = o.delete_extraneous;
  if (o.max_delete) j["max_delete"] = *o.max_delete;
  j["force"] = o.force;
  j["include"] = to_array(o.filter.include);
  j["exclude"] = to_array(o.filter.exclude);
  if (o.filter.min_size) j["min_size"] = *o.filter.min_size;
  if (o.filter.max_size) j["max_size"] = *o.filter.max_size;
  if (o.filter.min_age) j["min_age"] = o.filter.min_age->count();
  if (o.filter.max_age) j["max_age"] = o.filter.max_age->count();
  j["checksum"] = o.checksum;
  j["size_only"] = o.size_only;
  j["dry_run"] = o.dry_run;
  if (o.interval) j["interval"] = o.interval->count();
  if (!o.bwlimit.empty()) j["bwlimit"] = o.bwlimit;
  if (o.concurrency) j["concurrency"] = *o.concurrency;
  if (o.part_size) j["part_size"] = *o.part_size;
  return json::serialize(j);
}

boost::system::result<job_options, std::string> decode_job_options(std::string_view text) {
  using R = boost::system::result<job_options, std::string>;
  job_options o;
  if (text.empty()) return o;
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return R(boost::system::in_place_error, "the stored job options are not valid JSON");
  const auto& j = v.as_object();
  auto flag = [&](const char* k) {
    auto* p = j.if_contains(k);
    return p && p->is_bool() && p->as_bool();
  };
  auto number = [&](const char* k) -> std::optional<std::uint64_t> {
    auto* p = j.if_contains(k);
    if (!p) return std::nullopt;
    if (p->is_uint64()) return p->as_uint64();
    if (p->is_int64() && p->as_int64() >= 0) return static_cast<std::uint64_t>(p->as_int64());
    return std::nullopt;
  };
  auto strings = [&](const char* k) {
    std::vector<std::string> out;
    if (auto* p = j.if_contains(k); p && p->is_array())
      for (const auto& s : p->as_array())
        if (s.is_string()) out.emplace_back(s.as_string());
    return out;
  };
  o.delete_extraneous = flag("delete");
  o.max_delete = number("max_delete");
  o.force = flag("force");
  o.filter.include = strings("include");
  o.filter.exclude = strings("exclude");
  o.filter.min_size = number("min_size");
  o.filter.max_size = number("max_size");
  if (auto n = number("min_age")) o.filter.min_age = std::chrono::seconds(*n);
  if (auto n = number("max_age")) o.filter.max_age = std::chrono::seconds(*n);
  o.checksum = flag("checksum");
  o.size_only = flag("size_only");
  o.dry_run = flag("dry_run");
  if (auto n = number("interval")) o.interval = std::chrono::seconds(*n);
  if (auto* p = j.if_contains("bwlimit"); p && p->is_string()) o.bwlimit = std::string(p->as_string());
  if (auto n = number("concurrency")) o.concurrency = static_cast<std::size_t>(*n);
  o.part_size = number("part_size");
  return o;
}

}  // namespace ferry::sync
