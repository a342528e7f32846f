// The monitoring port's server started and stopped at once, as a SIGTERM right after start does.
#include <gtest/gtest.h>

#include "gateway/config/institution_directory.h"
#include "gateway/monitoring/http_server.h"

namespace rdg::monitoring {
namespace {

TEST(MonitoringServerTest, StoppingRightAfterStartEnds) {
  // cpp-httplib 0.11 ignores a stop() that comes before its listening thread has marked the
  // server running: destroying the server then waited for ever. Each round has that window.
  rdg::v1::MonitoringConfig config;
  config.set_listen("127.0.0.1:0");
  const config::InstitutionDirectory directory{rdg::v1::GatewayConfig()};
  for (int round = 0; round < 200; ++round) {
    auto server = MonitoringServer::Start(config, rdg::v1::TlsConfig(), directory, {});
    ASSERT_TRUE(server.ok()) << server.status();
    EXPECT_GT((*server)->port(), 0);
  }  // each destroyed here; a hang fails the test by its CTest timeout
}

}  // namespace
}  // namespace rdg::monitoring
