#include "store/blocking.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace ferry::store {

blocking_pool::blocking_pool(std::size_t threads) : pool_(threads == 0 ? 1 : threads) {}

blocking_pool::~blocking_pool() { pool_.join(); }

bool blocking_pool::wait_detached(std::chrono::milliseconds limit) {
  std::unique_lock lock(m_);
  return idle_.wait_for(lock, limit, [this] { return detached_ == 0; });
}

void blocking_pool::finish_detached() {
  std::lock_guard lock(m_);
  if (--detached_ == 0) idle_.notify_all();
}

void blocking_pool::log_detached_failure(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    spdlog::error("store: background cleanup failed: {}", x.what());
  } catch (...) {
    spdlog::error("store: background cleanup failed with an unknown exception");
  }
}

}  // namespace ferry::store
