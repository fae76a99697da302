#pragma once
// The control port of a fault proxy, for scripts (curl): PUT /rules takes a rules document (fault_config.hpp,
// README.md) and applies it at once; GET /stats[?recent=N] returns the stats document (the last N requests,
// default 100). Plain HTTP/1.1 on its own thread; loopback only by default; bodies up to 1 MiB.
#include "fault/fault_proxy.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace ferry::test {

// Serves until destroyed. The constructor throws boost::system::system_error if it cannot listen.
// `proxy` must outlive it.
class fault_control {
 public:
  fault_control(fault_proxy& proxy, const std::string& address = "127.0.0.1", std::uint16_t port = 0);
  fault_control(const fault_control&) = delete;
  fault_control& operator=(const fault_control&) = delete;
  ~fault_control();

  std::uint16_t port() const;
  // "http://ADDRESS:PORT".
  std::string endpoint() const;

  struct state;

 private:
  std::unique_ptr<state> state_;
};

}  // namespace ferry::test
