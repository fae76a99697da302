#include "util/units.hpp"

#include <gtest/gtest.h>

namespace ferry::util {
namespace {

using namespace std::chrono_literals;

TEST(Units, DurationsInEveryUnit) {
  EXPECT_EQ(*parse_duration("250ms"), 250ms);
  EXPECT_EQ(*parse_duration("10s"), 10s);
  EXPECT_EQ(*parse_duration("10"), 10s);
  EXPECT_EQ(*parse_duration("1.5m"), 90s);
  EXPECT_EQ(*parse_duration("2h"), 7200s);
  EXPECT_EQ(*parse_duration("1d"), 86400s);
}

TEST(Units, BadDurationsSayWhatIsExpected) {
  for (auto bad : {"", "s", "ten seconds", "5 parsecs", "-3s", "1e400s"}) {
    auto d = parse_duration(bad);
    ASSERT_FALSE(d) << bad;
  }
  EXPECT_NE(parse_duration("5x").error().find("examples: 250ms"), std::string::npos);
}

TEST(Units, SizesAreBinary) {
  EXPECT_EQ(*parse_size("512"), 512u);
  EXPECT_EQ(*parse_size("64KiB"), 65536u);
  EXPECT_EQ(*parse_size("5M"), 5u * 1024 * 1024);
  EXPECT_EQ(*parse_size("1GiB"), 1024u * 1024 * 1024);
  EXPECT_EQ(*parse_size("1.5K"), 1536u);
  EXPECT_FALSE(parse_size("lots"));
  EXPECT_FALSE(parse_size("5 parsecs"));
  EXPECT_FALSE(parse_size("99999999999T"));
}

TEST(Units, FormatBytesUsesBinaryUnits) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(5ull * 1024 * 1024), "5.0 MiB");
}

}  // namespace
}  // namespace ferry::util
