// The index's contract: what every backend (storage/index/*.h) must do, one set of cases typed
// over the backends. A backend is a type with `static absl::StatusOr<std::unique_ptr<IndexStore>>
// Open(testing::TempDir&)`: a fresh, empty index (NOT_FOUND: the backend cannot run here, the
// case is skipped). The SQLite store's own cases (migrations, file modes, its backup format) are
// in sqlite_index_store_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/index_store.h"
#include "storage/postgres/pg_index_store.h"
#include "storage/sqlite_index_store.h"
#include "tests/mocks/temp_dir.h"
#include "tests/storage/index_contract_support.h"
#include "tests/storage/pg_test_database.h"
#include "tests/storage/store_contract.h"

// A backend of the contract, outside any namespace so that CTest's names say it plainly
// (unit.IndexContractTest.<case><SqliteIndex>): the embedded default, SQLite in the test's
// temporary directory; or the shared index, a fresh database in the test cluster of PostgreSQL.
struct SqliteIndex {
  static auto Open(rdg::testing::TempDir& dir) {
    return rdg::storage::contract::OpenSqlite<rdg::storage::IndexStore>(dir);
  }
};
struct PostgresIndex {
  static auto Open(rdg::testing::TempDir&) { return rdg::storage::contract::OpenPostgresIndex(); }
};

