#pragma once
// Reads a whole listing for tests: every page (bounded, so a lister that never ends fails), and
// the keys in the order they came.
#include "store/endpoint.hpp"

#include <boost/asio/awaitable.hpp>

#include <string>
#include <vector>

namespace ferry::test {

using listing_pages = std::vector<std::vector<store::object_info>>;

inline boost::asio::awaitable<store::result<listing_pages>> drain(store::lister& l, int max_pages = 10'000) {
  listing_pages pages;
  for (int i = 0; i < max_pages; ++i) {
    auto page = co_await l.next();
    if (!page) co_return page.error();
    if (page->empty()) co_return pages;
    pages.push_back(std::move(*page));
  }
  co_return s3::local_error("TestLoop", "listing does not end");
}

inline boost::asio::awaitable<store::result<listing_pages>> list_pages(store::endpoint& ep) {
  auto l = ep.list();
  co_return co_await drain(*l, 100'000);
}

inline std::vector<std::string> keys_of(const listing_pages& pages) {
  std::vector<std::string> out;
  for (const auto& p : pages)
    for (const auto& o : p) out.push_back(o.key);
  return out;
}

}  // namespace ferry::test
