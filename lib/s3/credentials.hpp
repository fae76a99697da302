#pragma once
// Where a remote's keys come from, resolved once when the config is loaded. Nothing here logs,
// and no error text ever contains a secret value (nor the content of a line that might hold one).
//
// Sources (credentials_config::source):
//   ""              static keys from the config (access_key_id + secret_access_key [+ session_token])
//   "env"           AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN]
//   "profile"       the shared credentials file, profile $AWS_PROFILE or "default"
//   "profile:NAME"  the shared credentials file, profile NAME
//                   (file: $AWS_SHARED_CREDENTIALS_FILE, else $HOME/.aws/credentials)
//   "systemd:NAME"  the file $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential=/SetCredential=)
//
// File format (the shared credentials file's INI dialect): "[name]" starts a profile; lines
// "key = value" with keys aws_access_key_id, aws_secret_access_key, aws_session_token (others are
// ignored); blank lines and whole-line comments starting with '#' or ';' are skipped; whitespace
// around keys and values is trimmed; key names are case-insensitive; a repeated key takes the last
// value. There are no inline comments (a '#' inside a value is part of it).
// The systemd credential file holds the same key = value lines with no section header at all
// (a "[section]" line there is an error, so a misplaced full credentials file is noticed).
#include "s3/error.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::s3 {

struct credentials {
  std::string access_key_id, secret_access_key, session_token;
};

// For logs: the key id's first 4 and last 4 characters, never the secret or the token
// ("AKIA...MPLE (session token: yes)").
std::string redacted(const credentials& c);

// A remote's credential settings as the config file gives them.
struct credentials_config {
  std::string access_key_id, secret_access_key, session_token;
  std::string source;  // see the top of this header
};

// Looks up an environment variable; tests inject their own.
using env_lookup = std::function<std::optional<std::string>(std::string_view)>;

// The process environment (getenv).
env_lookup process_env();

// Resolves credentials from their source. Errors (code "CredentialsError", not retryable) say
// which piece is missing and where it was looked for. Files larger than 64 KiB are refused.
result<credentials> resolve_credentials(const credentials_config& cfg, const env_lookup& env);

}  // namespace ferry::s3
