#include "s3/xml.hpp"

#include "s3/uri.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <stdexcept>

namespace ferry::s3 {

namespace {

// parse_ws_pcdata_single keeps a value made only of spaces (a key "   " is a valid key).
// No DOCTYPE processing: pugixml expands no custom entities, so entity bombs stay inert text.
constexpr unsigned parse_options = pugi::parse_default | pugi::parse_ws_pcdata_single;

error invalid(std::string_view what, std::string detail) {
  error e = local_error("InvalidResponse", std::string(what) + ": " + std::move(detail));
  e.http_status = 200;
  e.retryable = true;
  return e;
}

std::string iso_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// All the text directly inside a node (pugixml splits text around CDATA sections and comments).
std::string text_of(pugi::xml_node n) {
  std::string out;
  for (auto c : n.children())
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
  return out;
}

std::string child_text(pugi::xml_node n, const char* name) { return text_of(n.child(name)); }

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// A parsed document, or the error that stops the parse (including an <Error> root).
struct loaded {
  pugi::xml_document doc;
  pugi::xml_node root;
};

std::optional<error> load(loaded& l, std::string_view body, std::string_view what,
                          std::initializer_list<std::string_view> roots) {
  if (body.size() > max_xml_body) {
    error e = local_error("ResponseTooLarge", std::string(what) + ": response body of " + std::to_string(body.size()) +
                                                  " bytes exceeds the " + std::to_string(max_xml_body) + " byte limit");
    e.http_status = 200;
    return e;
  }
  const auto res = l.doc.load_buffer(body.data(), body.size(), parse_options, pugi::encoding_utf8);
  if (!res) return invalid(what, std::string("malformed XML (") + res.description() + ")");
  l.root = l.doc.document_element();
  if (std::string_view(l.root.name()) == "Error") return classify_response(200, body, {}, {});
  if (std::find(roots.begin(), roots.end(), std::string_view(l.root.name())) == roots.end())
    return invalid(what, "expected <" + std::string(*roots.begin()) + ">, got <" +
                             std::string(std::string_view(l.root.name()).substr(0, 64)) + ">");
  return std::nullopt;
}

template <class T>
bool parse_number(const std::string& s, T& out) {
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (first == last) return false;
  const auto [ptr, ec] = std::from_chars(first, last, out);
  return ec == std::errc() && ptr == last;
}

// Optional element: absent means `fallback`; present must be a number.
template <class T>
bool number_or(pugi::xml_node parent, const char* name, T fallback, T& out) {
  const auto n = parent.child(name);
  if (!n) {
    out = fallback;
    return true;
  }
  return parse_number(text_of(n), out);
}

// Absent means false; present must be "true" or "false".
bool boolean_or_false(pugi::xml_node parent, const char* name, bool& out) {
  const auto n = parent.child(name);
  out = false;
  if (!n) return true;
  const auto v = iso_lower(text_of(n));
  if (v == "true") out = true;
  return v == "true" || v == "false";
}

bool url_encoded(pugi::xml_node root) { return iso_lower(child_text(root, "EncodingType")) == "url"; }

// A listing field, decoded when the response is url-encoded.
bool listing_text(pugi::xml_node n, bool encoded, std::string& out) {
  out = text_of(n);
  if (!encoded) return true;
  auto d = uri_decode(out, true);
  if (!d) return false;
  out = std::move(*d);
  return true;
}

}  // namespace

void append_xml_escaped(std::string& out, std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (c < 0x20) {  // S3 documents &#13; and &#10; for CR and LF in keys
          out += "&#";
          out += std::to_string(c);
          out += ';';
        } else {
          out += ch;
        }
    }
  }
}

std::optional<error_document> parse_error_document(std::string_view body) {
  if (body.empty() || body.size() > max_xml_body) return std::nullopt;
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size(), parse_options, pugi::encoding_utf8)) return std::nullopt;
  auto root = doc.document_element();
  if (std::string_view(root.name()) == "ErrorResponse") root = root.child("Error");
  if (std::string_view(root.name()) != "Error") return std::nullopt;
  error_document out{child_text(root, "Code"), child_text(root, "Message"), child_text(root, "RequestId")};
  if (out.request_id.empty()) out.request_id = text_of(doc.document_element().child("RequestId"));
  return out;
}

result<list_page> parse_list_objects_v2(std::string_view body) {
  constexpr std::string_view what = "ListObjectsV2";
  loaded l;
  if (auto e = load(l, body, what, {"ListBucketResult"})) return *e;
  const bool encoded = url_encoded(l.root);
  list_page page;
  if (!boolean_or_false(l.root, "IsTruncated", page.is_truncated)) return invalid(what, "bad <IsTruncated>");
  page.next_continuation_token = child_text(l.root, "NextContinuationToken");
  if (page.is_truncated && page.next_continuation_token.empty())
    return invalid(what, "truncated listing without <NextContinuationToken>");
  for (auto c : l.root.children("Contents")) {
    object_summary o;
    if (!listing_text(c.child("Key"), encoded, o.key)) return invalid(what, "bad URL encoding in <Key>");
    if (o.key.empty()) return invalid(what, "<Contents> without a <Key>");
    if (!number_or<std::uint64_t>(c, "Size", 0, o.size)) return invalid(what, "bad <Size>");
    o.etag = unquote(child_text(c, "ETag"));
    o.last_modified = child_text(c, "LastModified");
    o.storage_class = child_text(c, "StorageClass");
    page.objects.push_back(std::move(o));
  }
  for (auto cp : l.root.children("CommonPrefixes")) {
    std::string p;
    if (!listing_text(cp.child("Prefix"), encoded, p)) return invalid(what, "bad URL encoding in <Prefix>");
    page.common_prefixes.push_back(std::move(p));
  }
  if (!number_or<std::uint64_t>(l.root, "KeyCount", page.objects.size() + page.common_prefixes.size(), page.key_count))
    return invalid(what, "bad <KeyCount>");
  return page;
}

