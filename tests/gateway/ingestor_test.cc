#include "gateway/ingest/ingestor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <tuple>

#include "storage/file_blob_store.h"
#include "storage/formats/dicom_parser.h"
#include "storage/sqlite_index_store.h"
#include "tests/gateway/stores_of.h"
#include "tests/mocks/dicom_builder.h"
#include "tests/mocks/fake_clock.h"
#include "tests/mocks/mock_blob_store.h"
#include "tests/mocks/mock_index_store.h"
#include "tests/mocks/temp_dir.h"
#include "tests/mocks/test_index.h"

namespace rdg::ingest {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using ::testing::NiceMock;
using ::testing::Return;

const auth::Principal kClinicA{"clinic-a1", rdg::v1::CLINIC, "clinic-a1"};
const auth::Principal kClinicB{"clinic-b1", rdg::v1::CLINIC, "clinic-b1"};

std::string Sha(const std::string& bytes) {
  storage::Sha256 h;
  h.Update(bytes);
  return storage::ToRaw(h.Finish());
}

rdg::v1::UploadRequest OpenMessage(const std::string& bytes,
                                   rdg::v1::ObjectKind kind = rdg::v1::DICOM) {
  rdg::v1::UploadRequest r;
  r.mutable_open()->set_kind(kind);
  r.mutable_open()->set_size(static_cast<int64_t>(bytes.size()));
  r.mutable_open()->set_sha256(Sha(bytes));
  r.mutable_open()->set_priority(rdg::v1::STAT);
  return r;
}

//! Regular files under `dir`, but for the blob store's empty file of hold locks.
size_t FilesUnder(const std::string& dir) {
  size_t n = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    n += e.is_regular_file() && e.path().filename() != "holds";
  }
  return n;
}

rdg::v1::Limits DefaultLimits() {
  rdg::v1::Limits l;
  l.set_max_object_bytes(10 << 20);
  l.set_max_chunk_bytes(1 << 20);
  l.set_max_open_uploads(10);
  l.set_upload_ttl_seconds(3600);
  return l;
}

//! An Ingestor over a real SQLite index and blob store in a temporary directory.
class IngestorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(formats::InitDicomToolkit().ok()); }
  void SetUp() override {
    ct_ = testing::ReadFileBytes(std::string(RDG_PYDICOM_FILES) + "/CT_small.dcm");
    index_ = testing::OpenTestIndex(dir_);
    ASSERT_NE(index_, nullptr);
    blobs_ = *storage::FileBlobStore::Create(dir_.Join("blobs"));
    committer_ = std::make_unique<IndexCommitter>(*index_, 64, blobs_.get());
    ingestor_ = std::make_unique<Ingestor>(
        Ingestor::Options{DefaultLimits()}, testing::IngestorStores(*index_), *blobs_,
        *storage::StagingArea::Create(dir_.Join("uploads")), *committer_, clock_);
  }
  //! Nothing of a rejected upload may remain: no blob, no staged bytes, no session, no exam.
  void ExpectNoTrace() {
    EXPECT_EQ(FilesUnder(dir_.Join("blobs")), 0u);
    EXPECT_EQ(FilesUnder(dir_.Join("uploads")), 0u);
    EXPECT_TRUE(index_->ListSessions()->empty());
    storage::ExamQuery q;
    q.origin_institution = kClinicA.institution;
    EXPECT_TRUE(index_->ListExams(q)->exams.empty());
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::string ct_;
  std::unique_ptr<storage::IndexStore> index_;
  std::unique_ptr<storage::FileBlobStore> blobs_;
  std::unique_ptr<IndexCommitter> committer_;
  std::unique_ptr<Ingestor> ingestor_;
};

TEST_F(IngestorTest, OneShotUploadIsStoredAndIndexed) {
  auto a = ingestor_->Attach(kClinicA, OpenMessage(ct_));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(a->handle->Append(0, ct_).ok());
  auto st = a->handle->Commit();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->state(), rdg::v1::COMMITTED);
  EXPECT_FALSE(st->committed().duplicate());
  auto exam = *index_->GetExam(st->committed().exam_id());
  ASSERT_TRUE(exam.has_value());
  EXPECT_EQ(exam->priority, storage::Priority::kStat);
  EXPECT_EQ(exam->exam_type, "CT");
  EXPECT_EQ(exam->patient.patient_id, "1CT1");
  EXPECT_EQ(FilesUnder(dir_.Join("uploads")), 0u);
  storage::Sha256 h;
  h.Update(ct_);
  EXPECT_EQ(testing::ReadFileBytes(blobs_->PathOf(h.Finish())), ct_);
}

TEST_F(IngestorTest, SameContentAgainIsAnsweredWithoutUpload) {
  auto a = *ingestor_->Attach(kClinicA, OpenMessage(ct_));
  ASSERT_TRUE(a.handle->Append(0, ct_).ok());
  auto first = *a.handle->Commit();
  auto again = ingestor_->Attach(kClinicA, OpenMessage(ct_));
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(again->already_stored.has_value());
  EXPECT_TRUE(again->already_stored->committed().duplicate());
  EXPECT_EQ(again->already_stored->committed().exam_id(), first.committed().exam_id());
  // Another clinic uploading the same bytes gets its own exam (and learns nothing of the first).
  auto other = *ingestor_->Attach(kClinicB, OpenMessage(ct_));
  ASSERT_NE(other.handle, nullptr);
  ASSERT_TRUE(other.handle->Append(0, ct_).ok());
  auto b = *other.handle->Commit();
  EXPECT_NE(b.committed().exam_id(), first.committed().exam_id());
  EXPECT_FALSE(b.committed().duplicate());
}

