// The reading service against mock desks: who reaches a desk, what a desk's answer becomes on the
// wire (codes, messages, retry details), and that request limits are checked first.
#include "gateway/api/reading_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rdg/v1/ingest.pb.h"
#include "rdg/v1/reading.grpc.pb.h"
#include "tests/gateway/service_harness.h"
#include "tests/mocks/mock_blob_store.h"
#include "tests/mocks/mock_reading_desk.h"
#include "tests/mocks/mock_report_desk.h"

namespace rdg::api {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::Field;
using ::testing::HasSubstr;
using testing::kClinic;
using testing::kReader;
using ::testing::Return;
using ::testing::StrictMock;

class ReadingServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { harness_.CallsAs(kReader); }
  void TearDown() override { harness_.Stop(); }

  testing::ServiceHarness harness_;
  StrictMock<worklist::MockReadingDesk> desk_;
  StrictMock<worklist::MockReportDesk> reports_;
  StrictMock<storage::MockBlobStore> blobs_;
  ReadingServiceImpl service_{desk_, reports_, blobs_, harness_.context()};
  std::unique_ptr<rdg::v1::ReadingService::Stub> stub_ =
      rdg::v1::ReadingService::NewStub(harness_.Serve(service_));
};

TEST_F(ReadingServiceTest, AnUnauthenticatedCallerReachesNoDesk) {
  harness_.CallsUnauthenticated();  // StrictMock desks: any call fails the test
  rdg::v1::WorklistResponse worklist;
  auto s = stub_->GetWorklist(harness_.Call().get(), rdg::v1::WorklistRequest(), &worklist);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("no client certificate"));

  rdg::v1::ClaimRequest claim;
  claim.set_exam_id("ex-1");
  rdg::v1::Claim answer;
  EXPECT_EQ(stub_->ClaimExam(harness_.Call().get(), claim, &answer).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  rdg::v1::SubmitReportRequest submit;
  rdg::v1::ReportVersion version;
  EXPECT_EQ(stub_->SubmitReport(harness_.Call().get(), submit, &version).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  rdg::v1::FetchExamRequest fetch;
  fetch.set_exam_id("ex-1");
  auto ctx = harness_.Call();
  auto reader = stub_->FetchExam(ctx.get(), fetch);
  rdg::v1::ObjectChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ReadingServiceTest, TheCallerTheCertificateNamesIsTheOneTheDeskJudges) {
  storage::ClaimRecord record;
  record.exam_id = "ex-1";
  record.holder_user = kReader.user;
  record.holder_institution = kReader.institution;
  record.claimed_at = absl::FromUnixSeconds(1'800'000'000);
  record.expires_at = record.claimed_at + absl::Minutes(15);
  EXPECT_CALL(desk_, Claim(testing::IsPrincipal(kReader), "ex-1", true, "addendum: wrong side"))
      .WillOnce(Return(record));
  rdg::v1::ClaimRequest request;
  request.set_exam_id("ex-1");
  request.set_for_amendment(true);
  request.set_reason("addendum: wrong side");
  rdg::v1::Claim claim;
  ASSERT_TRUE(stub_->ClaimExam(harness_.Call().get(), request, &claim).ok());
  EXPECT_EQ(claim.exam_id(), "ex-1");
  EXPECT_EQ(claim.holder_user(), kReader.user);
  EXPECT_EQ(claim.expires_at().seconds() - claim.claimed_at().seconds(), 15 * 60);
}

TEST_F(ReadingServiceTest, ADeskRefusalReachesTheCallerWithItsCodeAndReason) {
  EXPECT_CALL(desk_, Claim(_, "ex-1", false, ""))
      .WillOnce(Return(absl::FailedPreconditionError("claimed by reader-a-lab until 10:15")));
  EXPECT_CALL(desk_, Renew(_, "ex-2")).WillOnce(Return(absl::NotFoundError("no such exam")));
  EXPECT_CALL(desk_, Release(_, "ex-3"))
      .WillOnce(Return(absl::PermissionDeniedError("not your claim")));
  rdg::v1::ClaimRequest request;
  rdg::v1::Claim claim;
  request.set_exam_id("ex-1");
  auto s = stub_->ClaimExam(harness_.Call().get(), request, &claim);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "claimed by reader-a-lab until 10:15");
  request.set_exam_id("ex-2");
  EXPECT_EQ(stub_->RenewClaim(harness_.Call().get(), request, &claim).error_code(),
            grpc::StatusCode::NOT_FOUND);
  request.set_exam_id("ex-3");
  s = stub_->ReleaseClaim(harness_.Call().get(), request, &claim);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), "not your claim");
}