namespace rdg::storage::contract {
namespace {

template <typename Backend>
class IndexContractTest : public StoreContract<IndexStore, Backend> {};

using Backends = ::testing::Types<SqliteIndex, PostgresIndex>;
TYPED_TEST_SUITE(IndexContractTest, Backends);

TYPED_TEST(IndexContractTest, GroupsInstancesByStudyPerInstitution) {
  auto r = this->store_->CommitObjects({MakeObject("c1", "1.2.3", "1.2.3.1", "a1"),
                                        MakeObject("c1", "1.2.3", "1.2.3.2", "a2"),
                                        MakeObject("c2", "1.2.3", "1.2.3.1", "a1")});
  ASSERT_EQ(r.size(), 3u);
  ASSERT_TRUE(r[0].ok() && r[1].ok() && r[2].ok());
  EXPECT_EQ(r[0]->exam_id, r[1]->exam_id);
  EXPECT_TRUE(r[0]->new_exam);
  EXPECT_FALSE(r[1]->new_exam);
  EXPECT_EQ(r[1]->exam_instance_count, 2);
  EXPECT_NE(r[0]->exam_id, r[2]->exam_id);  // same study UID at another clinic: its own exam
  auto exam = *this->store_->GetExam(r[0]->exam_id);
  ASSERT_TRUE(exam.has_value());
  EXPECT_EQ(exam->instance_count, 2);
  EXPECT_EQ(exam->total_bytes, 200);
  EXPECT_EQ(exam->state, ExamState::kReceived);
  auto events = *this->store_->ListEvents(r[0]->exam_id);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, ExamState::kReceived);
  EXPECT_EQ(events[0].actor, "tester");
  EXPECT_EQ(this->store_->ListObjects(r[0]->exam_id)->size(), 2u);
  // By study (DICOMweb): both institutions' exams; the caller picks what its principal sees.
  auto by_study = this->store_->FindExamsByStudy("1.2.3");
  ASSERT_TRUE(by_study.ok()) << by_study.status();
  ASSERT_EQ(by_study->size(), 2u);
  std::vector<std::string> origins = {(*by_study)[0].origin_institution,
                                      (*by_study)[1].origin_institution};
  std::sort(origins.begin(), origins.end());
  EXPECT_EQ(origins, (std::vector<std::string>{"c1", "c2"}));
  EXPECT_TRUE(this->store_->FindExamsByStudy("1.2.4")->empty());
}

TYPED_TEST(IndexContractTest, DuplicateAndConflictInOneBatch) {
  ASSERT_TRUE(this->store_->CommitObjects({MakeObject("c1", "1.2", "1.2.9", "same")})[0].ok());
  auto r = this->store_->CommitObjects({MakeObject("c1", "1.2", "1.2.9", "same"),
                                        MakeObject("c1", "1.2", "1.2.9", "other"),
                                        MakeObject("c1", "1.2", "1.2.10", "new")});
  ASSERT_TRUE(r[0].ok());
  EXPECT_TRUE(r[0]->duplicate);
  EXPECT_TRUE(absl::IsAlreadyExists(r[1].status()));
  EXPECT_NE(r[1].status().message().find("1.2.9"), absl::string_view::npos);
  ASSERT_TRUE(r[2].ok());  // the conflict does not spoil the rest of the batch
  EXPECT_EQ(r[2]->exam_instance_count, 2);
  EXPECT_EQ((*this->store_->FindObject("c1", "1.2.9"))->sha256_hex, "same");
}

TYPED_TEST(IndexContractTest, CommitDeletesTheUploadSession) {
  UploadSessionRecord s{"up-1", "c1", "u", ObjectKind::kDicom, 100, "ab", Priority::kStat,
                        "",     kT0,  kT0};
  ASSERT_TRUE(this->store_->CreateSession(s, 10).ok());
  EXPECT_TRUE(this->store_->FindSession("c1", "ab", 100)->has_value());
  EXPECT_FALSE(this->store_->FindSession("c2", "ab", 100)->has_value());
  EXPECT_EQ(*this->store_->CountSessions("c1"), 1);
  NewObject n = MakeObject("c1", "1.2", "1.2.1", "ab");
  n.session_id = "up-1";
  ASSERT_TRUE(this->store_->CommitObjects({n})[0].ok());
  EXPECT_FALSE(this->store_->GetSession("up-1")->has_value());
}

TYPED_TEST(IndexContractTest, ListObjectsPageWalksEveryObjectOnceInOrder) {
  std::vector<NewObject> batch;
  for (int i = 0; i < 7; ++i) {
    NewObject n = MakeObject("c1", "1.5", absl::StrCat("1.5.9.", i), absl::StrCat("h", i));
    n.object.instance_number = 7 - i;
    batch.push_back(n);
  }
  for (const auto& r : this->store_->CommitObjects(batch)) ASSERT_TRUE(r.ok()) << r.status();
  const std::string exam = (*this->store_->FindObject("c1", "1.5.9.0"))->exam_id;
  std::vector<ObjectRecord> all = *this->store_->ListObjects(exam);
  std::vector<std::string> paged;
  std::optional<ObjectCursor> after;
  for (;;) {
    auto page = *this->store_->ListObjectsPage(exam, after, 3);
    for (const auto& o : page) paged.push_back(o.sop_instance_uid);
    if (page.size() < 3) break;
    after = ObjectCursor{page.back().series_instance_uid, page.back().instance_number,
                         page.back().sop_instance_uid};
  }
  ASSERT_EQ(paged.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(paged[i], all[i].sop_instance_uid);
  EXPECT_EQ(paged.front(), "1.5.9.6");  // instance number 1
}

TYPED_TEST(IndexContractTest, ListExamsPagesNewestFirstAndScopesByInstitution) {
  for (int i = 0; i < 5; ++i) {
    std::string study = "1.9." + std::to_string(i);
    ASSERT_TRUE(
        this->store_->CommitObjects({MakeObject("c1", study, study + ".1", "s" + study)})[0].ok());
  }
  ASSERT_TRUE(this->store_->CommitObjects({MakeObject("c2", "2.1", "2.1.1", "x")})[0].ok());
  ExamQuery q;
  q.origin_institution = "c1";
  q.limit = 2;
  std::vector<std::string> studies;
  do {
    auto page = *this->store_->ListExams(q);
    for (const auto& e : page.exams) studies.push_back(e.study_instance_uid);
    q.before_seq = page.next_before_seq;
  } while (q.before_seq != 0);
  EXPECT_EQ(studies, (std::vector<std::string>{"1.9.4", "1.9.3", "1.9.2", "1.9.1", "1.9.0"}));
}

TYPED_TEST(IndexContractTest, BlobReferences) {
  EXPECT_FALSE(*this->store_->IsBlobReferenced("cafe"));
  ASSERT_TRUE(this->store_->CommitObjects({MakeObject("c1", "1.2", "1.2.1", "cafe")})[0].ok());
  EXPECT_TRUE(*this->store_->IsBlobReferenced("cafe"));
  EXPECT_TRUE(this->store_->FindObjectByContent("c1", "cafe")->has_value());
  EXPECT_FALSE(this->store_->FindObjectByContent("c2", "cafe")->has_value());
}

TYPED_TEST(IndexContractTest, ExactlyOneOf32ConcurrentClaimsWins) {
  const std::string exam =
      AddRoutedExam(*this->store_, "5.1", "q", kT0 + absl::Hours(1), Priority::kStat);
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 32; ++i) {
    readers.emplace_back([&, i] {
      auto c = this->store_->ClaimExam(exam, "reader-" + std::to_string(i), "county-a", kT0,
                                       absl::Minutes(15), ClaimAction::kClaim);
      if (c.ok()) {
        ++won;
      } else if (absl::IsFailedPrecondition(c.status())) {
        ++refused;
      }
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(won, 1);
  EXPECT_EQ(refused, 31);
  EXPECT_EQ((*this->store_->GetExam(exam))->state, ExamState::kClaimed);
}

TYPED_TEST(IndexContractTest, LeaseRenewalExpiryAndRelease) {
  const std::string exam =
      AddRoutedExam(*this->store_, "5.2", "q", kT0 + absl::Hours(1), Priority::kRoutine);
  const absl::Duration lease = absl::Minutes(15);
  auto c = this->store_->ClaimExam(exam, "alice", "county-a", kT0, lease, ClaimAction::kClaim);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->expires_at, kT0 + lease);
  // Bob is refused while the lease lives; Alice renews it.
  auto bob = this->store_->ClaimExam(exam, "bob", "county-a", kT0 + absl::Minutes(10), lease,
                                     ClaimAction::kClaim);
  EXPECT_TRUE(absl::IsFailedPrecondition(bob.status()));
  EXPECT_NE(bob.status().message().find("alice"), absl::string_view::npos);
  auto renewed = this->store_->ClaimExam(exam, "alice", "county-a", kT0 + absl::Minutes(10), lease,
                                         ClaimAction::kRenew);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->expires_at, kT0 + absl::Minutes(25));
  EXPECT_EQ(renewed->claimed_at, kT0);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      this->store_
          ->ClaimExam(exam, "bob", "county-a", kT0 + absl::Minutes(20), lease, ClaimAction::kRenew)
          .status()));
  // After expiry Bob takes over; Alice's lease is recorded as expired.
  auto takeover = this->store_->ClaimExam(exam, "bob", "county-a", kT0 + absl::Minutes(26), lease,
                                          ClaimAction::kClaim);
  ASSERT_TRUE(takeover.ok()) << takeover.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(
      this->store_->ReleaseClaim(exam, "alice", kT0 + absl::Minutes(27))));
  ASSERT_TRUE(this->store_->ReleaseClaim(exam, "bob", kT0 + absl::Minutes(27)).ok());
  EXPECT_EQ((*this->store_->GetExam(exam))->state, ExamState::kRouted);
  EXPECT_FALSE(this->store_->GetLiveClaim(exam, kT0 + absl::Minutes(27))->has_value());
  std::vector<std::string> history;
  auto events = this->store_->ListEvents(exam);
  ASSERT_TRUE(events.ok());
  for (const auto& e : *events) {
    history.push_back(Name(e.state) + "/" + e.actor);
  }
  EXPECT_EQ(history, (std::vector<std::string>{"RECEIVED/tester", "ROUTED/system", "CLAIMED/alice",
                                               "RELEASED/system", "CLAIMED/bob", "RELEASED/bob"}));
}