TEST_F(IngestorTest, ResumesFromCommittedOffsetAfterDetach) {
  rdg::v1::OpenUploadRequest open = OpenMessage(ct_).open();
  auto opened = ingestor_->Open(kClinicA, open, /*persist=*/true);
  ASSERT_TRUE(opened.ok()) << opened.status();
  rdg::v1::UploadRequest first;
  first.set_session_id(opened->session_id());
  const size_t half = ct_.size() / 2;
  {
    auto a = *ingestor_->Attach(kClinicA, first);
    ASSERT_TRUE(a.handle->Append(0, ct_.substr(0, half)).ok());
    EXPECT_EQ(a.handle->Detach().committed_offset(), static_cast<int64_t>(half));
  }
  EXPECT_EQ(ingestor_->Status(kClinicA, opened->session_id())->committed_offset(),
            static_cast<int64_t>(half));
  EXPECT_TRUE(absl::IsNotFound(ingestor_->Status(kClinicB, opened->session_id()).status()));
  // Opening the same content again finds the same session and its offset.
  EXPECT_EQ(ingestor_->Open(kClinicA, open, true)->session_id(), opened->session_id());

  auto a = *ingestor_->Attach(kClinicA, first);
  EXPECT_EQ(a.handle->committed_offset(), static_cast<int64_t>(half));
  // A gap is refused with the offset to resume from; an overlap is skipped.
  auto gap = a.handle->Append(static_cast<int64_t>(half) + 10, "x");
  EXPECT_TRUE(absl::IsFailedPrecondition(gap));
  EXPECT_THAT(gap.message(), HasSubstr(std::to_string(half)));
  ASSERT_TRUE(a.handle->Append(static_cast<int64_t>(half) - 100, ct_.substr(half - 100)).ok());
  auto st = a.handle->Commit();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_TRUE(index_->ListSessions()->empty());
}

TEST_F(IngestorTest, OneStreamPerSession) {
  auto opened = *ingestor_->Open(kClinicA, OpenMessage(ct_).open(), true);
  rdg::v1::UploadRequest first;
  first.set_session_id(opened.session_id());
  EXPECT_FALSE(ingestor_->Status(kClinicA, opened.session_id())->in_use());
  auto held = *ingestor_->Attach(kClinicA, first);
  EXPECT_TRUE(absl::IsAborted(ingestor_->Attach(kClinicA, first).status()));
  // Status and Open say so, so that a resuming client waits instead of streaming in vain.
  EXPECT_TRUE(ingestor_->Status(kClinicA, opened.session_id())->in_use());
  EXPECT_TRUE(ingestor_->Open(kClinicA, OpenMessage(ct_).open(), true)->in_use());
  held.handle->Detach();
  EXPECT_FALSE(ingestor_->Status(kClinicA, opened.session_id())->in_use());
  EXPECT_TRUE(ingestor_->Attach(kClinicA, first).ok());
}

TEST_F(IngestorTest, DigestMismatchLeavesNoTrace) {
  rdg::v1::UploadRequest open = OpenMessage(ct_);
  std::string corrupted = ct_;
  corrupted[corrupted.size() - 1] ^= 1;
  auto a = *ingestor_->Attach(kClinicA, open);
  ASSERT_TRUE(a.handle->Append(0, corrupted).ok());
  auto st = a.handle->Commit();
  EXPECT_TRUE(absl::IsInvalidArgument(st.status()));
  EXPECT_THAT(st.status().message(), HasSubstr("SHA-256"));
  ExpectNoTrace();
}

TEST_F(IngestorTest, NonDicomLeavesNoTrace) {
  const std::string garbage(5000, 'g');
  auto a = *ingestor_->Attach(kClinicA, OpenMessage(garbage));
  ASSERT_TRUE(a.handle->Append(0, garbage).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(a.handle->Commit().status()));
  ExpectNoTrace();
}

TEST_F(IngestorTest, LimitsAndBadOpens) {
  std::string big(11 << 20, 'x');
  auto r = ingestor_->Attach(kClinicA, OpenMessage(big));
  EXPECT_TRUE(absl::IsResourceExhausted(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("limits.max_object_bytes"));
  rdg::v1::UploadRequest bad = OpenMessage(ct_);
  bad.mutable_open()->set_sha256("short");
  EXPECT_TRUE(absl::IsInvalidArgument(ingestor_->Attach(kClinicA, bad).status()));
  bad = OpenMessage(ct_);
  bad.mutable_open()->set_kind(rdg::v1::OBJECT_KIND_UNSPECIFIED);
  EXPECT_TRUE(absl::IsInvalidArgument(ingestor_->Attach(kClinicA, bad).status()));
  auto a = *ingestor_->Attach(kClinicA, OpenMessage(ct_));
  EXPECT_TRUE(absl::IsInvalidArgument(a.handle->Append(0, ct_ + "tail")));
  EXPECT_TRUE(absl::IsFailedPrecondition(a.handle->Commit().status()));  // incomplete
}

TEST_F(IngestorTest, TooManyOpenSessions) {
  for (int i = 0; i < 10; ++i) {
    std::string bytes = ct_ + std::string(static_cast<size_t>(i + 1), ' ');
    ASSERT_TRUE(ingestor_->Open(kClinicA, OpenMessage(bytes).open(), true).ok());
  }
  auto r = ingestor_->Open(kClinicA, OpenMessage(ct_).open(), true);
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();  // passes: clients retry
  EXPECT_THAT(r.status().message(), HasSubstr("retry later"));
}

TEST_F(IngestorTest, RecoverRemovesOrphansAndExpiredSessions) {
  std::ofstream(dir_.Join("uploads/up-orphan.part")) << "half an object";
  auto opened = *ingestor_->Open(kClinicA, OpenMessage(ct_).open(), true);
  ASSERT_TRUE(ingestor_->Recover().ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.Join("uploads/up-orphan.part")));
  EXPECT_EQ(index_->ListSessions()->size(), 1u);
  clock_.Advance(absl::Hours(2));  // past upload_ttl_seconds
  EXPECT_EQ(*ingestor_->ExpireSessions(), 1);
  EXPECT_TRUE(absl::IsNotFound(ingestor_->Status(kClinicA, opened.session_id()).status()));
}

