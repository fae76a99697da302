// Acceptance tests of the transfer engine, black-box through the CLI: a real ferryd and ferryctl, strict
// s3rver instances, local directories, and rclone (an independent client) to check every result.
//   TransferE2E          byte-identical copies of awkward sizes and keys: S3->S3, local->S3, S3->local,
//                        over HTTP and TLS
//   ServerSideCopyE2E    same remote: CopyObject for small objects, UploadPartCopy refused -> streaming,
//                        --copy-mode stream|server
//   CorruptionE2E        a bit flipped in flight is caught, retried, and never committed as verified
//   FaultProxyRelay      the fault proxy (tests/fault/) as those tests use it: a recording, corrupting relay
#include "fault/fault_proxy.hpp"
#include "proto/messages.hpp"
#include "support/ferryd.hpp"
#include "support/s3rver.hpp"
#include "support/temp_dir.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

namespace ferry::test {
namespace {

constexpr std::uint64_t MiB = 1024 * 1024;
// Every generated file's mtime: 2021-03-04T05:06:07.250Z (milliseconds, as rclone's x-amz-meta-mtime keeps).
constexpr std::int64_t t0_seconds = 1614834367;
constexpr std::int64_t t0_nanos = 250'000'000;
constexpr auto ctl_timeout = std::chrono::seconds(240);

struct sample {
  std::string key;  // relative path / key below the location
  std::uint64_t size;
};

struct object_info {
  std::uint64_t size = 0;
  std::string md5;  // lower-case hex
  friend bool operator==(const object_info&, const object_info&) = default;
};

using object_map = std::map<std::string, object_info>;

std::string tail(const std::string& text, std::size_t max_chars = 6000) {
  return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

// MD5 with OpenSSL directly: the expected values owe nothing to ferry's own hashing code.
class md5 {
 public:
  md5() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr) != 1) throw std::runtime_error("MD5 init");
  }
  ~md5() { EVP_MD_CTX_free(ctx_); }
  md5(const md5&) = delete;
  md5& operator=(const md5&) = delete;
  void update(const void* p, std::size_t n) {
    if (EVP_DigestUpdate(ctx_, p, n) != 1) throw std::runtime_error("MD5 update");
  }
  std::string hex_digest() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(ctx_, out, &len) != 1) throw std::runtime_error("MD5 final");
    return hex(out, len);
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// Writes `size` pseudo-random bytes (xorshift64*, seeded from the key: every file differs, every part of a
// file differs) at `path`, sets its mtime to t0, and returns its size and MD5.
object_info generate_file(const std::filesystem::path& path, const std::string& key, std::uint64_t size) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot create " + path.string());
  md5 hash;
  std::uint64_t x = fnv1a(key) | 1;
  std::vector<char> buf(MiB);
  for (std::uint64_t left = size; left > 0;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
    for (std::size_t i = 0; i < n; i += 8) {
      x ^= x >> 12;
      x ^= x << 25;
      x ^= x >> 27;
      const std::uint64_t v = x * 0x2545F4914F6CDD1DULL;
      std::memcpy(buf.data() + i, &v, std::min<std::size_t>(8, n - i));
    }
    hash.update(buf.data(), n);
    out.write(buf.data(), static_cast<std::streamsize>(n));
    left -= n;
  }
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
  const timespec times[2] = {{t0_seconds, t0_nanos}, {t0_seconds, t0_nanos}};
  if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) throw std::runtime_error("utimensat " + path.string());
  return {size, hash.hex_digest()};
}

object_map generate(const std::filesystem::path& dir, const std::vector<sample>& samples) {
  object_map m;
  for (const auto& s : samples) m[s.key] = generate_file(dir / s.key, s.key, s.size);
  return m;
}

std::uint64_t total_bytes(const object_map& m) {
  std::uint64_t n = 0;
  for (const auto& [k, v] : m) n += v.size;
  return n;
}

// One rclone remote: an s3rver, or an s3rver reached through a proxy.
struct rclone_remote {
  std::string name;
  std::string endpoint;
  std::string region = "us-east-1";
  std::filesystem::path ca_file{};  // empty: plain HTTP
};

rclone_remote remote_of(std::string name, const s3rver& s) {
  return {std::move(name), s.endpoint(), s.region(), s.ca_file()};
}