TYPED_TEST(IndexContractTest, ExpiredLeasesAreSwept) {
  const std::string a = AddRoutedExam(*this->store_, "5.3", "q", kT0, Priority::kRoutine);
  const std::string b = AddRoutedExam(*this->store_, "5.4", "q", kT0, Priority::kRoutine);
  ASSERT_TRUE(
      this->store_->ClaimExam(a, "alice", "x", kT0, absl::Minutes(5), ClaimAction::kClaim).ok());
  ASSERT_TRUE(
      this->store_->ClaimExam(b, "bob", "x", kT0, absl::Minutes(30), ClaimAction::kClaim).ok());
  EXPECT_EQ(*this->store_->ExpireClaims(kT0 + absl::Minutes(10)), 1);
  EXPECT_EQ((*this->store_->GetExam(a))->state, ExamState::kRouted);
  EXPECT_EQ((*this->store_->GetExam(b))->state, ExamState::kClaimed);
  EXPECT_EQ(this->store_->ListEvents(a)->back().detail, "lease of alice expired");
  EXPECT_EQ(*this->store_->ExpireClaims(kT0 + absl::Minutes(10)), 0);
}

TYPED_TEST(IndexContractTest, TheSystemEscalatesOnlyWhatStillWaitsPastItsClaimTarget) {
  NewObject n = MakeObject("c1", "5.1", "5.1.1", "sha5");
  n.routing = {"q", Priority::kStat, kT0 + absl::Hours(1), kT0 + absl::Minutes(10), "rule"};
  const std::string exam = this->store_->CommitObjects({n})[0]->exam_id;
  Escalation esc{exam, "q-up", absl::InfiniteFuture(), "system", "unclaimed", false};
  // Not overdue yet: left alone.
  EXPECT_TRUE(
      absl::IsFailedPrecondition(this->store_->EscalateExam(esc, kT0 + absl::Minutes(5)).status()));
  // Claimed after the overdue list was read: the reader keeps it.
  ASSERT_TRUE(this->store_
                  ->ClaimExam(exam, "r", "county", kT0 + absl::Minutes(11), absl::Minutes(15),
                              ClaimAction::kClaim)
                  .ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(
      this->store_->EscalateExam(esc, kT0 + absl::Minutes(12)).status()));
  EXPECT_TRUE(this->store_->GetLiveClaim(exam, kT0 + absl::Minutes(12))->has_value());
  ASSERT_TRUE(this->store_->ReleaseClaim(exam, "r", kT0 + absl::Minutes(13)).ok());
  auto moved = this->store_->EscalateExam(esc, kT0 + absl::Minutes(14));
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->queue, "q-up");
  // Escalated once: its new queue's target is not past, so a second round leaves it.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      this->store_->EscalateExam(esc, kT0 + absl::Minutes(15)).status()));
}

