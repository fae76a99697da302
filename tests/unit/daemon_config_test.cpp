// ferryd's config file: every documented key parses, and every mistake names file:line.
#include "core/config.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace ferry::daemon {
namespace {

using namespace std::chrono_literals;

const char* const minimal = R"(
socket = "/tmp/f.sock"
[remotes.src]
endpoint = "http://127.0.0.1:9000"
path_style = true
access_key_id = "AK"
secret_access_key = "SK"
)";

TEST(DaemonConfig, MinimalConfigTakesDefaultsForEverythingElse) {
  auto c = parse_config(minimal, "test.toml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->socket, "/tmp/f.sock");
  EXPECT_EQ(c->state_dir, "/var/lib/ferry");
  EXPECT_EQ(c->threads, 0u);
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->engine.object_concurrency, 64);
  EXPECT_EQ(c->timeouts.connect, 10s);
  ASSERT_EQ(c->remotes.size(), 1u);
  const auto& r = c->remotes.at("src");
  EXPECT_EQ(r.name, "src");
  EXPECT_EQ(r.region, "us-east-1");
  EXPECT_TRUE(r.path_style);
  EXPECT_EQ(r.credentials.access_key_id, "AK");
  EXPECT_EQ(r.max_connections, 256u);
}

TEST(DaemonConfig, TheShippedConfigFileIsValid) {
  auto c = load_config(std::string(FERRY_SOURCE_DIR) + "/config/ferryd.toml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->socket, "/run/ferry/ferryd.sock");
  EXPECT_EQ(c->retry.max_attempts, 5);
  EXPECT_EQ(c->timeouts.first_byte, 60s);
}

TEST(DaemonConfig, DurationsRetryAndTransferSectionsAreRead) {
  auto c = parse_config(std::string(minimal) + R"(
[http]
connect_timeout = "250ms"
idle_timeout = "2m"
[transfer]
object_concurrency = 4
object_attempts = 7
[retry]
max_attempts = 9
)",
                        "t.toml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->timeouts.connect, 250ms);
  EXPECT_EQ(c->timeouts.idle, 120s);
  EXPECT_EQ(c->engine.object_concurrency, 4);
  EXPECT_EQ(c->engine.object_attempts, 7);
  EXPECT_EQ(c->retry.max_attempts, 9);
}

TEST(DaemonConfig, UnknownKeyIsAnErrorWithFileAndLine) {
  auto c = parse_config("socket = \"/x\"\nsokcet = \"/y\"\n", "/etc/ferry/ferryd.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), "/etc/ferry/ferryd.toml:2: unknown key 'sokcet'");
}

TEST(DaemonConfig, UnknownKeyInsideARemoteNamesTheSection) {
  auto c = parse_config(std::string(minimal) + "regoin = \"eu\"\n", "f.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().find("f.toml:8: unknown key 'regoin' in [remotes.src]"), std::string::npos) << c.error();
}

TEST(DaemonConfig, SyntaxErrorsCarryTheLine) {
  auto c = parse_config("socket = \"/x\"\nthreads = = 3\n", "f.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().rfind("f.toml:2:", 0), 0u) << c.error();
}

TEST(DaemonConfig, WrongTypesAndRangesAreRefused) {
  auto t = parse_config("threads = \"four\"\n", "f.toml");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().find("'threads' must be a number"), std::string::npos) << t.error();
  auto r = parse_config("threads = -1\n", "f.toml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("between 0 and 1024"), std::string::npos) << r.error();
  auto l = parse_config("log_level = \"loud\"\n", "f.toml");
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().find("log_level must be one of"), std::string::npos);
  auto d = parse_config("[http]\nconnect_timeout = \"soon\"\n", "f.toml");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().find("f.toml:2"), std::string::npos) << d.error();
}

TEST(DaemonConfig, RemoteNeedsAnEndpointAndOneCredentialSource) {
  auto no_endpoint = parse_config("[remotes.a]\nregion = \"x\"\naccess_key_id=\"a\"\nsecret_access_key=\"b\"\n", "f");
  ASSERT_FALSE(no_endpoint);
  EXPECT_NE(no_endpoint.error().find("needs an endpoint"), std::string::npos);
  auto bad_endpoint = parse_config("[remotes.a]\nendpoint = \"not a url\"\ncredentials = \"env\"\n", "f");
  ASSERT_FALSE(bad_endpoint);
  EXPECT_NE(bad_endpoint.error().find("is not a URL"), std::string::npos) << bad_endpoint.error();
  auto no_creds = parse_config("[remotes.a]\nendpoint = \"https://s3.amazonaws.com\"\n", "f");
  ASSERT_FALSE(no_creds);
  EXPECT_NE(no_creds.error().find("needs access_key_id"), std::string::npos);
  auto both = parse_config(
      "[remotes.a]\nendpoint = \"https://s3.amazonaws.com\"\ncredentials = \"env\"\naccess_key_id = \"x\"\n", "f");
  ASSERT_FALSE(both);
  EXPECT_NE(both.error().find("keep one"), std::string::npos);
}

TEST(DaemonConfig, ErrorsNeverEchoTheSecret) {
  auto c = parse_config(
      "[remotes.a]\nendpoint = \"bad\"\naccess_key_id = \"AK\"\nsecret_access_key = \"hunter2-secret\"\n", "f");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().find("hunter2-secret"), std::string::npos);
}

TEST(DaemonConfig, MissingFileSaysWhichFile) {
  auto c = load_config("/nonexistent/ferryd.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().find("cannot read config file /nonexistent/ferryd.toml"), std::string::npos);
}

}  // namespace
}  // namespace ferry::daemon

