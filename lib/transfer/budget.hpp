#pragma once
// The in-flight byte budget: one per ferryd, shared by every transfer. Staged parts and staged
// small objects take their bytes from it before reading, and give them back when sent, so the
// memory of all transfers together stays bounded however many run.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

namespace ferry::transfer {

namespace asio = boost::asio;

class byte_budget : public std::enable_shared_from_this<byte_budget> {
 public:
  explicit byte_budget(std::uint64_t capacity);

  // Bytes held until destroyed (or release()d).
  class lease {
   public:
    lease() = default;
    lease(lease&& o) noexcept : owner_(std::move(o.owner_)), bytes_(o.bytes_) { o.bytes_ = 0; }
    lease& operator=(lease&& o) noexcept;
    ~lease() { release(); }
    void release();
    std::uint64_t bytes() const { return bytes_; }

   private:
    friend class byte_budget;
    lease(std::shared_ptr<byte_budget> owner, std::uint64_t bytes) : owner_(std::move(owner)), bytes_(bytes) {}
    std::shared_ptr<byte_budget> owner_;
    std::uint64_t bytes_ = 0;
  };

  // Waits until `bytes` are free (first come, first served) and takes them. A request larger
  // than the whole budget is clamped to it, so it runs alone rather than never.
  asio::awaitable<lease> acquire(std::uint64_t bytes);

  std::uint64_t capacity() const { return capacity_; }
  std::uint64_t in_use() const;

 private:
  struct waiter;
  void give_back(std::uint64_t bytes);

  const std::uint64_t capacity_;
  mutable std::mutex mu_;
  std::uint64_t used_ = 0;
  std::deque<std::shared_ptr<waiter>> waiters_;
};

}  // namespace ferry::transfer
