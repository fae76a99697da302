#include "chunked.hpp"

#include <algorithm>
#include <charconv>

namespace ferry::synthetic {

bool aws_chunked_decoder::on_line() {
  switch (state_) {
    case state::size_line: {
      const std::string_view l = line_;
      const std::string_view size = l.substr(0, l.find(';'));
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(size.data(), size.data() + size.size(), n, 16);
      if (size.empty() || size.size() > 16 || ec != std::errc() || end != size.data() + size.size())
        return fail("bad aws-chunked chunk size '" + std::string(size.substr(0, 32)) + "'");
      remaining_ = n;
      state_ = n == 0 ? state::trailer : state::data;
      return true;
    }
    case state::data_crlf:
      if (!line_.empty()) return fail("aws-chunked data is longer than its chunk size");
      state_ = state::size_line;
      return true;
    case state::trailer: {
      if (line_.empty()) {
        state_ = state::done;
        return true;
      }
      if (trailers_.size() >= max_trailers) return fail("too many aws-chunked trailers");
      const auto colon = line_.find(':');
      if (colon == std::string::npos || colon == 0) return fail("bad aws-chunked trailer line");
      std::string name = line_.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
      std::string_view value = std::string_view(line_).substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
      trailers_.emplace_back(std::move(name), std::string(value));
      return true;
    }
    case state::data:
    case state::done:
      break;
  }
  return fail("aws-chunked decoder in a bad state");
}

}  // namespace ferry::synthetic
