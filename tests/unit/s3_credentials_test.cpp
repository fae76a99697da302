// lib/s3/credentials: every source, missing pieces, malformed files, and no secret in any error.
#include "s3/credentials.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

namespace ferry::s3 {
namespace {

namespace fs = std::filesystem;

constexpr const char* secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr const char* token = "FQoGZXIvYXdzEXAMPLETOKEN";

// A unique temporary directory, removed with the test.
class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ferry-creds-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string write(const std::string& name, const std::string& content) {
    const auto path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  env_lookup env(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }

  // Resolution must fail, and nothing it says may contain the secret (or the token).
  error must_fail(const credentials_config& cfg, const env_lookup& e) {
    auto r = resolve_credentials(cfg, e);
    EXPECT_FALSE(r);
    if (r) return {};
    EXPECT_EQ(r.error().code, "CredentialsError");
    EXPECT_FALSE(r.error().retryable);
    const auto text = r.error().to_string() + r.error().message;
    EXPECT_EQ(text.find(secret), std::string::npos) << text;
    EXPECT_EQ(text.find("EXAMPLEKEY"), std::string::npos) << text;
    EXPECT_EQ(text.find(token), std::string::npos) << text;
    return r.error();
  }

  fs::path dir_;
};

TEST_F(CredentialsTest, StaticKeys) {
  auto r = resolve_credentials({"AKIDSTATIC", secret, token, ""}, env({}));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->access_key_id, "AKIDSTATIC");
  EXPECT_EQ(r->secret_access_key, secret);
  EXPECT_EQ(r->session_token, token);
}

TEST_F(CredentialsTest, StaticKeysMissingOrHalfSet) {
  EXPECT_NE(must_fail({"", "", "", ""}, env({})).message.find("no credentials configured"), std::string::npos);
  EXPECT_NE(must_fail({"", secret, "", ""}, env({})).message.find("access_key_id"), std::string::npos);
  EXPECT_NE(must_fail({"AKID", "", "", ""}, env({})).message.find("secret_access_key"), std::string::npos);
}

TEST_F(CredentialsTest, StaticKeysAndASourceTogetherIsAnError) {
  EXPECT_NE(must_fail({"AKID", secret, "", "env"}, env({})).message.find("use one"), std::string::npos);
}

TEST_F(CredentialsTest, ValuesThatWouldBreakAHeaderAreRefused) {
  must_fail({"AKID\r\nX-Evil: 1", secret, "", ""}, env({}));
  must_fail({"AKID", secret, "tok en", ""}, env({}));
  must_fail({"AKID", std::string(secret) + "\n", "", ""}, env({}));
}

TEST_F(CredentialsTest, Environment) {
  auto r = resolve_credentials(
      {"", "", "", "env"},
      env({{"AWS_ACCESS_KEY_ID", "AKIDENV"}, {"AWS_SECRET_ACCESS_KEY", secret}, {"AWS_SESSION_TOKEN", token}}));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->access_key_id, "AKIDENV");
  EXPECT_EQ(r->secret_access_key, secret);
  EXPECT_EQ(r->session_token, token);

  auto no_token = resolve_credentials({"", "", "", "env"},
                                      env({{"AWS_ACCESS_KEY_ID", "AKIDENV"}, {"AWS_SECRET_ACCESS_KEY", secret}}));
  ASSERT_TRUE(no_token);
  EXPECT_EQ(no_token->session_token, "");
}

TEST_F(CredentialsTest, EnvironmentMissingPiecesNameTheVariable) {
  EXPECT_NE(must_fail({"", "", "", "env"}, env({{"AWS_SECRET_ACCESS_KEY", secret}})).message.find("AWS_ACCESS_KEY_ID"),
            std::string::npos);
  EXPECT_NE(must_fail({"", "", "", "env"}, env({{"AWS_ACCESS_KEY_ID", "AKID"}})).message.find("AWS_SECRET_ACCESS_KEY"),
            std::string::npos);
  must_fail({"", "", "", "env"}, env({{"AWS_ACCESS_KEY_ID", ""}, {"AWS_SECRET_ACCESS_KEY", secret}}));
}

