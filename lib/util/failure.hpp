#pragma once
// `return util::failure("why");` from a function returning result<T, std::string>: a plain string
// cannot name the error side on its own when T is constructible from a string too.
#include <boost/system/result.hpp>

#include <string>
#include <utility>

namespace ferry::util {

struct failure {
  std::string text;
  explicit failure(std::string t) : text(std::move(t)) {}

  template <class T>
  operator boost::system::result<T, std::string>() && {
    return boost::system::result<T, std::string>(boost::system::in_place_error, std::move(text));
  }
};

}  // namespace ferry::util
