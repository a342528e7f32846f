// The report desk's rules on a submission, with the reading desk, the signature verifier and the
// index mocked: whose signature, which desk, what time, what is stored and who is woken.
#include "gateway/worklist/index_report_desk.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rdg/v1/report_canonical.h"
#include "tests/gateway/stores_of.h"
#include "tests/mocks/fake_clock.h"
#include "tests/mocks/mock_index_store.h"
#include "tests/mocks/mock_reading_desk.h"
#include "tests/mocks/mock_signature_verifier.h"

namespace rdg::worklist {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::Eq;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::Return;
using ::testing::StrictMock;

const auth::Principal kReader{"county-a", rdg::v1::READER, "reader-a-rad"};

storage::ExamRecord Exam() {
  storage::ExamRecord e;
  e.exam_id = "ex-1";
  e.origin_institution = "clinic-a1";
  e.exam_type = "DX";
  e.priority = storage::Priority::kRoutine;
  e.queue = "county-a/imaging";
  return e;
}

class ReportDeskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto* sla = config_.add_sla_policies();
    sla->set_exam_type("*");
    sla->set_priority(rdg::v1::ROUTINE);
    sla->set_critical_acknowledgement_minutes(30);
    sla_ = std::make_unique<routing::SlaTable>(config_);
    desk_ = std::make_unique<IndexReportDesk>(testing::ReportDeskStores(index_), reading_,
                                              verifier_, *sla_, clock_, absl::Minutes(10));
    ON_CALL(reading_, ExamInReadersQueues(_, "ex-1")).WillByDefault(Return(Exam()));
    ON_CALL(reading_, SigningDesk(_, "county-a/imaging")).WillByDefault(Return("chest"));
  }

  //! A FINAL report by kReader at desk "chest", signed now.
  rdg::v1::SubmitReportRequest Request(rdg::v1::ReportStatus status = rdg::v1::FINAL_REPORT) {
    rdg::v1::SubmitReportRequest r;
    auto* c = r.mutable_content();
    c->set_exam_id("ex-1");
    c->set_status(status);
    c->set_reader_user(kReader.user);
    c->set_reader_institution(kReader.institution);
    c->set_desk("chest");
    c->mutable_signed_at()->set_seconds(absl::ToUnixSeconds(clock_.Now()));
    c->set_findings("右下肺见斑片影。");
    c->set_impression("右下肺炎。");
    r.set_canonical_bytes(rdg::v1::CanonicalReportBytes(*c));
    if (status != rdg::v1::PRELIMINARY_REPORT) {
      r.mutable_signature()->set_format(rdg::v1::CMS_DETACHED_ECDSA_SHA256);
      r.mutable_signature()->set_signature("CMS");
      r.mutable_signature()->set_signer_certificate_pem("PEM");
    }
    return r;
  }
  static signing::CertificateSubject Signer(const std::string& cn, const std::string& ou = "reader",
                                            const std::string& o = "county-a") {
    return signing::CertificateSubject{o, ou, cn};
  }

  FakeClock clock_;
  rdg::v1::GatewayConfig config_;
  std::unique_ptr<routing::SlaTable> sla_;
  StrictMock<storage::MockIndexStore> index_;
  ::testing::NiceMock<MockReadingDesk> reading_;
  StrictMock<signing::MockSignatureVerifier> verifier_;
  std::unique_ptr<IndexReportDesk> desk_;
};