const char* shared_file = R"(# a comment
; another comment

[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

[ backup ]
  AWS_ACCESS_KEY_ID=AKIDBACKUP
aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
aws_session_token   =   FQoGZXIvYXdzEXAMPLETOKEN
region = eu-west-1

[nosecret]
aws_access_key_id = AKIDNOSECRET
)";

TEST_F(CredentialsTest, ProfileFromSharedFile) {
  const auto path = write("credentials", shared_file);
  auto e = env({{"AWS_SHARED_CREDENTIALS_FILE", path}});
  auto r = resolve_credentials({"", "", "", "profile:backup"}, e);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->access_key_id, "AKIDBACKUP");
  EXPECT_EQ(r->secret_access_key, secret);
  EXPECT_EQ(r->session_token, token);

  auto d = resolve_credentials({"", "", "", "profile"}, e);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->access_key_id, "AKIDDEFAULT");
  EXPECT_EQ(d->session_token, "");
}

TEST_F(CredentialsTest, ProfileNamedByAwsProfile) {
  const auto path = write("credentials", shared_file);
  auto r = resolve_credentials({"", "", "", "profile"},
                               env({{"AWS_SHARED_CREDENTIALS_FILE", path}, {"AWS_PROFILE", "backup"}}));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->access_key_id, "AKIDBACKUP");
}

TEST_F(CredentialsTest, ProfileFileUnderHome) {
  write("home/.aws/credentials", shared_file);
  auto r = resolve_credentials({"", "", "", "profile:default"}, env({{"HOME", (dir_ / "home").string()}}));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->access_key_id, "AKIDDEFAULT");

  write("home/creds2", "[p]\naws_access_key_id=AKIDTILDE\naws_secret_access_key=s\n");
  auto t = resolve_credentials({"", "", "", "profile:p"},
                               env({{"HOME", (dir_ / "home").string()}, {"AWS_SHARED_CREDENTIALS_FILE", "~/creds2"}}));
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(t->access_key_id, "AKIDTILDE");
}

TEST_F(CredentialsTest, ProfileErrorsSayWhatAndWhere) {
  const auto path = write("credentials", shared_file);
  auto e = env({{"AWS_SHARED_CREDENTIALS_FILE", path}});
  const auto missing = must_fail({"", "", "", "profile:nope"}, e);
  EXPECT_NE(missing.message.find("'nope'"), std::string::npos);
  EXPECT_NE(missing.message.find(path), std::string::npos);
  const auto nosecret = must_fail({"", "", "", "profile:nosecret"}, e);
  EXPECT_NE(nosecret.message.find("aws_secret_access_key"), std::string::npos);
  must_fail({"", "", "", "profile:"}, e);
  const auto nofile = must_fail({"", "", "", "profile:default"}, env({{"AWS_SHARED_CREDENTIALS_FILE", path + ".x"}}));
  EXPECT_NE(nofile.message.find(path + ".x"), std::string::npos);
  EXPECT_NE(must_fail({"", "", "", "profile"}, env({})).message.find("HOME"), std::string::npos);
}