// What was seen: a transient failure while committing threw the staged bytes away, so a van on a
// slow link started over. Now the bytes and the session stay, and a resume commits them.
TEST_F(IngestorTest, TransientCommitFailureKeepsTheUploadForAResume) {
  NiceMock<storage::MockBlobStore> blobs;
  EXPECT_CALL(blobs, Adopt(_, _))
      .WillOnce(Return(absl::UnavailableError("link: No space left on device")));
  IndexCommitter failing_commits(*index_, 8, &blobs);
  Ingestor failing(Ingestor::Options{DefaultLimits()}, testing::IngestorStores(*index_), blobs,
                   *storage::StagingArea::Create(dir_.Join("uploads")), failing_commits, clock_);
  auto a = *failing.Attach(kClinicA, OpenMessage(ct_));
  ASSERT_TRUE(a.handle->Append(0, ct_).ok());
  auto failed = a.handle->Commit();
  EXPECT_TRUE(absl::IsUnavailable(failed.status())) << failed.status();
  EXPECT_THAT(failed.status().message(), HasSubstr("retry shortly to resume"));
  auto sessions = *index_->ListSessions();
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(FilesUnder(dir_.Join("blobs")), 0u);

  // Space is back: the resume needs no byte, only the commit.
  rdg::v1::UploadRequest resume;
  resume.set_session_id(sessions[0].session_id);
  auto b = ingestor_->Attach(kClinicA, resume);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->handle->committed_offset(), static_cast<int64_t>(ct_.size()));
  auto st = b->handle->Commit();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_FALSE(st->committed().duplicate());
  EXPECT_EQ(FilesUnder(dir_.Join("uploads")), 0u);
  EXPECT_EQ(FilesUnder(dir_.Join("blobs")), 1u);
  EXPECT_TRUE(index_->ListSessions()->empty());
}

TEST_F(IngestorTest, FailingIndexCommitRemovesTheBlobAndKeepsTheBytes) {
  NiceMock<storage::MockIndexStore> index;
  ON_CALL(index, FindObjectByContent(_, _)).WillByDefault(Return(std::nullopt));
  ON_CALL(index, FindSession(_, _, _)).WillByDefault(Return(std::nullopt));
  ON_CALL(index, CountSessions(_)).WillByDefault(Return(0));
  ON_CALL(index, FindObject(_, _)).WillByDefault(Return(std::nullopt));
  ON_CALL(index, IsBlobReferenced(_)).WillByDefault(Return(false));
  EXPECT_CALL(index, CommitObjects(_)).WillOnce([](absl::Span<const storage::NewObject> b) {
    return std::vector<absl::StatusOr<storage::CommitOutcome>>(
        b.size(), absl::UnavailableError("sqlite: database is locked"));
  });
  EXPECT_CALL(index, CreateSession(_, _)).WillOnce(Return(absl::OkStatus()));  // kept for resume
  IndexCommitter committer(index, 8, blobs_.get());
  Ingestor ingestor(Ingestor::Options{DefaultLimits()}, testing::IngestorStores(index), *blobs_,
                    *storage::StagingArea::Create(dir_.Join("uploads")), committer, clock_);
  auto a = *ingestor.Attach(kClinicA, OpenMessage(ct_));
  ASSERT_TRUE(a.handle->Append(0, ct_).ok());
  EXPECT_TRUE(absl::IsUnavailable(a.handle->Commit().status()));
  EXPECT_EQ(FilesUnder(dir_.Join("blobs")), 0u);    // nothing unindexed stays in the store
  EXPECT_EQ(FilesUnder(dir_.Join("uploads")), 1u);  // the bytes wait for the resume
}

// What was seen: the session expiry check and the delete were not done under one lock, so an
// expiring session could be removed under a stream that had just resumed it.
TEST_F(IngestorTest, ExpiryLeavesASessionAStreamHoldsAlone) {
  auto opened = *ingestor_->Open(kClinicA, OpenMessage(ct_).open(), true);
  rdg::v1::UploadRequest resume;
  resume.set_session_id(opened.session_id());
  auto held = ingestor_->Attach(kClinicA, resume);
  ASSERT_TRUE(held.ok()) << held.status();
  clock_.Advance(absl::Hours(2));  // past upload_ttl_seconds while the stream holds it
  EXPECT_EQ(*ingestor_->ExpireSessions(), 0);
  ASSERT_TRUE(held->handle->Append(0, ct_).ok());
  auto st = held->handle->Commit();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_FALSE(st->committed().duplicate());
  EXPECT_EQ(FilesUnder(dir_.Join("uploads")), 0u);
}

