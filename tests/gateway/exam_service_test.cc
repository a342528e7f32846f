// The exam service (a clinic's own exams) against a mock index: roles, the no-existence-leak rule
// for other institutions' exams, audit before data, and error mapping.
#include "gateway/api/exam_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rdg/v1/ingest.grpc.pb.h"
#include "tests/gateway/service_harness.h"
#include "tests/gateway/stores_of.h"
#include "tests/mocks/fake_clock.h"
#include "tests/mocks/mock_blob_store.h"
#include "tests/mocks/mock_index_store.h"

namespace rdg::api {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::Field;
using ::testing::HasSubstr;
using testing::kAdmin;
using testing::kClinic;
using testing::kReader;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::Return;
using ::testing::StrictMock;

storage::ExamRecord ExamOf(const std::string& id, const std::string& origin) {
  storage::ExamRecord e;
  e.exam_id = id;
  e.origin_institution = origin;
  e.exam_type = "DX";
  return e;
}

class ExamServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { harness_.CallsAs(kClinic); }
  void TearDown() override { harness_.Stop(); }

  std::string DownloadError(const std::string& exam_id) {
    rdg::v1::DownloadExamRequest request;
    request.set_exam_id(exam_id);
    auto ctx = harness_.Call();
    auto stream = stub_->DownloadExam(ctx.get(), request);
    rdg::v1::ObjectChunk chunk;
    while (stream->Read(&chunk)) {
    }
    auto s = stream->Finish();
    return std::to_string(s.error_code()) + " " + s.error_message();
  }

  testing::ServiceHarness harness_;
  FakeClock clock_;
  StrictMock<storage::MockIndexStore> index_;
  StrictMock<storage::MockBlobStore> blobs_;
  ExamServiceImpl service_{testing::ExamServiceStores(index_), blobs_, harness_.context(), clock_};
  std::unique_ptr<rdg::v1::ExamService::Stub> stub_ =
      rdg::v1::ExamService::NewStub(harness_.Serve(service_));
};

TEST_F(ExamServiceTest, AClinicListsItsOwnExamsOnlyAndTheListingIsAudited) {
  storage::ExamPage page;
  page.exams.push_back(ExamOf("ex-1", "clinic-a1"));
  page.next_before_seq = 17;
  EXPECT_CALL(index_, ListExams(AllOf(Field(&storage::ExamQuery::origin_institution, "clinic-a1"),
                                      Field(&storage::ExamQuery::limit, 1000))))
      .WillOnce(Return(page));
  EXPECT_CALL(index_, AppendAudit(AllOf(Field(&storage::AuditRecord::action, "list_exams"),
                                        Field(&storage::AuditRecord::user, "clinic-a1"))))
      .WillOnce(Return(absl::OkStatus()));
  rdg::v1::ListExamsRequest request;
  request.set_page_size(50000);  // capped
  rdg::v1::ListExamsResponse response;
  ASSERT_TRUE(stub_->ListExams(harness_.Call().get(), request, &response).ok());
  ASSERT_EQ(response.exams_size(), 1);
  EXPECT_EQ(response.exams(0).origin_institution_name(), "青山村卫生室");
  EXPECT_EQ(response.next_page_token(), "17");
}

TEST_F(ExamServiceTest, ReadersAndAdministratorsListNothing) {
  for (const auth::Principal& who : {kReader, kAdmin}) {
    harness_.CallsAs(who);
    rdg::v1::ListExamsResponse response;
    auto s = stub_->ListExams(harness_.Call().get(), {}, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who.user;
  }
  harness_.CallsAs(kAdmin);  // admins see figures, not images
  EXPECT_EQ(DownloadError("ex-1").substr(0, 1),
            std::to_string(grpc::StatusCode::PERMISSION_DENIED));
}

TEST_F(ExamServiceTest, AnotherInstitutionsExamIsNotFoundAndNotAudited) {
  EXPECT_CALL(index_, GetExam("ex-2")).WillRepeatedly(Return(ExamOf("ex-2", "clinic-b7")));
  EXPECT_CALL(index_, GetExam("ex-none")).WillOnce(Return(std::nullopt));
  rdg::v1::GetExamRequest request;
  request.set_exam_id("ex-2");
  rdg::v1::GetExamResponse response;
  auto foreign = stub_->GetExam(harness_.Call().get(), request, &response);
  request.set_exam_id("ex-none");
  auto missing = stub_->GetExam(harness_.Call().get(), request, &response);
  // The same answer whether the exam exists elsewhere or not at all.
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(DownloadError("ex-2").substr(0, 1), std::to_string(grpc::StatusCode::NOT_FOUND));
}

TEST_F(ExamServiceTest, NoAuditNoData) {
  EXPECT_CALL(index_, GetExam("ex-1")).WillOnce(Return(ExamOf("ex-1", "clinic-a1")));
  EXPECT_CALL(index_, AppendAudit(Field(&storage::AuditRecord::action, "get_exam")))
      .WillOnce(Return(absl::UnavailableError("database is locked")));
  rdg::v1::GetExamRequest request;
  request.set_exam_id("ex-1");
  rdg::v1::GetExamResponse response;
  auto s = stub_->GetExam(harness_.Call().get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(response.has_exam());
}

TEST_F(ExamServiceTest, TheDatabasesOwnWordsStayInTheGatewaysLog) {
  // A failure of the gateway itself names tables, paths and SQL: the caller gets a reference to
  // quote, not the detail.
  EXPECT_CALL(index_, GetExam("ex-1"))
      .WillOnce(Return(absl::InternalError(
          "ERROR:  relation \"exams\" does not exist at /srv/rdg/data/index.sqlite")));
  rdg::v1::GetExamRequest request;
  request.set_exam_id("ex-1");
  rdg::v1::GetExamResponse response;
  auto s = stub_->GetExam(harness_.Call().get(), request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(s.error_message(), MatchesRegex("the gateway failed \\(reference [0-9a-f]{12}\\); "
                                              "its operators' log has the detail"));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("exams")));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("/srv")));
}

TEST_F(ExamServiceTest, APageTokenTheGatewayDidNotIssueIsInvalid) {
  rdg::v1::ListExamsRequest list;
  list.set_page_token("not-a-number");
  rdg::v1::ListExamsResponse listed;
  auto s = stub_->ListExams(harness_.Call().get(), list, &listed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "page_token is not one this gateway issued");

  EXPECT_CALL(index_, GetExam("ex-1")).WillOnce(Return(ExamOf("ex-1", "clinic-a1")));
  EXPECT_CALL(index_, AppendAudit(_)).WillOnce(Return(absl::OkStatus()));
  rdg::v1::GetExamRequest get;
  get.set_exam_id("ex-1");
  get.set_page_token("!!");
  rdg::v1::GetExamResponse got;
  EXPECT_EQ(stub_->GetExam(harness_.Call().get(), get, &got).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace rdg::api
