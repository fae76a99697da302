// synthetic-s3: a fast S3 endpoint for loopback benchmarks. See README.md beside this file.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "generator.hpp"
#include "server.hpp"
#include "spec.hpp"
#include "store.hpp"
#include "util/hash.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

namespace {

using namespace ferry::synthetic;
using steady = std::chrono::steady_clock;

// Runs fn(i) for i in [0, n) on `threads` threads.
template <class F>
void parallel(unsigned threads, std::uint64_t n, F&& fn) {
  std::atomic<std::uint64_t> next{0};
  auto loop = [&] {
    for (std::uint64_t i; (i = next.fetch_add(1)) < n;) fn(i);
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(loop);
  loop();
  for (auto& t : pool) t.join();
}

double mib_per_s(std::uint64_t bytes, steady::duration d) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0) / std::chrono::duration<double>(d).count();
}

// The generator's and MD5's speed on this machine: what decides how fast listings (MD5 ETags) and
// GETs can be served.
int self_benchmark(unsigned threads) {
  constexpr std::uint64_t total = 1ull << 30;
  constexpr std::size_t chunk = 256 * 1024;
  std::vector<char> buf(chunk);
  auto t0 = steady::now();
  for (std::uint64_t off = 0; off < total; off += chunk) fill(42, off, buf);
  const double gen = mib_per_s(total, steady::now() - t0);
  std::uint64_t sink = 0;
  for (const char c : buf) sink += static_cast<unsigned char>(c);

  t0 = steady::now();
  ferry::util::md5_hasher h;
  for (std::uint64_t off = 0; off < total; off += chunk) h.update(std::string_view(buf.data(), buf.size()));
  sink += h.finish()[0];
  const double md5 = mib_per_s(total, steady::now() - t0);

  t0 = steady::now();
  sink += md5_of(7, 0, total)[0];
  const double both = mib_per_s(total, steady::now() - t0);

  t0 = steady::now();
  const std::uint64_t per = 256ull << 20;
  parallel(threads, threads * 4, [&](std::uint64_t i) { (void)md5_of(i, 0, per); });
  const double both_mt = mib_per_s(per * threads * 4, steady::now() - t0);

  std::printf("generator:          %8.0f MiB/s (1 thread)\n", gen);
  std::printf("md5:                %8.0f MiB/s (1 thread)\n", md5);
  std::printf("generator+md5:      %8.0f MiB/s (1 thread)\n", both);
  std::printf("generator+md5:      %8.0f MiB/s (%u threads)\n", both_mt, threads);
  std::printf("(checksum %llu)\n", static_cast<unsigned long long>(sink & 0xff));
  return 0;
}