result<std::string> parse_initiate_multipart_upload(std::string_view body) {
  constexpr std::string_view what = "CreateMultipartUpload";
  loaded l;
  if (auto e = load(l, body, what, {"InitiateMultipartUploadResult"})) return *e;
  std::string id = child_text(l.root, "UploadId");
  if (id.empty()) return invalid(what, "no <UploadId>");
  return id;
}

result<std::string> parse_complete_multipart_upload(std::string_view body) {
  constexpr std::string_view what = "CompleteMultipartUpload";
  loaded l;
  if (auto e = load(l, body, what, {"CompleteMultipartUploadResult"})) return *e;
  std::string etag = unquote(child_text(l.root, "ETag"));
  if (etag.empty()) return invalid(what, "no <ETag>");
  return etag;
}

result<parts_page> parse_list_parts(std::string_view body) {
  constexpr std::string_view what = "ListParts";
  loaded l;
  if (auto e = load(l, body, what, {"ListPartsResult"})) return *e;
  parts_page page;
  if (!boolean_or_false(l.root, "IsTruncated", page.is_truncated)) return invalid(what, "bad <IsTruncated>");
  if (!number_or(l.root, "NextPartNumberMarker", 0, page.next_part_number_marker))
    return invalid(what, "bad <NextPartNumberMarker>");
  if (page.is_truncated && page.next_part_number_marker <= 0)
    return invalid(what, "truncated listing without <NextPartNumberMarker>");
  for (auto p : l.root.children("Part")) {
    part_info part;
    if (!parse_number(child_text(p, "PartNumber"), part.part_number) || part.part_number <= 0)
      return invalid(what, "bad <PartNumber>");
    if (!number_or<std::uint64_t>(p, "Size", 0, part.size)) return invalid(what, "bad <Size>");
    part.etag = unquote(child_text(p, "ETag"));
    page.parts.push_back(std::move(part));
  }
  return page;
}

result<multipart_uploads_page> parse_list_multipart_uploads(std::string_view body) {
  constexpr std::string_view what = "ListMultipartUploads";
  loaded l;
  if (auto e = load(l, body, what, {"ListMultipartUploadsResult"})) return *e;
  const bool encoded = url_encoded(l.root);
  multipart_uploads_page page;
  if (!boolean_or_false(l.root, "IsTruncated", page.is_truncated)) return invalid(what, "bad <IsTruncated>");
  if (!listing_text(l.root.child("NextKeyMarker"), encoded, page.next_key_marker))
    return invalid(what, "bad URL encoding in <NextKeyMarker>");
  page.next_upload_id_marker = child_text(l.root, "NextUploadIdMarker");
  if (page.is_truncated && page.next_key_marker.empty() && page.next_upload_id_marker.empty())
    return invalid(what, "truncated listing without a next marker");
  for (auto u : l.root.children("Upload")) {
    multipart_upload_ref ref;
    if (!listing_text(u.child("Key"), encoded, ref.key)) return invalid(what, "bad URL encoding in <Key>");
    ref.upload_id = child_text(u, "UploadId");
    if (ref.key.empty() || ref.upload_id.empty()) return invalid(what, "<Upload> without <Key> or <UploadId>");
    ref.initiated = child_text(u, "Initiated");
    page.uploads.push_back(std::move(ref));
  }
  return page;
}

result<delete_result> parse_delete_result(std::string_view body) {
  constexpr std::string_view what = "DeleteObjects";
  loaded l;
  if (auto e = load(l, body, what, {"DeleteResult"})) return *e;
  delete_result out;
  for (auto d : l.root.children("Deleted")) out.deleted.push_back(child_text(d, "Key"));
  for (auto e : l.root.children("Error"))
    out.errors.push_back({child_text(e, "Key"), child_text(e, "Code"), child_text(e, "Message")});
  return out;
}

result<copy_result> parse_copy_result(std::string_view body) {
  constexpr std::string_view what = "CopyObject";
  loaded l;
  if (auto e = load(l, body, what, {"CopyObjectResult", "CopyPartResult"})) return *e;
  copy_result out{unquote(child_text(l.root, "ETag")), child_text(l.root, "LastModified")};
  if (out.etag.empty()) return invalid(what, "no <ETag>");
  return out;
}

std::string build_complete_multipart_upload(const std::vector<part_info>& parts) {
  std::vector<const part_info*> sorted;
  sorted.reserve(parts.size());
  for (const auto& p : parts) sorted.push_back(&p);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const part_info* a, const part_info* b) { return a->part_number < b->part_number; });
  std::string out = R"(<?xml version="1.0" encoding="UTF-8"?>)"
                    R"(<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)";
  for (const auto* p : sorted) {
    out += "<Part><PartNumber>";
    out += std::to_string(p->part_number);
    out += "</PartNumber><ETag>&quot;";
    append_xml_escaped(out, p->etag);
    out += "&quot;</ETag></Part>";
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

std::string build_delete_objects(const std::vector<std::string>& keys, bool quiet) {
  if (keys.size() > max_delete_keys)
    throw std::length_error("DeleteObjects takes at most 1000 keys, got " + std::to_string(keys.size()));
  std::string out = R"(<?xml version="1.0" encoding="UTF-8"?>)"
                    R"(<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)";
  if (quiet) out += "<Quiet>true</Quiet>";
  for (const auto& k : keys) {
    out += "<Object><Key>";
    append_xml_escaped(out, k);
    out += "</Key></Object>";
  }
  out += "</Delete>";
  return out;
}

}  // namespace ferry::s3
