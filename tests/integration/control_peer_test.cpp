// Who may use the control socket, checked on real connections from other users (setpriv switches
// ferryctl to uid/gid 65534, nobody/nogroup): members of control_group are served; a peer that is
// neither root, ferryd's user nor a member is refused by its SO_PEERCRED credentials, even when the
// file permissions would let it connect.
#include "support/ferryd.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>

namespace ferry::test {
namespace {

namespace fs = std::filesystem;

run_result ctl_as(const ferryd& d, const std::string& uid, const std::string& gid) {
  return run(process_options{.argv = {"setpriv", "--reuid=" + uid, "--regid=" + gid, "--clear-groups", ferryctl_path(),
                                      "--socket", d.socket().string(), "status"}},
             std::chrono::seconds(30));
}

class ControlPeer : public ::testing::Test {
 protected:
  ControlPeer() : d_("", "info", "control_group = \"nogroup\"\n") {
    // The test's temp directory is private (0700): let everyone through to ferryd's run directory.
    fs::permissions(d_.socket().parent_path().parent_path(),
                    fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  }
  ferryd d_;
};

TEST_F(ControlPeer, AMemberOfControlGroupIsServed) {
  // ferryd gave its run directory and socket to the group: that is all a member needs.
  auto r = ctl_as(d_, "65534", "65534");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << d_.read_log();
  EXPECT_NE(r.out.find("remotes"), std::string::npos) << r.out;
}

TEST_F(ControlPeer, AnOutsiderIsRefusedByItsCredentialsAndTheRefusalIsLogged) {
  // Open the file permissions wide, so that only the peer check stands in the way.
  fs::permissions(d_.socket().parent_path(), fs::perms::all);
  fs::permissions(d_.socket(), fs::perms::all);
  auto r = ctl_as(d_, "65534", "1");
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("control_group"), std::string::npos) << r.out << r.err;
  EXPECT_NE(d_.read_log().find("refused connection"), std::string::npos) << d_.read_log();
  // ferryd still serves the others.
  EXPECT_EQ(d_.ctl({"status"}).exit_code, 0);
}

}  // namespace
}  // namespace ferry::test
