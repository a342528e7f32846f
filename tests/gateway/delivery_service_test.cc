// The delivery service against a mock report desk and receipt signer: who reaches the desk,
// cursors, the receipt on every delivered report (and none when signing fails), the live watch.
#include "gateway/api/delivery_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "rdg/v1/delivery.grpc.pb.h"
#include "rdg/v1/report_canonical.h"
#include "storage/base/digest.h"
#include "tests/gateway/service_harness.h"
#include "tests/mocks/fake_clock.h"
#include "tests/mocks/mock_receipt_signer.h"
#include "tests/mocks/mock_report_desk.h"

namespace rdg::api {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using testing::kClinic;
using ::testing::Return;
using ::testing::StrictMock;

storage::ReportRecord Final(int64_t seq, const std::string& exam_id) {
  storage::ReportRecord r;
  r.seq = seq;
  r.report_id = "rp-" + std::to_string(seq);
  r.version = 1;
  r.exam_id = exam_id;
  r.status = storage::ReportStatus::kFinal;
  r.origin_institution = kClinic.institution;
  r.reader_user = "reader-a-rad";
  r.reader_institution = "county-a";
  r.canonical = "RDG-REPORT-V1\nexam_id:" + exam_id + "\n";
  r.accepted_at = absl::FromUnixSeconds(1'800'000'000);
  return r;
}

class DeliveryServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    harness_.CallsAs(kClinic);
    ON_CALL(signer_, Sign(_)).WillByDefault(Return(std::string("DER-SIGNATURE")));
    ON_CALL(reports_, ExamsOf(_, _)).WillByDefault(Return(worklist::MockReportDesk::ExamsById()));
  }
  void TearDown() override { harness_.Stop(); }

  testing::ServiceHarness harness_;
  FakeClock clock_;
  StrictMock<worklist::MockReportDesk> reports_;
  ::testing::NiceMock<signing::MockReceiptSigner> signer_;
  DeliveryServiceImpl service_{reports_, harness_.context(), "省远程诊断平台", signer_, clock_};
  std::unique_ptr<rdg::v1::DeliveryService::Stub> stub_ =
      rdg::v1::DeliveryService::NewStub(harness_.Serve(service_));
};