// rclone with a config naming several remotes, one CA bundle trusting all of their test CAs, TZ=UTC (so
// times print in UTC), and one attempt per operation.
class rclone_runner {
 public:
  explicit rclone_runner(const std::vector<rclone_remote>& remotes) : dir_("ferry-rclone") {
    std::ofstream conf(dir_ / "rclone.conf");
    std::ofstream cas;
    for (const auto& r : remotes) {
      conf << "[" << r.name << "]\ntype = s3\nprovider = Other\naccess_key_id = S3RVER\nsecret_access_key = S3RVER\n"
           << "endpoint = " << r.endpoint << "\nforce_path_style = true\nregion = " << r.region << "\n\n";
      if (!r.ca_file.empty()) {
        if (!cas.is_open()) cas.open(dir_ / "cas.pem");
        cas << std::ifstream(r.ca_file).rdbuf();
      }
    }
    has_cas_ = cas.is_open();
  }

  run_result operator()(const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(180)) const {
    process_options o;
    o.argv = {"rclone", "--config", (dir_ / "rclone.conf").string(), "--retries", "1", "--low-level-retries", "1"};
    if (has_cas_) o.argv.insert(o.argv.end(), {"--ca-cert", (dir_ / "cas.pem").string()});
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env_unset = {"AWS_CA_BUNDLE", "RCLONE_CONFIG", "RCLONE_CA_CERT"};  // rclone refuses AWS_CA_BUNDLE
    o.env_set = {{"TZ", "UTC"}};
    return run(o, timeout);
  }

 private:
  temp_dir dir_;
  bool has_cas_ = false;
};

// `rclone md5sum` output: "HASH  PATH" per line, HASH blank where rclone has none.
std::map<std::string, std::string> parse_md5sum(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.size() < 35) continue;
    std::string hash = line.substr(0, 32);
    hash.erase(std::remove(hash.begin(), hash.end(), ' '), hash.end());
    m[line.substr(34)] = hash;
  }
  return m;
}

// Downloads every object below `location` and hashes it (rclone md5sum --download): the bytes really there.
std::map<std::string, std::string> downloaded_md5s(const rclone_runner& rc, const std::string& location) {
  auto r = rc({"md5sum", "--download", location});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return parse_md5sum(r.out);
}

std::map<std::string, std::string> md5s_of(const object_map& m) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : m) out[k] = v.md5;
  return out;
}

proto::job parse_job_line(const run_result& r) {
  auto line = r.out.substr(0, r.out.find('\n'));
  auto j = proto::parse_job(line);
  if (!j) throw std::runtime_error("ferryctl --json printed no job: " + r.out + r.err);
  return *j;
}

std::size_t count(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "2021-03-04T05:06:07.25Z" as nanoseconds since the epoch.
std::optional<std::int64_t> parse_utc(const std::string& s) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::int64_t nanos = 0;
  std::size_t at = static_cast<std::size_t>(consumed);
  if (at < s.size() && s[at] == '.') {
    std::int64_t scale = 100'000'000;
    for (++at; at < s.size() && std::isdigit(static_cast<unsigned char>(s[at])); ++at, scale /= 10)
      nanos += (s[at] - '0') * scale;
  }
  if (s.substr(at) != "Z") return std::nullopt;
  return static_cast<std::int64_t>(::timegm(&tm)) * 1'000'000'000 + nanos;
}

constexpr std::int64_t t0_total_nanos = t0_seconds * 1'000'000'000 + t0_nanos;

// A [remotes.NAME] section for `server` reached through `proxy` (plain HTTP).
std::string proxied_remote_section(const std::string& name, const fault_proxy& proxy, const s3rver& server) {
  return "[remotes." + name + "]\nendpoint = \"" + proxy.endpoint() + "\"\nregion = \"" + server.region() +
         "\"\npath_style = true\naccess_key_id = \"S3RVER\"\nsecret_access_key = \"S3RVER\"\n";
}

// A relay to `server` that records every request; with `victim`, it also flips the lowest bit of body byte 100
// of 2xx responses to object GETs whose target contains `victim` (at most `times` of them).
fault_proxy_options relay_to(const s3rver& server, const std::string& victim = "",
                             std::optional<std::uint64_t> times = std::nullopt) {
  fault_proxy_options o{.upstream_port = server.port()};
  if (!victim.empty()) {
    o.rules.push_back(fault_rule{.name = "corrupt " + victim,
                                 .methods = {"GET"},
                                 .target_contains = victim,
                                 .objects_only = true,
                                 .times = times,
                                 .action = fault_action::flip_bit_at(100, fault_direction::response)});
  }
  return o;
}

