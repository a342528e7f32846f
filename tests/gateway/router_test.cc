#include "gateway/routing/router.h"

#include <gtest/gtest.h>

#include "gateway/config/gateway_config.h"

namespace rdg::routing {
namespace {

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = config::LoadConfigFile(std::string(RDG_SOURCE_DIR) + "/deploy/config/demo.textproto");
    ASSERT_TRUE(c.ok()) << c.status();
    config_ = *c;
  }
  RoutingDecision Route(const std::string& origin, const std::string& type,
                        rdg::v1::Priority p = rdg::v1::PRIORITY_UNSPECIFIED) {
    return Router(config_).Route({origin, type, "", p});
  }
  rdg::v1::GatewayConfig config_;
};

TEST_F(RouterTest, DemoProvinceRoutesEveryInstitution) {
  struct Case {
    std::string origin, type, queue;
  } cases[] = {
      {"clinic-a1", "CT", "county-a/imaging"},      {"clinic-a2", "DX", "county-a/imaging"},
      {"van-a1", "US", "county-a/imaging"},         {"van-a1", "ECG", "county-a/ecg"},
      {"clinic-a1", "LAB", "county-a/lab"},         {"clinic-b1", "CR", "county-b/imaging"},
      {"clinic-b1", "ECG", "county-b/ecg"},         {"clinic-b1", "LAB", "county-b/lab"},
      {"county-a", "CT", "city/radiology-consult"}, {"county-b", "ECG", "city/ecg-consult"},
      {"county-b", "LAB", "city/lab-consult"},
  };
  for (const auto& c : cases) {
    RoutingDecision d = Route(c.origin, c.type);
    EXPECT_EQ(d.queue, c.queue) << c.origin << " " << c.type;
    EXPECT_FALSE(d.fallback);
    EXPECT_EQ(d.priority, rdg::v1::ROUTINE);  // the rules' default
  }
}

TEST_F(RouterTest, UnmatchedGoesToFallbackAndIsCounted) {
  Router router(config_);
  EXPECT_EQ(router.fallback_count(), 0);
  RoutingDecision d = router.Route({"clinic-a1", "RTPLAN", "", rdg::v1::PRIORITY_UNSPECIFIED});
  EXPECT_TRUE(d.fallback);
  EXPECT_EQ(d.queue, "province/unrouted");
  router.Route({"city", "CT", "", rdg::v1::STAT});
  EXPECT_EQ(router.fallback_count(), 2);
}

TEST_F(RouterTest, ClinicPriorityWinsOverRuleDefault) {
  EXPECT_EQ(Route("clinic-a1", "CT", rdg::v1::STAT).priority, rdg::v1::STAT);
  EXPECT_EQ(Route("clinic-a1", "ct").queue, "county-a/imaging");  // modality case ignored
}

TEST(RouterRulesTest, FirstMatchWinsAndEveryCriterionFilters) {
  rdg::v1::GatewayConfig c;
  auto* inst = c.add_institutions();
  inst->set_id("t1");
  inst->set_community("x");
  c.set_fallback_queue("fb");
  auto* chest = c.add_routing_rules();
  chest->set_name("stat-chest");
  chest->add_origin_communities("x");
  chest->add_body_parts("CHEST");
  chest->add_priorities(rdg::v1::STAT);
  chest->set_queue("q-chest");
  auto* any = c.add_routing_rules();
  any->set_name("any-x");
  any->add_origin_communities("x");
  any->set_queue("q-any");
  any->set_default_priority(rdg::v1::URGENT);
  Router r(c);
  EXPECT_EQ(r.Route({"t1", "CR", "chest", rdg::v1::STAT}).queue, "q-chest");
  EXPECT_EQ(r.Route({"t1", "CR", "CHEST", rdg::v1::ROUTINE}).queue, "q-any");
  EXPECT_EQ(r.Route({"t1", "CR", "HAND", rdg::v1::STAT}).queue, "q-any");
  EXPECT_EQ(r.Route({"t1", "CR", "", rdg::v1::PRIORITY_UNSPECIFIED}).priority, rdg::v1::URGENT);
  EXPECT_EQ(r.Route({"other", "CR", "CHEST", rdg::v1::STAT}).queue, "fb");
}

TEST_F(RouterTest, SlaExactTypeBeatsWildcard) {
  SlaTable sla(config_);
  ASSERT_NE(sla.Find("ECG", rdg::v1::STAT), nullptr);
  EXPECT_EQ(sla.Find("ECG", rdg::v1::STAT)->received_to_final_minutes(), 15);
  EXPECT_EQ(sla.Find("DX", rdg::v1::ROUTINE)->received_to_final_minutes(), 1440);  // "*"
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  EXPECT_EQ(sla.FinalDue("ECG", rdg::v1::STAT, t0), t0 + absl::Minutes(15));
  EXPECT_EQ(SlaTable(rdg::v1::GatewayConfig()).FinalDue("CT", rdg::v1::STAT, t0),
            absl::InfiniteFuture());
}

}  // namespace
}  // namespace rdg::routing
