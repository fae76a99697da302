#include "sync/location.hpp"

#include <gtest/gtest.h>

namespace ferry::sync {
namespace {

TEST(Location, ParsesRemoteBucketAndFolderPrefix) {
  auto l = parse_location("backup:photos/2024/summer");
  ASSERT_TRUE(l) << l.error();
  EXPECT_EQ(l->remote, "backup");
  EXPECT_EQ(l->bucket, "photos");
  EXPECT_EQ(l->prefix, "2024/summer/");  // a prefix names a folder
  EXPECT_EQ(l->to_string(), "backup:photos/2024/summer/");
}

TEST(Location, BucketAloneHasAnEmptyPrefix) {
  auto l = parse_location("s3:my-bucket");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->prefix, "");
  auto slash = parse_location("s3:my-bucket/");
  ASSERT_TRUE(slash);
  EXPECT_EQ(slash->prefix, "");
}

TEST(Location, MistakesAreExplained) {
  auto no_remote = parse_location("relative/path");
  ASSERT_FALSE(no_remote);
  EXPECT_NE(no_remote.error().find("REMOTE:BUCKET"), std::string::npos);
  EXPECT_FALSE(parse_location("r:"));
  EXPECT_FALSE(parse_location(":bucket"));
  auto upper = parse_location("r:Bucket");
  ASSERT_FALSE(upper);
  EXPECT_NE(upper.error().find("a-z"), std::string::npos);
  EXPECT_FALSE(parse_location("r:ab"));  // too short for S3
  EXPECT_FALSE(parse_location("bad remote:bucket"));
}

TEST(Location, AnAbsolutePathIsALocalDirectory) {
  auto l = parse_location("/srv/data/");
  ASSERT_TRUE(l) << l.error();
  EXPECT_TRUE(l->local);
  EXPECT_EQ(l->path, "/srv/data");
  EXPECT_EQ(l->to_string(), "/srv/data");
  EXPECT_FALSE(parse_location("/srv/../etc"));
  EXPECT_FALSE(parse_location("/srv/./x"));
}

}  // namespace
}  // namespace ferry::sync
