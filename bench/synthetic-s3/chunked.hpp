#pragma once
// Decoder for aws-chunked request bodies (Content-Encoding: aws-chunked; x-amz-content-sha256
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] or STREAMING-UNSIGNED-PAYLOAD-TRAILER):
//   hex-size[;chunk-signature=SIG]\r\n DATA \r\n ... 0[;chunk-signature=SIG]\r\n [name:value\r\n]* \r\n
// I/O-free: feed() takes the raw bytes in pieces of any size. Chunk signatures are read but not
// checked. Every line, the trailer count and their total size are bounded.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::synthetic {

class aws_chunked_decoder {
 public:
  static constexpr std::size_t max_line = 4096;
  static constexpr std::size_t max_trailers = 16;

  // Decodes `in`; payload bytes go to sink(std::span<const char>). False on malformed input (error()
  // says why); the decoder then refuses everything.
  template <class Sink>
  bool feed(std::span<const char> in, Sink& sink) {
    std::size_t i = 0;
    while (i < in.size()) {
      if (!error_.empty()) return false;
      if (state_ == state::data) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
        sink(in.subspan(i, n));
        i += n;
        remaining_ -= n;
        decoded_ += n;
        if (remaining_ == 0) state_ = state::data_crlf;
        continue;
      }
      if (state_ == state::done) return fail("bytes after the end of the aws-chunked body");
      const char c = in[i++];
      if (c != '\n') {
        if (line_.size() >= max_line) return fail("an aws-chunked line is too long");
        line_.push_back(c);
        continue;
      }
      if (line_.empty() || line_.back() != '\r') return fail("an aws-chunked line does not end in CRLF");
      line_.pop_back();
      if (!on_line()) return false;
      line_.clear();
    }
    return error_.empty();
  }
  bool done() const { return state_ == state::done; }
  const std::string& error() const { return error_; }
  std::uint64_t decoded_bytes() const { return decoded_; }
  // Trailer fields, names lower-cased.
  const std::vector<std::pair<std::string, std::string>>& trailers() const { return trailers_; }

 private:
  enum class state { size_line, data, data_crlf, trailer, done };
  bool fail(std::string why) {
    error_ = std::move(why);
    return false;
  }
  bool on_line();

  state state_ = state::size_line;
  std::string line_;
  std::uint64_t remaining_ = 0, decoded_ = 0;
  std::vector<std::pair<std::string, std::string>> trailers_;
  std::string error_;
};

}  // namespace ferry::synthetic
