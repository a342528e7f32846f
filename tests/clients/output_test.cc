#include "clients/common/output.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

namespace rdg::clients {
namespace {

TEST(HumanDateTimeTest, WrittenTimesAsWrittenMomentsInTheLocalZone) {
  ::setenv("TZ", "Asia/Shanghai", 1);
  ::tzset();
  EXPECT_EQ(HumanDateTime("20261129130108"), "2026-11-29 13:01:08");  // the sender's local time
  EXPECT_EQ(HumanDateTime("202611291301"), "2026-11-29 13:01");
  EXPECT_EQ(HumanDateTime("20261129"), "2026-11-29");
  EXPECT_EQ(HumanDateTime("20261129050108+0000"), "2026-11-29 13:01:08");  // UTC → CST
  EXPECT_EQ(HumanDateTime("20261129130108-0500"), "2026-11-30 02:01:08");
  EXPECT_EQ(HumanDateTime("20261129050108.1234+0000"), "2026-11-29 13:01:08");
  EXPECT_EQ(HumanDateTime("202611290501+0000"), "2026-11-29 13:01:00");
  EXPECT_EQ(HumanDateTime("not a time"), "not a time");
  EXPECT_EQ(HumanDateTime("20261129050108+9999"), "2026-11-29 05:01:08");  // bad offset: ignored
}

}  // namespace
}  // namespace rdg::clients
