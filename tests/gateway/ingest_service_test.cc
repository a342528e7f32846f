// The ingest service's doors: only clinics upload; another institution's session is not found;
// a busy index is UNAVAILABLE (the client retries); limits are announced. The Ingestor is the real
// one over a strict mock index, so a refused caller provably touches nothing.
#include "gateway/api/ingest_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_replace.h"
#include "gateway/ingest/index_committer.h"
#include "gateway/ingest/ingestor.h"
#include "rdg/v1/ingest.grpc.pb.h"
#include "tests/gateway/service_harness.h"
#include "tests/gateway/stores_of.h"
#include "tests/mocks/fake_clock.h"
#include "tests/mocks/mock_blob_store.h"
#include "tests/mocks/mock_index_store.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::api {
namespace {

using testing::kAdmin;
using testing::kClinic;
using testing::kReader;
using ::testing::Return;
using ::testing::StrictMock;

rdg::v1::Limits TestLimits() {
  rdg::v1::Limits l;
  l.set_max_object_bytes(10 << 20);
  l.set_max_lab_message_bytes(1 << 20);
  l.set_max_chunk_bytes(1 << 20);
  l.set_max_open_uploads(10);
  l.set_upload_ttl_seconds(3600);
  return l;
}

rdg::v1::ParserConfig TestParsing() {
  rdg::v1::ParserConfig p;
  p.set_max_sequence_depth(64);
  p.set_max_elements(500000);
  return p;
}

class IngestServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { harness_.CallsAs(kClinic); }
  void TearDown() override { harness_.Stop(); }

  testing::TempDir dir_;
  testing::ServiceHarness harness_;
  FakeClock clock_;
  rdg::v1::Limits limits_ = TestLimits();
  rdg::v1::ParserConfig parsing_ = TestParsing();
  StrictMock<storage::MockIndexStore> index_;
  StrictMock<storage::MockBlobStore> blobs_;
  ingest::IndexCommitter committer_{index_, 8, &blobs_};
  ingest::Ingestor ingestor_{ingest::Ingestor::Options{limits_},
                             testing::IngestorStores(index_),
                             blobs_,
                             *storage::StagingArea::Create(dir_.Join("uploads")),
                             committer_,
                             clock_};
  ingest::UploadSlots slots_{/*max_total=*/4, /*max_per_institution=*/2};
  IngestServiceImpl service_{ingestor_, harness_.context(), slots_, limits_, parsing_, clock_};
  std::unique_ptr<rdg::v1::IngestService::Stub> stub_ =
      rdg::v1::IngestService::NewStub(harness_.Serve(service_));
};

TEST_F(IngestServiceTest, OnlyClinicsUploadAndOthersTouchNothing) {
  for (const auth::Principal& who : {kReader, kAdmin}) {
    harness_.CallsAs(who);
    rdg::v1::OpenUploadRequest open;
    open.set_size(10);
    rdg::v1::UploadStatus status;
    EXPECT_EQ(stub_->OpenUpload(harness_.Call().get(), open, &status).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << who.user;
    rdg::v1::GetUploadRequest get;
    get.set_session_id("up-1");
    EXPECT_EQ(stub_->GetUpload(harness_.Call().get(), get, &status).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    rdg::v1::IngestLimits limits;
    EXPECT_EQ(stub_->GetIngestLimits(harness_.Call().get(), {}, &limits).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);

    auto ctx = harness_.Call();
    auto upload = stub_->Upload(ctx.get(), &status);
    rdg::v1::UploadRequest first;
    first.mutable_open()->set_size(3);
    upload->Write(first);  // may fail once the gateway has answered
    upload->WritesDone();
    EXPECT_EQ(upload->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
}

TEST_F(IngestServiceTest, AnUnauthenticatedUploadIsRefused) {
  harness_.CallsUnauthenticated();
  rdg::v1::UploadStatus status;
  auto ctx = harness_.Call();
  auto upload = stub_->Upload(ctx.get(), &status);
  upload->WritesDone();
  auto s = upload->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(IngestServiceTest, SlotsHeldByStowRsCountAgainstTheClinicsUploads) {
  // Two STOW-RS requests of the clinic hold its share (2): its gRPC upload is told to retry, and
  // gets through once one of them ends.
  auto a = slots_.Acquire(kClinic.institution);
  auto b = slots_.Acquire(kClinic.institution);
  ASSERT_TRUE(a.ok() && b.ok());
  rdg::v1::UploadStatus status;
  auto ctx = harness_.Call();
  auto upload = stub_->Upload(ctx.get(), &status);
  upload->WritesDone();
  auto s = upload->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("per institution"));

  a->Release();
  ctx = harness_.Call();
  upload = stub_->Upload(ctx.get(), &status);
  upload->WritesDone();  // admitted now: an empty stream is refused for being empty
  s = upload->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  // The stream's slot goes with it (when the server's side of the call is done).
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (slots_.held_by(kClinic.institution) != 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(slots_.held_by(kClinic.institution), 1);
}

TEST_F(IngestServiceTest, AnotherInstitutionsSessionIsReportedLikeAMissingOne) {
  storage::UploadSessionRecord foreign;
  foreign.session_id = "up-1";
  foreign.institution = "clinic-b7";
  EXPECT_CALL(index_, GetSession("up-1")).WillOnce(Return(foreign));
  EXPECT_CALL(index_, GetSession("up-2")).WillOnce(Return(std::nullopt));
  rdg::v1::GetUploadRequest get;
  rdg::v1::UploadStatus status;
  get.set_session_id("up-1");
  auto a = stub_->GetUpload(harness_.Call().get(), get, &status);
  get.set_session_id("up-2");
  auto b = stub_->GetUpload(harness_.Call().get(), get, &status);
  EXPECT_EQ(a.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(b.error_code(), grpc::StatusCode::NOT_FOUND);
  // Word for word the same but for the id.
  EXPECT_EQ(absl::StrReplaceAll(a.error_message(), {{"up-1", "ID"}}),
            absl::StrReplaceAll(b.error_message(), {{"up-2", "ID"}}));
}

TEST_F(IngestServiceTest, ABusyIndexIsUnavailableSoTheClientRetries) {
  EXPECT_CALL(index_, GetSession("up-1"))
      .WillOnce(Return(absl::UnavailableError("database is locked")));
  rdg::v1::GetUploadRequest get;
  get.set_session_id("up-1");
  rdg::v1::UploadStatus status;
  auto s = stub_->GetUpload(harness_.Call().get(), get, &status);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(testing::RetryDelaySeconds(s), kRetryDelaySeconds);
}

TEST_F(IngestServiceTest, AClinicLearnsTheLimitsBeforeItSends) {
  rdg::v1::IngestLimits limits;
  ASSERT_TRUE(stub_->GetIngestLimits(harness_.Call().get(), {}, &limits).ok());
  EXPECT_EQ(limits.max_object_bytes(), 10 << 20);
  EXPECT_EQ(limits.max_lab_message_bytes(), 1 << 20);
  EXPECT_EQ(limits.max_sequence_depth(), 64);
  EXPECT_EQ(limits.max_elements(), 500000);
}

}  // namespace
}  // namespace rdg::api