// What was seen: "object kind  is not accepted" (an empty name) and "the object is 2.0 GiB; …
// at most 2.0 GiB".
TEST_F(IngestorTest, RefusalsNameTheKindAndTheExactSizes) {
  rdg::v1::UploadRequest unnamed = OpenMessage(ct_);
  unnamed.mutable_open()->set_kind(static_cast<rdg::v1::ObjectKind>(77));
  auto r = ingestor_->Attach(kClinicA, unnamed);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("object kind 77 is not accepted"));
  rdg::v1::UploadRequest unspecified = OpenMessage(ct_);
  unspecified.mutable_open()->set_kind(rdg::v1::OBJECT_KIND_UNSPECIFIED);
  r = ingestor_->Attach(kClinicA, unspecified);
  EXPECT_THAT(r.status().message(), HasSubstr("object kind OBJECT_KIND_UNSPECIFIED"));

  rdg::v1::Limits limits = DefaultLimits();
  limits.set_max_object_bytes(int64_t{2} << 30);
  Ingestor two_gib(Ingestor::Options{limits}, testing::IngestorStores(*index_), *blobs_,
                   *storage::StagingArea::Create(dir_.Join("uploads")), *committer_, clock_);
  rdg::v1::UploadRequest just_over = OpenMessage(ct_);
  just_over.mutable_open()->set_size((int64_t{2} << 30) + 2);
  r = two_gib.Attach(kClinicA, just_over);
  EXPECT_TRUE(absl::IsResourceExhausted(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("2147483650 bytes"));
  EXPECT_THAT(r.status().message(), HasSubstr("at most 2147483648 bytes (2.0 GiB)"));
}

TEST_F(IngestorTest, ContentRefusalsStillLeaveNoTrace) {
  const std::string nested =
      testing::Part10(testing::MinimalDataset() + testing::NestedSequences(20000, false));
  auto a = *ingestor_->Attach(kClinicA, OpenMessage(nested));
  ASSERT_TRUE(a.handle->Append(0, nested).ok());
  auto st = a.handle->Commit();
  EXPECT_TRUE(absl::IsInvalidArgument(st.status())) << st.status();
  EXPECT_THAT(st.status().message(), HasSubstr("nests sequences"));
  ExpectNoTrace();
}

}  // namespace
}  // namespace rdg::ingest

namespace rdg::ingest {
namespace {

TEST_F(IngestorTest, NewExamIsRoutedInTheAcknowledgingTransaction) {
  rdg::v1::GatewayConfig config;
  auto* inst = config.add_institutions();
  inst->set_id("clinic-a1");
  inst->set_community("county-a");
  config.set_fallback_queue("province/unrouted");
  auto* rule = config.add_routing_rules();
  rule->set_name("county-a-imaging");
  rule->add_origin_communities("county-a");
  rule->add_exam_types("CT");
  rule->set_queue("county-a/imaging");
  auto* sla = config.add_sla_policies();
  sla->set_exam_type("*");
  sla->set_priority(rdg::v1::STAT);
  sla->set_received_to_final_minutes(30);
  routing::Router router(config);
  routing::SlaTable table(config);
  Ingestor ingestor(Ingestor::Options{DefaultLimits(), &router, &table},
                    testing::IngestorStores(*index_), *blobs_,
                    *storage::StagingArea::Create(dir_.Join("uploads")), *committer_, clock_);
  auto a = *ingestor.Attach(kClinicA, OpenMessage(ct_));  // requested priority STAT
  ASSERT_TRUE(a.handle->Append(0, ct_).ok());
  auto st = a.handle->Commit();
  ASSERT_TRUE(st.ok()) << st.status();
  auto exam = **index_->GetExam(st->committed().exam_id());
  EXPECT_EQ(exam.state, storage::ExamState::kRouted);
  EXPECT_EQ(exam.queue, "county-a/imaging");
  EXPECT_EQ(exam.priority, storage::Priority::kStat);
  EXPECT_EQ(exam.sla_due_at, clock_.Now() + absl::Minutes(30));
  auto events = *index_->ListEvents(exam.exam_id);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].state, storage::ExamState::kReceived);
  EXPECT_EQ(events[0].actor, "clinic-a1");
  EXPECT_EQ(events[1].state, storage::ExamState::kRouted);
  EXPECT_EQ(events[1].actor, "system");
  EXPECT_EQ(events[1].detail, "rule county-a-imaging -> county-a/imaging");
}

// --- ECG waveforms and HL7 lab messages ---------------------------------------------------------

//! An ORU^R01 with one potassium result; `obx_first` puts the OBX before its OBR (invalid).
std::string LabMessage(const std::string& control_id, const std::string& potassium,
                       const std::string& flag, bool obx_first = false) {
  const std::string obr = "OBR|1|PL-1|F-" + control_id + "|LYTES^Electrolytes|||20261122083000\r";
  const std::string obx =
      "OBX|1|NM|2823-3^Potassium^LN||" + potassium + "|mmol/L|3.5-5.3|" + flag + "|||F\r";
  return "MSH|^~\\&|LIS|CLINIC-A1|RDG|COUNTY-A|20261122083000||ORU^R01|" + control_id +
         "|P|2.5.1\rPID|1||PAT-1^^^CLINIC^MR||Wang^Fang||19900307|F\r" +
         (obx_first ? obx + obr : obr + obx);
}

