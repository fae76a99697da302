#pragma once
// Which objects a job touches: rclone-style include/exclude globs plus size and age bounds.
// Patterns match a key relative to the job's root ('/'-separated):
//   `*` any run without '/', `**` any run, `?` one character but '/', `[a-z]` `[!a-z]` `[^a-z]` classes
//   (ASCII members only; never '/'), `{a,b}` alternatives (not nested), `\` escapes the next character.
//   A leading '/' anchors the pattern at the root; otherwise it may also match any tail of the key that
//   starts after a '/' ("*.jpg" matches "a/b.jpg"). A trailing '/' names a directory: "d/" is "d/**".
//   Matching is byte-wise on UTF-8, except that `?` and negated classes consume one whole UTF-8 character.
// Decision: any exclude match rejects; then, if includes exist, one must match; then size and age.
// rclone's ordered --filter rules and --filter-from files are not supported.
#include "store/endpoint.hpp"

#include <boost/system/result.hpp>

#include <bitset>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::sync {

// One compiled pattern; matching is O(key length * pattern length), never exponential.
class glob {
 public:
  static constexpr std::size_t max_pattern_bytes = 1024;

  // The error text names the pattern and what is wrong with it, for the operator.
  static boost::system::result<glob, std::string> compile(std::string_view pattern);
  // The whole key, or (unless anchored) a tail of it that starts after a '/'.
  bool matches(std::string_view key) const;
  // As given to compile(), for logs and job descriptions.
  const std::string& pattern() const { return pattern_; }

 private:
  friend struct glob_builder;
  glob() = default;  // only compile() makes one: a default glob would have no nodes

  // A state of the pattern's NFA, simulated breadth-first by matches().
  struct node {
    std::bitset<256> consumes;  // bytes that move to `out`
    int out = -1;
    std::vector<int> epsilon;  // moves without consuming a byte
  };

  std::string pattern_;
  bool anchored_ = false;
  std::vector<node> nodes_;  // node 0 accepts
  int start_ = 0;
};

// Members are brace-initialised so designated initialisers may name only some (GCC's
// -Wmissing-field-initializers).
struct filter_options {
  std::vector<std::string> include{}, exclude{};             // at most max_patterns each
  std::optional<std::uint64_t> min_size{}, max_size{};       // bytes, inclusive bounds
  std::optional<std::chrono::seconds> min_age{}, max_age{};  // age = now - mtime (or last_modified); inclusive, >= 0
};

// A job's compiled filter; a default-constructed one admits everything. Its const methods are safe to
// call from several threads at once.
class filter {
 public:
  static constexpr std::size_t max_patterns = 64;

  static boost::system::result<filter, std::string> compile(const filter_options& o);
  // Admits everything: the planner may skip the checks.
  bool empty() const;
  // The include/exclude decision alone (a listing can apply it before knowing sizes).
  bool admits_key(std::string_view key) const;
  // Key, size and age (of mtime, else last_modified). An object without either passes the age
  // bounds: its age is unknown.
  bool admits(const store::object_info& o, std::chrono::system_clock::time_point now) const;

 private:
  std::vector<glob> include_, exclude_;
  std::optional<std::uint64_t> min_size_, max_size_;
  std::optional<std::chrono::seconds> min_age_, max_age_;
};

}  // namespace ferry::sync