TYPED_TEST(IndexContractTest, APageTokenOutOfRangeIsRefusedNotPassedOn) {
  WorklistQuery q;
  q.queues = {"q"};
  for (const char* token : {"0:99999999999:0", "0:1:-5", "x:1:2"}) {
    q.after = token;
    EXPECT_TRUE(absl::IsInvalidArgument(this->store_->ListWorklist(q, kT0).status())) << token;
  }
}

TYPED_TEST(IndexContractTest, WorklistOrderFiltersAndPages) {
  const std::string late = AddRoutedExam(*this->store_, "6.1", "county-a/imaging",
                                         kT0 + absl::Hours(24), Priority::kRoutine);
  const std::string stat = AddRoutedExam(*this->store_, "6.2", "county-a/imaging",
                                         kT0 + absl::Minutes(30), Priority::kStat);
  const std::string urgent = AddRoutedExam(*this->store_, "6.3", "county-a/imaging",
                                           kT0 + absl::Minutes(30), Priority::kUrgent);
  const std::string ecg = AddRoutedExam(*this->store_, "6.4", "county-a/ecg",
                                        kT0 + absl::Minutes(15), Priority::kStat, "ECG");
  AddRoutedExam(*this->store_, "6.5", "county-b/imaging", kT0,
                Priority::kStat);  // another county's queue
  ASSERT_TRUE(
      this->store_
          ->ClaimExam(urgent, "alice", "county-a", kT0, absl::Minutes(15), ClaimAction::kClaim)
          .ok());

  WorklistQuery q;
  q.queues = {"county-a/imaging", "county-a/ecg"};
  auto ids = [&](const WorklistQuery& query) {
    std::vector<std::string> out;
    WorklistQuery page = query;
    do {
      auto p = *this->store_->ListWorklist(page, kT0);
      for (const auto& e : p.entries) out.push_back(e.exam.exam_id);
      page.after = p.next_cursor;
    } while (!page.after.empty());
    return out;
  };
  EXPECT_EQ(ids(q), (std::vector<std::string>{ecg, stat, urgent, late}));
  q.limit = 1;  // the same order across pages
  EXPECT_EQ(ids(q), (std::vector<std::string>{ecg, stat, urgent, late}));
  q.limit = 100;
  q.exam_types = {"CT"};
  q.priorities = {Priority::kStat, Priority::kUrgent};
  EXPECT_EQ(ids(q), (std::vector<std::string>{stat, urgent}));
  q.exam_types.clear();
  q.priorities.clear();
  q.states = {ExamState::kClaimed};
  auto claimed = *this->store_->ListWorklist(q, kT0);
  ASSERT_EQ(claimed.entries.size(), 1u);
  ASSERT_TRUE(claimed.entries[0].claim.has_value());
  EXPECT_EQ(claimed.entries[0].claim->holder_user, "alice");
  q.after = "garbage";
  EXPECT_TRUE(absl::IsInvalidArgument(this->store_->ListWorklist(q, kT0).status()));
}

