// ListObjectsV2: parsing one full page (1000 keys, as S3 sends them, ETags as &quot; references) into
// list_page. A 1,000,000-key listing is 1000 of these.
#include "s3/xml.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

namespace ferry::s3 {
namespace {

std::string list_page_xml(int keys) {
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>source-bucket</Name>"
      "<Prefix>photos/</Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>"
      "<ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>"
      "<NextContinuationToken>2ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>";
  char entry[512];
  for (int i = 0; i < keys; ++i) {
    const int n = std::snprintf(entry, sizeof entry,
                                "<Contents><Key>photos/2024/%02d/img_%07d.jpg</Key>"
                                "<LastModified>2024-05-01T12:%02d:%02d.000Z</LastModified>"
                                "<ETag>&quot;%08x%08x%08x%08x&quot;</ETag><Size>%d</Size>"
                                "<StorageClass>STANDARD</StorageClass></Contents>",
                                i % 12 + 1, i, i / 60 % 60, i % 60, 0x9e3779b9u * i, 0x85ebca6bu * i, 0xc2b2ae35u * i,
                                0x27d4eb2fu * i, 102400 + i);
    xml.append(entry, n);
  }
  xml += "</ListBucketResult>";
  return xml;
}

void BM_ParseListObjectsV2(benchmark::State& state) {
  const auto keys = static_cast<int>(state.range(0));
  const auto xml = list_page_xml(keys);
  for (auto _ : state) {
    auto page = parse_list_objects_v2(xml);
    if (!page || page->objects.size() != static_cast<std::size_t>(keys)) {
      state.SkipWithError("the generated page did not parse");
      break;
    }
    benchmark::DoNotOptimize(page->objects.data());
  }
  state.SetItemsProcessed(state.iterations() * keys);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(xml.size()));
  state.counters["page_bytes"] = static_cast<double>(xml.size());
}
BENCHMARK(BM_ParseListObjectsV2)->Arg(1000);

}  // namespace
}  // namespace ferry::s3
