#pragma once
// A small thread pool for blocking filesystem work (open, pread, fsync, directory walks), so an
// io thread never blocks: run_blocking() hops onto the pool, runs a function and hops back.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

namespace ferry::store {

namespace asio = boost::asio;

// Owns the threads. Must outlive every endpoint, reader, writer and lister that uses it; the
// destructor runs what was already posted (detached cleanups included), then joins.
class blocking_pool {
 public:
  explicit blocking_pool(std::size_t threads = 4);
  ~blocking_pool();
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  asio::thread_pool::executor_type executor() { return pool_.get_executor(); }

  // Fire and forget, for cleanup from destructors (removing a temp file, closing descriptors).
  // An exception escaping f is logged and dropped.
  template <class F>
  void detach(F f) {
    {
      std::lock_guard lock(m_);
      ++detached_;
    }
    asio::post(pool_, [this, f = std::move(f)]() mutable {
      run_detached(f);
      finish_detached();
    });
  }
  // Waits until every detached function has run; false if that took longer than `limit`.
  bool wait_detached(std::chrono::milliseconds limit);

 private:
  template <class F>
  static void run_detached(F& f) noexcept {
    try {
      f();
    } catch (...) {
      log_detached_failure(std::current_exception());
    }
  }
  static void log_detached_failure(std::exception_ptr e) noexcept;
  void finish_detached();

  asio::thread_pool pool_;
  std::mutex m_;
  std::condition_variable idle_;
  std::size_t detached_ = 0;
};

// Runs f() on the pool and resumes the caller on its own executor with f's (non-void) result.
// The call itself is not cancellable: a blocking syscall runs to its end.
// GCC 12: name the lambda and pass std::move(fn). A lambda with captures (any brace-initialized
// temporary) written inside a co_await expression is destroyed twice by GCC 12.
template <class F>
asio::awaitable<std::invoke_result_t<F&>> run_blocking(blocking_pool& pool, F f) {
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_void_v<R>, "run_blocking needs a value to return");
  auto caller = co_await asio::this_coro::executor;
  co_await asio::post(asio::bind_executor(pool.executor(), asio::use_awaitable));
  std::optional<R> out;
  std::exception_ptr failed;
  try {
    out.emplace(f());
  } catch (...) {
    failed = std::current_exception();  // rethrown on the caller's executor, not on a pool thread
  }
  co_await asio::post(asio::bind_executor(caller, asio::use_awaitable));
  if (failed) std::rethrow_exception(failed);
  co_return std::move(*out);
}

}  // namespace ferry::store
