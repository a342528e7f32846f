// The admin service against a mock index: administrators only, every view audited, figures for
// every configured queue, errors mapped.
#include "gateway/api/admin_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rdg/v1/admin.grpc.pb.h"
#include "tests/gateway/service_harness.h"
#include "tests/gateway/stores_of.h"
#include "tests/mocks/fake_clock.h"
#include "tests/mocks/mock_index_store.h"

namespace rdg::api {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::Field;
using testing::kAdmin;
using testing::kClinic;
using testing::kReader;
using ::testing::Return;
using ::testing::StrictMock;

class AdminServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { harness_.CallsAs(kAdmin); }
  void TearDown() override { harness_.Stop(); }

  testing::ServiceHarness harness_;
  FakeClock clock_;
  StrictMock<storage::MockIndexStore> index_;
  AdminServiceImpl service_{testing::AdminServiceStores(index_),
                            harness_.context(),
                            clock_,
                            {"county-a/imaging", "county-a/lab"}};
  std::unique_ptr<rdg::v1::AdminService::Stub> stub_ =
      rdg::v1::AdminService::NewStub(harness_.Serve(service_));
};

TEST_F(AdminServiceTest, ClinicsAndReadersAreRefusedEveryView) {
  for (const auth::Principal& who : {kClinic, kReader}) {
    harness_.CallsAs(who);
    rdg::v1::QueuesResponse queues;
    EXPECT_EQ(stub_->GetQueues(harness_.Call().get(), {}, &queues).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    rdg::v1::AuditResponse audit;
    EXPECT_EQ(stub_->QueryAudit(harness_.Call().get(), {}, &audit).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    rdg::v1::BreachesResponse breaches;
    EXPECT_EQ(stub_->ListBreaches(harness_.Call().get(), {}, &breaches).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  harness_.CallsUnauthenticated();
  rdg::v1::QueuesResponse queues;
  EXPECT_EQ(stub_->GetQueues(harness_.Call().get(), {}, &queues).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AdminServiceTest, EveryConfiguredQueueIsListedEvenEmptyAndTheViewIsAudited) {
  storage::QueueFigureRecord imaging;
  imaging.queue = "county-a/imaging";
  imaging.depth = 3;
  imaging.oldest_waiting_since = clock_.Now() - absl::Minutes(12);
  EXPECT_CALL(index_, ListQueueFigures(clock_.Now()))
      .WillOnce(Return(std::vector<storage::QueueFigureRecord>{imaging}));
  EXPECT_CALL(index_, AppendAudit(AllOf(Field(&storage::AuditRecord::action, "admin_queues"),
                                        Field(&storage::AuditRecord::user, "admin"))))
      .WillOnce(Return(absl::OkStatus()));
  rdg::v1::QueuesResponse response;
  ASSERT_TRUE(stub_->GetQueues(harness_.Call().get(), {}, &response).ok());
  ASSERT_EQ(response.queues_size(), 2);
  EXPECT_EQ(response.queues(0).queue(), "county-a/imaging");
  EXPECT_EQ(response.queues(0).queue_name(), "县医院 · imaging");
  EXPECT_EQ(response.queues(0).depth(), 3);
  EXPECT_EQ(response.queues(0).oldest_waiting().seconds(), 12 * 60);
  EXPECT_EQ(response.queues(1).queue(), "county-a/lab");
  EXPECT_EQ(response.queues(1).depth(), 0);
}

TEST_F(AdminServiceTest, ABusyIndexIsUnavailable) {
  EXPECT_CALL(index_, ListAudit(Field(&storage::AuditQuery::limit, 10000)))
      .WillOnce(Return(absl::UnavailableError("database is locked")));
  rdg::v1::AuditRequest request;
  request.set_limit(1'000'000);  // capped
  rdg::v1::AuditResponse response;
  EXPECT_EQ(stub_->QueryAudit(harness_.Call().get(), request, &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace rdg::api
