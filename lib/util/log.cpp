#include "util/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace ferry::util {
namespace {

// "%*" -> sd-daemon(3) priority: the journal reads "<3>" as err, "<6>" as info, ...
class journal_priority final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr const char* prio[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
    const char* p = prio[static_cast<int>(msg.level)];
    dest.append(p, p + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<journal_priority>(); }
};

}  // namespace

bool valid_log_level(std::string_view level) {
  auto l = spdlog::level::from_str(std::string(level));
  // from_str answers "off" for unknown names; only the word "off" itself means off.
  return l != spdlog::level::off || level == "off";
}

void setup_logging(std::string_view level) {
  auto logger = spdlog::get("ferry");
  if (!logger) logger = spdlog::stderr_logger_mt("ferry");
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (std::getenv("JOURNAL_STREAM") != nullptr)
    formatter->add_flag<journal_priority>('*').set_pattern("%*%v");
  else
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %-5l %v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace ferry::util
