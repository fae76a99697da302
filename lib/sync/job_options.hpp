#pragma once
// A job's options as stored with its record in lib/state (JSON text), so a job resumed after a
// restart runs with exactly the options it was created with.
#include "sync/job_manager.hpp"

#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace ferry::sync {

std::string encode_job_options(const job_options& o);
// "" decodes to the defaults (a record written before options existed).
boost::system::result<job_options, std::string> decode_job_options(std::string_view text);

}  // namespace ferry::sync
