#include "s3/credentials.hpp"
#include "util/text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

namespace ferry::s3 {

namespace {

constexpr std::size_t max_file_bytes = 64 * 1024;
constexpr std::string_view code = "CredentialsError";

error cred_error(std::string message) { return local_error(std::string(code), std::move(message)); }

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

std::string errno_text(int e) { return std::strerror(e); }

result<std::string> read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return cred_error("cannot open " + path + ": " + errno_text(errno));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_on_exit{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return cred_error("cannot stat " + path + ": " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return cred_error(path + " is not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > max_file_bytes)
    return cred_error(path + " is larger than " + std::to_string(max_file_bytes) + " bytes");
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return cred_error("cannot read " + path + ": " + errno_text(errno));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_file_bytes)  // grew since fstat
      return cred_error(path + " is larger than " + std::to_string(max_file_bytes) + " bytes");
  }
  return text;
}

// section name -> key (lower-case) -> value. Keys outside any section live under "".
using ini = std::map<std::string, std::map<std::string, std::string>, std::less<>>;

// Error messages give line numbers only: a malformed line may well be a secret.
result<ini> parse_ini(std::string_view text, bool sections_allowed, const std::string& where) {
  ini out;
  std::string section;
  bool in_section = false;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    line = trim(line);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    const std::string at = where + " line " + std::to_string(line_no);
    if (line.front() == '[') {
      if (!sections_allowed) return cred_error(at + ": section headers are not allowed in this file");
      if (line.back() != ']') return cred_error(at + ": a section header must end with ']'");
      section = std::string(trim(line.substr(1, line.size() - 2)));
      if (section.empty()) return cred_error(at + ": empty section name");
      in_section = true;
      out[section];  // an empty profile still exists
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) return cred_error(at + ": expected 'key = value'");
    const std::string key = util::ascii_lower(trim(line.substr(0, eq)));
    if (key.empty()) return cred_error(at + ": missing key before '='");
    if (sections_allowed && !in_section) return cred_error(at + ": key outside any [profile] section");
    out[section][key] = std::string(trim(line.substr(eq + 1)));
  }
  return out;
}

// Values end up in HTTP headers (the key id in Authorization, the token as a header of its own):
// only visible ASCII may pass, or a stray CR/LF would split the request.
bool header_safe(std::string_view s) {
  for (const char c : s)
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7E) return false;
  return true;
}

result<credentials> validated(credentials c, const std::string& where) {
  if (c.access_key_id.empty()) return cred_error(where + ": no access key id");
  if (c.secret_access_key.empty()) return cred_error(where + ": no secret access key");
  if (!header_safe(c.access_key_id)) return cred_error(where + ": the access key id contains invalid characters");
  if (!header_safe(c.secret_access_key))
    return cred_error(where + ": the secret access key contains invalid characters");
  if (!header_safe(c.session_token)) return cred_error(where + ": the session token contains invalid characters");
  return c;
}

result<credentials> from_keys(const std::map<std::string, std::string>& keys, const std::string& where) {
  credentials c;
  auto get = [&](const char* k) -> std::string {
    auto it = keys.find(k);
    return it == keys.end() ? std::string() : it->second;
  };
  c.access_key_id = get("aws_access_key_id");
  c.secret_access_key = get("aws_secret_access_key");
  c.session_token = get("aws_session_token");
  if (c.access_key_id.empty()) return cred_error(where + " has no aws_access_key_id");
  if (c.secret_access_key.empty()) return cred_error(where + " has no aws_secret_access_key");
  return validated(std::move(c), where);
}

std::string env_or_empty(const env_lookup& env, std::string_view name) {
  auto v = env(name);
  return v ? *v : std::string();
}

result<credentials> from_env(const env_lookup& env) {
  credentials c;
  c.access_key_id = env_or_empty(env, "AWS_ACCESS_KEY_ID");
  c.secret_access_key = env_or_empty(env, "AWS_SECRET_ACCESS_KEY");
  c.session_token = env_or_empty(env, "AWS_SESSION_TOKEN");
  if (c.access_key_id.empty()) return cred_error("credentials = \"env\": AWS_ACCESS_KEY_ID is not set");
  if (c.secret_access_key.empty()) return cred_error("credentials = \"env\": AWS_SECRET_ACCESS_KEY is not set");
  return validated(std::move(c), "credentials from the environment");
}

