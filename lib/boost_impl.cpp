// The one translation unit that compiles Asio, Asio.SSL, Beast, Boost.URL and Boost.JSON
// (BOOST_*_SEPARATE_COMPILATION everywhere else).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
#include <boost/json/src.hpp>
#include <boost/url/src.hpp>
