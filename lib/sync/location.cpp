#include "sync/location.hpp"

#include "util/failure.hpp"

namespace ferry::sync {

std::string location::to_string() const {
  if (local) return path;
  std::string s = remote + ":" + bucket;
  if (!prefix.empty()) s += "/" + prefix;
  return s;
}

boost::system::result<location, std::string> parse_location(std::string_view text) {
  const std::string hint = " (expected REMOTE:BUCKET[/PREFIX], e.g. backup:photos/2024, or an absolute path)";
  if (!text.empty() && text.front() == '/') {
    if (text.find('\0') != std::string_view::npos) return ferry::util::failure("a path may not contain NUL");
    location loc;
    loc.local = true;
    loc.path = std::string(text);
    while (loc.path.size() > 1 && loc.path.back() == '/') loc.path.pop_back();
    for (std::string_view seg : {"/../", "/./"})
      if ((loc.path + "/").find(seg) != std::string::npos)
        return ferry::util::failure("path '" + loc.path + "' must not contain '.' or '..' segments");
    return loc;
  }
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return ferry::util::failure("'" + std::string(text) + "' names no remote" + hint);
  location loc;
  loc.remote = std::string(text.substr(0, colon));
  auto rest = text.substr(colon + 1);
  auto slash = rest.find('/');
  loc.bucket = std::string(rest.substr(0, slash));
  if (loc.bucket.empty()) return ferry::util::failure("'" + std::string(text) + "' names no bucket" + hint);
  // S3 bucket names: 3-63 characters of lower-case letters, digits, '.', '-'.
  if (loc.bucket.size() < 3 || loc.bucket.size() > 63)
    return ferry::util::failure("bucket name '" + loc.bucket + "' must be 3 to 63 characters long");
  for (char c : loc.bucket)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
          c == '-'))
      return ferry::util::failure("bucket name '" + loc.bucket + "' may hold only a-z, 0-9, '.' and '-'");
  if (slash != std::string_view::npos) {
    loc.prefix = std::string(rest.substr(slash + 1));
    if (!loc.prefix.empty() && loc.prefix.back() != '/') loc.prefix += '/';
  }
  for (char c : loc.remote)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
      return ferry::util::failure("remote name '" + loc.remote + "' may hold only letters, digits, '_' and '-'");
  return loc;
}

}  // namespace ferry::sync
