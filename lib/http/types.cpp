// header_list, origin and parse_origin: the small value types of client.hpp.
#include <boost/system/errc.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <cstdlib>

#include "http/client.hpp"

namespace ferry::http {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::uint16_t default_port(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

}  // namespace

void header_list::set(std::string_view name, std::string value) {
  erase(name);
  items.emplace_back(std::string(name), std::move(value));
}

void header_list::add(std::string_view name, std::string value) {
  items.emplace_back(std::string(name), std::move(value));
}

void header_list::erase(std::string_view name) {
  std::erase_if(items, [&](const auto& kv) { return iequals(kv.first, name); });
}

std::optional<std::string_view> header_list::get(std::string_view name) const {
  for (const auto& [k, v] : items) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::string origin::host_header() const {
  // An IPv6 literal needs its brackets back in Host.
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != default_port(scheme)) h += ":" + std::to_string(port);
  return h;
}

result<origin> parse_origin(std::string_view url) {
  auto u = boost::urls::parse_uri(boost::urls::string_view(url.data(), url.size()));
  if (!u) return u.error();
  origin o;
  for (char c : u->scheme()) o.scheme += lower(c);
  if (o.scheme != "http" && o.scheme != "https") return make_error_code(boost::system::errc::protocol_not_supported);
  switch (u->host_type()) {
    case boost::urls::host_type::name:
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::ipv6: {
      // DNS names compare case-insensitively; lower-casing keeps one pool per origin.
      for (char c : u->host_address()) o.host += lower(c);
      break;
    }
    default:
      return make_error_code(boost::system::errc::invalid_argument);
  }
  if (o.host.empty()) return make_error_code(boost::system::errc::invalid_argument);
  o.port = default_port(o.scheme);
  if (u->has_port()) {
    auto p = u->port();
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535) {
      return make_error_code(boost::system::errc::invalid_argument);
    }
    o.port = static_cast<std::uint16_t>(v);
  }
  return o;
}

std::string ca_file_from_env() {
  const char* v = std::getenv("AWS_CA_BUNDLE");
  return v ? std::string(v) : std::string();
}

}  // namespace ferry::http