TEST_F(ReportDeskTest, AFinalReportSignedByTheCallerIsStoredAuditedAndAnnounced) {
  const auto request = Request();
  EXPECT_CALL(verifier_, Verify(rdg::v1::CMS_DETACHED_ECDSA_SHA256, Eq(request.canonical_bytes()),
                                Eq("CMS"), Eq("PEM"), clock_.Now()))
      .WillOnce(Return(Signer(kReader.user)));
  storage::ReportRecord stored;
  EXPECT_CALL(index_,
              AddReport(AllOf(Field(&storage::ReportRecord::exam_id, "ex-1"),
                              Field(&storage::ReportRecord::reader_user, kReader.user),
                              Field(&storage::ReportRecord::canonical, request.canonical_bytes()),
                              Field(&storage::ReportRecord::signature, "CMS")),
                        clock_.Now()))
      .WillOnce([&](storage::ReportRecord r, absl::Time) {
        r.report_id = "rp-1";
        r.origin_institution = "clinic-a1";
        stored = r;
        return r;
      });
  EXPECT_CALL(index_, AppendAudit(AllOf(Field(&storage::AuditRecord::action, "submit_report"),
                                        Field(&storage::AuditRecord::detail, "rp-1"))))
      .WillOnce(Return(absl::OkStatus()));
  int woken_a1 = 0, woken_b7 = 0;
  desk_->Subscribe("clinic-a1", [&] { ++woken_a1; });
  desk_->Subscribe("clinic-b7", [&] { ++woken_b7; });
  auto r = desk_->Submit(kReader, request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->report_id, "rp-1");
  EXPECT_FALSE(stored.acknowledge_by.has_value());  // not critical
  EXPECT_EQ(woken_a1, 1);
  EXPECT_EQ(woken_b7, 0);  // another clinic hears nothing
}

TEST_F(ReportDeskTest, AReportSignedBySomeoneElseIsRefusedAndNothingIsStored) {
  EXPECT_CALL(verifier_, Verify(_, _, _, _, _)).WillOnce(Return(Signer("reader-a-lab")));
  auto r = desk_->Submit(kReader, Request());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(), HasSubstr("signed by reader-a-lab"));
  // A clinic certificate of the same name is not a reader's signature either.
  EXPECT_CALL(verifier_, Verify(_, _, _, _, _)).WillOnce(Return(Signer(kReader.user, "clinic")));
  EXPECT_EQ(desk_->Submit(kReader, Request()).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(ReportDeskTest, ASignatureThatDoesNotVerifyIsInvalidWithTheVerifiersReason) {
  EXPECT_CALL(verifier_, Verify(_, _, _, _, _))
      .WillOnce(Return(absl::InvalidArgumentError("the signer certificate is not from the CA")));
  auto r = desk_->Submit(kReader, Request());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("not from the CA"));
}

TEST_F(ReportDeskTest, TheReportMustNameTheReadersDeskForTheExam) {
  auto request = Request();
  request.mutable_content()->set_desk("");
  request.set_canonical_bytes(rdg::v1::CanonicalReportBytes(request.content()));
  auto r = desk_->Submit(kReader, request);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("desk \"chest\""));

  request.mutable_content()->set_desk("cardiology");
  request.set_canonical_bytes(rdg::v1::CanonicalReportBytes(request.content()));
  r = desk_->Submit(kReader, request);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(), HasSubstr("their desk for it: \"chest\""));
}

TEST_F(ReportDeskTest, ASignatureDatedOutsideTheSkewIsRefusedBeforeVerifying) {
  auto request = Request();
  request.mutable_content()->mutable_signed_at()->set_seconds(
      absl::ToUnixSeconds(clock_.Now() - absl::Minutes(11)));
  request.set_canonical_bytes(rdg::v1::CanonicalReportBytes(request.content()));
  auto r = desk_->Submit(kReader, request);  // StrictMock verifier: not called
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("from the gateway's clock"));
}

