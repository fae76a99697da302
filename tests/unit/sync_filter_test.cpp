#include "sync/filter.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace ferry::sync {
namespace {

using namespace std::chrono_literals;

struct match_case {
  std::string pattern;
  std::string key;
  bool want;
};

void expect_matches(const std::vector<match_case>& cases) {
  for (const auto& c : cases) {
    auto g = glob::compile(c.pattern);
    ASSERT_TRUE(g) << c.pattern << ": " << g.error();
    EXPECT_EQ(g->matches(c.key), c.want) << "pattern '" << c.pattern << "' key '" << c.key << "'";
    EXPECT_EQ(g->pattern(), c.pattern);
  }
}

TEST(SyncGlob, UnanchoredPatternsMatchTheKeyOrATailAfterASlash) {
  expect_matches({
      {"*.jpg", "a.jpg", true},
      {"*.jpg", "a/b/c.jpg", true},
      {"*.jpg", "a/b/c.jpeg", false},
      {"*.jpg", "a.jpg/x", false},
      {"b/*.jpg", "a/b/c.jpg", true},
      {"b/*.jpg", "b/c.jpg", true},
      {"b/*.jpg", "ab/c.jpg", false},
      {"b/*.jpg", "b/x/c.jpg", false},
      {"c.jpg", "a/c.jpg", true},
      {"c.jpg", "ac.jpg", false},
      {"c.jpg", "c.jpg.bak", false},
      {"a.b", "a.b", true},
      {"a.b", "axb", false},  // '.' is no regex wildcard
      {"a+(b)|c$", "a+(b)|c$", true},
      {"café/*", "x/café/y", true},
  });
}

TEST(SyncGlob, LeadingSlashAnchorsAtTheRoot) {
  expect_matches({
      {"/*.jpg", "a.jpg", true},
      {"/*.jpg", "a/b.jpg", false},
      {"/a/*.jpg", "a/b.jpg", true},
      {"/a/*.jpg", "x/a/b.jpg", false},
      {"/c.jpg", "a/c.jpg", false},
      {"/", "any/thing/at/all", true},
      {"/*", "a/b", false},
      {"*", "a/b", true},  // unanchored: the tail "b"
  });
}

TEST(SyncGlob, DoubleStarCrossesDirectoriesAndSingleStarDoesNot) {
  expect_matches({
      {"/a/**/z.txt", "a/b/c/z.txt", true},
      {"/a/**/z.txt", "a/b/z.txt", true},
      {"/a/**/z.txt", "a/z.txt", false},  // "**" sits between two '/'
      {"/a/**z.txt", "a/z.txt", true},
      {"/a/*/z.txt", "a/b/c/z.txt", false},
      {"/a/*/z.txt", "a/b/z.txt", true},
      {"**.log", "x/y/z.log", true},
      {"/a**b", "a/x/y/b", true},
      {"/a*b", "a/b", false},
      {"/**", "a/b/c", true},
      {"/**", "", true},
  });
}

TEST(SyncGlob, QuestionMarkIsOneCharacterButNeverASlash) {
  expect_matches({
      {"?.txt", "a.txt", true},
      {"/?.txt", "ab.txt", false},
      {"/a?b", "a/b", false},
      {"/a?b", "axb", true},
      {"/?", "", false},
      // One UTF-8 character, whatever its length in bytes.
      {"/?", "\xc3\xa9", true},  // é
      {"/??", "\xc3\xa9", false},
      {"/?", "\xe2\x82\xac", true},      // €
      {"/?", "\xf0\x9f\x98\x80", true},  // an emoji
      {"/?x", "\xf0\x9f\x98\x80x", true},
      {"/*?", "\xc3\xa9", true},
      {"/*??", "\xc3\xa9", false},
  });
}

TEST(SyncGlob, ClassesMatchOneCharacterAndNeverASlash) {
  expect_matches({
      {"[abc].txt", "b.txt", true},
      {"[abc].txt", "d.txt", false},
      {"/[a-c]x", "cx", true},
      {"/[a-c]x", "dx", false},
      {"/[a-cx-z]", "y", true},
      {"/[!a-c]x", "dx", true},
      {"/[!a-c]x", "ax", false},
      {"/[^a-c]x", "dx", true},
      {"/[^a-c]x", "bx", false},
      {"/a[!x]b", "a/b", false},
      {"/a[/]b", "a/b", false},
      {"/[!a]", "\xc3\xa9", true},  // a negated class takes a whole non-ASCII character
      {"/[-a]", "-", true},
      {"/[a-]", "-", true},
      {"/[\\]]", "]", true},
      {"/[\\-]", "-", true},
      {"/[!\\]]", "x", true},
      {"/[!\\]]", "]", false},
  });
}

TEST(SyncGlob, BracesOfferAlternativesThatMayHoldGlobs) {
  expect_matches({
      {"*.{jpg,png}", "a/b.png", true},
      {"*.{jpg,png}", "b.jpg", true},
      {"*.{jpg,png}", "b.gif", false},
      {"{a,b/c}/x", "b/c/x", true},
      {"{a,b/c}/x", "c/x", false},
      {"/{a*,b}/x", "abc/x", true},
      {"/{a*,b}/x", "bc/x", false},
      {"/{,x}y", "y", true},
      {"/{,x}y", "xy", true},
      {"/{[0-9],??}z", "7z", true},
      {"/{[0-9],??}z", "abz", true},
      {"/{[0-9],??}z", "az", false},
      {"a,b", "a,b", true},  // a comma outside braces is literal
  });
}

TEST(SyncGlob, BackslashEscapesTheNextCharacter) {
  expect_matches({
      {"\\*.txt", "*.txt", true},
      {"\\*.txt", "a.txt", false},
      {"a\\?", "a?", true},
      {"a\\?", "ab", false},
      {"\\{a,b\\}", "{a,b}", true},
      {"\\[a\\]", "[a]", true},
      {"\\[a\\]", "a", false},
      {"a\\\\b", "a\\b", true},
      {"\\a", "a", true},
  });
}

TEST(SyncGlob, TrailingSlashNamesADirectory) {
  expect_matches({
      {"dir/", "dir/a", true},
      {"dir/", "dir/a/b/c", true},
      {"dir/", "x/dir/a/b", true},
      {"dir/", "dir", false},
      {"dir/", "xdir/a", false},
      {"dir/", "dirx/a", false},
      {"/dir/", "x/dir/a", false},
      {"/dir/", "dir/a/b", true},
      {"a/*/", "a/b/c/d", true},
      {"/a/*/", "a/c", false},
  });
}

TEST(SyncGlob, PathologicalPatternsMatchInPolynomialTime) {
  const std::string as(10000, 'a');
  const std::string as_b = as + "b";
  std::string slashed;  // "a/a/a/...": many restart points for an unanchored pattern
  for (int i = 0; i < 5000; ++i) slashed += "a/";
  expect_matches({
      {"*a*a*a*a*a*a*a*a*b", as, false},
      {"*a*a*a*a*a*a*a*a*b", as_b, true},
      {"/*a*a*a*a*a*a*a*a*b", as, false},
      {"**a**a**a**a**a**a**a**a**b", slashed, false},
      {"**a**a**a**a**a**a**a**a**b", slashed + "b", true},
      {"{*a,*a*}{*a,*a*}{*a,*a*}{*a,*a*}b", as, false},
      {"a*a*a*a*a*a*a*a*b", slashed + as, false},
  });
}

TEST(SyncGlob, CompileErrorsNameThePatternAndTheProblem) {
  struct error_case {
    std::string pattern;
    std::string want;  // a part of the error text
  };
  const std::vector<error_case> cases = {
      {"", "pattern '' is empty"},
      {"[abc", "'[abc': '[' without a matching ']'"},
      {"a]", "']' without a matching '['"},
      {"{a,b", "'{' without a matching '}'"},
      {"a}", "'}' without a matching '{'"},
      {"{a,{b}}", "nested '{'"},
      {"abc\\", "'abc\\': '\\' at the end"},
      {"[a\\", "'\\' at the end"},
      {"***", "more than two '*'"},
      {"[]", "empty class"},
      {"[!]]", "empty class"},
      {"[z-a]", "'z-a' is reversed"},
      {"[\xc3\xa9]", "ASCII"},
      {"/dir/{a", "'/dir/{a'"},  // the operator's pattern, not what the parser saw
      {std::string(1025, 'a'), "longer than 1024 bytes"},
  };
  for (const auto& c : cases) {
    auto g = glob::compile(c.pattern);
    ASSERT_FALSE(g) << "pattern '" << c.pattern << "' compiled";
    EXPECT_NE(g.error().find(c.want), std::string::npos) << "pattern '" << c.pattern << "': " << g.error();
  }
  EXPECT_TRUE(glob::compile(std::string(1024, 'a')));
  EXPECT_LT(glob::compile(std::string(5000, 'a')).error().size(), 200u);  // a long pattern is shortened
}

filter make(filter_options o) {
  auto f = filter::compile(o);
  EXPECT_TRUE(f) << f.error();
  return f ? std::move(*f) : filter();
}

store::object_info object(std::string key, std::uint64_t size = 0,
                          std::optional<std::chrono::system_clock::time_point> mtime = std::nullopt) {
  store::object_info o;
  o.key = std::move(key);
  o.size = size;
  o.mtime = mtime;
  return o;
}

const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000)) + 123ms;