TEST_F(CredentialsTest, MalformedFilesGiveLineNumbersNotContent) {
  const auto bad_line =
      write("bad1", "[default]\naws_access_key_id = AKID\nwJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n");
  const auto e1 = must_fail({"", "", "", "profile:default"}, env({{"AWS_SHARED_CREDENTIALS_FILE", bad_line}}));
  EXPECT_NE(e1.message.find("line 3"), std::string::npos) << e1.message;

  const auto outside = write("bad2", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n[default]\n");
  must_fail({"", "", "", "profile:default"}, env({{"AWS_SHARED_CREDENTIALS_FILE", outside}}));

  const auto unclosed = write("bad3", "[default\naws_access_key_id = AKID\n");
  must_fail({"", "", "", "profile:default"}, env({{"AWS_SHARED_CREDENTIALS_FILE", unclosed}}));

  const auto huge = write("huge", "[default]\n" + std::string(70'000, '#') + "\n");
  EXPECT_NE(
      must_fail({"", "", "", "profile:default"}, env({{"AWS_SHARED_CREDENTIALS_FILE", huge}})).message.find("larger"),
      std::string::npos);

  must_fail({"", "", "", "profile:default"}, env({{"AWS_SHARED_CREDENTIALS_FILE", dir_.string()}}));  // a directory
}

TEST_F(CredentialsTest, WindowsLineEndingsAreAccepted) {
  const auto path = write("crlf", "[default]\r\naws_access_key_id = AKIDCRLF\r\naws_secret_access_key = s3cr3t\r\n");
  auto r = resolve_credentials({"", "", "", "profile:default"}, env({{"AWS_SHARED_CREDENTIALS_FILE", path}}));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->access_key_id, "AKIDCRLF");
  EXPECT_EQ(r->secret_access_key, "s3cr3t");
}

TEST_F(CredentialsTest, SystemdCredential) {
  write("creds/s3main", "# from LoadCredential=\naws_access_key_id = AKIDSYSTEMD\naws_secret_access_key = " +
                            std::string(secret) + "\n");
  auto r =
      resolve_credentials({"", "", "", "systemd:s3main"}, env({{"CREDENTIALS_DIRECTORY", (dir_ / "creds").string()}}));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->access_key_id, "AKIDSYSTEMD");
  EXPECT_EQ(r->secret_access_key, secret);
  EXPECT_EQ(r->session_token, "");
}

TEST_F(CredentialsTest, SystemdErrors) {
  const auto creds = (dir_ / "creds").string();
  EXPECT_NE(must_fail({"", "", "", "systemd:s3main"}, env({})).message.find("CREDENTIALS_DIRECTORY"),
            std::string::npos);
  must_fail({"", "", "", "systemd:"}, env({{"CREDENTIALS_DIRECTORY", creds}}));
  must_fail({"", "", "", "systemd:../etc/passwd"}, env({{"CREDENTIALS_DIRECTORY", creds}}));
  must_fail({"", "", "", "systemd:.."}, env({{"CREDENTIALS_DIRECTORY", creds}}));
  EXPECT_NE(must_fail({"", "", "", "systemd:absent"}, env({{"CREDENTIALS_DIRECTORY", creds}})).message.find("absent"),
            std::string::npos);
  write("creds/sectioned", "[default]\naws_access_key_id = A\naws_secret_access_key = " + std::string(secret) + "\n");
  must_fail({"", "", "", "systemd:sectioned"}, env({{"CREDENTIALS_DIRECTORY", creds}}));
  write("creds/nosecret", "aws_access_key_id = A\n");
  must_fail({"", "", "", "systemd:nosecret"}, env({{"CREDENTIALS_DIRECTORY", creds}}));
}

TEST_F(CredentialsTest, UnknownSource) {
  EXPECT_NE(must_fail({"", "", "", "vault:x"}, env({})).message.find("vault:x"), std::string::npos);
}

TEST(Redacted, ShowsNeitherSecretNorToken) {
  const credentials c{"AKIAIOSFODNN7EXAMPLE", secret, token};
  const auto r = redacted(c);
  EXPECT_EQ(r, "AKIA...MPLE (session token: yes)");
  EXPECT_EQ(r.find(secret), std::string::npos);
  EXPECT_EQ(r.find(token), std::string::npos);
  EXPECT_EQ(redacted(credentials{"SHORT", secret, ""}), "... (session token: no)");
}

}  // namespace
}  // namespace ferry::s3
