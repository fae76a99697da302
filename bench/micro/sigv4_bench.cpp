// SigV4: what signing costs per request, for the two requests ferry sends most: a PUT of a small
// object (Content-MD5, content type, user metadata) and a ListObjectsV2 page request (query string).
#include "s3/sigv4.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

namespace ferry::s3 {
namespace {

sign_params params() {
  sign_params p;
  p.creds = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  p.region = "us-east-1";
  p.now = std::chrono::system_clock::time_point(std::chrono::seconds(1'714'567'890));
  return p;
}

void BM_SignPutObject(benchmark::State& state) {
  const auto p = params();
  http::request req;
  req.method = "PUT";
  req.target = "/backup-bucket/photos/2024/05/img_000123.jpg";
  req.headers.set("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==");
  req.headers.set("Content-Type", "image/jpeg");
  req.headers.set("x-amz-meta-mtime", "1714567890.123456789");
  req.headers.set("x-amz-storage-class", "STANDARD");
  for (auto _ : state) {
    // Re-signing replaces the previous signature, as a retry does: the request does not grow.
    sign_request(req, "127.0.0.1:9000", unsigned_payload, p);
    benchmark::DoNotOptimize(req.headers.items.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SignPutObject);

void BM_SignListObjectsV2(benchmark::State& state) {
  const auto p = params();
  const auto empty = empty_payload_sha256();
  http::request req;
  req.method = "GET";
  req.target =
      "/source-bucket?list-type=2&prefix=photos%2F2024%2F&encoding-type=url&max-keys=1000&continuation-token="
      "1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4vbOwM%3D";
  for (auto _ : state) {
    sign_request(req, "127.0.0.1:9000", empty, p);
    benchmark::DoNotOptimize(req.headers.items.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SignListObjectsV2);

}  // namespace
}  // namespace ferry::s3
