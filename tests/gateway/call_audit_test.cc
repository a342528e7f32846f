#include "gateway/api/call_audit.h"

#include <gtest/gtest.h>

#include <string>

#include "gateway/common/audit_throttle.h"
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
  EXPECT_EQ(r.role, storage::Role::kUnspecified);
}

TEST(CallAuditTest, AnUnreadableCertificateStillLeavesTheCallRecorded) {
  const config::InstitutionDirectory directory{rdg::v1::GatewayConfig()};
  const grpc::Status status(grpc::StatusCode::UNAUTHENTICATED, std::string(100000, 'x'));
  storage::AuditRecord r = RefusalRecord(
      {"/rdg.v1.AdminService/GetQueues", status, "ipv6:[::1]:1", "not a certificate", ""},
      directory, kAt);
  EXPECT_EQ(r.action, "get_queues");
  EXPECT_EQ(r.subject, "");
  EXPECT_LE(r.detail.size(), 1024u);  // a long message is cut, not stored whole
}

TEST(CallAuditTest, WhatTheCallerSendsIsCutAndCleanedBeforeItIsStored) {
  const config::InstitutionDirectory directory{rdg::v1::GatewayConfig()};
  const std::string controls(4 << 20, '\x01');  // width 0 for a terminal, 4 MB for a disk
  const grpc::Status status(grpc::StatusCode::INVALID_ARGUMENT, "exam_id too long" + controls);
  storage::AuditRecord r = RefusalRecord(
      {"/rdg.v1.ExamService/GetExam", status, "ipv4:10.1.2.3:1", "", controls + "ex-1"}, directory,
      kAt);
  EXPECT_LE(r.exam_id.size(), 256u);
  EXPECT_LE(r.detail.size(), 1024u);
  EXPECT_EQ(r.detail.find('\x01'), std::string::npos);
  // A method name the client made up is not an action of the log.
  r = RefusalRecord({"/evil.Service/" + std::string(10000, 'X'), status, "", "", ""}, directory,
                    kAt);
  EXPECT_EQ(r.action, "unknown_method");
  EXPECT_LE(r.detail.size(), 256u + 2 + 1024u);
}

TEST(AuditThrottleTest, OneRecordPerKeyAndMinuteCountingTheRest) {
  AuditThrottle throttle(absl::Minutes(1), 3);
  EXPECT_EQ(throttle.Admit("10.0.0.1", kAt), 0);
  EXPECT_EQ(throttle.Admit("10.0.0.1", kAt + absl::Seconds(10)), std::nullopt);
  EXPECT_EQ(throttle.Admit("10.0.0.1", kAt + absl::Seconds(20)), std::nullopt);
  EXPECT_EQ(throttle.Admit("10.0.0.2", kAt + absl::Seconds(20)), 0);  // another caller
  EXPECT_EQ(throttle.Admit("10.0.0.1", kAt + absl::Seconds(61)), 2);  // two left out
  EXPECT_EQ(AuditThrottle::LeftOut(0), "");
  EXPECT_NE(AuditThrottle::LeftOut(2).find("(2 more"), std::string::npos);
  // A full table is forgotten, not grown.
  for (int i = 0; i < 10; ++i) throttle.Admit("k" + std::to_string(i), kAt);
  EXPECT_EQ(throttle.Admit("10.0.0.1", kAt + absl::Seconds(62)), 0);
}

TEST(AuditThrottleTest, PeersAsGrpcWritesThem) {
  EXPECT_EQ(PeerName("ipv6:%5B::1%5D:50122"), "ipv6:[::1]:50122");
  EXPECT_EQ(PeerName("ipv4:10.1.2.3:50122"), "ipv4:10.1.2.3:50122");
  EXPECT_EQ(PeerAddress("ipv6:%5B::1%5D:50122"), "::1");
  EXPECT_EQ(PeerAddress("ipv6:[fe80::1%25eth0]:5"), "fe80::1%25eth0");
  EXPECT_EQ(PeerAddress("ipv4:10.1.2.3:50122"), "10.1.2.3");
}

}  // namespace
}  // namespace rdg::api