bool corrupted(const request_record& r) { return r.fault == fault_kind::flip_bit; }

// Uploads `samples` (generated in a temp dir) to `location` on `server` with rclone, and returns them.
// Objects up to rclone's upload cutoff (default 200 MiB, or `cutoff`) are single-part: their ETag is an MD5.
object_map upload(const s3rver& server, const std::string& bucket_and_prefix, const std::vector<sample>& samples,
                  const std::string& cutoff = "") {
  temp_dir local("ferry-upload");
  object_map m = generate(local.path(), samples);
  const std::string bucket = bucket_and_prefix.substr(0, bucket_and_prefix.find('/'));
  auto mk = server.rclone({"mkdir", "s3rver:" + bucket});
  if (mk.exit_code != 0) throw std::runtime_error("rclone mkdir: " + mk.err);
  std::vector<std::string> args = {"copy", local.path().string(), "s3rver:" + bucket_and_prefix, "--transfers", "4"};
  if (!cutoff.empty()) args.insert(args.end(), {"--s3-upload-cutoff", cutoff});
  auto cp = server.rclone(args, std::chrono::seconds(240));
  if (cp.exit_code != 0) throw std::runtime_error("rclone copy: " + cp.err);
  return m;
}

// ---------------------------------------------------------------------------------------------------------
// 1. Byte-identical results for every size and key, in all three directions, over HTTP and TLS.

enum class direction { s3_to_s3, local_to_s3, s3_to_local };

std::string to_string(direction d) {
  switch (d) {
    case direction::s3_to_s3:
      return "S3ToS3";
    case direction::local_to_s3:
      return "LocalToS3";
    case direction::s3_to_local:
      return "S3ToLocal";
  }
  return "?";
}

