#pragma once
// S3 XML: a minimal writer for responses, and the two request bodies the endpoint parses
// (CompleteMultipartUpload, Delete). Parsing is bounded by the caller's body limit and refuses
// anything of the wrong shape with S3's MalformedXML.
#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store.hpp"

namespace ferry::synthetic {

// Appends text with & < > " ' escaped and other control characters as character references.
void append_escaped(std::string& out, std::string_view text);

// Builds a document element by element; every text goes through append_escaped.
class xml_writer {
 public:
  explicit xml_writer(std::string_view root, bool with_namespace = true);
  xml_writer& open(std::string_view name);
  xml_writer& close(std::string_view name);
  xml_writer& element(std::string_view name, std::string_view text);
  xml_writer& element(std::string_view name, std::uint64_t value);
  // Closes the root and returns the document.
  std::string finish();

 private:
  std::string root_, out_;
};

struct delete_request {
  bool quiet = false;
  std::vector<std::string> keys;
};
boost::system::result<delete_request, s3_failure> parse_delete_request(std::string_view body);
// Parts as listed, ETags without quotes (lower-cased).
boost::system::result<std::vector<complete_part>, s3_failure> parse_complete_request(std::string_view body);

}  // namespace ferry::synthetic
