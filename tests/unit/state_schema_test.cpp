// lib/state's schema without a database: every value encoding round-trips (defaults, extremes,
// odd bytes), unknown fields are skipped, damaged or unknown-version values are errors and never
// crashes, and keys sort and separate as schema.hpp says.
#include "state/schema.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace ferry::state {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

time_point at(std::int64_t ns) { return time_point(std::chrono::nanoseconds(ns)); }

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

job_record full_job() {
  job_record j;
  j.id = "j-000042";
  j.name = "nightly \xe6\x97\xa5\xe6\x9c\xac";
  j.kind = "mirror";
  j.state = "running";
  j.source = "src:bucket/pre fix/";
  j.destination = "/var/tmp/dest";
  j.mode = transfer::copy_mode::stream;
  j.created_at = at(1'700'000'000'123'456'789);
  j.started_at = at(-5);  // before the epoch: times are signed
  j.finished_at = std::nullopt;
  j.objects_total = UINT64_MAX;
  j.objects_done = 1;
  j.objects_failed = 2;
  j.objects_skipped = 3;
  j.bytes_total = 1ull << 63;
  j.bytes_done = 127;
  j.server_side = 128;
  j.streamed = 16383;
  j.fallbacks = 16384;
  j.error = all_bytes();
  return j;
}

object_state full_object() {
  object_state s;
  s.phase = object_phase::parts_done;
  s.size = 5ull << 30;
  s.source_etag = "0123456789abcdef0123456789abcdef-12";
  s.source_mtime = at(1);
  s.upload_id = "upload\0id"s;
  s.part_size = 8 << 20;
  s.destination_etag = "";
  s.attempts = UINT32_MAX;
  s.error = "line1\nline2";
  s.updated_at = at(INT64_MAX);
  return s;
}

transfer::integrity_record full_integrity() {
  transfer::integrity_record r;
  r.key = "dir/\xd1\x84\xd0\xb0\xd0\xb9\xd0\xbb\0tail"s;
  r.size = 12345;
  r.md5 = "d41d8cd98f00b204e9800998ecf8427e";
  r.crc32c = 0xdeadbeef;
  r.sha256 = std::string(64, 'a');
  r.source_etag = "s";
  r.destination_etag = "d";
  r.method = "multipart-etag";
  r.result = transfer::verdict::mismatch;
  r.error = "etag differs";
  r.time = at(INT64_MIN);
  return r;
}

void expect_same(const transfer::integrity_record& a, const transfer::integrity_record& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.md5, b.md5);
  EXPECT_EQ(a.crc32c, b.crc32c);
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(a.source_etag, b.source_etag);
  EXPECT_EQ(a.destination_etag, b.destination_etag);
  EXPECT_EQ(a.method, b.method);
  EXPECT_EQ(a.result, b.result);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.time, b.time);
}

TEST(StateSchema, JobRecordRoundTripsWithExtremesAndOddBytes) {
  auto j = full_job();
  auto back = schema::decode_job(schema::encode(j));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, j);

  job_record empty;
  auto back2 = schema::decode_job(schema::encode(empty));
  ASSERT_TRUE(back2);
  EXPECT_EQ(*back2, empty);
  EXPECT_FALSE(back2->started_at);
}

TEST(StateSchema, EveryCopyModeAndVerdictRoundTrips) {
  for (auto m : {transfer::copy_mode::automatic, transfer::copy_mode::server, transfer::copy_mode::stream}) {
    job_record j;
    j.mode = m;
    EXPECT_EQ(schema::decode_job(schema::encode(j))->mode, m);
  }
  for (auto v : {transfer::verdict::verified, transfer::verdict::mismatch, transfer::verdict::failed}) {
    transfer::integrity_record r;
    r.result = v;
    EXPECT_EQ(schema::decode_integrity(schema::encode(r))->result, v);
  }
}

TEST(StateSchema, ObjectStateRoundTripsInEveryPhase) {
  auto s = full_object();
  for (auto p : {object_phase::pending, object_phase::in_flight, object_phase::parts_done, object_phase::completed,
                 object_phase::verified, object_phase::failed}) {
    s.phase = p;
    auto back = schema::decode_object_state(schema::encode(s));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, s);
    EXPECT_EQ(parse_object_phase(to_string(p)), p);
  }
  EXPECT_FALSE(parse_object_phase("done"));
}

