#pragma once
// The endpoint of a local directory. Every filesystem call runs on a blocking_pool. Keys are
// relative paths resolved one component at a time from the root (openat, no symlinks unless
// asked), so no key reaches outside the root. Writes land in a temp file beside the target and
// are renamed into place: a reader sees the old file or the whole new one, never a part.
#include "store/blocking.hpp"
#include "store/endpoint.hpp"

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string_view>

namespace ferry::store {

struct local_options {
  // Off: symbolic links are neither listed nor traversed (an S3 bucket has none). On: links to
  // files and directories are followed, also outside the root; a directory cycle is skipped.
  bool follow_symlinks = false;
  // fsync a written file, and the directories its name was added to, before reporting success.
  bool fsync = true;
  // Keys per listing page (S3's is 1000).
  std::size_t list_page_size = 1000;
};

// The root is created by the first write if missing; listing a missing root fails with
// "RootNotFound" (404). `pool` must outlive the endpoint and everything it returns.
//
// Errors: "InvalidKey" (a key that is no relative path: empty, absolute, "..", ".", "a//b", NUL,
// a component over 255 bytes, or a temp file's name), "NoSuchKey" (404), "PathConflict" (a file
// where a directory must be, or the reverse), "BadDigest" (content_md5 or checksum_crc32c does
// not match), "SourceChanged" (retryable: the file's size or mtime changed while it was read;
// compare reader info() with a listing to catch changes before the read), "LocalIOError".
// Not stored: metadata other than the mtime. Reads ignore if_match (no ETags locally); stat()
// and read() fill metadata.content_type from the key's extension.
std::unique_ptr<endpoint> make_local_endpoint(std::filesystem::path root, blocking_pool& pool, local_options opts = {});

// The name prefix of in-progress writes' temp files; never listed, refused as a key.
inline constexpr std::string_view temp_file_prefix = ".ferry-tmp-";

// Whether `key` can name a file under the root ("InvalidKey" otherwise).
result<void> check_local_key(std::string_view key);

// A Content-Type for the key's extension (case-insensitive); "application/octet-stream" if unknown.
std::string_view guess_content_type(std::string_view key);

}  // namespace ferry::store
