#include "state/integrity_store.hpp"

#include "store/blocking.hpp"

#include <spdlog/spdlog.h>

#include <utility>

namespace ferry::state {

integrity_store::integrity_store(state_db& db, std::string job, store::blocking_pool* pool, durability d)
    : db_(db), job_(std::move(job)), pool_(pool), durability_(d) {}

void integrity_store::record(const transfer::integrity_record& r) {
  if (!pool_) return write(r);
  pool_->detach([this, r] { write(r); });
}

void integrity_store::write(const transfer::integrity_record& r) {
  auto seq = db_.record_integrity(job_, r, durability_);
  if (seq) return;
  auto n = ++failures_;
  // A full disk fails every verdict: the first failure and then one in a thousand are enough.
  if (n == 1 || n % 1000 == 0)
    spdlog::error("state: job {}: verdict for {} not recorded ({} so far): {}", job_, r.key, n, seq.error().message);
  std::lock_guard lock(mu_);
  last_error_ = seq.error();
}

std::optional<error> integrity_store::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

}  // namespace ferry::state
