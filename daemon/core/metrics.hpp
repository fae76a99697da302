#pragma once
// What daemon.metrics, `ferryctl metrics` and the optional HTTP listener serve: ferryd's state in
// the Prometheus text format. Gathered when asked, from the owners' own counters.
#include "sync/job_manager.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ferry::s3 {
class client;
}

namespace ferry::daemon {

struct metrics_sources {
  std::vector<sync::job_snapshot> jobs;
  std::map<std::string, std::shared_ptr<s3::client>> remotes;
  std::function<void(std::string&)> more;  // appends families gathered elsewhere (limits, netmon)
};

std::string render_metrics(const metrics_sources& src);

// A plain HTTP/1.1 listener that answers GET /metrics with render(); anything else gets 404.
// One request per connection, a few KiB and seconds at most each, so a scraper can never hold it up.
class metrics_listener {
 public:
  metrics_listener(boost::asio::any_io_executor ex, std::function<std::string()> render);
  ~metrics_listener();
  // "127.0.0.1:9464", "[::1]:9464". An address other than loopback needs allow_remote.
  boost::system::result<void, std::string> start(const std::string& listen, bool allow_remote);
  void stop();
  unsigned short port() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace ferry::daemon