TEST_F(ReadingServiceTest, ABusyIndexIsUnavailableWithARetryDelay) {
  EXPECT_CALL(desk_, Worklist(_, _)).WillOnce(Return(absl::UnavailableError("index busy")));
  rdg::v1::WorklistResponse response;
  auto s = stub_->GetWorklist(harness_.Call().get(), rdg::v1::WorklistRequest(), &response);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(testing::RetryDelaySeconds(s), kRetryDelaySeconds);
}

TEST_F(ReadingServiceTest, ARequestOverTheLimitsIsRefusedBeforeAnyDesk) {
  rdg::v1::EscalateRequest request;
  request.set_exam_id("ex-1");
  request.set_reason(std::string(kMaxReasonBytes + 1, 'x'));
  rdg::v1::Exam exam;
  auto s = stub_->EscalateExam(harness_.Call().get(), request, &exam);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("reason"));
  EXPECT_THAT(s.error_message(), ::testing::Not(HasSubstr("xxxx")));  // never quoted
}

TEST_F(ReadingServiceTest, TheWorklistFilterReachesTheDeskAndNamesComeFromTheConfig) {
  storage::WorklistPage page;
  storage::WorklistEntry entry;
  entry.exam.exam_id = "ex-1";
  entry.exam.origin_institution = "clinic-a1";
  entry.exam.exam_type = "CT";
  page.entries.push_back(entry);
  page.next_cursor = "next";
  EXPECT_CALL(desk_, Worklist(testing::IsPrincipal(kReader),
                              AllOf(Field(&storage::WorklistQuery::limit, 100),
                                    Field(&storage::WorklistQuery::after, "c1"))))
      .WillOnce(Return(page));
  rdg::v1::WorklistRequest request;
  request.set_page_token("c1");
  request.add_modalities("CT");
  rdg::v1::WorklistResponse response;
  ASSERT_TRUE(stub_->GetWorklist(harness_.Call().get(), request, &response).ok());
  ASSERT_EQ(response.items_size(), 1);
  EXPECT_EQ(response.items(0).exam().origin_institution_name(), "青山村卫生室");
  EXPECT_FALSE(response.items(0).has_claim());
  EXPECT_EQ(response.next_page_token(), "next");
}

TEST_F(ReadingServiceTest, TheDeskJudgesAClinicCallerAndItsRefusalIsKept) {
  harness_.CallsAs(kClinic);
  EXPECT_CALL(desk_, Priors(testing::IsPrincipal(kClinic), "ex-1", ""))
      .WillOnce(Return(absl::PermissionDeniedError("clinic certificates cannot read queues")));
  rdg::v1::PriorsRequest request;
  request.set_exam_id("ex-1");
  rdg::v1::PriorsResponse response;
  auto s = stub_->GetPriors(harness_.Call().get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(response.priors_size(), 0);
}

TEST_F(ReadingServiceTest, ReportsComeWithTheDeskTheReaderReadsAt) {
  worklist::ReportDesk::ExamReports reports;
  storage::ReportRecord version;
  version.report_id = "rp-1";
  version.exam_id = "ex-1";
  version.status = storage::ReportStatus::kFinal;
  reports.versions.push_back(version);
  reports.desk = "county-a/chest";
  EXPECT_CALL(reports_, Versions(testing::IsPrincipal(kReader), "ex-1", "second opinion"))
      .WillOnce(Return(reports));
  rdg::v1::GetReportsRequest request;
  request.set_exam_id("ex-1");
  request.set_break_glass_reason("second opinion");
  rdg::v1::GetReportsResponse response;
  ASSERT_TRUE(stub_->GetReports(harness_.Call().get(), request, &response).ok());
  EXPECT_EQ(response.desk(), "county-a/chest");
  ASSERT_EQ(response.versions_size(), 1);
  EXPECT_EQ(response.versions(0).report_id(), "rp-1");
}

}  // namespace
}  // namespace rdg::api
