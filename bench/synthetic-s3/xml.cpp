#include "xml.hpp"

#include "s3/xml.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace ferry::synthetic {
namespace {

s3_failure malformed() {
  return {400, "MalformedXML",
          "The XML you provided was not well-formed or did not validate against our published schema"};
}

std::string_view text_of(pugi::xml_node n) { return n.child_value(); }

std::string trim_etag(std::string_view e) {
  while (!e.empty() && (e.front() == ' ' || e.front() == '\n' || e.front() == '\t' || e.front() == '\r'))
    e.remove_prefix(1);
  while (!e.empty() && (e.back() == ' ' || e.back() == '\n' || e.back() == '\t' || e.back() == '\r'))
    e.remove_suffix(1);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  std::string out(e);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

constexpr unsigned parse_flags = pugi::parse_default & ~pugi::parse_wnorm_attribute;

}  // namespace

void append_escaped(std::string& out, std::string_view text) { s3::append_xml_escaped(out, text); }

xml_writer::xml_writer(std::string_view root, bool with_namespace) : root_(root) {
  out_.reserve(512);
  out_ += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<";
  out_ += root;
  if (with_namespace) out_ += " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
  out_ += '>';
}

xml_writer& xml_writer::open(std::string_view name) {
  out_.append("<").append(name).append(">");
  return *this;
}

xml_writer& xml_writer::close(std::string_view name) {
  out_.append("</").append(name).append(">");
  return *this;
}

xml_writer& xml_writer::element(std::string_view name, std::string_view text) {
  open(name);
  append_escaped(out_, text);
  return close(name);
}

xml_writer& xml_writer::element(std::string_view name, std::uint64_t value) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
  return element(name, std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

std::string xml_writer::finish() {
  close(root_);
  return std::move(out_);
}

boost::system::result<delete_request, s3_failure> parse_delete_request(std::string_view body) {
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size(), parse_flags, pugi::encoding_utf8)) return malformed();
  const auto root = doc.document_element();
  if (std::string_view(root.name()) != "Delete") return malformed();
  delete_request out;
  const std::string_view quiet = text_of(root.child("Quiet"));
  out.quiet = quiet == "true" || quiet == "True";
  for (auto obj : root.children("Object")) {
    const auto k = obj.child("Key");
    if (!k) return malformed();
    out.keys.emplace_back(text_of(k));
    if (out.keys.size() > 1000) return malformed();
  }
  if (out.keys.empty()) return malformed();
  return out;
}

boost::system::result<std::vector<complete_part>, s3_failure> parse_complete_request(std::string_view body) {
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size(), parse_flags, pugi::encoding_utf8)) return malformed();
  const auto root = doc.document_element();
  if (std::string_view(root.name()) != "CompleteMultipartUpload") return malformed();
  std::vector<complete_part> out;
  for (auto p : root.children("Part")) {
    const std::string_view num = text_of(p.child("PartNumber"));
    complete_part cp;
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), cp.number);
    if (num.empty() || ec != std::errc() || end != num.data() + num.size() || cp.number < 1 || cp.number > 10000)
      return malformed();
    if (!p.child("ETag")) return malformed();
    cp.etag = trim_etag(text_of(p.child("ETag")));
    out.push_back(std::move(cp));
    if (out.size() > 10000) return malformed();
  }
  return out;
}

}  // namespace ferry::synthetic