TEST(StateSchema, PartUploadIntegrityAndScalarsRoundTrip) {
  part_record p{10000, 5ull << 30, "\"etag\"", "d41d8cd98f00b204e9800998ecf8427e", 0xffffffff};
  EXPECT_EQ(*schema::decode_part(schema::encode(p)), p);

  upload_record u{"j-000001", "a\0b"s, "https://s3.example:9000", "bucket", "prefix/" + all_bytes(), "up-1", at(123)};
  EXPECT_EQ(*schema::decode_upload(schema::encode(u)), u);

  auto r = full_integrity();
  auto back = schema::decode_integrity(schema::encode(r));
  ASSERT_TRUE(back) << back.error().message;
  expect_same(*back, r);

  for (std::uint64_t n : {0ull, 1ull, 127ull, 128ull, 300ull, 1ull << 35, ~0ull})
    EXPECT_EQ(*schema::decode_number(schema::encode_number(n)), n);
  EXPECT_EQ(*schema::decode_text(schema::encode_text(all_bytes())), all_bytes());
  EXPECT_EQ(*schema::decode_text(schema::encode_text("")), "");
}

TEST(StateSchema, UnknownFieldsAreSkippedAndTheLastRepeatWins) {
  auto bytes = schema::encode(full_object());
  // Tag 99 (varint 0x63), 3 bytes: what a later ferryd might add.
  bytes += "\x63\x03xyz"s;
  // Tag 8 (attempts) again, one-byte varint 7: the last wins.
  bytes += "\x08\x01\x07"s;
  auto back = schema::decode_object_state(bytes);
  ASSERT_TRUE(back) << back.error().message;
  auto expected = full_object();
  expected.attempts = 7;
  EXPECT_EQ(*back, expected);
}

TEST(StateSchema, WrongVersionEmptyAndTruncatedValuesAreErrors) {
  auto bytes = schema::encode(full_job());
  auto v2 = bytes;
  v2[0] = 2;
  auto r = schema::decode_job(v2);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, error_kind::bad_value);
  EXPECT_NE(r.error().message.find("version 2"), std::string::npos) << r.error().message;

  v2[0] = 0;
  EXPECT_FALSE(schema::decode_job(v2));
  EXPECT_FALSE(schema::decode_job(""));
  EXPECT_FALSE(schema::decode_number(""));
  // A value whose number field is absent is not a number.
  EXPECT_FALSE(schema::decode_number(schema::encode_text("x").substr(0, 1)));

  // The last field cut anywhere inside: an error, never a partial record.
  auto last_field_start = bytes.size() - 3 - full_job().error.size();  // tag 20, length 0x80 0x02, 256 bytes
  for (std::size_t cut = last_field_start + 1; cut < bytes.size(); ++cut) {
    auto t = schema::decode_job(bytes.substr(0, cut));
    EXPECT_FALSE(t) << "cut at " << cut;
  }
}

TEST(StateSchema, MalformedNumbersAndEnumsOutOfRangeAreErrors) {
  std::string v(1, static_cast<char>(schema::value_version));
  // phase 6 does not exist.
  EXPECT_FALSE(schema::decode_object_state(v + "\x01\x01\x06"s));
  // mode 3 does not exist.
  EXPECT_FALSE(schema::decode_job(v + "\x07\x01\x03"s));
  // verdict 3 does not exist.
  EXPECT_FALSE(schema::decode_integrity(v + "\x09\x01\x03"s));
  // attempts larger than 32 bits.
  EXPECT_FALSE(schema::decode_object_state(v + "\x08\x05\xff\xff\xff\xff\x10"s));
  // A number field with bytes after its varint.
  EXPECT_FALSE(schema::decode_number(v + "\x01\x02\x05\x05"s));
  // A varint with no end, and one of 11 bytes.
  EXPECT_FALSE(schema::decode_number(v + "\x01\x02\x80\x80"s));
  EXPECT_FALSE(schema::decode_number(v + "\x01\x0b" + std::string(10, '\x80') + "\x01"));
  // 10 bytes whose last carries more than 64 bits.
  EXPECT_FALSE(schema::decode_number(v + "\x01\x0a" + std::string(9, '\xff') + "\x02"));
  EXPECT_EQ(*schema::decode_number(v + "\x01\x0a" + std::string(9, '\xff') + "\x01"), ~0ull);
  // Tag 0 is invalid; a length past the end is truncation.
  EXPECT_FALSE(schema::decode_text(v + "\x00\x00"s));
  EXPECT_FALSE(schema::decode_text(v + "\x01\x05" + "abc"));
}

TEST(StateSchema, RandomDamageNeverCrashes) {
  std::mt19937 rng(12345);
  const std::vector<std::string> values{schema::encode(full_job()), schema::encode(full_object()),
                                        schema::encode(full_integrity()),
                                        schema::encode(part_record{1, 2, "e", "m", 3})};
  int decoded = 0, rejected = 0;
  for (int i = 0; i < 4000; ++i) {
    auto v = values[i % values.size()];
    auto flips = 1 + rng() % 4;
    for (unsigned f = 0; f < flips; ++f) v[rng() % v.size()] = static_cast<char>(rng());
    if (rng() % 3 == 0) v.resize(rng() % (v.size() + 1));
    auto a = schema::decode_job(v);
    auto b = schema::decode_object_state(v);
    auto c = schema::decode_integrity(v);
    auto d = schema::decode_part(v);
    auto e = schema::decode_upload(v);
    for (bool ok : {a.has_value(), b.has_value(), c.has_value(), d.has_value(), e.has_value()})
      ok ? ++decoded : ++rejected;
  }
  // Both outcomes happen: the damage is real, and tolerated fields still decode.
  EXPECT_GT(decoded, 0);
  EXPECT_GT(rejected, 0);
}