TYPED_TEST(IndexContractTest, QueueFiguresCountOpenWorkOnly) {
  // Routed at kT0 (the commit's time); two due already at kT0 + 1 h, one later.
  const std::string a = AddRoutedExam(*this->store_, "7.1", "county-a/imaging",
                                      kT0 + absl::Minutes(30), Priority::kStat);
  AddRoutedExam(*this->store_, "7.2", "county-a/imaging", kT0 + absl::Hours(24),
                Priority::kRoutine);
  const std::string c = AddRoutedExam(*this->store_, "7.3", "county-a/imaging",
                                      kT0 + absl::Minutes(45), Priority::kUrgent);
  AddRoutedExam(*this->store_, "7.4", "county-a/ecg", kT0 + absl::Hours(2), Priority::kRoutine,
                "ECG");
  ASSERT_TRUE(
      this->store_->ClaimExam(a, "alice", "county-a", kT0, absl::Minutes(15), ClaimAction::kClaim)
          .ok());
  ASSERT_TRUE(
      this->store_->ClaimExam(c, "bob", "county-a", kT0, absl::Minutes(15), ClaimAction::kClaim)
          .ok());

  auto figures = this->store_->ListQueueFigures(kT0 + absl::Hours(1));
  ASSERT_TRUE(figures.ok()) << figures.status();
  ASSERT_EQ(figures->size(), 2u);
  const QueueFigureRecord& ecg = (*figures)[0];
  const QueueFigureRecord& imaging = (*figures)[1];
  EXPECT_EQ(ecg.queue, "county-a/ecg");
  EXPECT_EQ(ecg.depth, 1);
  EXPECT_EQ(ecg.claimed, 0);
  EXPECT_EQ(ecg.overdue, 0);
  EXPECT_TRUE(ecg.oldest_waiting_since.has_value());
  EXPECT_EQ(imaging.queue, "county-a/imaging");
  EXPECT_EQ(imaging.depth, 3);
  EXPECT_EQ(imaging.claimed, 2);
  EXPECT_EQ(imaging.overdue, 2);  // the STAT and the URGENT, due at +30 and +45 min
  ASSERT_TRUE(imaging.oldest_waiting_since.has_value());  // the routine one, still unclaimed
}

