#include "sync/planner.hpp"

#include "transfer/copier.hpp"
#include "util/text.hpp"

#include <chrono>

namespace ferry::sync {

merge_join::merge_join(std::unique_ptr<store::lister> src, std::unique_ptr<store::lister> dst) {
  src_.lister = std::move(src);
  dst_.lister = std::move(dst);
  if (!dst_.lister) dst_.done = true;
}

asio::awaitable<store::result<void>> merge_join::fill(side& s) {
  while (!s.done && s.at >= s.page.size()) {
    auto page = co_await s.lister->next();
    if (!page) co_return page.error();
    s.page = std::move(*page);
    s.at = 0;
    if (s.page.empty()) s.done = true;
  }
  co_return store::result<void>();
}

asio::awaitable<store::result<std::optional<listed_pair>>> merge_join::next() {
  if (auto r = co_await fill(src_); !r) co_return r.error();
  if (auto r = co_await fill(dst_); !r) co_return r.error();
  const bool has_src = !src_.done, has_dst = !dst_.done;
  if (!has_src && !has_dst) co_return std::optional<listed_pair>();
  listed_pair out;
  // std::string compares as unsigned bytes (char_traits<char> is memcmp): S3's order.
  const int c = !has_src ? 1 : !has_dst ? -1 : src_.page[src_.at].key.compare(dst_.page[dst_.at].key);
  if (c <= 0) out.src = std::move(src_.page[src_.at++]);
  if (c >= 0) out.dst = std::move(dst_.page[dst_.at++]);
  co_return std::optional<listed_pair>(std::move(out));
}

namespace {

std::int64_t seconds_of(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string listed_md5(const store::object_info& o) {
  return transfer::etag_is_md5(o.etag) ? util::ascii_lower(o.etag) : std::string();
}

difference compare_listed(const store::object_info& src, const store::object_info& dst, const compare_options& o) {
  if (src.size != dst.size) return difference::changed;
  if (o.size_only) return difference::same;
  const std::string sm = listed_md5(src), dm = listed_md5(dst);
  if (!sm.empty() && !dm.empty()) return sm == dm ? difference::same : difference::changed;
  if (!src.etag.empty() && !dst.etag.empty() && util::ascii_lower(src.etag) == util::ascii_lower(dst.etag))
    return difference::same;
  // A local side has no ETag.
  if (o.checksum && (src.etag.empty() || dst.etag.empty())) return difference::needs_detail;
  if (!src.last_modified || !dst.last_modified) return difference::changed;
  if (seconds_of(*dst.last_modified) >= seconds_of(*src.last_modified)) return difference::same;
  if (!src.etag.empty() && dst.etag.empty()) return difference::needs_detail;
  return difference::changed;
}

bool compare_exact(const store::object_info& src, const store::object_info& dst, std::string_view src_md5,
                   std::string_view dst_md5) {
  if (src.size != dst.size) return false;
  if (!src_md5.empty() && !dst_md5.empty()) return src_md5 == dst_md5;
  if (!src.mtime || !dst.last_modified) return false;
  return seconds_of(*src.mtime) == seconds_of(*dst.last_modified);
}

}  // namespace ferry::sync