TEST(SyncFilter, EmptyOptionsAdmitEverything) {
  const auto f = make({});
  EXPECT_TRUE(f.empty());
  EXPECT_TRUE(f.admits_key("anything/at/all"));
  EXPECT_TRUE(f.admits(object("x", 1ull << 40, now - 1000h), now));
  EXPECT_TRUE(filter().empty());
  EXPECT_FALSE(make({.include = {"*"}}).empty());
  EXPECT_FALSE(make({.exclude = {"*"}}).empty());
  EXPECT_FALSE(make({.min_size = 0}).empty());
  EXPECT_FALSE(make({.max_age = 0s}).empty());
}

TEST(SyncFilter, ExcludeWinsOverIncludeAndIncludesMustMatch) {
  struct key_case {
    std::string key;
    bool want;
  };
  const auto f = make({.include = {"*.jpg", "/docs/"}, .exclude = {"private/", "*.tmp.jpg"}});
  const std::vector<key_case> cases = {
      {"a.jpg", true},
      {"x/y/a.jpg", true},
      {"docs/readme.txt", true},
      {"a.png", false},              // no include matches
      {"x/docs/readme.txt", false},  // "/docs/" is anchored
      {"private/a.jpg", false},      // excluded although included
      {"x/private/y/a.jpg", false},
      {"docs/private/a.txt", false},
      {"a.tmp.jpg", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(f.admits_key(c.key), c.want) << c.key;
    EXPECT_EQ(f.admits(object(c.key), now), c.want) << c.key;
  }
  const auto only_exclude = make({.exclude = {"*.tmp"}});
  EXPECT_TRUE(only_exclude.admits_key("a.txt"));
  EXPECT_FALSE(only_exclude.admits_key("d/a.tmp"));
}

TEST(SyncFilter, SizeBoundsAreInclusive) {
  struct size_case {
    std::optional<std::uint64_t> min, max;
    std::uint64_t size;
    bool want;
  };
  const std::vector<size_case> cases = {
      {10, 20, 9, false},
      {10, 20, 10, true},
      {10, 20, 20, true},
      {10, 20, 21, false},
      {10, std::nullopt, 1ull << 50, true},
      {std::nullopt, 20, 0, true},
      {std::nullopt, 0, 0, true},
      {std::nullopt, 0, 1, false},
      {5, 5, 5, true},
      {5, 5, 4, false},
  };
  for (const auto& c : cases) {
    const auto f = make({.min_size = c.min, .max_size = c.max});
    EXPECT_EQ(f.admits(object("k", c.size), now), c.want)
        << "min " << c.min.value_or(0) << " max " << c.max.value_or(0) << " size " << c.size;
    EXPECT_TRUE(f.admits_key("k"));  // sizes are not the key's business
  }
  // Size bounds apply after the key rules, not instead of them.
  EXPECT_FALSE(make({.exclude = {"k"}, .min_size = 0}).admits(object("k", 1), now));
}

TEST(SyncFilter, AgeBoundsAreInclusiveAndMeasuredFromMtime) {
  using std::chrono::nanoseconds;
  struct age_case {
    std::optional<std::chrono::seconds> min, max;
    std::chrono::system_clock::duration age;
    bool want;
  };
  const std::vector<age_case> cases = {
      {60s, std::nullopt, 60s, true},
      {60s, std::nullopt, 60s - nanoseconds(1), false},
      {60s, std::nullopt, 3600s, true},
      {std::nullopt, 60s, 60s, true},
      {std::nullopt, 60s, 60s + nanoseconds(1), false},
      {std::nullopt, 60s, 0s, true},
      {std::nullopt, 60s, -3600s, true},  // mtime in the future: younger than any bound
      {0s, std::nullopt, -1s, false},
      {0s, std::nullopt, 0s, true},
      {10s, 20s, 9s + 999ms, false},
      {10s, 20s, 10s, true},
      {10s, 20s, 15s + 123ms, true},
      {10s, 20s, 20s, true},
      {10s, 20s, 20s + 1ms, false},
  };
  for (const auto& c : cases) {
    const auto f = make({.min_age = c.min, .max_age = c.max});
    EXPECT_EQ(f.admits(object("k", 0, now - c.age), now), c.want)
        << "min " << c.min.value_or(-1s).count() << " max " << c.max.value_or(-1s).count() << " age "
        << std::chrono::duration_cast<nanoseconds>(c.age).count() << "ns";
  }
}

TEST(SyncFilter, AnObjectWithoutMtimePassesAgeBoundsButNotOtherRules) {
  const auto f = make({.include = {"*.log"}, .min_size = 1, .min_age = 3600s, .max_age = 7200s});
  EXPECT_TRUE(f.admits(object("a.log", 1), now));
  EXPECT_FALSE(f.admits(object("a.txt", 1), now));
  EXPECT_FALSE(f.admits(object("a.log", 0), now));
  EXPECT_FALSE(f.admits(object("a.log", 1, now), now));  // with an mtime, age counts
}

TEST(SyncFilter, ExtremeTimesDoNotOverflow) {
  using clock = std::chrono::system_clock;
  const auto f = make({.max_age = 60s});
  EXPECT_FALSE(f.admits(object("k", 0, clock::time_point::min()), now));
  EXPECT_TRUE(f.admits(object("k", 0, clock::time_point::max()), now));
  const auto g = make({.min_age = 60s});
  EXPECT_TRUE(g.admits(object("k", 0, clock::time_point::min()), clock::time_point::max()));
  EXPECT_FALSE(g.admits(object("k", 0, clock::time_point::max()), clock::time_point::min()));
  const auto huge = make({.min_age = std::chrono::seconds(std::numeric_limits<std::int64_t>::max())});
  EXPECT_FALSE(huge.admits(object("k", 0, clock::time_point::min()), clock::time_point::max()));
}

TEST(SyncFilter, CompileErrorsExplainTheProblem) {
  struct error_case {
    filter_options o;
    std::string want;
  };
  std::vector<error_case> cases;
  cases.push_back({{.include = {"ok", "[bad"}}, "include pattern '[bad'"});
  cases.push_back({{.exclude = {"{a"}}, "exclude pattern '{a'"});
  cases.push_back({{.exclude = {""}}, "exclude pattern '' is empty"});
  cases.push_back({{.include = std::vector<std::string>(65, "*")}, "65 include patterns: at most 64"});
  cases.push_back({{.exclude = std::vector<std::string>(65, "*")}, "65 exclude patterns: at most 64"});
  cases.push_back({{.min_size = 11, .max_size = 10}, "min_size (11 bytes) is larger than max_size (10 bytes)"});
  cases.push_back({{.min_age = 61s, .max_age = 60s}, "min_age (61s) is larger than max_age (60s)"});
  cases.push_back({{.min_age = -1s}, "must not be negative"});
  cases.push_back({{.max_age = -1s}, "must not be negative"});
  for (const auto& c : cases) {
    auto f = filter::compile(c.o);
    ASSERT_FALSE(f) << c.want;
    EXPECT_NE(f.error().find(c.want), std::string::npos) << f.error();
  }
  EXPECT_TRUE(filter::compile({.include = std::vector<std::string>(64, "*")}));
  EXPECT_TRUE(filter::compile({.min_size = 10, .max_size = 10, .min_age = 5s, .max_age = 5s}));
}

}  // namespace
}  // namespace ferry::sync
