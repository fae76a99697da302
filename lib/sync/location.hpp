#pragma once
// Where a job reads or writes: "REMOTE:BUCKET[/PREFIX]" (an S3 remote named in the config) or an
// absolute local directory path.
#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace ferry::sync {

struct location {
  bool local = false;
  std::string path;  // local: absolute, without a trailing '/' (except "/")
  std::string remote;
  std::string bucket;
  std::string prefix;  // "" or ending in '/': "photos" and "photos/" both name the folder photos/

  std::string to_string() const;
};

// Parses and validates a location; the error text says what is wrong and how to write it.
boost::system::result<location, std::string> parse_location(std::string_view text);

}  // namespace ferry::sync