class LabIngestTest : public IngestorTest {
 protected:
  void SetUp() override {
    IngestorTest::SetUp();
    if (HasFatalFailure()) return;  // no index
    rdg::v1::GatewayConfig config;
    auto* rule = config.add_critical_values();
    rule->set_code("2823-3");
    rule->set_above(6.2);
    Ingestor::Options options{DefaultLimits()};
    options.limits.set_max_lab_message_bytes(4096);
    options.critical = parsing::CriticalValueTable(config.critical_values());
    ingestor_ = std::make_unique<Ingestor>(options, testing::IngestorStores(*index_), *blobs_,
                                           *storage::StagingArea::Create(dir_.Join("uploads")),
                                           *committer_, clock_);
  }
  absl::StatusOr<rdg::v1::UploadStatus> Upload(const std::string& bytes, rdg::v1::ObjectKind kind) {
    auto request = OpenMessage(bytes, kind);
    request.mutable_open()->set_priority(rdg::v1::ROUTINE);
    auto a = ingestor_->Attach(kClinicA, request);
    if (!a.ok()) return a.status();
    if (a->already_stored) return *a->already_stored;
    if (auto s = a->handle->Append(0, bytes); !s.ok()) return s;
    return a->handle->Commit();
  }
};

TEST_F(LabIngestTest, LabMessageIsIndexedWithItsResultsAndAcknowledged) {
  const std::string msg = LabMessage("MSG-1", "4.1", "N");
  auto st = Upload(msg, rdg::v1::HL7V2_LAB);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->hl7_ack().code(), "AA");
  EXPECT_THAT(st->hl7_ack().message(), HasSubstr("\rMSA|AA|MSG-1"));
  auto exam = **index_->GetExam(st->committed().exam_id());
  EXPECT_EQ(exam.exam_type, "LAB");
  EXPECT_EQ(exam.priority, storage::Priority::kRoutine);
  EXPECT_FALSE(exam.critical);
  EXPECT_EQ(exam.patient.name, "Wang^Fang");
  auto results = *index_->ListLabResults({exam.exam_id}, {});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].code, "2823-3");
  EXPECT_EQ(results[0].numeric, 4.1);
  EXPECT_EQ(results[0].units, "mmol/L");
  EXPECT_EQ(results[0].origin_institution, "clinic-a1");
  // Sent again: the lab still gets its AA, nothing is added.
  auto again = Upload(msg, rdg::v1::HL7V2_LAB);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->committed().duplicate());
  EXPECT_EQ(again->hl7_ack().code(), "AA");
  EXPECT_EQ(index_->ListLabResults({exam.exam_id}, {})->size(), 1u);
}

TEST_F(LabIngestTest, CriticalByFlagOrByThresholdMakesTheExamStat) {
  for (const auto& [id, value, flag] :
       {std::tuple{"MSG-HH", "6.8", "HH"}, std::tuple{"MSG-RULE", "6.5", "H"}}) {
    auto st = Upload(LabMessage(id, value, flag), rdg::v1::HL7V2_LAB);
    ASSERT_TRUE(st.ok()) << st.status();
    auto exam = **index_->GetExam(st->committed().exam_id());
    EXPECT_TRUE(exam.critical) << id;
    EXPECT_EQ(exam.priority, storage::Priority::kStat) << id;
    EXPECT_TRUE((*index_->ListLabResults({exam.exam_id}, {"2823-3"}))[0].critical) << id;
  }
}

TEST_F(LabIngestTest, RejectedLabMessageCarriesItsAckAndLeavesNoTrace) {
  auto st = Upload(LabMessage("MSG-BAD", "4.1", "N", /*obx_first=*/true), rdg::v1::HL7V2_LAB);
  ASSERT_TRUE(absl::IsInvalidArgument(st.status())) << st.status();
  auto payload = st.status().GetPayload(parsing::kHl7AckTypeUrl);
  ASSERT_TRUE(payload.has_value());
  rdg::v1::Hl7Acknowledgement ack;
  ASSERT_TRUE(ack.ParseFromString(std::string(*payload)));
  EXPECT_EQ(ack.code(), "AE");
  EXPECT_THAT(ack.message(), HasSubstr("\rMSA|AE|MSG-BAD"));
  EXPECT_THAT(ack.message(), HasSubstr("\rERR|"));
  EXPECT_FALSE(ack.reason().empty());
  ExpectNoTrace();
}

TEST_F(LabIngestTest, OversizedLabMessageIsRefusedBeforeUpload) {
  auto st = Upload(std::string(5000, 'x'), rdg::v1::HL7V2_LAB);
  EXPECT_TRUE(absl::IsResourceExhausted(st.status())) << st.status();
  ExpectNoTrace();
}

TEST_F(LabIngestTest, EcgWaveformIsExamTypeEcg) {
  const std::string ecg =
      testing::ReadFileBytes(std::string(RDG_PYDICOM_FILES) + "/waveform_ecg.dcm");
  auto st = Upload(ecg, rdg::v1::DICOM);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_FALSE(st->has_hl7_ack());
  EXPECT_EQ((*index_->GetExam(st->committed().exam_id()))->exam_type, "ECG");
}

}  // namespace
}  // namespace rdg::ingest

