#pragma once
// The verdict of one object, as recorded: what was compared with what. An object counts as
// verified only when a comparison was made and matched.
#include <chrono>
#include <cstdint>
#include <string>

namespace ferry::transfer {

enum class verdict { verified, mismatch, failed };

struct integrity_record {
  std::string key;  // the destination key
  std::uint64_t size = 0;
  std::string md5;  // hex, of the bytes that passed through ferry ("" for a server-side copy)
  std::uint32_t crc32c = 0;
  std::string sha256;  // hex, when transfer_config::sha256 is on
  std::string source_etag, destination_etag;
  // How the verdict was reached, e.g. "etag=md5" (destination ETag equals the MD5 of the bytes
  // sent, which equals the source's MD5 ETag), "multipart-etag" (MD5 of part MD5s + "-N"),
  // "server-copy+etag", "local-md5" (the local writer checked the MD5 before renaming).
  std::string method;
  verdict result = verdict::failed;
  std::string error;  // why, when not verified
  std::chrono::system_clock::time_point time;
};

std::string_view to_string(verdict v);

// Where verdicts go: the job keeps counts; lib/state will persist every record.
class integrity_sink {
 public:
  virtual ~integrity_sink() = default;
  virtual void record(const integrity_record& r) = 0;
};

}  // namespace ferry::transfer