result<std::string> shared_credentials_path(const env_lookup& env) {
  std::string path = env_or_empty(env, "AWS_SHARED_CREDENTIALS_FILE");
  const std::string home = env_or_empty(env, "HOME");
  if (!path.empty()) {
    if (path == "~" || path.starts_with("~/")) {
      if (home.empty()) return cred_error("AWS_SHARED_CREDENTIALS_FILE starts with '~' but HOME is not set");
      path = home + path.substr(1);
    }
    return path;
  }
  if (home.empty()) return cred_error("neither AWS_SHARED_CREDENTIALS_FILE nor HOME is set");
  return home + "/.aws/credentials";
}

result<credentials> from_profile(std::string name, const env_lookup& env) {
  auto path = shared_credentials_path(env);
  if (!path) return path.error();
  auto text = read_small_file(*path);
  if (!text) return text.error();
  auto parsed = parse_ini(*text, true, *path);
  if (!parsed) return parsed.error();
  auto it = parsed->find(name);
  if (it == parsed->end()) return cred_error("profile '" + name + "' not found in " + *path);
  return from_keys(it->second, "profile '" + name + "' in " + *path);
}

result<credentials> from_systemd(std::string_view name, const env_lookup& env) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
    return cred_error("credentials = \"systemd:NAME\": '" + std::string(name) + "' is not a credential name");
  const std::string dir = env_or_empty(env, "CREDENTIALS_DIRECTORY");
  if (dir.empty())
    return cred_error("credentials = \"systemd:" + std::string(name) +
                      "\": CREDENTIALS_DIRECTORY is not set (is LoadCredential= in the unit?)");
  const std::string path = dir + "/" + std::string(name);
  auto text = read_small_file(path);
  if (!text) return text.error();
  auto parsed = parse_ini(*text, false, path);
  if (!parsed) return parsed.error();
  static const std::map<std::string, std::string> none;
  auto it = parsed->find("");
  return from_keys(it == parsed->end() ? none : it->second, path);
}

}  // namespace

std::string redacted(const credentials& c) {
  const auto& id = c.access_key_id;
  std::string out = id.size() > 8 ? id.substr(0, 4) + "..." + id.substr(id.size() - 4) : std::string("...");
  out += c.session_token.empty() ? " (session token: no)" : " (session token: yes)";
  return out;
}

env_lookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

result<credentials> resolve_credentials(const credentials_config& cfg, const env_lookup& env) {
  const std::string_view source = cfg.source;
  const bool has_static = !cfg.access_key_id.empty() || !cfg.secret_access_key.empty() || !cfg.session_token.empty();
  if (source.empty()) {
    if (!has_static)
      return cred_error(
          "no credentials configured: set access_key_id and secret_access_key, or credentials = \"env\", "
          "\"profile[:NAME]\" or \"systemd:NAME\"");
    if (cfg.access_key_id.empty()) return cred_error("secret_access_key is set but access_key_id is not");
    if (cfg.secret_access_key.empty()) return cred_error("access_key_id is set but secret_access_key is not");
    return validated({cfg.access_key_id, cfg.secret_access_key, cfg.session_token}, "static credentials");
  }
  if (has_static)
    return cred_error("both static keys and credentials = \"" + std::string(source) + "\" are set; use one");
  if (source == "env") return from_env(env);
  if (source == "profile") {
    std::string name = env_or_empty(env, "AWS_PROFILE");
    return from_profile(name.empty() ? "default" : name, env);
  }
  if (source.starts_with("profile:")) {
    const auto name = source.substr(8);
    if (name.empty()) return cred_error("credentials = \"profile:\" names no profile");
    return from_profile(std::string(name), env);
  }
  if (source.starts_with("systemd:")) return from_systemd(source.substr(8), env);
  return cred_error("unknown credentials source '" + std::string(source) +
                    "' (expected \"env\", \"profile\", \"profile:NAME\" or \"systemd:NAME\")");
}

}  // namespace ferry::s3
