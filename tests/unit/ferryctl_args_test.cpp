// ferryctl's copy/sync/mirror command lines: parsed by the same CLI11 setup ferryctl uses, turned
// into job.create params, and when --wait is done.
#include "ferryctl/args.hpp"
#include "proto/messages.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

namespace ctl = ferry::ctl;
namespace proto = ferry::proto;

// Parses `args` (without the program name) as ferryctl's `kind` subcommand.
ctl::create_options parse(std::string_view kind, std::vector<std::string> args) {
  CLI::App app{"test"};
  ctl::create_options o;
  ctl::add_create_command(app, kind, "test", o);
  args.insert(args.begin(), {"ferryctl", std::string(kind)});
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return o;
}

TEST(FerryctlArgs, EveryOptionReachesTheParams) {
  const auto o =
      parse("sync", {"--name",       "n",         "--copy-mode", "stream",     "--priority",  "20",        "--delete",
                     "--max-delete", "5",         "--force",     "--include",  "*.jpg",       "--include", "2024/**",
                     "--exclude",    "tmp/*",     "--min-size",  "10M",        "--max-size",  "1GiB",      "--min-age",
                     "90s",          "--max-age", "2h",          "--checksum", "--size-only", "--dry-run", "--interval",
                     "5m",           "src:b/p",   "/dst"});
  auto p = ctl::make_create_params(o);
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->kind, "sync");
  EXPECT_EQ(p->source, "src:b/p");
  EXPECT_EQ(p->destination, "/dst");
  EXPECT_EQ(p->name, "n");
  EXPECT_EQ(p->copy_mode, "stream");
  EXPECT_EQ(p->priority, 20);
  const auto& opt = p->options;
  EXPECT_TRUE(opt.delete_extraneous);
  EXPECT_EQ(opt.max_delete, 5u);
  EXPECT_TRUE(opt.force);
  EXPECT_EQ(opt.include, (std::vector<std::string>{"*.jpg", "2024/**"}));
  EXPECT_EQ(opt.exclude, std::vector<std::string>{"tmp/*"});
  EXPECT_EQ(opt.min_size, 10u << 20);
  EXPECT_EQ(opt.max_size, std::uint64_t{1} << 30);
  EXPECT_EQ(opt.min_age, 90u);
  EXPECT_EQ(opt.max_age, 7200u);
  EXPECT_TRUE(opt.checksum);
  EXPECT_TRUE(opt.size_only);
  EXPECT_TRUE(opt.dry_run);
  EXPECT_EQ(opt.interval, 300u);
  EXPECT_TRUE(ctl::waits(o));  // --dry-run implies --wait
  // What ferryd receives parses back to the same params.
  auto wire = proto::parse_job_create_params(proto::to_json(*p));
  ASSERT_TRUE(wire) << wire.error().message;
  EXPECT_EQ(*wire, *p);
}

TEST(FerryctlArgs, APatternTakesOneArgumentSoLocationsStayPositional) {
  const auto o = parse("mirror", {"--include", "*.jpg", "a:b", "/c"});
  EXPECT_EQ(o.include, std::vector<std::string>{"*.jpg"});
  EXPECT_EQ(o.source, "a:b");
  EXPECT_EQ(o.destination, "/c");
  EXPECT_EQ(o.kind, "mirror");
}

TEST(FerryctlArgs, WithoutOptionsTheRequestIsTheOldCopyRequest) {
  const auto o = parse("copy", {"a:b", "/c"});
  auto p = ctl::make_create_params(o);
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(proto::to_json(*p), R"({"kind":"copy","source":"a:b","destination":"/c"})");
  EXPECT_FALSE(ctl::waits(o));
}

TEST(FerryctlArgs, OptionsThatDoNotSuitTheKindAreStillSent) {
  // ferryd refuses them with its own message; ferryctl does not second-guess it.
  const auto o = parse("copy", {"--delete", "--interval", "10s", "a:b", "/c"});
  auto p = ctl::make_create_params(o);
  ASSERT_TRUE(p) << p.error();
  EXPECT_TRUE(p->options.delete_extraneous);
  EXPECT_EQ(p->options.interval, 10u);
}

TEST(FerryctlArgs, BadSizesAndDurationsNameTheOption) {
  const auto error_of = [](std::vector<std::string> args) {
    args.insert(args.end(), {"a:b", "/c"});
    auto p = ctl::make_create_params(parse("sync", args));
    EXPECT_FALSE(p);
    return p ? std::string() : p.error();
  };
  EXPECT_EQ(error_of({"--min-size", "10X"}).rfind("--min-size: '10X' is not a size", 0), 0u);
  EXPECT_EQ(error_of({"--max-age", "soon"}).rfind("--max-age: 'soon' is not a duration", 0), 0u);
  EXPECT_EQ(error_of({"--interval", "1500ms"}), "--interval: '1500ms' is not a whole number of seconds");
  EXPECT_THROW(parse("sync", {"--copy-mode", "fast", "a:b", "/c"}), CLI::ParseError);
  EXPECT_THROW(parse("sync", {"--priority", "high", "a:b", "/c"}), CLI::ParseError);
  EXPECT_THROW(parse("sync", {"a:b"}), CLI::ParseError);
}

proto::job job_of(std::string_view kind, proto::job_state state, std::uint64_t passes, std::uint64_t failed) {
  proto::job j;
  j.kind = std::string(kind);
  j.state = state;
  j.passes = passes;
  j.objects.failed = failed;
  return j;
}

TEST(FerryctlArgs, WaitEndsWithTheJobOrAMirrorsFirstPass) {
  using st = proto::job_state;
  EXPECT_FALSE(ctl::wait_done(job_of("copy", st::running, 0, 0)));
  EXPECT_FALSE(ctl::wait_done(job_of("sync", st::running, 1, 0)));  // only a mirror stops at a pass
  EXPECT_TRUE(ctl::wait_done(job_of("sync", st::succeeded, 1, 0)));
  EXPECT_FALSE(ctl::wait_done(job_of("mirror", st::running, 0, 0)));
  EXPECT_TRUE(ctl::wait_done(job_of("mirror", st::running, 1, 0)));
  EXPECT_TRUE(ctl::wait_done(job_of("mirror", st::failed, 0, 0)));

  EXPECT_TRUE(ctl::wait_ok(job_of("copy", st::succeeded, 1, 0)));
  EXPECT_FALSE(ctl::wait_ok(job_of("copy", st::succeeded, 1, 2)));
  EXPECT_FALSE(ctl::wait_ok(job_of("sync", st::cancelled, 0, 0)));
  EXPECT_TRUE(ctl::wait_ok(job_of("mirror", st::running, 1, 0)));
  EXPECT_FALSE(ctl::wait_ok(job_of("mirror", st::running, 1, 1)));
  EXPECT_FALSE(ctl::wait_ok(job_of("mirror", st::cancelled, 1, 0)));
  auto with_error = job_of("mirror", st::running, 1, 0);
  with_error.error = "listing failed";
  EXPECT_FALSE(ctl::wait_ok(with_error));
}

}  // namespace