namespace ferry::daemon {
namespace {

TEST(DaemonConfig, HostServiceKeysHaveDefaultsAndAreChecked) {
  auto d = parse_config("", "t.toml");
  ASSERT_TRUE(d) << d.error();
  EXPECT_EQ(d->shutdown_grace, std::chrono::seconds(20));
  EXPECT_EQ(d->bwlimit, "off");
  EXPECT_TRUE(d->metrics.listen.empty());
  EXPECT_TRUE(d->engine.transfer.adaptive_part_size);
  EXPECT_EQ(d->tuning.controller.initial_limit, 16u);

  auto c = parse_config(
      "shutdown_grace = \"5s\"\n[limits]\nbwlimit = \"Mon-08:00,512K 19:00,10M\"\n[metrics]\nlisten = \"[::1]:9464\"\n"
      "[transfer]\npart_size = \"16MiB\"\nmin_concurrency = 2\ninitial_concurrency = 2\nmax_concurrency = 8\n",
      "t.toml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->shutdown_grace, std::chrono::seconds(5));
  EXPECT_EQ(c->bwlimit, "Mon-08:00,512K 19:00,10M");
  EXPECT_EQ(c->metrics.listen, "[::1]:9464");
  EXPECT_FALSE(c->engine.transfer.adaptive_part_size) << "a part_size in the file is fixed";
  EXPECT_EQ(c->tuning.controller.max_limit, 8u);

  const std::pair<const char*, const char*> bad[] = {
      {"[limits]\nbwlimit = \"Mon-25:00,1M\"\n", "t.toml:2: bwlimit: "},
      {"[metrics]\nlisten = \"0.0.0.0:9464\"\n", "t.toml:2: listen 0.0.0.0:9464 is not a loopback address"},
      {"[metrics]\nlisten = \"localhost:9464\"\n", "t.toml:2: listen must be ADDRESS:PORT"},
      {"shutdown_grace = \"2h\"\n", "t.toml:1: shutdown_grace must be between"},
      {"[transfer]\nmin_concurrency = 10\nmax_concurrency = 5\n", "min_concurrency <= initial_concurrency"},
  };
  for (const auto& [text, want] : bad) {
    auto r = parse_config(text, "t.toml");
    ASSERT_FALSE(r) << text;
    EXPECT_NE(r.error().find(want), std::string::npos) << r.error();
  }
  auto remote_ok = parse_config("[metrics]\nlisten = \"0.0.0.0:9464\"\nallow_remote = true\n", "t.toml");
  EXPECT_TRUE(remote_ok) << remote_ok.error();
}

}  // namespace
}  // namespace ferry::daemon