int print_manifest(const std::string& text, unsigned threads, etag_mode mode, std::uint64_t md5_max) {
  auto spec = parse_bucket_spec(text);
  if (!spec) {
    std::fprintf(stderr, "synthetic-s3: --print-manifest: %s\n", spec.error().c_str());
    return 2;
  }
  if (spec->writable) {
    std::fprintf(stderr, "synthetic-s3: --print-manifest takes a synthetic bucket spec\n");
    return 2;
  }
  synthetic_bucket b(*spec, mode, md5_max);
  const std::uint64_t n = b.count();
  // In blocks, so memory stays bounded for big buckets while all threads hash.
  constexpr std::uint64_t block = 65536;
  std::vector<ferry::util::md5_digest> md5s;
  std::string out;
  for (std::uint64_t start = 0; start < n; start += block) {
    const std::uint64_t end = std::min(n, start + block);
    md5s.assign(end - start, {});
    parallel(threads, end - start, [&](std::uint64_t i) { md5s[i] = b.compute_md5(start + i); });
    out.clear();
    for (std::uint64_t i = start; i < end; ++i) {
      const std::string m = hex(md5s[i - start]);
      out += b.key(i) + "\t" + std::to_string(b.size(i)) + "\t" + m + "\t" + b.etag(i).value_or(m) + "\n";
    }
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) return 1;
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

// Hashes every object whose ETag is an MD5, so listings and GETs never wait for it.
void warm(store& st, unsigned threads) {
  for (const auto& b : st.synthetic_buckets()) {
    const auto t0 = steady::now();
    std::atomic<std::uint64_t> bytes{0};
    parallel(threads, b->count(), [&](std::uint64_t i) {
      if (!b->etag_is_md5(i)) return;
      b->compute_md5(i);
      bytes.fetch_add(b->size(i), std::memory_order_relaxed);
    });
    spdlog::info("warm: {} hashed {} in {:.2f}s ({:.0f} MiB/s)", b->spec().name, ferry::util::format_bytes(bytes),
                 std::chrono::duration<double>(steady::now() - t0).count(), mib_per_s(bytes, steady::now() - t0));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"synthetic-s3: a fast S3 endpoint with generated buckets, for loopback benchmarks"};
  server_config cfg;
  std::vector<std::string> bucket_specs, writable, bucket_files;
  std::string etag_text = "auto", md5_max_text = "16MiB", min_part_text = "5MiB", max_object_text = "5GiB",
              buffer_text = "1GiB", idle_text = "120s", log_level = "info", manifest;
  bool do_warm = false, no_payload_check = false, bench = false;
  app.add_option("--port", cfg.port, "TCP port on 127.0.0.1 (0: pick a free one)")->capture_default_str();
  app.add_option("--address", cfg.address, "loopback address to listen on")->capture_default_str();
  app.add_option("--threads", cfg.threads, "io threads, and as many hashing threads (0: one per core)")
      ->capture_default_str();
  app.add_option("--bucket", bucket_specs, "a bucket spec (repeatable), e.g. name=src,keys=10000,size=100KiB");
  app.add_option("--buckets-file", bucket_files, "a file of bucket specs, one per line ('#' comments)");
  app.add_option("--writable", writable, "an empty writable bucket (repeatable); same as --bucket name=N,writable");
  app.add_option("--etag", etag_text,
                 "synthetic ETags: auto (MD5 up to --md5-etag-max, multipart-style above), "
                 "md5, multipart")
      ->capture_default_str();
  app.add_option("--md5-etag-max", md5_max_text, "largest object whose ETag is its MD5 under --etag auto")
      ->capture_default_str();
  app.add_flag("--warm", do_warm, "hash every MD5-ETag object before listening");
  app.add_option("--min-part-size", min_part_text, "smallest part but the last at completion")->capture_default_str();
  app.add_option("--max-object-size", max_object_text, "largest PUT body or part")->capture_default_str();
  app.add_option("--multipart-buffer", buffer_text,
                 "memory for parts that arrive before an earlier part (past it, the object's MD5 is not followed)")
      ->capture_default_str();
  app.add_option("--idle-timeout", idle_text, "close a connection without progress for this long")
      ->capture_default_str();
  app.add_option("--max-connections", cfg.max_connections, "connections served at once")->capture_default_str();
  app.add_flag("--verify-signatures", cfg.verify_signatures, "check SigV4 (needs --access-key, --secret-key)");
  app.add_option("--access-key", cfg.access_key, "access key id for --verify-signatures");
  app.add_option("--secret-key", cfg.secret_key, "secret key for --verify-signatures");
  app.add_option("--region", cfg.region, "the region of every bucket")->capture_default_str();
  app.add_flag("--no-verify-payload-hash", no_payload_check, "do not check hex x-amz-content-sha256 against bodies");
  app.add_flag("--log-requests", cfg.log_requests, "one line per request on stderr");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")->capture_default_str();
  app.add_option("--print-manifest", manifest, "print key, size, MD5, ETag of a bucket spec as TSV, then exit");
  app.add_flag("--self-benchmark", bench, "measure the generator and MD5 on this machine, then exit");
  CLI11_PARSE(app, argc, argv);

  auto fail = [](const std::string& why) {
    std::fprintf(stderr, "synthetic-s3: %s\n", why.c_str());
    return 2;
  };
  if (!ferry::util::valid_log_level(log_level)) return fail("bad --log-level " + log_level);
  ferry::util::setup_logging(log_level);
  if (std::string why; !ferry::util::hash_self_test(&why)) return fail(why);
  const unsigned threads = cfg.threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : cfg.threads;
  auto mode = parse_etag_mode(etag_text);
  if (!mode) return fail("--etag: " + mode.error());
  auto size_of = [&](const std::string& flag, const std::string& text, std::uint64_t& out) {
    auto r = ferry::util::parse_size(text);
    if (!r) {
      fail(flag + ": " + r.error());
      return false;
    }
    out = *r;
    return true;
  };
  std::uint64_t md5_max = 0, buffer = 0;
  if (!size_of("--md5-etag-max", md5_max_text, md5_max) ||
      !size_of("--min-part-size", min_part_text, cfg.min_part_size) ||
      !size_of("--max-object-size", max_object_text, cfg.max_object_size) ||
      !size_of("--multipart-buffer", buffer_text, buffer))
    return 2;
  if (bench) return self_benchmark(threads);
  if (!manifest.empty()) return print_manifest(manifest, threads, *mode, md5_max);

  auto idle = ferry::util::parse_duration(idle_text);
  if (!idle || idle->count() <= 0) return fail("--idle-timeout: bad duration " + idle_text);
  cfg.idle_timeout = *idle;
  cfg.verify_payload_hash = !no_payload_check;
  if (cfg.verify_signatures && (cfg.access_key.empty() || cfg.secret_key.empty()))
    return fail("--verify-signatures needs --access-key and --secret-key");
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(cfg.address, ec);
  // The admin endpoints are unauthenticated: never on anything but loopback.
  if (ec || !addr.is_loopback()) return fail("--address must be a loopback address (127.0.0.0/8 or ::1)");

  std::vector<bucket_spec> specs;
  for (const auto& f : bucket_files) {
    auto r = parse_bucket_file(f);
    if (!r) return fail(r.error());
    specs.insert(specs.end(), r->begin(), r->end());
  }
  for (const auto& t : bucket_specs) {
    auto r = parse_bucket_spec(t);
    if (!r) return fail("--bucket " + t + ": " + r.error());
    specs.push_back(std::move(*r));
  }
  for (const auto& n : writable) {
    auto r = parse_bucket_spec("name=" + n + ",writable");
    if (!r) return fail("--writable " + n + ": " + r.error());
    specs.push_back(std::move(*r));
  }
  try {
    store st;
    st.budget().limit = buffer;
    for (const auto& s : specs) {
      if (!st.add(s, *mode, md5_max)) return fail("bucket " + s.name + " is declared twice");
      const auto b = st.find(s.name);
      if (b->synthetic)
        spdlog::info("bucket {}: {} keys, {} ({})", s.name, s.keys,
                     ferry::util::format_bytes(b->synthetic->total_bytes()), s.describe());
      else
        spdlog::info("bucket {}: writable", s.name);
    }
    if (do_warm) warm(st, threads);
    server srv(st, cfg);
    auto port = srv.listen();
    if (!port) return fail(port.error());
    std::printf("synthetic-s3 listening on %s:%u\n", cfg.address.c_str(), static_cast<unsigned>(*port));
    std::fflush(stdout);
    srv.run();
    spdlog::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("synthetic-s3: {}", e.what());
    return 1;
  }
}
