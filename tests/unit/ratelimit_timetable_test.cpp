#include <gtest/gtest.h>

#include "ratelimit/timetable.hpp"

#include <ctime>
#include <string>

namespace ferry::ratelimit {
namespace {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
enum day { sun, mon, tue, wed, thu, fri, sat };

int hm(int h, int m) { return h * 60 + m; }
bandwidth both(std::uint64_t r) { return {r, r}; }

std::uint64_t rate(const std::string& s) {
  auto r = parse_rate(s);
  EXPECT_TRUE(r.has_value()) << s << ": " << (r ? std::string() : r.error());
  return r ? *r : ~std::uint64_t{0};
}

std::string rate_error(const std::string& s) {
  auto r = parse_rate(s);
  EXPECT_FALSE(r.has_value()) << s << " parsed as " << (r ? *r : 0);
  return r ? std::string() : r.error();
}

timetable must_parse(const std::string& s) {
  auto r = timetable::parse(s);
  EXPECT_TRUE(r.has_value()) << s << ": " << (r ? std::string() : r.error());
  return r ? *r : timetable{};
}

std::string parse_error(const std::string& s) {
  auto r = timetable::parse(s);
  EXPECT_FALSE(r.has_value()) << s << " parsed as " << (r ? r->to_string() : std::string());
  return r ? std::string() : r.error();
}

// Local time for a date, as the daemon sees it; 2024-01-01 was a Monday.
std::chrono::system_clock::time_point local(int mday, int hour, int min) {
  std::tm tm{};
  tm.tm_year = 124;
  tm.tm_mon = 0;
  tm.tm_mday = mday;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_isdst = -1;
  return std::chrono::system_clock::from_time_t(std::mktime(&tm));
}

TEST(RatelimitRate, RcloneUnitsAndDecimals) {
  EXPECT_EQ(rate("666"), 666 * KiB);  // a plain number is KiB/s
  EXPECT_EQ(rate("1.5"), 1536u);
  EXPECT_EQ(rate("100B"), 100u);
  EXPECT_EQ(rate("100b"), 100u);
  EXPECT_EQ(rate("512k"), 512 * KiB);
  EXPECT_EQ(rate("512K"), 512 * KiB);
  EXPECT_EQ(rate("10M"), 10 * MiB);
  EXPECT_EQ(rate("10m"), 10 * MiB);
  EXPECT_EQ(rate("10Mi"), 10 * MiB);
  EXPECT_EQ(rate("10MiB"), 10 * MiB);
  EXPECT_EQ(rate("0.625M"), 655360u);  // rclone's "half of 10 Mbit/s"
  EXPECT_EQ(rate("1G"), 1024 * MiB);
  EXPECT_EQ(rate("2T"), 2048ull * 1024 * MiB);
  EXPECT_EQ(rate("1P"), 1ull << 50);
  EXPECT_EQ(rate("off"), 0u);
  EXPECT_EQ(rate("OFF"), 0u);
  EXPECT_EQ(rate("0"), 0u);
}

TEST(RatelimitRate, BadRatesSayWhy) {
  EXPECT_NE(rate_error("10X").find("bad rate \"10X\""), std::string::npos);
  EXPECT_NE(rate_error("-1M").find("negative"), std::string::npos);
  EXPECT_NE(rate_error("").find("empty"), std::string::npos);
  EXPECT_NE(rate_error("1.2.3M").find("want a number"), std::string::npos);
  EXPECT_NE(rate_error("M").find("want a number"), std::string::npos);
  EXPECT_NE(rate_error("1e3").find("want a number"), std::string::npos);
  EXPECT_NE(rate_error("inf").find("want a number"), std::string::npos);
  EXPECT_NE(rate_error("99999999P").find("too large"), std::string::npos);
  EXPECT_NE(rate_error("0.1B").find("below 1 B/s"), std::string::npos);
}

TEST(RatelimitRate, FormatReadsBackExactly) {
  EXPECT_EQ(format_rate(0), "off");
  EXPECT_EQ(format_rate(10 * MiB), "10M");
  EXPECT_EQ(format_rate(512 * KiB), "512K");
  EXPECT_EQ(format_rate(1536), "1.5K");
  EXPECT_EQ(format_rate(100), "100B");
  EXPECT_EQ(format_rate(1ull << 50), "1P");
  for (std::uint64_t v : {std::uint64_t{1}, std::uint64_t{1000}, std::uint64_t{1023}, std::uint64_t{1025},
                          std::uint64_t{655360}, 10 * MiB + 1, std::uint64_t{123456789}, std::uint64_t{3} << 40})
    EXPECT_EQ(rate(format_rate(v)), v) << format_rate(v);
}

TEST(RatelimitTimetable, SingleRatesAreConstant) {
  auto t = must_parse("10M");
  EXPECT_TRUE(t.is_constant());
  EXPECT_EQ(t.at(mon, hm(12, 0)), both(10 * MiB));
  EXPECT_EQ(t.to_string(), "10M");
  EXPECT_FALSE(t.next_change(mon, 0).has_value());
  EXPECT_FALSE(t.next_change(std::chrono::system_clock::now()).has_value());

  auto ud = must_parse("10M:100k");
  EXPECT_EQ(ud.at(sat, hm(3, 0)), (bandwidth{10 * MiB, 100 * KiB}));
  EXPECT_EQ(ud.to_string(), "10M:100K");
  EXPECT_EQ(must_parse("10M:off").at(sun, 0), (bandwidth{10 * MiB, 0}));
  EXPECT_EQ(must_parse("off").at(sun, 0), both(0));
  EXPECT_EQ(must_parse("off").to_string(), "off");
  EXPECT_EQ(timetable{}.at(std::chrono::system_clock::now()), both(0));
  EXPECT_EQ(timetable::constant(bandwidth{1, 2}).to_string(), "1B:2B");
}

TEST(RatelimitTimetable, RcloneEveryDayExample) {
  auto t = must_parse("08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off");
  EXPECT_FALSE(t.is_constant());
  EXPECT_EQ(t.at(tue, hm(7, 59)), both(0));  // still yesterday's 23:00 entry
  EXPECT_EQ(t.at(tue, hm(8, 0)), both(512 * KiB));
  EXPECT_EQ(t.at(tue, hm(12, 30)), both(10 * MiB));
  EXPECT_EQ(t.at(tue, hm(13, 0)), both(512 * KiB));
  EXPECT_EQ(t.at(tue, hm(18, 0)), both(30 * MiB));
  EXPECT_EQ(t.at(tue, hm(23, 30)), both(0));
  EXPECT_EQ(t.at(sun, hm(0, 30)), both(0));  // Saturday's 23:00 carries over the week boundary
  EXPECT_EQ(t.to_string(), "08:00,512K 12:00,10M 13:00,512K 18:00,30M 23:00,off");
}

TEST(RatelimitTimetable, RcloneWeekdayExample) {
  auto t = must_parse("Mon-00:00,512 Fri-23:59,10M Sat-10:00,1M Sun-20:00,off");
  EXPECT_EQ(t.at(mon, 0), both(512 * KiB));
  EXPECT_EQ(t.at(wed, hm(12, 0)), both(512 * KiB));
  EXPECT_EQ(t.at(fri, hm(23, 58)), both(512 * KiB));
  EXPECT_EQ(t.at(fri, hm(23, 59)), both(10 * MiB));
  EXPECT_EQ(t.at(sat, hm(9, 59)), both(10 * MiB));
  EXPECT_EQ(t.at(sat, hm(10, 0)), both(1 * MiB));
  EXPECT_EQ(t.at(sun, hm(10, 0)), both(1 * MiB));  // before the week's first Sunday entry: Saturday's
  EXPECT_EQ(t.at(sun, hm(20, 0)), both(0));
  EXPECT_EQ(t.at(sun, hm(23, 59)), both(0));
  EXPECT_EQ(t.to_string(), "Mon-00:00,512K Fri-23:59,10M Sat-10:00,1M Sun-20:00,off");
}

TEST(RatelimitTimetable, EveryDayEntriesMixWithDayEntriesAsRcloneExpandsThem) {
  auto t = must_parse("Mon-00:00,512 12:00,1M Sun-20:00,off");
  auto expanded = must_parse(
      "Mon-00:00,512 Mon-12:00,1M Tue-12:00,1M Wed-12:00,1M Thu-12:00,1M Fri-12:00,1M Sat-12:00,1M Sun-12:00,1M "
      "Sun-20:00,off");
  for (int d = 0; d < 7; ++d)
    for (int m = 0; m < 24 * 60; ++m) ASSERT_EQ(t.at(d, m), expanded.at(d, m)) << d << " " << m;
  EXPECT_EQ(t.at(mon, hm(11, 0)), both(512 * KiB));
  EXPECT_EQ(t.at(tue, hm(11, 0)), both(1 * MiB));
  EXPECT_EQ(t.at(sun, hm(12, 0)), both(1 * MiB));
  EXPECT_EQ(t.at(sun, hm(21, 0)), both(0));
}

TEST(RatelimitTimetable, WrapsBeforeTheFirstEntryToTheWeeksLast) {
  auto t = must_parse("Mon-08:00,1M Fri-18:00,off");
  EXPECT_EQ(t.at(sun, hm(23, 59)), both(0));
  EXPECT_EQ(t.at(mon, hm(7, 59)), both(0));
  EXPECT_EQ(t.at(mon, hm(8, 0)), both(1 * MiB));
  EXPECT_EQ(t.at(fri, hm(17, 59)), both(1 * MiB));
  auto one = must_parse("Sat-10:00,1M Sat-11:00,2M");
  EXPECT_EQ(one.at(sun, 0), both(2 * MiB));
}

TEST(RatelimitTimetable, SeparatorsUpDownDecimalsAndCase) {
  auto t = must_parse("  mon-08:00,1.5M:off;FRIDAY-18:00,0.5   ");
  EXPECT_EQ(t.at(tue, 0), (bandwidth{1536 * KiB, 0}));
  EXPECT_EQ(t.at(sat, 0), both(512));
  EXPECT_EQ(t.to_string(), "Mon-08:00,1.5M:off Fri-18:00,512B");
}

TEST(RatelimitTimetable, ToStringRoundTrips) {
  for (const char* s : {"10M", "10M:100k", "off", "0:1", "08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off",
                        "Sun-20:00,off 12:00,1M Mon-00:00,512", "Wed-00:00,1.1K:3 Tue-23:59,7B"}) {
    auto t = must_parse(s);
    auto again = must_parse(t.to_string());
    EXPECT_EQ(again.to_string(), t.to_string()) << s;
    EXPECT_EQ(again, t) << s;
    for (int d = 0; d < 7; ++d)
      for (int m = 0; m < 24 * 60; m += 7) ASSERT_EQ(again.at(d, m), t.at(d, m)) << s;
  }
  EXPECT_EQ(must_parse("Sun-20:00,off 12:00,1M Mon-00:00,512").to_string(), "12:00,1M Mon-00:00,512K Sun-20:00,off");
}

TEST(RatelimitTimetable, NextChangeInMinutes) {
  auto t = must_parse("08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off");
  EXPECT_EQ(t.next_change(tue, hm(7, 0)), 60);
  EXPECT_EQ(t.next_change(tue, hm(8, 0)), 4 * 60);
  EXPECT_EQ(t.next_change(tue, hm(12, 30)), 30);
  EXPECT_EQ(t.next_change(sat, hm(23, 30)), 8 * 60 + 30);  // across the week boundary

  // Entries that repeat the rate in force are not changes.
  auto same = must_parse("08:00,1M 12:00,1M 18:00,off");
  EXPECT_EQ(same.next_change(mon, hm(9, 0)), 9 * 60);
  EXPECT_FALSE(must_parse("08:00,1M 12:00,1M").next_change(mon, 0).has_value());
  EXPECT_TRUE(must_parse("08:00,1M 12:00,1M").is_constant());

  auto week = must_parse("Mon-00:00,512 Fri-23:59,10M Sat-10:00,1M Sun-20:00,off");
  EXPECT_EQ(week.next_change(sun, hm(20, 0)), 4 * 60);
  EXPECT_EQ(week.next_change(mon, 0), 4 * 24 * 60 + 23 * 60 + 59);
}

TEST(RatelimitTimetable, LocalTimeEvaluationAndNextChange) {
  auto t = must_parse("Mon-08:00,1M Wed-00:00,2M Fri-18:00,off");
  EXPECT_EQ(t.at(local(1, 7, 59)), both(0));  // Monday
  EXPECT_EQ(t.at(local(1, 8, 0)), both(1 * MiB));
  EXPECT_EQ(t.at(local(3, 12, 0)), both(2 * MiB));  // Wednesday

  const auto from = local(1, 7, 30) + std::chrono::seconds(17);
  const auto next = t.next_change(from);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, local(1, 8, 0));
  EXPECT_EQ(t.next_change(*next), local(3, 0, 0));
  EXPECT_EQ(t.next_change(local(5, 19, 0)), local(8, 8, 0));  // Friday night -> next Monday
}

TEST(RatelimitTimetable, BadInputsNameTheTokenAndWhatWasExpected) {
  struct bad {
    const char* text;
    const char* fragment;
  };
  for (const auto& [text, fragment] : {
           bad{"Mon-25:00,1M", "bad time \"25:00\" in \"Mon-25:00,1M\": want HH:MM, 00:00-23:59"},
           bad{"24:00,1M", "bad time \"24:00\""},
           bad{"7:5,1M", "bad time \"7:5\""},
           bad{"08:60,1M", "bad time \"08:60\""},
           bad{"Mox-08:00,1M", "bad day \"Mox\" in \"Mox-08:00,1M\": want Mon, Tue"},
           bad{"-08:00,1M", "bad day \"\""},
           bad{"08:00,10X", "bad rate \"10X\" in \"08:00,10X\""},
           bad{"10X", "bad rate \"10X\""},
           bad{"08:00,-1M", "must not be negative"},
           bad{"-1M", "must not be negative"},
           bad{"08:00,1M 12:00", "bad entry \"12:00\": missing comma"},
           bad{"10M 20M", "missing comma"},
           bad{"08:00,1M,2M", "bad entry \"08:00,1M,2M\""},
           bad{"08:00,1M 08:00,2M", "duplicate time 08:00 in \"08:00,2M\" (also in \"08:00,1M\")"},
           bad{"Mon-08:00,1M 08:00,2M", "duplicate time Mon-08:00"},
           bad{"Tue-08:00,1M tuesday-08:00,2M", "duplicate time Tue-08:00"},
           bad{"", "empty"},
           bad{" ; ", "empty"},
           bad{"1M:2M:3M", "want RATE or UP:DOWN"},
           bad{"08:00,1M:", "bad rate \"\""},
       }) {
    const auto e = parse_error(text);
    EXPECT_NE(e.find(fragment), std::string::npos) << "input: " << text << "\nerror: " << e;
  }
}

TEST(RatelimitTimetable, OversizedInputIsRefused) {
  EXPECT_NE(parse_error(std::string(5000, ' ')).find("too long"), std::string::npos);
  std::string many;
  for (int i = 0; i < 300; ++i)
    many += "Mon-" + std::string(i / 60 < 10 ? "0" : "") + std::to_string(i / 60) + ":" + (i % 60 < 10 ? "0" : "") +
            std::to_string(i % 60) + ",1M ";
  EXPECT_NE(parse_error(many).find("too many entries"), std::string::npos);
}

}  // namespace
}  // namespace ferry::ratelimit