TYPED_TEST(IndexContractTest, ExamIdsAreRandomHex) {
  IndexStore* store = this->store_.get();
  auto a = store->CommitObjects({MakeObject("c1", "1.2.3", "1.2.3.4", "aa")});
  auto b = store->CommitObjects({MakeObject("c1", "1.2.4", "1.2.4.4", "bb")});
  ASSERT_TRUE(a[0].ok() && b[0].ok());
  for (const std::string& id : {a[0]->exam_id, b[0]->exam_id}) {
    ASSERT_EQ(id.size(), 19u) << id;
    EXPECT_EQ(id.substr(0, 3), "ex-");
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 3), std::string::npos) << id;
  }
  EXPECT_NE(a[0]->exam_id, b[0]->exam_id);
}

TYPED_TEST(IndexContractTest, UploadsAreAuditedInTheirCommitAndNameThePatient) {
  IndexStore* store = this->store_.get();
  ASSERT_TRUE(store->AppendAudit(AuditOf(kT0, "province", "admin", Role::kAdmin, "before")).ok());
  auto audited = [](NewObject n) {
    n.audit =
        AuditOf(kT0, "c1", "u1", Role::kClinic, "upload", "", "DICOM " + n.object.sop_instance_uid);
    return n;
  };
  NewObject first = audited(MakeObject("c1", "1.2.3", "1.2.3.1", "a1"));
  first.exam.patient.id_issuer = "HOSP";
  first.exam.patient.national_id = "110101199003074514";
  first.exam.patient.national_id_issuer = "CHN^NI";
  auto results = store->CommitObjects({first, audited(MakeObject("c1", "1.2.3", "1.2.3.1", "a1")),
                                       audited(MakeObject("c1", "1.2.3", "1.2.3.1", "ff"))});
  ASSERT_TRUE(results[0].ok() && results[1].ok());
  EXPECT_TRUE(absl::IsAlreadyExists(results[2].status()));  // other bytes: refused, not audited
  ASSERT_TRUE(store->AppendAudit(AuditOf(kT0, "province", "admin", Role::kAdmin, "after")).ok());

  auto page = *store->ExportAudit(1, 100);
  ASSERT_EQ(page.records.size(), 4u);
  for (size_t i = 1; i < page.records.size(); ++i) {
    EXPECT_EQ(page.records[i].prev_hash, page.records[i - 1].hash) << "record " << i;
  }
  const AuditRecord& upload = page.records[1];
  EXPECT_EQ(upload.action, "upload");
  EXPECT_EQ(upload.exam_id, results[0]->exam_id);
  EXPECT_EQ(upload.patient_id, "P1^^^HOSP~110101199003074514^^^CHN^NI");
  EXPECT_EQ(page.records[2].detail, "DICOM 1.2.3.1 (already stored)");
  EXPECT_EQ(page.records[3].action, "after");
  EXPECT_EQ(page.records[3].patient_id, "");  // names no exam
}

//! The exam's events of `state`.
template <typename Store>
size_t EventsOf(Store& store, const std::string& exam, ExamState state) {
  auto events = store.ListEvents(exam);
  EXPECT_TRUE(events.ok()) << events.status();
  if (!events.ok()) return 0;
  return std::count_if(events->begin(), events->end(),
                       [&](const ExamEventRecord& e) { return e.state == state; });
}

//! A report of `exam` by reader `r` of county-a.
ReportRecord ReportOf(const std::string& exam, ReportStatus status, std::string supersedes = {}) {
  ReportRecord r;
  r.exam_id = exam;
  r.status = status;
  r.reader_user = "r";
  r.reader_institution = "county-a";
  r.content = "findings: Lungs clear.";  // the store keeps the bytes as given
  r.supersedes = std::move(supersedes);
  return r;
}