namespace rdg::ingest {
namespace {

// What was seen: control ids that differ only in characters outside [A-Za-z0-9._-] collided and
// the second message was refused AE 205 "control ID already used".
TEST_F(LabIngestTest, ControlIdsAreComparedExactly) {
  auto slash = Upload(LabMessage("2026/0001", "4.1", "N"), rdg::v1::HL7V2_LAB);
  auto underscore = Upload(LabMessage("2026_0001", "4.2", "N"), rdg::v1::HL7V2_LAB);
  ASSERT_TRUE(slash.ok()) << slash.status();
  ASSERT_TRUE(underscore.ok()) << underscore.status();
  EXPECT_FALSE(underscore->committed().duplicate());
  EXPECT_NE(slash->committed().sop_instance_uid(), underscore->committed().sop_instance_uid());
  // Object ids stay safe as file names.
  EXPECT_THAT(slash->committed().sop_instance_uid(), ::testing::Not(HasSubstr("/")));
}

// What was seen: object ids of HL7 messages were cut at 64 characters, so long control ids
// that differ only at the end collided.
TEST_F(LabIngestTest, LongControlIdsAreNotCut) {
  const std::string base(79, 'C');
  auto a = Upload(LabMessage(base + "1", "4.1", "N"), rdg::v1::HL7V2_LAB);
  auto b = Upload(LabMessage(base + "2", "4.2", "N"), rdg::v1::HL7V2_LAB);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->hl7_ack().code(), "AA");
  EXPECT_FALSE(b->committed().duplicate());
  EXPECT_NE(a->committed().sop_instance_uid(), b->committed().sop_instance_uid());
}

// What was seen: object ids squashed every character outside [A-Za-z0-9._-], so messages of
// distinct senders (检验科 vs 化验室) collided and the second was refused "control ID already
// used".
TEST_F(LabIngestTest, SendersAreComparedExactly) {
  std::string lab1 = LabMessage("MSG-9", "4.1", "N");
  std::string lab2 = LabMessage("MSG-9", "4.3", "N");
  lab1.replace(lab1.find("|LIS|"), 5, "|LIS^\xE6\xA3\x80\xE9\xAA\x8C\xE7\xA7\x91|");  // 检验科
  lab2.replace(lab2.find("|LIS|"), 5, "|LIS^\xE5\x8C\x96\xE9\xAA\x8C\xE5\xAE\xA4|");  // 化验室
  lab1.replace(lab1.find("2.5.1\r"), 6, "2.5.1|||||||UNICODE UTF-8\r");
  lab2.replace(lab2.find("2.5.1\r"), 6, "2.5.1|||||||UNICODE UTF-8\r");
  auto a = Upload(lab1, rdg::v1::HL7V2_LAB);
  auto b = Upload(lab2, rdg::v1::HL7V2_LAB);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->hl7_ack().code(), "AA");
  EXPECT_NE(a->committed().sop_instance_uid(), b->committed().sop_instance_uid());
}

// What was seen: the same message with LF segment ends, or without the trailing CR (as
// mllp_send sends it), was refused as a conflict. It is the same message: an idempotent AA.
TEST_F(LabIngestTest, ASendingWithOtherLineEndsIsTheSameMessage) {
  const std::string cr = LabMessage("MSG-LF", "4.1", "N");
  auto first = Upload(cr, rdg::v1::HL7V2_LAB);
  ASSERT_TRUE(first.ok()) << first.status();
  std::string lf = cr;
  std::replace(lf.begin(), lf.end(), '\r', '\n');
  const std::string no_trailing_cr = cr.substr(0, cr.size() - 1);
  const std::string framed = "\x0b" + cr + "\x1c\r";
  for (const std::string& again : {lf, no_trailing_cr, framed}) {
    auto st = Upload(again, rdg::v1::HL7V2_LAB);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_EQ(st->hl7_ack().code(), "AA");
    EXPECT_TRUE(st->committed().duplicate());
    EXPECT_EQ(st->committed().exam_id(), first->committed().exam_id());
  }
  // A different message under the same control id is still a conflict.
  auto other = Upload(LabMessage("MSG-LF", "6.9", "HH"), rdg::v1::HL7V2_LAB);
  EXPECT_TRUE(absl::IsAlreadyExists(other.status())) << other.status();
  EXPECT_EQ(FilesUnder(dir_.Join("uploads")), 0u);
  EXPECT_EQ(FilesUnder(dir_.Join("blobs")), 1u);  // only the first sending's bytes
}

// --- One exam, one patient; national IDs that can be trusted -----------------------------------