TEST(StateSchema, ArgumentChecks) {
  EXPECT_TRUE(schema::check_job_id("j-000001"));
  EXPECT_EQ(schema::check_job_id("").error().kind, error_kind::invalid_argument);
  EXPECT_FALSE(schema::check_job_id("j\0x"s));
  EXPECT_FALSE(schema::check_job_id(std::string(schema::max_job_id + 1, 'j')));
  EXPECT_TRUE(schema::check_object_key("a\0b"s));
  EXPECT_TRUE(schema::check_object_key(std::string(schema::max_object_key, 'k')));
  EXPECT_FALSE(schema::check_object_key(std::string(schema::max_object_key + 1, 'k')));
  EXPECT_FALSE(schema::check_object_key(""));
  EXPECT_FALSE(schema::check_name("cursor name", ""));
}

TEST(StateSchema, ObjectKeysSortInKeyByteOrderWithinTheirJob) {
  std::vector<std::string> keys{"a", "a/b", "a-b", "a.b", "a\0"s, "\xff", "\x01", "A", "\xe6\x97\xa5"};
  auto sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> encoded;
  for (const auto& k : keys) encoded.push_back(schema::object_key("j-1", k));
  std::sort(encoded.begin(), encoded.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    auto k = schema::object_key_suffix("j-1", encoded[i]);
    ASSERT_TRUE(k);
    EXPECT_EQ(*k, sorted[i]);
  }
  // Job j-1's keys are not under job j-10's prefix, nor the reverse.
  EXPECT_NE(schema::object_key("j-10", "x").rfind(schema::job_prefix("j-1"), 0), 0u);
  EXPECT_NE(schema::object_key("j-1", "0x").rfind(schema::job_prefix("j-10"), 0), 0u);
  EXPECT_FALSE(schema::object_key_suffix("j-1", schema::object_key("j-10", "x")));
}

TEST(StateSchema, PartKeysSortByNumberAndSeparateOddKeys) {
  EXPECT_LT(schema::part_key("j", "k", "u", 2), schema::part_key("j", "k", "u", 10));
  EXPECT_LT(schema::part_key("j", "k", "u", 255), schema::part_key("j", "k", "u", 256));
  EXPECT_LT(schema::part_key("j", "k", "u", 9999), schema::part_key("j", "k", "u", 10000));
  // Length prefixes: no choice of bytes makes one (key, upload) pair look like another.
  EXPECT_NE(schema::part_upload_prefix("j", "a", "\0b"s), schema::part_upload_prefix("j", "a\0"s, "b"));
  auto a = schema::part_object_prefix("j", "a");
  auto ab = schema::part_key("j", "ab", "u", 1);
  EXPECT_NE(ab.rfind(a, 0), 0u) << "parts of \"ab\" must not fall under the prefix of \"a\"";
  EXPECT_EQ(schema::part_key("j", "a", "u", 1).rfind(a, 0), 0u);
}

TEST(StateSchema, IntegrityLogKeysSortBySequence) {
  std::vector<std::uint64_t> seqs{1, 2, 255, 256, 65536, 1ull << 40, ~0ull};
  for (std::size_t i = 0; i + 1 < seqs.size(); ++i)
    EXPECT_LT(schema::integrity_log_key("j", seqs[i]), schema::integrity_log_key("j", seqs[i + 1]));
  for (auto s : seqs) EXPECT_EQ(*schema::integrity_log_seq("j", schema::integrity_log_key("j", s)), s);
  EXPECT_FALSE(schema::integrity_log_seq("j", "j\0short"s));
  EXPECT_FALSE(schema::integrity_log_seq("k", schema::integrity_log_key("j", 1)));
}

TEST(StateSchema, UploadKeysAreDistinctForEveryField) {
  upload_record base{"j", "o", "e", "b", "k", "u", {}};
  auto k = schema::upload_key(base);
  for (auto change :
       {&upload_record::endpoint, &upload_record::bucket, &upload_record::key, &upload_record::upload_id}) {
    auto u = base;
    u.*change += "x";
    EXPECT_NE(schema::upload_key(u), k);
  }
  // Moving a byte from one field to the next changes the key.
  auto u = base;
  u.bucket = "bk";
  u.key = "";
  auto v = base;
  v.bucket = "b";
  v.key = "k";
  EXPECT_NE(schema::upload_key(u), schema::upload_key(v));
  EXPECT_EQ(k.rfind(schema::job_prefix("j"), 0), 0u);
}

}  // namespace
}  // namespace ferry::state