TEST_F(ReportDeskTest, BytesThatAreNotTheContentsCanonicalFormAreRefused) {
  auto request = Request();
  request.set_canonical_bytes(request.canonical_bytes() + "extra: line\n");
  EXPECT_EQ(desk_->Submit(kReader, request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ReportDeskTest, AnExamOutsideTheReadersQueuesIsNotFoundAndNothingElseIsAsked) {
  EXPECT_CALL(reading_, ExamInReadersQueues(_, "ex-1"))
      .WillOnce(Return(absl::NotFoundError("no exam ex-1 in your queues")));
  EXPECT_CALL(reading_, SigningDesk(_, _)).Times(0);
  EXPECT_EQ(desk_->Submit(kReader, Request()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ReportDeskTest, APreliminaryReportNeedsNoSignatureAndWakesNoClinic) {
  EXPECT_CALL(index_, AddReport(_, _)).WillOnce([](storage::ReportRecord r, absl::Time) {
    r.report_id = "rp-2";
    return r;
  });
  EXPECT_CALL(index_, AppendAudit(_)).WillOnce(Return(absl::OkStatus()));
  int woken = 0;
  desk_->Subscribe("clinic-a1", [&] { ++woken; });
  auto r = desk_->Submit(kReader, Request(rdg::v1::PRELIMINARY_REPORT));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(woken, 0);
  // A FINAL without a signature is refused.
  auto unsigned_final = Request();
  unsigned_final.clear_signature();
  EXPECT_THAT(desk_->Submit(kReader, unsigned_final).status().message(),
              HasSubstr("must be signed"));
}

TEST_F(ReportDeskTest, ACriticalFinalMustBeAcknowledgedWithinThePolicysTarget) {
  auto request = Request();
  request.mutable_content()->set_critical(true);
  request.set_canonical_bytes(rdg::v1::CanonicalReportBytes(request.content()));
  EXPECT_CALL(verifier_, Verify(_, _, _, _, _)).WillOnce(Return(Signer(kReader.user)));
  std::optional<absl::Time> acknowledge_by;
  EXPECT_CALL(index_, AddReport(_, _)).WillOnce([&](storage::ReportRecord r, absl::Time) {
    acknowledge_by = r.acknowledge_by;
    return r;
  });
  EXPECT_CALL(index_, AppendAudit(_)).WillOnce(Return(absl::OkStatus()));
  ASSERT_TRUE(desk_->Submit(kReader, request).ok());
  ASSERT_TRUE(acknowledge_by.has_value());
  EXPECT_EQ(*acknowledge_by, clock_.Now() + absl::Minutes(30));
}

const auth::Principal kClinicA1{"clinic-a1", rdg::v1::CLINIC, "clinic-a1"};
const auth::Principal kClinicB7{"clinic-b7", rdg::v1::CLINIC, "clinic-b7"};

TEST_F(ReportDeskTest, AnotherClinicsExamAnswersLikeAMissingOneAndNothingIsRead) {
  EXPECT_CALL(index_, GetExam("ex-1")).WillRepeatedly(Return(Exam()));  // clinic-a1's exam
  EXPECT_CALL(index_, GetExam("ex-none")).WillOnce(Return(std::nullopt));
  auto foreign = desk_->Latest(kClinicB7, "ex-1");  // StrictMock: no ListReports, no audit
  auto missing = desk_->Latest(kClinicB7, "ex-none");
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ReportDeskTest, TheOriginClinicGetsTheLatestSignedVersionAndTheReadIsAudited) {
  storage::ReportRecord final_report, preliminary;
  final_report.report_id = "rp-1";
  final_report.status = storage::ReportStatus::kFinal;
  preliminary.report_id = "rp-2";
  preliminary.status = storage::ReportStatus::kPreliminary;
  EXPECT_CALL(index_, GetExam("ex-1")).WillOnce(Return(Exam()));
  EXPECT_CALL(index_, ListReports("ex-1"))
      .WillOnce(Return(std::vector<storage::ReportRecord>{final_report, preliminary}));
  EXPECT_CALL(index_, MarkDelivered(std::vector<std::string>{"rp-1"}, clock_.Now()))
      .WillOnce(Return(absl::OkStatus()));
  EXPECT_CALL(index_, AppendAudit(AllOf(Field(&storage::AuditRecord::action, "get_report"),
                                        Field(&storage::AuditRecord::detail, "rp-1"))))
      .WillOnce(Return(absl::OkStatus()));
  auto r = desk_->Latest(kClinicA1, "ex-1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->report_id, "rp-1");  // never the preliminary
}

TEST_F(ReportDeskTest, OnlyClinicsReceiveReports) {
  // A reader or an administrator reaches no feed, no acknowledgement, no report (StrictMock).
  for (const auth::Principal& who :
       {kReader, auth::Principal{"province", rdg::v1::ADMIN, "admin"}}) {
    EXPECT_EQ(desk_->Feed(who, 0, 100).status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(desk_->Acknowledge(who, "rp-1").status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(desk_->Latest(who, "ex-1").status().code(), absl::StatusCode::kPermissionDenied);
  }
}

}  // namespace
}  // namespace rdg::worklist