// Sizes around S3's 5 MiB part minimum and the default 64 MiB multipart threshold; keys that need careful
// encoding (in SigV4, in x-amz-copy-source, on a local file system); a deep path; typed extensions.
std::vector<sample> transfer_samples(bool with_300_mib) {
  std::vector<sample> s = {{"size/empty", 0},
                           {"size/one-byte", 1},
                           {"size/5MiB-1", 5 * MiB - 1},
                           {"size/5MiB", 5 * MiB},
                           {"size/5MiB+1", 5 * MiB + 1},
                           {"size/64MiB+1", 64 * MiB + 1},
                           {"names/with space.bin", 1000},
                           {"names/unicode-ü-日本-😀.bin", 4096},
                           {"names/plus+sign", 77},
                           {"names/percent%25 and %", 10},
                           {"names/hash#tag", 10},
                           {"names/question?mark", 10},
                           {"names/equals=sign&amp", 10},
                           {"a/b/c/d/e/f/g/deep.bin", 300'000},
                           {"types/notes.txt", 500},
                           {"types/photo.jpg", 2000}};
  if (with_300_mib) s.push_back({"size/300MiB", 300 * MiB});
  return s;
}

void PrintTo(direction d, std::ostream* os) { *os << to_string(d); }

class TransferE2E : public ::testing::TestWithParam<std::tuple<direction, bool>> {};

INSTANTIATE_TEST_SUITE_P(
    DirectionAndTransport, TransferE2E,
    ::testing::Combine(::testing::Values(direction::s3_to_s3, direction::local_to_s3, direction::s3_to_local),
                       ::testing::Bool()),
    [](const auto& info) { return to_string(std::get<0>(info.param)) + (std::get<1>(info.param) ? "Tls" : "Http"); });

TEST_P(TransferE2E, EveryObjectArrivesByteIdenticalAndRcloneAgrees) {
  const auto [dir, tls] = GetParam();
  // The 300 MiB object (rclone uploads it in 60 parts) in every HTTP case and in TLS S3->S3: enough to cover
  // large objects over TLS without tripling the suite's longest cases.
  const bool with_300_mib = !tls || dir == direction::s3_to_s3;
  const auto samples = transfer_samples(with_300_mib);
  temp_dir work("ferry-xfer");

  object_map expected;
  std::optional<s3rver> src, dst;
  std::vector<rclone_remote> remotes;
  std::string ferry_remotes, source, destination, check_source, check_destination;
  if (dir == direction::local_to_s3) {
    expected = generate(work / "files", samples);
    source = check_source = (work / "files").string();
  } else {
    src.emplace(s3rver_options{.tls = tls});
    // A 5 MiB cutoff: 5MiB+1 (parts of 5 MiB and 1 byte), 64MiB+1 and 300 MiB have multipart "-N" ETags.
    expected = upload(*src, "source/data", samples, "5Mi");
    remotes.push_back(remote_of("a", *src));
    ferry_remotes += remote_section("src", *src);
    source = "src:source/data";
    check_source = "a:source/data";
  }
  if (dir == direction::s3_to_local) {
    std::filesystem::create_directories(work / "out");
    destination = check_destination = (work / "out").string();
  } else {
    dst.emplace(s3rver_options{.tls = tls});
    ASSERT_EQ(dst->rclone({"mkdir", "s3rver:target"}).exit_code, 0);
    remotes.push_back(remote_of("b", *dst));
    ferry_remotes += remote_section("dst", *dst);
    destination = "dst:target/copy";
    check_destination = "b:target/copy";
  }
  const rclone_runner rc(remotes);

  ferryd d(ferry_remotes);
  auto r = d.ctl({"--json", "copy", source, destination, "--wait"}, ctl_timeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << tail(d.read_log());
  auto job = parse_job_line(r);
  EXPECT_EQ(job.state, proto::job_state::succeeded);
  EXPECT_EQ(job.objects.total, expected.size());
  EXPECT_EQ(job.objects.done, expected.size());
  EXPECT_EQ(job.objects.failed, 0u);
  EXPECT_EQ(job.bytes.done, total_bytes(expected));
  EXPECT_EQ(job.copy.server_side, 0u);  // two servers (or a directory): nothing can be copied server-side
  EXPECT_EQ(job.copy.fallbacks, 0u);
  EXPECT_EQ(job.copy.streamed, expected.size());

  // rclone compares the two sides byte for byte (--download), both ways: nothing missing, nothing extra
  // (a leftover temp file in a local destination counts as extra).
  auto check = rc({"check", "--download", check_source, check_destination});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_NE(check.err.find(" 0 differences found"), std::string::npos) << check.err;
  EXPECT_NE(check.err.find(std::to_string(expected.size()) + " matching files"), std::string::npos) << check.err;

  // The destination's bytes against MD5s computed here when the files were generated.
  EXPECT_EQ(downloaded_md5s(rc, check_destination), md5s_of(expected));

  if (dst) {
    // What S3 reports without downloading (a single-part ETag, or metadata) must not contradict the bytes.
    auto listed = rc({"md5sum", check_destination});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    for (const auto& [key, hash] : parse_md5sum(listed.out)) {
      if (!hash.empty() && expected.count(key) == 1) {
        EXPECT_EQ(hash, expected.at(key).md5) << key;
      }
    }
  }
  if (dir == direction::s3_to_local) {
    // mtime from the source's x-amz-meta-mtime (rclone set it from the generated files).
    for (const auto& [key, info] : expected) {
      struct stat st {};
      ASSERT_EQ(::stat((work / "out" / key).c_str(), &st), 0) << key;
      const std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
      EXPECT_LE(std::abs(mtime - t0_total_nanos), 1'000'000) << key << ": mtime " << mtime;
    }
  }
  if (dir == direction::local_to_s3) {
    // Content-Type from the extension, and x-amz-meta-mtime that rclone reads back as the file's mtime.
    auto ls = rc({"lsjson", "--recursive", "--files-only", check_destination});
    ASSERT_EQ(ls.exit_code, 0) << ls.err;
    auto entries = boost::json::parse(ls.out).as_array();
    EXPECT_EQ(entries.size(), expected.size());
    for (const auto& e : entries) {
      const auto& o = e.as_object();
      const std::string path(o.at("Path").as_string());
      const std::string mime(o.at("MimeType").as_string());
      auto mtime = parse_utc(std::string(o.at("ModTime").as_string()));
      ASSERT_TRUE(mtime) << path << ": " << o.at("ModTime");
      EXPECT_LE(std::abs(*mtime - t0_total_nanos), 1'000'000) << path << ": " << o.at("ModTime");
      if (path == "types/notes.txt") {
        EXPECT_EQ(mime.rfind("text/plain", 0), 0u) << mime;
      } else if (path == "types/photo.jpg") {
        EXPECT_EQ(mime, "image/jpeg");
      } else if (path == "a/b/c/d/e/f/g/deep.bin") {
        EXPECT_EQ(mime, "application/octet-stream");
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// 2. Server-side copy within one remote. The remote is reached through a recording proxy (corrupting
// nothing), because s3rver's request log drops each line's method: the proxy's record is what proves which
// requests ferryd made; s3rver's own "Copied object" lines prove what the server did.

class ServerSideCopyE2E : public ::testing::Test {
 protected:
  ServerSideCopyE2E() : proxy_(relay_to(server_)) {}

  // ferryd with one remote, "s", the s3rver through the proxy.
  ferryd start_ferryd(const std::string& extra_config = "", const std::string& log_level = "debug") {
    return ferryd(proxied_remote_section("s", proxy_, server_), log_level, extra_config);
  }

  std::size_t copied_lines(const std::string& key) const {
    return count(server_.read_log(), "Copied object \"prefix/" + key +
                                         "\" from bucket \"bucket-a\" into bucket \"bucket-b\" with key of \"copied/" +
                                         key + "\"");
  }

  // GETs of objects in bucket-a (listings have no key, so they are not counted).
  std::size_t source_object_gets() const {
    std::size_t n = 0;
    for (const auto& r : proxy_.requests()) {
      const std::string path = r.target.substr(0, r.target.find('?'));
      if (r.method == "GET" && path.rfind("/bucket-a/", 0) == 0 && path.size() > std::strlen("/bucket-a/")) ++n;
    }
    return n;
  }

  std::vector<request_record> copy_requests() const {
    std::vector<request_record> out;
    for (const auto& r : proxy_.requests()) {
      if (r.copy_source) out.push_back(r);
    }
    return out;
  }

  void expect_identical() const {
    auto check = server_.rclone({"check", "--download", "s3rver:bucket-a/prefix", "s3rver:bucket-b/copied"});
    EXPECT_EQ(check.exit_code, 0) << check.err;
  }

  // Multipart uploads left behind in bucket-b (s3rver keeps each in a directory until completed or aborted).
  std::size_t open_uploads() const {
    const auto dir = server_.data_dir() / "bucket-b" / "._S3rver_uploads";
    if (!std::filesystem::exists(dir)) return 0;
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
  }

  s3rver server_;
  fault_proxy proxy_;
};

// Keys s3rver's CopyObject can find: it decodes x-amz-copy-source with decodeURI, which leaves %23 (#), %3F (?),
// %2B (+) and the like encoded, so keys with those characters are covered by TransferE2E instead.
const std::vector<sample> small_objects = {{"prefix/one.txt", 10},
                                           {"prefix/two.bin", 1000},
                                           {"prefix/with space.bin", 2048},
                                           {"prefix/grüße.txt", 333},
                                           {"prefix/sub/dir/three.bin", 70'000}};

TEST_F(ServerSideCopyE2E, SmallObjectsAreCopiedByTheServerAndNeverRead) {
  auto expected = upload(server_, "bucket-a", small_objects);
  ASSERT_EQ(server_.rclone({"mkdir", "s3rver:bucket-b"}).exit_code, 0);
  ferryd d = start_ferryd();
  auto r = d.ctl({"--json", "copy", "s:bucket-a/prefix", "s:bucket-b/copied", "--wait"}, ctl_timeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << tail(d.read_log());
  auto job = parse_job_line(r);
  EXPECT_EQ(job.objects.done, small_objects.size());
  EXPECT_EQ(job.copy.server_side, small_objects.size());
  EXPECT_EQ(job.copy.streamed, 0u);
  EXPECT_EQ(job.copy.fallbacks, 0u);

  for (const auto& s : small_objects) {
    const std::string key = s.key.substr(std::strlen("prefix/"));
    EXPECT_EQ(copied_lines(key), 1u) << key << "\n" << tail(server_.read_log());
  }
  auto copies = copy_requests();
  EXPECT_EQ(copies.size(), small_objects.size());
  for (const auto& c : copies) {
    EXPECT_EQ(c.method, "PUT");
    EXPECT_EQ(c.target.rfind("/bucket-b/copied/", 0), 0u) << c.target;
    EXPECT_EQ(c.target.find("uploadId"), std::string::npos) << c.target;  // CopyObject, not UploadPartCopy
    EXPECT_EQ(c.status, 200u) << c.target;
  }
  EXPECT_EQ(source_object_gets(), 0u) << "ferryd read objects it should have copied server-side";
  expect_identical();
}

TEST_F(ServerSideCopyE2E, AnObjectAboveTheMultipartThresholdFallsBackToStreaming) {
  // 10 MiB > multipart_threshold: UploadPartCopy, which s3rver refuses with 501 NotImplemented.
  upload(server_, "bucket-a", {{"prefix/small.txt", 100}, {"prefix/large.bin", 10 * MiB}});
  ASSERT_EQ(server_.rclone({"mkdir", "s3rver:bucket-b"}).exit_code, 0);
  ferryd d = start_ferryd("[transfer]\nmultipart_threshold = \"8MiB\"\n");
  auto r = d.ctl({"--json", "copy", "s:bucket-a/prefix", "s:bucket-b/copied", "--wait"}, ctl_timeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << tail(d.read_log());
  auto job = parse_job_line(r);
  EXPECT_EQ(job.objects.done, 2u);
  EXPECT_EQ(job.copy.server_side, 1u);
  EXPECT_EQ(job.copy.fallbacks, 1u);
  EXPECT_EQ(job.copy.streamed, 1u);  // fallbacks count as streamed too

  EXPECT_EQ(copied_lines("small.txt"), 1u) << tail(server_.read_log());
  bool refused_part_copy = false;
  for (const auto& c : copy_requests()) {
    if (c.target.find("copied/large.bin") != std::string::npos && c.target.find("uploadId=") != std::string::npos) {
      EXPECT_EQ(c.status, 501u) << c.target;
      refused_part_copy = true;
    }
  }
  EXPECT_TRUE(refused_part_copy) << "no UploadPartCopy of large.bin was tried";
  EXPECT_GE(source_object_gets(), 1u);  // the fallback streamed it
  EXPECT_EQ(count(d.read_log(), "falling back to streaming"), 1u) << tail(d.read_log());
  EXPECT_EQ(open_uploads(), 0u) << "the refused multipart upload was left open";
  expect_identical();
}

TEST_F(ServerSideCopyE2E, TheFallbackIsLoggedOncePerJobAndCountedPerObject) {
  upload(server_, "bucket-a",
         {{"prefix/small.txt", 100}, {"prefix/large-1.bin", 10 * MiB}, {"prefix/large-2.bin", 10 * MiB + 7}});
  ASSERT_EQ(server_.rclone({"mkdir", "s3rver:bucket-b"}).exit_code, 0);
  ferryd d = start_ferryd("[transfer]\nmultipart_threshold = \"8MiB\"\n", "info");
  auto r = d.ctl({"--json", "copy", "s:bucket-a/prefix", "s:bucket-b/copied", "--wait"}, ctl_timeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << tail(d.read_log());
  auto job = parse_job_line(r);
  EXPECT_EQ(job.objects.done, 3u);
  EXPECT_EQ(job.copy.server_side, 1u);
  EXPECT_EQ(job.copy.fallbacks, 2u);
  EXPECT_EQ(job.copy.streamed, 2u);
  EXPECT_EQ(count(d.read_log(), "falling back to streaming"), 1u) << tail(d.read_log());
  EXPECT_EQ(open_uploads(), 0u);
  expect_identical();
}

TEST_F(ServerSideCopyE2E, CopyModeStreamNeverAsksTheServerToCopy) {
  upload(server_, "bucket-a", {{"prefix/small.txt", 100}, {"prefix/two.bin", 5000}, {"prefix/large.bin", 10 * MiB}});
  ASSERT_EQ(server_.rclone({"mkdir", "s3rver:bucket-b"}).exit_code, 0);
  ferryd d = start_ferryd("[transfer]\nmultipart_threshold = \"8MiB\"\n");
  auto r = d.ctl({"--json", "copy", "s:bucket-a/prefix", "s:bucket-b/copied", "--wait", "--copy-mode", "stream"},
                 ctl_timeout);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << tail(d.read_log());
  auto job = parse_job_line(r);
  EXPECT_EQ(job.copy_mode, "stream");
  EXPECT_EQ(job.objects.done, 3u);
  EXPECT_EQ(job.copy.server_side, 0u);
  EXPECT_EQ(job.copy.fallbacks, 0u);
  EXPECT_EQ(job.copy.streamed, 3u);
  EXPECT_TRUE(copy_requests().empty());
  EXPECT_EQ(count(server_.read_log(), "Copied object"), 0u);
  EXPECT_GE(source_object_gets(), 3u);
  EXPECT_EQ(count(d.read_log(), "falling back to streaming"), 0u);
  expect_identical();
}

TEST_F(ServerSideCopyE2E, CopyModeServerFailsTheObjectTheServerRefuses) {
  upload(server_, "bucket-a", {{"prefix/small.txt", 100}, {"prefix/large.bin", 10 * MiB}});
  ASSERT_EQ(server_.rclone({"mkdir", "s3rver:bucket-b"}).exit_code, 0);
  ferryd d = start_ferryd("[transfer]\nmultipart_threshold = \"8MiB\"\n");
  auto r = d.ctl({"--json", "copy", "s:bucket-a/prefix", "s:bucket-b/copied", "--wait", "--copy-mode", "server"},
                 ctl_timeout);
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err << tail(d.read_log());
  auto job = parse_job_line(r);
  EXPECT_EQ(job.state, proto::job_state::failed);
  EXPECT_EQ(job.objects.done, 1u);
  EXPECT_EQ(job.objects.failed, 1u);
  ASSERT_EQ(job.failures.size(), 1u) << r.out;
  EXPECT_NE(job.failures[0].key.find("large.bin"), std::string::npos) << job.failures[0].key;
  EXPECT_NE(job.failures[0].error.find("NotImplemented"), std::string::npos) << job.failures[0].error;
  EXPECT_NE(r.err.find("NotImplemented"), std::string::npos) << r.err;
  EXPECT_EQ(source_object_gets(), 0u) << "--copy-mode server streamed an object";
  EXPECT_EQ(copied_lines("small.txt"), 1u);
  auto ls = server_.rclone({"lsf", "-R", "--files-only", "s3rver:bucket-b"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out, "copied/small.txt\n");
  EXPECT_EQ(open_uploads(), 0u);
}

// ---------------------------------------------------------------------------------------------------------
// 3. Corruption in flight: the source is read through a proxy that flips one bit of the victim's body.

class CorruptionE2E : public ::testing::Test {
 protected:
  // victim.bin and fine.bin, single-part (their ETags are MD5s), in src:source/data.
  void SetUp() override {
    expected_ = upload(src_, "source/data", {{"victim.bin", MiB}, {"fine.bin", 100'000}});
    ASSERT_EQ(dst_.rclone({"mkdir", "s3rver:target"}).exit_code, 0);
    auto listed = src_.rclone({"md5sum", "s3rver:source/data"});  // without --download: the ETags
    ASSERT_EQ(parse_md5sum(listed.out), md5s_of(expected_)) << "the source ETags should be plain MD5s";
  }

  static run_result copy(const ferryd& d) {
    return d.ctl({"--json", "copy", "src:source/data", "dst:target/data", "--wait"}, ctl_timeout);
  }

  std::string remotes(const fault_proxy& proxy) const {
    return proxied_remote_section("src", proxy, src_) + remote_section("dst", dst_);
  }

  // Everything at the destination, downloaded and hashed: each object there must have the right bytes.
  void expect_destination_holds_only_right_bytes() const {
    auto there = dst_.rclone({"md5sum", "--download", "s3rver:target/data"});
    ASSERT_EQ(there.exit_code, 0) << there.err;
    for (const auto& [key, hash] : parse_md5sum(there.out)) {
      ASSERT_EQ(expected_.count(key), 1u) << "unexpected object " << key;
      EXPECT_EQ(hash, expected_.at(key).md5) << key << " is at the destination with wrong bytes";
    }
  }

  s3rver src_, dst_;
  object_map expected_;
};

TEST_F(CorruptionE2E, AnObjectCorruptedOnEveryReadFailsAndNeverArrivesWrong) {
  fault_proxy proxy(relay_to(src_, "victim"));
  ferryd d(remotes(proxy), "debug", "[transfer]\nobject_attempts = 3\n");
  auto r = copy(d);
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err << tail(d.read_log());
  auto job = parse_job_line(r);
  EXPECT_EQ(job.state, proto::job_state::failed);
  EXPECT_EQ(job.objects.done, 1u);  // fine.bin only
  EXPECT_EQ(job.objects.failed, 1u);
  ASSERT_EQ(job.failures.size(), 1u) << r.out;
  EXPECT_NE(job.failures[0].key.find("victim.bin"), std::string::npos) << job.failures[0].key;
  const std::string error = lower(job.failures[0].error);
  EXPECT_TRUE(error.find("mismatch") != std::string::npos || error.find("baddigest") != std::string::npos)
      << job.failures[0].error;
  EXPECT_GE(proxy.fired(0), 3u) << "the object was not retried object_attempts times";
  expect_destination_holds_only_right_bytes();
  auto fine = dst_.rclone({"md5sum", "--download", "s3rver:target/data/fine.bin"});
  EXPECT_EQ(parse_md5sum(fine.out)["fine.bin"], expected_.at("fine.bin").md5) << fine.out << fine.err;
}

TEST_F(CorruptionE2E, AnObjectCorruptedOnceIsRetriedAndArrivesIntact) {
  fault_proxy proxy(relay_to(src_, "victim", 1));
  ferryd d(remotes(proxy), "debug", "[transfer]\nobject_attempts = 3\n");
  auto r = copy(d);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << tail(d.read_log());
  auto job = parse_job_line(r);
  EXPECT_EQ(job.state, proto::job_state::succeeded);
  EXPECT_EQ(job.objects.done, 2u);
  EXPECT_EQ(proxy.fired(0), 1u);
  auto there = dst_.rclone({"md5sum", "--download", "s3rver:target/data"});
  ASSERT_EQ(there.exit_code, 0) << there.err;
  EXPECT_EQ(parse_md5sum(there.out), md5s_of(expected_));
}

// ---------------------------------------------------------------------------------------------------------
// The proxy itself, with rclone as the client: these hold whatever state the engine is in.

TEST(FaultProxyRelay, RelaysEveryKindOfRequestUnchangedAndRecordsIt) {
  s3rver server;
  fault_proxy proxy(relay_to(server));
  rclone_runner rc({rclone_remote{.name = "p", .endpoint = proxy.endpoint()}});
  temp_dir local;
  // 12 MiB goes up in three parts with "Expect: 100-continue" (an interim response); the empty file has
  // no body at all.
  auto expected = generate(local.path(), {{"empty", 0}, {"small.txt", 1234}, {"big.bin", 12 * MiB}});
  ASSERT_EQ(rc({"mkdir", "p:bucket"}).exit_code, 0);
  auto up = rc({"copy", local.path().string(), "p:bucket/dir", "--s3-upload-cutoff", "5Mi"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(downloaded_md5s(rc, "p:bucket/dir"), md5s_of(expected));
  auto ls = rc({"lsf", "p:bucket/dir"});
  EXPECT_EQ(ls.out, "big.bin\nempty\nsmall.txt\n");
  auto requests = proxy.requests();
  EXPECT_TRUE(std::none_of(requests.begin(), requests.end(), corrupted));
  auto seen = [&](std::string_view method, std::string_view target_part, unsigned status) {
    return std::any_of(requests.begin(), requests.end(), [&](const request_record& r) {
      return r.method == method && r.target.find(target_part) != std::string::npos && r.status == status;
    });
  };
  EXPECT_TRUE(seen("PUT", "/bucket/dir/small.txt", 200));
  EXPECT_TRUE(seen("PUT", "partNumber=3", 200));
  EXPECT_TRUE(seen("GET", "/bucket/dir/big.bin", 200));
  EXPECT_TRUE(seen("GET", "prefix=dir", 200));  // a listing
  for (const auto& r : requests) EXPECT_NE(r.status, 0u) << r.method << " " << r.target << " got no response";
}

TEST(FaultProxyRelay, FlipsOneBitInTheChosenBodiesOnly) {
  s3rver server;
  auto expected = upload(server, "bucket", {{"victim.bin", 200'000}, {"other.bin", 200'000}});
  fault_proxy proxy(relay_to(server, "victim", 1));
  rclone_runner rc({rclone_remote{.name = "p", .endpoint = proxy.endpoint()}});
  temp_dir local;
  auto original = local / "victim.bin";
  generate_file(original, "victim.bin", 200'000);
  std::ifstream in(original, std::ios::binary);
  const std::string want((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  auto first = rc({"cat", "p:bucket/victim.bin"});  // rclone cat does not verify: the bytes as relayed
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(first.out.size(), want.size());
  std::vector<std::size_t> differing;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (first.out[i] != want[i]) differing.push_back(i);
  }
  ASSERT_EQ(differing, std::vector<std::size_t>{100});
  EXPECT_EQ(first.out[100] ^ want[100], 1);
  EXPECT_EQ(proxy.fired(0), 1u);

  auto second = rc({"cat", "p:bucket/victim.bin"});  // the budget of one is spent
  EXPECT_EQ(second.out, want);
  auto other = rc({"md5sum", "--download", "p:bucket/other.bin"});
  EXPECT_EQ(parse_md5sum(other.out)["other.bin"], expected.at("other.bin").md5);
  EXPECT_EQ(proxy.fired(0), 1u);
  auto requests = proxy.requests();
  EXPECT_EQ(std::count_if(requests.begin(), requests.end(), corrupted), 1);
}

}  // namespace
}  // namespace ferry::test