TEST_F(DeliveryServiceTest, AnUnauthenticatedCallerReachesNoReports) {
  harness_.CallsUnauthenticated();
  rdg::v1::PollReportsResponse poll;
  EXPECT_EQ(stub_->PollReports(harness_.Call().get(), {}, &poll).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  rdg::v1::AcknowledgeRequest ack;
  ack.set_report_id("rp-1");
  rdg::v1::AcknowledgeResponse acked;
  EXPECT_EQ(stub_->AcknowledgeReport(harness_.Call().get(), ack, &acked).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto ctx = harness_.Call();
  auto watch = stub_->WatchReports(ctx.get(), {});
  rdg::v1::DeliveredReport report;
  EXPECT_FALSE(watch->Read(&report));
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(DeliveryServiceTest, ACursorTheGatewayDidNotIssueIsRefusedBeforeTheDesk) {
  rdg::v1::WatchReportsRequest request;
  request.set_cursor("12; DROP TABLE reports");
  rdg::v1::PollReportsResponse poll;
  auto s = stub_->PollReports(harness_.Call().get(), request, &poll);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "cursor is not one this gateway issued");
  request.set_cursor("-1");
  EXPECT_EQ(stub_->PollReports(harness_.Call().get(), request, &poll).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(DeliveryServiceTest, EveryDeliveredReportCarriesTheGatewaysSignedReceipt) {
  EXPECT_CALL(reports_, Feed(testing::IsPrincipal(kClinic), 41, 100))
      .WillOnce(Return(std::vector<storage::ReportRecord>{Final(42, "ex-1")}));
  EXPECT_CALL(reports_, ExamsOf(testing::IsPrincipal(kClinic), _));
  std::string signed_bytes;
  EXPECT_CALL(signer_, Sign(_)).WillOnce([&](absl::string_view receipt) {
    signed_bytes = std::string(receipt);
    return std::string("DER-SIGNATURE");
  });
  rdg::v1::WatchReportsRequest request;
  request.set_cursor("41");
  rdg::v1::PollReportsResponse poll;
  ASSERT_TRUE(stub_->PollReports(harness_.Call().get(), request, &poll).ok());
  ASSERT_EQ(poll.reports_size(), 1);
  const auto& d = poll.reports(0);
  EXPECT_EQ(poll.next_cursor(), "42");
  EXPECT_EQ(d.platform_name(), "省远程诊断平台");
  EXPECT_EQ(d.reader_institution_name(), "县医院");
  EXPECT_EQ(d.receipt(), signed_bytes);
  EXPECT_EQ(d.receipt_signature(), "DER-SIGNATURE");
  // What the receipt vouches for: this report, these bytes, issued now.
  EXPECT_THAT(d.receipt(), HasSubstr("report_id: rp-42\n"));
  EXPECT_THAT(d.receipt(), HasSubstr("origin_institution: clinic-a1\n"));
  EXPECT_THAT(d.receipt(), HasSubstr("report_sha256: " + storage::ToHex(storage::Sha256::Of(
                                                             Final(42, "ex-1").canonical))));
  EXPECT_THAT(d.receipt(),
              HasSubstr("issued_at: " +
                        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", clock_.Now(), absl::UTCTimeZone())));
}

TEST_F(DeliveryServiceTest, WhenSigningFailsTheReportGoesWithoutAReceiptNeverAFalseOne) {
  EXPECT_CALL(reports_, Feed(_, 0, 100))
      .WillOnce(Return(std::vector<storage::ReportRecord>{Final(1, "ex-1")}));
  EXPECT_CALL(reports_, ExamsOf(_, _));
  EXPECT_CALL(signer_, Sign(_)).WillOnce(Return(absl::InternalError("key unreadable")));
  rdg::v1::PollReportsResponse poll;
  ASSERT_TRUE(stub_->PollReports(harness_.Call().get(), {}, &poll).ok());
  ASSERT_EQ(poll.reports_size(), 1);
  EXPECT_EQ(poll.reports(0).report().report_id(), "rp-1");
  EXPECT_TRUE(poll.reports(0).receipt().empty());
  EXPECT_TRUE(poll.reports(0).receipt_signature().empty());
}

TEST_F(DeliveryServiceTest, TheDesksNotFoundReachesTheClinicAsNotFound) {
  EXPECT_CALL(reports_, Acknowledge(testing::IsPrincipal(kClinic), "rp-9"))
      .WillOnce(Return(absl::NotFoundError("no report rp-9 for this clinic")));
  EXPECT_CALL(reports_, Latest(testing::IsPrincipal(kClinic), "ex-9"))
      .WillOnce(Return(absl::NotFoundError("no final report for exam ex-9")));
  rdg::v1::AcknowledgeRequest ack;
  ack.set_report_id("rp-9");
  rdg::v1::AcknowledgeResponse acked;
  EXPECT_EQ(stub_->AcknowledgeReport(harness_.Call().get(), ack, &acked).error_code(),
            grpc::StatusCode::NOT_FOUND);
  rdg::v1::GetReportRequest get;
  get.set_exam_id("ex-9");
  rdg::v1::DeliveredReport report;
  EXPECT_EQ(stub_->GetReport(harness_.Call().get(), get, &report).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(DeliveryServiceTest, AWatchSendsTheBacklogThenWhatTheDeskAnnouncesAndUnsubscribes) {
  absl::Mutex mu;
  std::function<void()> wake;
  EXPECT_CALL(reports_, Subscribe("clinic-a1", _))
      .WillOnce([&](const std::string&, std::function<void()> w) {
        absl::MutexLock lock(&mu);
        wake = std::move(w);
        return int64_t{7};
      });
  EXPECT_CALL(reports_, Feed(testing::IsPrincipal(kClinic), 0, 100))
      .WillOnce(Return(std::vector<storage::ReportRecord>{Final(1, "ex-1")}));
  EXPECT_CALL(reports_, Feed(testing::IsPrincipal(kClinic), 1, 100))
      .WillOnce(Return(std::vector<storage::ReportRecord>{Final(2, "ex-2")}));
  EXPECT_CALL(reports_, ExamsOf(_, _)).Times(2);
  EXPECT_CALL(reports_, Unsubscribe(7));

  auto ctx = harness_.Call();
  auto watch = stub_->WatchReports(ctx.get(), {});
  rdg::v1::DeliveredReport report;
  ASSERT_TRUE(watch->Read(&report));
  EXPECT_EQ(report.report().report_id(), "rp-1");
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(wake != nullptr);
    wake();  // the desk accepted a new report for this clinic
  }
  ASSERT_TRUE(watch->Read(&report));
  EXPECT_EQ(report.report().report_id(), "rp-2");
  EXPECT_EQ(report.cursor(), "2");
  ctx->TryCancel();
  EXPECT_FALSE(watch->Read(&report));
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(DeliveryServiceTest, AtShutdownOpenWatchesEndUnavailableAndNewOnesAreTurnedAway) {
  EXPECT_CALL(reports_, Subscribe("clinic-a1", _)).WillOnce(Return(int64_t{9}));
  EXPECT_CALL(reports_, Feed(testing::IsPrincipal(kClinic), 0, 100))
      .WillOnce(Return(std::vector<storage::ReportRecord>{Final(1, "ex-1")}));
  EXPECT_CALL(reports_, ExamsOf(_, _)).Times(1);
  EXPECT_CALL(reports_, Unsubscribe(9));

  auto ctx = harness_.Call();
  auto watch = stub_->WatchReports(ctx.get(), {});
  rdg::v1::DeliveredReport report;
  ASSERT_TRUE(watch->Read(&report));  // the watch is open and waiting for the desk

  service_.EndWatches();  // the gateway is shutting down
  EXPECT_FALSE(watch->Read(&report));
  const grpc::Status ended = watch->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(ended.error_message(), HasSubstr("shutting down"));

  // A watch that arrives during the shutdown never reaches the desk (a StrictMock).
  auto late_ctx = harness_.Call();
  auto late = stub_->WatchReports(late_ctx.get(), {});
  EXPECT_FALSE(late->Read(&report));
  EXPECT_EQ(late->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace rdg::api
