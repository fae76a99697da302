#pragma once
// Runs coroutines for tests on an io_context thread, with a bounded wait: a test that would hang
// fails instead (the io_context is stopped, so nothing is left running).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

namespace ferry::test {

class io_runner {
 public:
  io_runner() : work_(boost::asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~io_runner() { shutdown(); }
  io_runner(const io_runner&) = delete;
  io_runner& operator=(const io_runner&) = delete;

  boost::asio::io_context& context() { return io_; }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

  // Runs `a` to completion and returns its value; throws if it takes longer than `limit`.
  template <class T>
  T run(boost::asio::awaitable<T> a, std::chrono::seconds limit = std::chrono::seconds(120)) {
    auto done = std::make_shared<std::promise<T>>();
    auto f = done->get_future();
    boost::asio::co_spawn(io_, std::move(a), [done](std::exception_ptr e, T v) {
      if (e)
        done->set_exception(e);
      else
        done->set_value(std::move(v));
    });
    if (f.wait_for(limit) != std::future_status::ready) {
      shutdown();
      throw std::runtime_error("coroutine did not finish within the test's time limit");
    }
    return f.get();
  }

  void shutdown() {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

}  // namespace ferry::test
