#include "s3/sigv4.hpp"

#include "s3/uri.hpp"
#include "util/hash.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cstdio>

namespace ferry::s3 {

namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Trim, and collapse inner runs of blanks to one space (SigV4 canonical header values).
std::string canonical_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  bool blank = false;
  for (const char c : v) {
    if (c == ' ' || c == '\t') {
      blank = true;
      continue;
    }
    if (blank && !out.empty()) out += ' ';
    blank = false;
    out += c;
  }
  return out;
}

// A component of the target, decoded; a malformed escape is taken literally.
std::string decode_or_literal(std::string_view s) {
  auto d = uri_decode(s, false);
  return d ? std::move(*d) : std::string(s);
}

bool signed_by_default(std::string_view lower_name) {
  return lower_name.starts_with("x-amz-") || lower_name == "content-md5" || lower_name == "content-type" ||
         lower_name == "range" || lower_name == "date";
}

void erase_field(http::header_list& h, std::string_view name) {
  std::erase_if(h.items, [&](const auto& f) { return iequals(f.first, name); });
}

struct civil {
  int year;
  unsigned month, day;
  long long secs_of_day;
};

civil to_civil(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto s = floor<seconds>(t);
  const auto d = floor<days>(s);
  const year_month_day ymd{d};
  return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
          static_cast<long long>((s - d).count())};
}

}  // namespace

std::string empty_payload_sha256() { return util::to_hex(util::sha256(std::string_view{})); }

namespace sigv4 {

std::string amz_date(std::chrono::system_clock::time_point t) {
  const auto c = to_civil(t);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02lld%02lld%02lldZ", c.year, c.month, c.day, c.secs_of_day / 3600,
                c.secs_of_day / 60 % 60, c.secs_of_day % 60);
  return buf;
}

std::string date_stamp(std::chrono::system_clock::time_point t) { return amz_date(t).substr(0, 8); }

std::string canonical_uri(std::string_view encoded_path) {
  if (encoded_path.empty()) return "/";
  return uri_encode(decode_or_literal(encoded_path), false);
}

query_params parse_query(std::string_view q) {
  query_params out;
  while (!q.empty()) {
    const auto amp = q.find('&');
    const std::string_view item = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string_view::npos)
      out.emplace_back(decode_or_literal(item), std::string());
    else
      out.emplace_back(decode_or_literal(item.substr(0, eq)), decode_or_literal(item.substr(eq + 1)));
  }
  return out;
}

std::string canonical_query(query_params params) {
  for (auto& [name, value] : params) {
    name = uri_encode(name, true);
    value = uri_encode(value, true);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

std::string signed_header_list(const std::vector<std::string>& signed_headers) {
  std::vector<std::string> names;
  names.reserve(signed_headers.size());
  for (const auto& n : signed_headers) names.push_back(util::ascii_lower(n));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ';';
    out += n;
  }
  return out;
}

std::string canonical_request(std::string_view method, std::string_view canonical_uri, const query_params& query,
                              const header_fields& headers, const std::vector<std::string>& signed_headers,
                              std::string_view payload_hash) {
  std::vector<std::string> names;
  for (const auto& n : signed_headers) names.push_back(util::ascii_lower(n));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  std::string out;
  out.reserve(512);
  out += method;
  out += '\n';
  out += canonical_uri;
  out += '\n';
  out += canonical_query(query);
  out += '\n';
  for (const auto& name : names) {
    out += name;
    out += ':';
    bool first = true;
    for (const auto& [n, v] : headers) {
      if (!iequals(n, name)) continue;
      if (!first) out += ',';
      first = false;
      out += canonical_value(v);
    }
    out += '\n';
  }
  out += '\n';
  out += signed_header_list(names);
  out += '\n';
  out += payload_hash;
  return out;
}

std::string credential_scope(std::string_view date, std::string_view region, std::string_view service) {
  std::string out;
  out.reserve(date.size() + region.size() + service.size() + 16);
  out.append(date).append("/").append(region).append("/").append(service).append("/aws4_request");
  return out;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request) {
  std::string out;
  out.append(algorithm).append("\n").append(amz_date).append("\n").append(scope).append("\n");
  out += util::to_hex(util::sha256(canonical_request));
  return out;
}

std::array<std::uint8_t, 32> signing_key(std::string_view secret, std::string_view date, std::string_view region,
                                         std::string_view service) {
  std::string k = "AWS4";
  k += secret;
  auto key = util::hmac_sha256(std::string_view(k), date);
  std::fill(k.begin(), k.end(), '\0');  // do not leave the secret behind in freed memory
  key = util::hmac_sha256(key, region);
  key = util::hmac_sha256(key, service);
  return util::hmac_sha256(key, "aws4_request");
}

std::string signature(const std::array<std::uint8_t, 32>& key, std::string_view string_to_sign) {
  return util::to_hex(util::hmac_sha256(key, string_to_sign));
}

std::string authorization(std::string_view access_key_id, std::string_view scope, std::string_view signed_headers,
                          std::string_view signature) {
  std::string out;
  out.append(algorithm)
      .append(" Credential=")
      .append(access_key_id)
      .append("/")
      .append(scope)
      .append(", SignedHeaders=")
      .append(signed_headers)
      .append(", Signature=")
      .append(signature);
  return out;
}

}  // namespace sigv4

void sign_request(http::request& req, std::string_view host_header, std::string_view payload_hash,
                  const sign_params& p) {
  auto& h = req.headers;
  for (std::string_view name : {"authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"})
    erase_field(h, name);
  const std::string date = sigv4::amz_date(p.now);
  h.items.emplace_back("x-amz-date", date);
  h.items.emplace_back("x-amz-content-sha256", std::string(payload_hash));
  if (!p.creds.session_token.empty()) h.items.emplace_back("x-amz-security-token", p.creds.session_token);

  sigv4::header_fields fields;
  std::vector<std::string> names{"host"};
  fields.emplace_back("host", std::string(host_header));
  for (const auto& [name, value] : h.items) {
    std::string n = util::ascii_lower(name);
    if (n == "host" || !signed_by_default(n)) continue;  // Host is the client's: host_header stands for it
    fields.emplace_back(n, value);
    names.push_back(std::move(n));
  }

  const std::string_view target = req.target;
  const auto qmark = target.find('?');
  const std::string uri = sigv4::canonical_uri(target.substr(0, qmark));
  const auto query =
      qmark == std::string_view::npos ? sigv4::query_params{} : sigv4::parse_query(target.substr(qmark + 1));

  const std::string creq = sigv4::canonical_request(req.method, uri, query, fields, names, payload_hash);
  const std::string scope = sigv4::credential_scope(date.substr(0, 8), p.region, p.service);
  const std::string sts = sigv4::string_to_sign(date, scope, creq);
  const auto key = sigv4::signing_key(p.creds.secret_access_key, date.substr(0, 8), p.region, p.service);
  h.items.emplace_back(
      "Authorization",
      sigv4::authorization(p.creds.access_key_id, scope, sigv4::signed_header_list(names), sigv4::signature(key, sts)));
}

}  // namespace ferry::s3