//! A DICOM object of a patient (explicit VR little endian, elements in tag order).
std::string PatientObject(const std::string& sop, const std::string& study,
                          const std::string& patient_id, const std::string& name,
                          const std::string& sex = "", const std::string& birth_date = "",
                          const std::string& other_ids = "") {
  using testing::Element;
  std::string ds = Element(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.7") +
                   Element(0x0008, 0x0018, "UI", sop) + Element(0x0008, 0x0060, "CS", "OT") +
                   Element(0x0010, 0x0010, "PN", name) + Element(0x0010, 0x0020, "LO", patient_id);
  if (!birth_date.empty()) ds += Element(0x0010, 0x0030, "DA", birth_date);
  if (!sex.empty()) ds += Element(0x0010, 0x0040, "CS", sex);
  if (!other_ids.empty()) ds += Element(0x0010, 0x1000, "LO", other_ids);
  ds += Element(0x0020, 0x000D, "UI", study) + Element(0x0020, 0x000E, "UI", study + ".1");
  return testing::Part10(ds, "1.2.840.10008.1.2.1", sop);
}

//! An ORU^R01 with one potassium result for a patient and a filler order number.
std::string LabFor(const std::string& control_id, const std::string& pid3, const std::string& name,
                   const std::string& filler, const std::string& potassium,
                   const std::string& sex = "F", const std::string& birth_date = "19900307") {
  return "MSH|^~\\&|LIS|CLINIC-A1|RDG|COUNTY-A|20261122083000||ORU^R01|" + control_id +
         "|P|2.5.1\rPID|1||" + pid3 + "||" + name + "||" + birth_date + "|" + sex +
         "\rOBR|1|PL-1|" + filler +
         "|LYTES^Electrolytes|||20261122083000\r"
         "OBX|1|NM|2823-3^Potassium^LN||" +
         potassium + "|mmol/L|3.5-5.3|N|||F\r";
}

//! The review list as "KIND fields detail".
std::vector<std::string> Conflicts(storage::IndexStore& index) {
  std::vector<std::string> out;
  auto conflicts = index.ListIdentityConflicts(absl::InfinitePast(), 100);
  for (const auto& c : *conflicts) {
    std::string fields;
    for (const auto& f : c.fields) fields += (fields.empty() ? "" : ",") + f;
    out.push_back(storage::Name(c.kind) + " " + fields + " " + c.detail);
  }
  return out;
}

std::vector<storage::ExamRecord> ExamsOf(storage::IndexStore& index, const std::string& origin) {
  storage::ExamQuery q;
  q.origin_institution = origin;
  return index.ListExams(q)->exams;
}

TEST_F(LabIngestTest, AStudyOfAnotherPatientIsRefusedAndListed) {
  const std::string study = "1.2.826.0.1.3680043.8.498.77";
  auto first = Upload(PatientObject(study + ".1", study, "PAT-AAA", "ALPHA^ONE"), rdg::v1::DICOM);
  ASSERT_TRUE(first.ok()) << first.status();
  auto other = Upload(PatientObject(study + ".2", study, "PAT-BBB", "BETA^TWO"), rdg::v1::DICOM);
  ASSERT_TRUE(absl::IsAlreadyExists(other.status())) << other.status();
  EXPECT_THAT(other.status().message(), HasSubstr("Study Instance UID " + study +
                                                  " belongs to another patient (patient ID, "
                                                  "name differ from exam " +
                                                  first->committed().exam_id()));
  EXPECT_THAT(other.status().message(), ::testing::Not(HasSubstr("BETA")));  // no patient data
  // Same patient, another series: joins as before; a second person with the same ID but another
  // name is refused too.
  auto same =
      Upload(PatientObject(study + ".3", study, "PAT-AAA", "ALPHA^ONE=阿尔法"), rdg::v1::DICOM);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->committed().exam_id(), first->committed().exam_id());
  auto renamed =
      Upload(PatientObject(study + ".4", study, "PAT-AAA", "GAMMA^THREE", "M"), rdg::v1::DICOM);
  EXPECT_TRUE(absl::IsAlreadyExists(renamed.status())) << renamed.status();
  const auto exams = ExamsOf(*index_, kClinicA.institution);
  ASSERT_EQ(exams.size(), 1u);
  EXPECT_EQ(exams[0].instance_count, 2);
  EXPECT_EQ(exams[0].patient.patient_id, "PAT-AAA");
  EXPECT_THAT(
      Conflicts(*index_),
      ::testing::ElementsAre(
          "STUDY_OF_ANOTHER_PATIENT name SOP Instance UID " + study + ".4 refused",
          "STUDY_OF_ANOTHER_PATIENT patient ID,name SOP Instance UID " + study + ".2 refused"));
  EXPECT_EQ(FilesUnder(dir_.Join("blobs")), 2u) << "refused objects leave no blob";
}

TEST_F(LabIngestTest, OrdersOfTwoPatientsAreNeverOneExam) {
  // ORD#1 and ORD 1 for two patients; then the same filler FIL1 for both.
  auto a = Upload(LabFor("M1", "111^^^LIS^MR", "LI^SI", "ORD#1", "6.8"), rdg::v1::HL7V2_LAB);
  auto b = Upload(LabFor("M2", "222^^^LIS^MR", "WU^SHI", "ORD 1", "4.1"), rdg::v1::HL7V2_LAB);
  auto c = Upload(LabFor("M3", "111^^^LIS^MR", "LI^SI", "FIL1", "6.9"), rdg::v1::HL7V2_LAB);
  auto d = Upload(LabFor("M4", "222^^^LIS^MR", "WU^SHI", "FIL1", "4.2"), rdg::v1::HL7V2_LAB);
  for (const auto* st : {&a, &b, &c, &d}) {
    ASSERT_TRUE(st->ok()) << st->status();
    EXPECT_EQ((*st)->hl7_ack().code(), "AA");
  }
  std::set<std::string> exam_ids;
  for (const auto* st : {&a, &b, &c, &d}) exam_ids.insert((*st)->committed().exam_id());
  EXPECT_EQ(exam_ids.size(), 4u) << "each patient's order is an exam of its own";
  for (const auto& e : ExamsOf(*index_, kClinicA.institution)) {
    auto results = index_->ListLabResults({e.exam_id}, {});
    ASSERT_EQ(results->size(), 1u) << "never both patients' potassium in one exam";
    EXPECT_EQ(e.critical, *(*results)[0].numeric > 6.2) << "critical by its own patient's value";
  }
  EXPECT_EQ((*index_->GetExam(d->committed().exam_id()))->accession_number, "FIL1");
  EXPECT_THAT(Conflicts(*index_),
              ::testing::ElementsAre("ORDER_OF_ANOTHER_PATIENT patient ID,name "));
}