TYPED_TEST(IndexContractTest, ReportsAreVersionedFedOnceDeliveredOnceAndAcknowledgedByTheirClinic) {
  IndexStore& store = *this->store_;
  const std::string exam =
      AddRoutedExam(store, "6.1", "q", kT0 + absl::Hours(1), Priority::kRoutine);
  // Only the holder of a live claim reports.
  EXPECT_FALSE(store.AddReport(ReportOf(exam, ReportStatus::kPreliminary), kT0).ok());
  ASSERT_TRUE(
      store.ClaimExam(exam, "r", "county-a", kT0, absl::Minutes(15), ClaimAction::kClaim).ok());
  auto draft = store.AddReport(ReportOf(exam, ReportStatus::kPreliminary), kT0 + absl::Minutes(1));
  ASSERT_TRUE(draft.ok()) << draft.status();
  EXPECT_EQ(draft->version, 1);
  EXPECT_TRUE(store.ReportFeed("c1", 0, 100)->empty()) << "a draft is not the clinic's";
  auto final = store.AddReport(ReportOf(exam, ReportStatus::kFinal), kT0 + absl::Minutes(2));
  ASSERT_TRUE(final.ok()) << final.status();
  EXPECT_EQ(final->version, 2);
  EXPECT_EQ((*store.GetExam(exam))->state, ExamState::kFinal);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store.AddReport(ReportOf(exam, ReportStatus::kFinal), kT0 + absl::Minutes(3)).status()))
      << "a second FINAL: an addendum is the way";
  auto addendum = store.AddReport(ReportOf(exam, ReportStatus::kAmended, final->report_id),
                                  kT0 + absl::Minutes(4));
  ASSERT_TRUE(addendum.ok()) << addendum.status();
  EXPECT_EQ(addendum->version, 3);
  auto versions = store.ListReports(exam);
  ASSERT_TRUE(versions.ok()) << versions.status();
  ASSERT_EQ(versions->size(), 3u);
  EXPECT_EQ((*versions)[0].status, ReportStatus::kPreliminary);
  EXPECT_EQ((*versions)[2].supersedes, final->report_id);

  // The clinic's feed: the signed versions, in order, each once; another clinic's feed is empty.
  auto feed = store.ReportFeed("c1", 0, 100);
  ASSERT_TRUE(feed.ok()) << feed.status();
  ASSERT_EQ(feed->size(), 2u);
  EXPECT_EQ((*feed)[0].report_id, final->report_id);
  EXPECT_EQ((*feed)[1].report_id, addendum->report_id);
  EXPECT_TRUE(store.ReportFeed("c1", (*feed)[1].seq, 100)->empty());
  EXPECT_TRUE(store.ReportFeed("c2", 0, 100)->empty());

  // Delivered once, however often it is sent.
  const std::vector<std::string> both = {final->report_id, addendum->report_id};
  ASSERT_TRUE(store.MarkDelivered(both, kT0 + absl::Minutes(5)).ok());
  ASSERT_TRUE(store.MarkDelivered(both, kT0 + absl::Minutes(6)).ok());
  EXPECT_EQ(EventsOf(store, exam, ExamState::kDelivered), 2u);  // one per report
  EXPECT_EQ(store.ListReports(exam)->at(1).delivered_at, kT0 + absl::Minutes(5));

  // Acknowledged by its own clinic only, once.
  EXPECT_TRUE(absl::IsNotFound(
      store.AcknowledgeReport(final->report_id, "c2", "nurse", kT0 + absl::Minutes(7)).status()));
  auto acked = store.AcknowledgeReport(final->report_id, "c1", "nurse", kT0 + absl::Minutes(7));
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(acked->acknowledged_at, kT0 + absl::Minutes(7));
  auto again = store.AcknowledgeReport(final->report_id, "c1", "nurse", kT0 + absl::Minutes(9));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->acknowledged_at, kT0 + absl::Minutes(7)) << "the first acknowledgement stays";
  EXPECT_EQ(EventsOf(store, exam, ExamState::kAcknowledged), 1u);
  EXPECT_TRUE(absl::IsNotFound(
      store.AcknowledgeReport(draft->report_id, "c1", "nurse", kT0 + absl::Minutes(8)).status()))
      << "a draft is not acknowledged";
}

}  // namespace
}  // namespace rdg::storage::contract
