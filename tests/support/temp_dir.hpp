#pragma once

#include <filesystem>
#include <string_view>

namespace ferry::test {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction unless the
// environment variable FERRY_KEEP_TEST_DIRS is set (then its path is printed to stderr, to look at).
// Paths stay short enough for Unix socket names inside it.
class temp_dir {
 public:
  // Throws std::system_error if the directory cannot be created.
  explicit temp_dir(std::string_view prefix = "ferry-test");
  temp_dir(temp_dir&& other) noexcept;
  temp_dir& operator=(temp_dir&& other) noexcept;
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir();

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& rel) const { return path_ / rel; }

 private:
  void remove() noexcept;

  std::filesystem::path path_;
};

}  // namespace ferry::test