TEST_F(LabIngestTest, AnOrderNumberIsItsEntityIdentifierAndNamespaceExactly) {
  auto a = Upload(LabFor("P1", "111^^^LIS^MR", "LI^SI", "FIL1^LAB-A", "4.0"), rdg::v1::HL7V2_LAB);
  auto b = Upload(LabFor("P2", "111^^^LIS^MR", "LI^SI", "FIL1^LAB-B", "4.1"), rdg::v1::HL7V2_LAB);
  auto c = Upload(LabFor("P3", "111^^^LIS^MR", "LI^SI", "FIL1^LAB-A", "4.2"), rdg::v1::HL7V2_LAB);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NE(a->committed().exam_id(), b->committed().exam_id()) << "two labs' orders";
  EXPECT_EQ(a->committed().exam_id(), c->committed().exam_id()) << "the same order again";
  EXPECT_EQ((*index_->GetExam(b->committed().exam_id()))->accession_number, "FIL1^LAB-B");
  EXPECT_TRUE(Conflicts(*index_).empty()) << "one patient: nothing to review";
}

TEST_F(LabIngestTest, AMessageWhosePatientDisagreesWithItsOrderIsAnsweredAE) {
  ASSERT_TRUE(
      Upload(LabFor("N1", "111^^^LIS^MR", "LI^SI", "FIL7", "4.0"), rdg::v1::HL7V2_LAB).ok());
  auto st = Upload(LabFor("N2", "111^^^LIS^MR", "QIAN^QI", "FIL7", "6.8", "M", "19700101"),
                   rdg::v1::HL7V2_LAB);
  ASSERT_TRUE(absl::IsAlreadyExists(st.status())) << st.status();
  auto ack = parsing::AckOf(st.status());
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->code(), "AE");
  EXPECT_THAT(ack->message(), HasSubstr("\rERR|"));
  EXPECT_THAT(ack->reason(),
              HasSubstr("order FIL7 belongs to another patient (name, sex, birth date differ)"));
  const auto exams = ExamsOf(*index_, kClinicA.institution);
  ASSERT_EQ(exams.size(), 1u);
  EXPECT_FALSE(exams[0].critical) << "the other patient's 6.8 never reached this exam";
  EXPECT_THAT(Conflicts(*index_),
              ::testing::ElementsAre("ORDER_OF_ANOTHER_PATIENT name,sex,birth date HL7 message "
                                     "N2 refused"));
}

TEST_F(LabIngestTest, NationalIdsAreKeptOnlyWhenValidAndAgreeing) {
  const std::string valid = "110101197001011238";  // born 1970-01-01, a man
  auto placeholder =
      Upload(PatientObject("1.2.3.10.1", "1.2.3.10", "P1", "LI^SI", "", "", "000000000000000000"),
             rdg::v1::DICOM);
  auto wrong_sex =
      Upload(PatientObject("1.2.3.11.1", "1.2.3.11", "P2", "QIAN^QI", "F", "19700101", valid),
             rdg::v1::DICOM);
  auto good = Upload(PatientObject("1.2.3.12.1", "1.2.3.12", "P3", "ZHANG^SAN", "M", "19700101",
                                   "MRN-7\\" + valid),
                     rdg::v1::DICOM);
  auto hl7 = Upload(LabFor("N9", "L-5^^^LIS^MR~" + valid + "^^^GA&1.2.156&ISO^NNCHN", "ZHANG^SAN",
                           "FIL9", "4.0", "M", "19700101"),
                    rdg::v1::HL7V2_LAB);
  for (const auto* st : {&placeholder, &wrong_sex, &good, &hl7})
    ASSERT_TRUE(st->ok()) << st->status();
  auto exam = [&](const absl::StatusOr<rdg::v1::UploadStatus>& st) {
    return **index_->GetExam(st->committed().exam_id());
  };
  EXPECT_EQ(exam(placeholder).patient.national_id, "");
  EXPECT_EQ(exam(wrong_sex).patient.national_id, "");
  EXPECT_EQ(exam(good).patient.national_id, valid);
  EXPECT_EQ(exam(good).patient.national_id_issuer, "(0010,1000)");
  EXPECT_EQ(exam(hl7).patient.national_id, valid);
  EXPECT_EQ(exam(hl7).patient.national_id_issuer, "GA^NNCHN");
  EXPECT_EQ(exam(hl7).patient.id_issuer, "LIS");
  EXPECT_THAT(Conflicts(*index_),
              ::testing::UnorderedElementsAre(
                  "NATIONAL_ID_REFUSED national ID the national ID in (0010,1000): its sex digit "
                  "is not the patient's sex",
                  "NATIONAL_ID_REFUSED national ID the national ID in (0010,1000): it is a "
                  "placeholder (one digit repeated)"));
}

}  // namespace
}  // namespace rdg::ingest
