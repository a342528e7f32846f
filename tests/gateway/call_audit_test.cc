#include "gateway/api/call_audit.h"

#include <gtest/gtest.h>

#include <string>

#include "gateway/config/institution_directory.h"

namespace rdg::api {
namespace {

const absl::Time kAt = absl::FromUnixSeconds(1'800'000'000);

TEST(CallAuditTest, RefusalsOfAccessAreAuditedCapacityAnswersAreNot) {
  for (auto code : {grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::PERMISSION_DENIED,
                    grpc::StatusCode::NOT_FOUND, grpc::StatusCode::INVALID_ARGUMENT,
                    grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::ALREADY_EXISTS}) {
    EXPECT_TRUE(IsRefusal(code)) << code;
  }
  for (auto code :
       {grpc::StatusCode::OK, grpc::StatusCode::CANCELLED, grpc::StatusCode::UNAVAILABLE,
        grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::DEADLINE_EXCEEDED}) {
    EXPECT_FALSE(IsRefusal(code)) << code;
  }
}

TEST(CallAuditTest, TheRecordNamesMethodOutcomeCallerAndExam) {
  const config::InstitutionDirectory directory{rdg::v1::GatewayConfig()};
  const grpc::Status status(grpc::StatusCode::NOT_FOUND, "no exam ex-1 for institution c2");
  storage::AuditRecord r = RefusalRecord(
      {"/rdg.v1.ReadingService/GetWorklist", status, "ipv4:10.1.2.3:50122", "", "ex-1"}, directory,
      kAt);
  EXPECT_EQ(r.action, "get_worklist");
  EXPECT_EQ(r.outcome, "NOT_FOUND");
  EXPECT_EQ(r.detail, "no exam ex-1 for institution c2");
  EXPECT_EQ(r.peer, "ipv4:10.1.2.3:50122");
  EXPECT_EQ(r.exam_id, "ex-1");
  EXPECT_EQ(r.at, kAt);
  // No certificate: nobody is named, and nothing is made up.
  EXPECT_EQ(r.institution, "");
  EXPECT_EQ(r.subject, "");
  EXPECT_EQ(r.role, rdg::v1::ROLE_UNSPECIFIED);
}

TEST(CallAuditTest, AnUnreadableCertificateStillLeavesTheCallRecorded) {
  const config::InstitutionDirectory directory{rdg::v1::GatewayConfig()};
  const grpc::Status status(grpc::StatusCode::UNAUTHENTICATED, std::string(100000, 'x'));
  storage::AuditRecord r = RefusalRecord(
      {"/rdg.v1.AdminService/GetQueues", status, "ipv6:[::1]:1", "not a certificate", ""},
      directory, kAt);
  EXPECT_EQ(r.action, "get_queues");
  EXPECT_EQ(r.subject, "");
  EXPECT_LE(r.detail.size(), 520u);  // a long message is cut, not stored whole
}

}  // namespace
}  // namespace rdg::api
