#pragma once
// The on-disk schema of ferryd's state (a RocksDB database in state_dir): every column family,
// every key layout and every value encoding is defined here and nowhere else.
//
// Column families
//   default        meta: "schema_version" -> counter{1}; "next_job_id" -> counter{next number}
//   jobs           JOB                                      -> job_record
//   objects        JOB \0 KEY                               -> object_state
//   parts          JOB \0 lp(KEY) lp(UPLOAD_ID) be32(PART)  -> part_record
//   integrity      JOB \0 KEY                               -> integrity_ref{seq of the latest verdict}
//   integrity_log  JOB \0 be64(SEQ)                         -> integrity_record (every verdict, in order)
//   cursors        JOB \0 NAME                              -> cursor{value}
//   uploads        JOB \0 lp(ENDPOINT) lp(BUCKET) lp(KEY) UPLOAD_ID -> upload_record
//
// Keys
//   JOB is a job id: 1..max_job_id bytes, no NUL, so "JOB \0" ends the job's part of every key
//   and a prefix scan of "JOB \0" sees that job only. What follows may hold any bytes (NUL too):
//   where one variable field ends a key it is taken as the rest (so objects sort by KEY in byte
//   order, S3's listing order); where several follow, each is lp(X) = be32(size of X) X.
//   Numbers in keys are big-endian so they sort numerically (parts by number, verdicts by SEQ).
//   Deleting a job removes every key under "JOB \0" in all CFs but uploads: an upload outlives
//   its job until it is completed or aborted (state_db::untracked_uploads finds it).
//
// Values: one version byte (value_version), then fields, each varint(TAG) varint(LENGTH) BYTES.
//   Integers (and enums, bools) are a varint filling the field's bytes; strings are raw bytes;
//   times are the int64 nanoseconds since the Unix epoch, two's complement, as a varint. A
//   missing field has its default; an unknown tag is skipped, so fields can be added without a
//   new version; a repeated tag: the last wins. Tags are never reused. A different version
//   byte, a truncated field, a malformed number or an enum value out of range is a bad_value
//   error, never a crash.
//   job_record      1 id, 2 name, 3 kind, 4 state, 5 source, 6 destination, 7 mode (0 auto,
//                   1 server, 2 stream), 8 created_at, 9 started_at, 10 finished_at,
//                   11 objects_total, 12 objects_done, 13 objects_failed, 14 objects_skipped,
//                   15 bytes_total, 16 bytes_done, 17 server_side, 18 streamed, 19 fallbacks,
//                   20 error, 21 priority, 22 options (lib/sync's JSON text), 23 deleted,
//                   24 passes, 25 last_pass_at, 26..31 the last pass's plan (copy, delete,
//                   unchanged: objects then bytes), 32 delete_refused
//   object_state    1 phase (object_phase's number), 2 size, 3 source_etag, 4 source_mtime,
//                   5 upload_id, 6 part_size, 7 destination_etag, 8 attempts, 9 error, 10 updated_at
//   part_record     1 number, 2 size, 3 etag, 4 md5, 5 crc32c
//   upload_record   1 job, 2 endpoint, 3 bucket, 4 key, 5 upload_id, 6 created_at, 7 object
//   integrity_record 1 key, 2 size, 3 md5, 4 crc32c, 5 sha256, 6 source_etag, 7 destination_etag,
//                   8 method, 9 result (0 verified, 1 mismatch, 2 failed), 10 error, 11 time
//   integrity_ref, cursor, counter   1 the value (seq, string, number)
#include "state/records.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::state::schema {

// The database's layout; a database with a larger number is refused (written by a newer ferryd).
inline constexpr std::uint64_t schema_version = 1;
// The first byte of every value.
inline constexpr std::uint8_t value_version = 1;

inline constexpr std::string_view cf_meta = "default";
inline constexpr std::string_view cf_jobs = "jobs";
inline constexpr std::string_view cf_objects = "objects";
inline constexpr std::string_view cf_parts = "parts";
inline constexpr std::string_view cf_integrity = "integrity";
inline constexpr std::string_view cf_integrity_log = "integrity_log";
inline constexpr std::string_view cf_cursors = "cursors";
inline constexpr std::string_view cf_uploads = "uploads";
// In the order state_db opens them (index = its handle's index).
inline constexpr std::array<std::string_view, 8> column_families{
    cf_meta, cf_jobs, cf_objects, cf_parts, cf_integrity, cf_integrity_log, cf_cursors, cf_uploads};

inline constexpr std::string_view meta_schema_version = "schema_version";
inline constexpr std::string_view meta_next_job_id = "next_job_id";

// Limits on what callers may store (S3 keys are at most 1024 bytes; local paths up to PATH_MAX).
inline constexpr std::size_t max_job_id = 64;
inline constexpr std::size_t max_object_key = 16 * 1024;
inline constexpr std::size_t max_name = 1024;  // cursor names, upload ids, endpoint, bucket

// invalid_argument unless the value fits the rules above.
result<void> check_job_id(std::string_view job);
result<void> check_object_key(std::string_view key);
result<void> check_name(std::string_view what, std::string_view name);

// Keys (see the table above). Callers check their arguments first.
std::string job_key(std::string_view job);
std::string job_prefix(std::string_view job);  // JOB \0: every key of the job in a per-job CF
std::string object_key(std::string_view job, std::string_view key);
std::string part_object_prefix(std::string_view job, std::string_view key);
std::string part_upload_prefix(std::string_view job, std::string_view key, std::string_view upload_id);
std::string part_key(std::string_view job, std::string_view key, std::string_view upload_id, std::uint32_t number);
std::string integrity_key(std::string_view job, std::string_view key);
std::string integrity_log_key(std::string_view job, std::uint64_t seq);
std::string cursor_key(std::string_view job, std::string_view name);
std::string upload_key(const upload_record& u);

// The parts of keys a scan needs back: KEY of an objects key, SEQ of an integrity_log key.
result<std::string_view> object_key_suffix(std::string_view job, std::string_view stored_key);
result<std::uint64_t> integrity_log_seq(std::string_view job, std::string_view stored_key);

// Values.
std::string encode(const job_record& v);
std::string encode(const object_state& v);
std::string encode(const part_record& v);
std::string encode(const upload_record& v);
std::string encode(const transfer::integrity_record& v);
std::string encode_number(std::uint64_t v);   // counter, integrity_ref
std::string encode_text(std::string_view v);  // cursor

result<job_record> decode_job(std::string_view bytes);
result<object_state> decode_object_state(std::string_view bytes);
result<part_record> decode_part(std::string_view bytes);
result<upload_record> decode_upload(std::string_view bytes);
result<transfer::integrity_record> decode_integrity(std::string_view bytes);
result<std::uint64_t> decode_number(std::string_view bytes);
result<std::string> decode_text(std::string_view bytes);

}  // namespace ferry::state::schema
