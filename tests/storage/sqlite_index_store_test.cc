#include "storage/sqlite_index_store.h"

#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <filesystem>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/base/audit_chain.h"
#include "storage/migrations.h"
#include "tests/mocks/temp_dir.h"

namespace rdg::storage {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

NewObject MakeObject(const std::string& institution, const std::string& study,
                     const std::string& sop, const std::string& sha, int64_t size = 100) {
  NewObject n;
  n.exam.origin_institution = institution;
  n.exam.study_instance_uid = study;
  n.exam.patient.patient_id = "P1";
  n.exam.exam_type = "CT";
  n.exam.modalities = {"CT"};
  n.exam.priority = rdg::v1::ROUTINE;
  n.object.origin_institution = institution;
  n.object.sop_instance_uid = sop;
  n.object.series_instance_uid = study + ".1";
  n.object.modality = "CT";
  n.object.size = size;
  n.object.sha256_hex = sha;
  n.object.received_at = kT0;
  n.actor = "tester";
  return n;
}

class SqliteIndexStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = *SqliteIndexStore::Open(dir_.Join("index.sqlite")); }
  testing::TempDir dir_;
  std::unique_ptr<SqliteIndexStore> store_;
};

TEST_F(SqliteIndexStoreTest, MigrationsApplyOnceAndSurviveReopen) {
  EXPECT_GE(*store_->SchemaVersion(), 1);
  ASSERT_EQ(store_->CommitObjects({MakeObject("c1", "1.2.3", "1.2.3.4", "aa")})[0].status(),
            absl::OkStatus());
  store_.reset();
  store_ = *SqliteIndexStore::Open(dir_.Join("index.sqlite"));
  EXPECT_GE(*store_->SchemaVersion(), 1);
  EXPECT_TRUE(store_->FindObject("c1", "1.2.3.4")->has_value());
}

TEST_F(SqliteIndexStoreTest, GroupsInstancesByStudyPerInstitution) {
  auto r = store_->CommitObjects({MakeObject("c1", "1.2.3", "1.2.3.1", "a1"),
                                  MakeObject("c1", "1.2.3", "1.2.3.2", "a2"),
                                  MakeObject("c2", "1.2.3", "1.2.3.1", "a1")});
  ASSERT_EQ(r.size(), 3u);
  ASSERT_TRUE(r[0].ok() && r[1].ok() && r[2].ok());
  EXPECT_EQ(r[0]->exam_id, r[1]->exam_id);
  EXPECT_TRUE(r[0]->new_exam);
  EXPECT_FALSE(r[1]->new_exam);
  EXPECT_EQ(r[1]->exam_instance_count, 2);
  EXPECT_NE(r[0]->exam_id, r[2]->exam_id);  // same study UID at another clinic: its own exam
  auto exam = *store_->GetExam(r[0]->exam_id);
  ASSERT_TRUE(exam.has_value());
  EXPECT_EQ(exam->instance_count, 2);
  EXPECT_EQ(exam->total_bytes, 200);
  EXPECT_EQ(exam->state, rdg::v1::RECEIVED);
  auto events = *store_->ListEvents(r[0]->exam_id);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].state, rdg::v1::RECEIVED);
  EXPECT_EQ(events[0].actor, "tester");
  EXPECT_EQ(store_->ListObjects(r[0]->exam_id)->size(), 2u);
}

TEST_F(SqliteIndexStoreTest, DuplicateAndConflictInOneBatch) {
  ASSERT_TRUE(store_->CommitObjects({MakeObject("c1", "1.2", "1.2.9", "same")})[0].ok());
  auto r = store_->CommitObjects({MakeObject("c1", "1.2", "1.2.9", "same"),
                                  MakeObject("c1", "1.2", "1.2.9", "other"),
                                  MakeObject("c1", "1.2", "1.2.10", "new")});
  ASSERT_TRUE(r[0].ok());
  EXPECT_TRUE(r[0]->duplicate);
  EXPECT_TRUE(absl::IsAlreadyExists(r[1].status()));
  EXPECT_NE(r[1].status().message().find("1.2.9"), absl::string_view::npos);
  ASSERT_TRUE(r[2].ok());  // the conflict does not spoil the rest of the batch
  EXPECT_EQ(r[2]->exam_instance_count, 2);
  EXPECT_EQ((*store_->FindObject("c1", "1.2.9"))->sha256_hex, "same");
}

TEST_F(SqliteIndexStoreTest, CommitDeletesTheUploadSession) {
  UploadSessionRecord s{"up-1", "c1", "u", rdg::v1::DICOM, 100, "ab", rdg::v1::STAT, "", kT0, kT0};
  ASSERT_TRUE(store_->CreateSession(s, 10).ok());
  EXPECT_TRUE(store_->FindSession("c1", "ab", 100)->has_value());
  EXPECT_FALSE(store_->FindSession("c2", "ab", 100)->has_value());
  EXPECT_EQ(*store_->CountSessions("c1"), 1);
  NewObject n = MakeObject("c1", "1.2", "1.2.1", "ab");
  n.session_id = "up-1";
  ASSERT_TRUE(store_->CommitObjects({n})[0].ok());
  EXPECT_FALSE(store_->GetSession("up-1")->has_value());
}

UploadSessionRecord Session(const std::string& id, const std::string& institution, absl::Time at) {
  return UploadSessionRecord{
      id, institution, "u", rdg::v1::DICOM, 100, "sha-" + id, rdg::v1::ROUTINE, "", at, at};
}

// What was seen: a race let 1,003 sessions in under a limit of 1,000 (count, then insert).
TEST_F(SqliteIndexStoreTest, OpenSessionQuotaIsAtomicUnderConcurrency) {
  constexpr int kLimit = 100;
  std::atomic<int> created{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        absl::Status s =
            store_->CreateSession(Session(absl::StrCat("up-", t, "-", i), "c1", kT0), kLimit);
        if (s.ok()) {
          ++created;
        } else if (absl::IsResourceExhausted(s)) {
          ++refused;
        } else {
          ADD_FAILURE() << s;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), kLimit);
  EXPECT_EQ(refused.load(), 8 * 40 - kLimit);
  EXPECT_EQ(*store_->CountSessions("c1"), kLimit);
  // Another institution has its own quota.
  EXPECT_TRUE(store_->CreateSession(Session("other", "c2", kT0), kLimit).ok());
}

TEST_F(SqliteIndexStoreTest, ListSessionsOfPagesOldestFirstAndScopesByInstitution) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        store_->CreateSession(Session(absl::StrCat("a", i), "c1", kT0 + absl::Seconds(5 - i)), 100)
            .ok());
  }
  ASSERT_TRUE(store_->CreateSession(Session("b0", "c2", kT0), 100).ok());
  std::vector<std::string> seen;
  std::optional<SessionCursor> after;
  for (;;) {
    auto page = *store_->ListSessionsOf("c1", after, 2);
    for (const auto& s : page) seen.push_back(s.session_id);
    if (page.size() < 2) break;
    after = SessionCursor{page.back().created_at, page.back().session_id};
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a4", "a3", "a2", "a1", "a0"}));
}

TEST_F(SqliteIndexStoreTest, ListObjectsPageWalksEveryObjectOnceInOrder) {
  std::vector<NewObject> batch;
  for (int i = 0; i < 7; ++i) {
    NewObject n = MakeObject("c1", "1.5", absl::StrCat("1.5.9.", i), absl::StrCat("h", i));
    n.object.instance_number = 7 - i;
    batch.push_back(n);
  }
  for (const auto& r : store_->CommitObjects(batch)) ASSERT_TRUE(r.ok()) << r.status();
  const std::string exam = (*store_->FindObject("c1", "1.5.9.0"))->exam_id;
  std::vector<ObjectRecord> all = *store_->ListObjects(exam);
  std::vector<std::string> paged;
  std::optional<ObjectCursor> after;
  for (;;) {
    auto page = *store_->ListObjectsPage(exam, after, 3);
    for (const auto& o : page) paged.push_back(o.sop_instance_uid);
    if (page.size() < 3) break;
    after = ObjectCursor{page.back().series_instance_uid, page.back().instance_number,
                         page.back().sop_instance_uid};
  }
  ASSERT_EQ(paged.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(paged[i], all[i].sop_instance_uid);
  EXPECT_EQ(paged.front(), "1.5.9.6");  // instance number 1
}

TEST_F(SqliteIndexStoreTest, ListExamsPagesNewestFirstAndScopesByInstitution) {
  for (int i = 0; i < 5; ++i) {
    std::string study = "1.9." + std::to_string(i);
    ASSERT_TRUE(
        store_->CommitObjects({MakeObject("c1", study, study + ".1", "s" + study)})[0].ok());
  }
  ASSERT_TRUE(store_->CommitObjects({MakeObject("c2", "2.1", "2.1.1", "x")})[0].ok());
  ExamQuery q;
  q.origin_institution = "c1";
  q.limit = 2;
  std::vector<std::string> studies;
  do {
    auto page = *store_->ListExams(q);
    for (const auto& e : page.exams) studies.push_back(e.study_instance_uid);
    q.before_seq = page.next_before_seq;
  } while (q.before_seq != 0);
  EXPECT_EQ(studies, (std::vector<std::string>{"1.9.4", "1.9.3", "1.9.2", "1.9.1", "1.9.0"}));
}

TEST_F(SqliteIndexStoreTest, AuditLogIsAppendOnly) {
  ASSERT_TRUE(store_
                  ->AppendAudit(storage::AuditOf(kT0, "c1", "u1", rdg::v1::CLINIC, "download_exam",
                                                 "ex-1", ""))
                  .ok());
  ASSERT_TRUE(
      store_->AppendAudit(storage::AuditOf(kT0, "c1", "u2", rdg::v1::CLINIC, "list_exams", "", ""))
          .ok());
  AuditQuery q;
  q.user = "u1";
  auto rows = *store_->ListAudit(q);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].action, "download_exam");
  // A direct attempt to rewrite history is refused by the schema itself.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.Join("index.sqlite").c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM audit_log", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE audit_log SET user = 'x'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
}

TEST_F(SqliteIndexStoreTest, BlobReferences) {
  EXPECT_FALSE(*store_->IsBlobReferenced("cafe"));
  ASSERT_TRUE(store_->CommitObjects({MakeObject("c1", "1.2", "1.2.1", "cafe")})[0].ok());
  EXPECT_TRUE(*store_->IsBlobReferenced("cafe"));
  EXPECT_TRUE(store_->FindObjectByContent("c1", "cafe")->has_value());
  EXPECT_FALSE(store_->FindObjectByContent("c2", "cafe")->has_value());
}

//! An exam routed to `queue` with the given due time and priority; returns its id.
std::string AddRoutedExam(SqliteIndexStore& store, const std::string& study,
                          const std::string& queue, absl::Time due, rdg::v1::Priority priority,
                          const std::string& type = "CT") {
  NewObject n = MakeObject("c1", study, study + ".1", "sha" + study);
  n.exam.exam_type = type;
  n.routing = {queue, priority, due, absl::InfiniteFuture(), "rule test"};
  auto r = store.CommitObjects({n});
  EXPECT_TRUE(r[0].ok()) << r[0].status();
  return r[0]->exam_id;
}

TEST_F(SqliteIndexStoreTest, ExactlyOneOf32ConcurrentClaimsWins) {
  const std::string exam = AddRoutedExam(*store_, "5.1", "q", kT0 + absl::Hours(1), rdg::v1::STAT);
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 32; ++i) {
    readers.emplace_back([&, i] {
      auto c = store_->ClaimExam(exam, "reader-" + std::to_string(i), "county-a", kT0,
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
  EXPECT_EQ((*store_->GetExam(exam))->state, rdg::v1::CLAIMED);
}

TEST_F(SqliteIndexStoreTest, LeaseRenewalExpiryAndRelease) {
  const std::string exam =
      AddRoutedExam(*store_, "5.2", "q", kT0 + absl::Hours(1), rdg::v1::ROUTINE);
  const absl::Duration lease = absl::Minutes(15);
  auto c = store_->ClaimExam(exam, "alice", "county-a", kT0, lease, ClaimAction::kClaim);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->expires_at, kT0 + lease);
  // Bob is refused while the lease lives; Alice renews it.
  auto bob = store_->ClaimExam(exam, "bob", "county-a", kT0 + absl::Minutes(10), lease,
                               ClaimAction::kClaim);
  EXPECT_TRUE(absl::IsFailedPrecondition(bob.status()));
  EXPECT_NE(bob.status().message().find("alice"), absl::string_view::npos);
  auto renewed = store_->ClaimExam(exam, "alice", "county-a", kT0 + absl::Minutes(10), lease,
                                   ClaimAction::kRenew);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->expires_at, kT0 + absl::Minutes(25));
  EXPECT_EQ(renewed->claimed_at, kT0);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_
          ->ClaimExam(exam, "bob", "county-a", kT0 + absl::Minutes(20), lease, ClaimAction::kRenew)
          .status()));
  // After expiry Bob takes over; Alice's lease is recorded as expired.
  auto takeover = store_->ClaimExam(exam, "bob", "county-a", kT0 + absl::Minutes(26), lease,
                                    ClaimAction::kClaim);
  ASSERT_TRUE(takeover.ok()) << takeover.status();
  EXPECT_TRUE(
      absl::IsFailedPrecondition(store_->ReleaseClaim(exam, "alice", kT0 + absl::Minutes(27))));
  ASSERT_TRUE(store_->ReleaseClaim(exam, "bob", kT0 + absl::Minutes(27)).ok());
  EXPECT_EQ((*store_->GetExam(exam))->state, rdg::v1::ROUTED);
  EXPECT_FALSE(store_->GetLiveClaim(exam, kT0 + absl::Minutes(27))->has_value());
  std::vector<std::string> history;
  auto events = store_->ListEvents(exam);
  ASSERT_TRUE(events.ok());
  for (const auto& e : *events) {
    history.push_back(rdg::v1::ExamState_Name(e.state) + "/" + e.actor);
  }
  EXPECT_EQ(history, (std::vector<std::string>{"RECEIVED/tester", "ROUTED/system", "CLAIMED/alice",
                                               "RELEASED/system", "CLAIMED/bob", "RELEASED/bob"}));
}

TEST_F(SqliteIndexStoreTest, ExpiredLeasesAreSwept) {
  const std::string a = AddRoutedExam(*store_, "5.3", "q", kT0, rdg::v1::ROUTINE);
  const std::string b = AddRoutedExam(*store_, "5.4", "q", kT0, rdg::v1::ROUTINE);
  ASSERT_TRUE(store_->ClaimExam(a, "alice", "x", kT0, absl::Minutes(5), ClaimAction::kClaim).ok());
  ASSERT_TRUE(store_->ClaimExam(b, "bob", "x", kT0, absl::Minutes(30), ClaimAction::kClaim).ok());
  EXPECT_EQ(*store_->ExpireClaims(kT0 + absl::Minutes(10)), 1);
  EXPECT_EQ((*store_->GetExam(a))->state, rdg::v1::ROUTED);
  EXPECT_EQ((*store_->GetExam(b))->state, rdg::v1::CLAIMED);
  EXPECT_EQ(store_->ListEvents(a)->back().detail, "lease of alice expired");
  EXPECT_EQ(*store_->ExpireClaims(kT0 + absl::Minutes(10)), 0);
}

TEST_F(SqliteIndexStoreTest, WorklistOrderFiltersAndPages) {
  const std::string late =
      AddRoutedExam(*store_, "6.1", "county-a/imaging", kT0 + absl::Hours(24), rdg::v1::ROUTINE);
  const std::string stat =
      AddRoutedExam(*store_, "6.2", "county-a/imaging", kT0 + absl::Minutes(30), rdg::v1::STAT);
  const std::string urgent =
      AddRoutedExam(*store_, "6.3", "county-a/imaging", kT0 + absl::Minutes(30), rdg::v1::URGENT);
  const std::string ecg =
      AddRoutedExam(*store_, "6.4", "county-a/ecg", kT0 + absl::Minutes(15), rdg::v1::STAT, "ECG");
  AddRoutedExam(*store_, "6.5", "county-b/imaging", kT0, rdg::v1::STAT);  // another county's queue
  ASSERT_TRUE(
      store_->ClaimExam(urgent, "alice", "county-a", kT0, absl::Minutes(15), ClaimAction::kClaim)
          .ok());

  WorklistQuery q;
  q.queues = {"county-a/imaging", "county-a/ecg"};
  auto ids = [&](const WorklistQuery& query) {
    std::vector<std::string> out;
    WorklistQuery page = query;
    do {
      auto p = *store_->ListWorklist(page, kT0);
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
  q.priorities = {rdg::v1::STAT, rdg::v1::URGENT};
  EXPECT_EQ(ids(q), (std::vector<std::string>{stat, urgent}));
  q.exam_types.clear();
  q.priorities.clear();
  q.states = {rdg::v1::CLAIMED};
  auto claimed = *store_->ListWorklist(q, kT0);
  ASSERT_EQ(claimed.entries.size(), 1u);
  ASSERT_TRUE(claimed.entries[0].claim.has_value());
  EXPECT_EQ(claimed.entries[0].claim->holder_user, "alice");
  q.after = "garbage";
  EXPECT_TRUE(absl::IsInvalidArgument(store_->ListWorklist(q, kT0).status()));
}

}  // namespace
}  // namespace rdg::storage

namespace rdg::storage {
namespace {

TEST_F(SqliteIndexStoreTest, QueueFiguresCountOpenWorkOnly) {
  // Routed at kT0 (the commit's time); two due already at kT0 + 1 h, one later.
  const std::string a =
      AddRoutedExam(*store_, "7.1", "county-a/imaging", kT0 + absl::Minutes(30), rdg::v1::STAT);
  AddRoutedExam(*store_, "7.2", "county-a/imaging", kT0 + absl::Hours(24), rdg::v1::ROUTINE);
  const std::string c =
      AddRoutedExam(*store_, "7.3", "county-a/imaging", kT0 + absl::Minutes(45), rdg::v1::URGENT);
  AddRoutedExam(*store_, "7.4", "county-a/ecg", kT0 + absl::Hours(2), rdg::v1::ROUTINE, "ECG");
  ASSERT_TRUE(
      store_->ClaimExam(a, "alice", "county-a", kT0, absl::Minutes(15), ClaimAction::kClaim).ok());
  ASSERT_TRUE(
      store_->ClaimExam(c, "bob", "county-a", kT0, absl::Minutes(15), ClaimAction::kClaim).ok());

  auto figures = store_->ListQueueFigures(kT0 + absl::Hours(1));
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
  // The query reads the covering partial index of open exams, never a table row.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(dir_.Join("index.sqlite").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* plan = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "EXPLAIN QUERY PLAN SELECT queue, count(*), sum(state IN (3, 4)), "
                               "min(CASE WHEN state = 2 THEN updated_at END), sum(sla_due_at < 0) "
                               "FROM exams INDEXED BY exams_open_by_queue WHERE state IN (2, 3, 4) "
                               "GROUP BY queue ORDER BY queue",
                               -1, &plan, nullptr),
            SQLITE_OK);
  std::string detail;
  while (sqlite3_step(plan) == SQLITE_ROW) {
    detail += reinterpret_cast<const char*>(sqlite3_column_text(plan, 3));
    detail += "; ";
  }
  sqlite3_finalize(plan);
  sqlite3_close(db);
  EXPECT_NE(detail.find("COVERING INDEX exams_open_by_queue"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("TEMP B-TREE"), std::string::npos) << "grouped in index order: " << detail;
}

TEST(SqliteIndexStoreSafetyTest, ADatabaseNewerThanTheBinaryIsRefused) {
  testing::TempDir dir;
  const std::string path = dir.Join("index.sqlite");
  ASSERT_TRUE(SqliteIndexStore::Open(path).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "INSERT INTO schema_migrations (version, name, applied_at) "
                         "VALUES (9999, '9999_from_the_future', 0)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto reopened = SqliteIndexStore::Open(path);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(reopened.status().message().find("schema version 9999, newer than this binary's"),
            absl::string_view::npos)
      << reopened.status();
}

TEST(SqliteIndexStoreSafetyTest, IndexFilesAreTheOwnersAloneWhateverTheUmask) {
  testing::TempDir dir;
  const mode_t old_mask = ::umask(0);
  {
    auto store = SqliteIndexStore::Open(dir.Join("new.sqlite"));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->CommitObjects({MakeObject("c1", "1.2.3", "1.2.3.4", "aa")})[0].ok());
    for (const char* suffix : {"", "-wal", "-shm"}) {
      struct stat st {};
      ASSERT_EQ(::stat(dir.Join(std::string("new.sqlite") + suffix).c_str(), &st), 0) << suffix;
      EXPECT_EQ(st.st_mode & 0777, 0600u) << suffix;
    }
  }
  // An index made by an older release (or copied in) with 0644 is tightened when opened.
  const std::string old_index = dir.Join("old.sqlite");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(old_index.c_str(), &db), SQLITE_OK);
  sqlite3_close(db);
  ASSERT_EQ(::chmod(old_index.c_str(), 0644), 0);
  ::umask(old_mask);
  ASSERT_TRUE(SqliteIndexStore::Open(old_index).ok());
  struct stat st {};
  ASSERT_EQ(::stat(old_index.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(SqliteIndexStoreSafetyTest, ExamIdsAreRandomHex) {
  testing::TempDir dir;
  auto store = *SqliteIndexStore::Open(dir.Join("index.sqlite"));
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

TEST(SqliteIndexStoreAuditTest, RecordsOfAnEarlierReleaseAreLinkedByTheMigration) {
  testing::TempDir dir;
  const std::string path = dir.Join("index.sqlite");
  {  // An index as release 14 left it, with audit records and no chain.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name "
                           "TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    for (const Migration& m : SqliteMigrations()) {
      if (m.version >= 15) break;
      ASSERT_EQ(sqlite3_exec(db, std::string(m.sql).c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
          << m.name;
      ASSERT_EQ(sqlite3_exec(db,
                             absl::StrCat("INSERT INTO schema_migrations VALUES (", m.version,
                                          ", '", m.name, "', 0)")
                                 .c_str(),
                             nullptr, nullptr, nullptr),
                SQLITE_OK);
    }
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(sqlite3_exec(db,
                             "INSERT INTO audit_log (at, institution, user, role, action) VALUES "
                             "(1700000000000000, 'county-a', '李医生', 2, 'fetch_exam')",
                             nullptr, nullptr, nullptr),
                SQLITE_OK);
    }
    sqlite3_close(db);
  }
  auto store = SqliteIndexStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(
      (*store)->AppendAudit(AuditOf(kT0, "province", "admin", rdg::v1::ADMIN, "later")).ok());
  auto page = (*store)->ExportAudit(1, 100);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 6u);
  audit::ChainWalker walker(audit::GenesisLink());
  for (const AuditRecord& r : page->records) {
    audit::StoredRecord stored{
        {r.seq, absl::ToUnixMicros(r.at), r.institution, r.user, r.role, r.action, r.exam_id,
         r.detail, r.outcome, r.patient_id, r.peer, r.subject},
        r.prev_hash,
        r.hash};
    EXPECT_TRUE(walker.Feed(stored).empty()) << r.seq;
  }
  // Still append-only after the migration lifted and restored the trigger.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE audit_log SET user = 'x'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
}

TEST(SqliteIndexStoreAuditTest, TheTipAndCheckpointsFollowTheChain) {
  testing::TempDir dir;
  auto store = *SqliteIndexStore::Open(dir.Join("index.sqlite"));
  EXPECT_EQ(store->AuditTip()->seq, 0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store->AppendAudit(AuditOf(kT0, "province", "admin", rdg::v1::ADMIN, "a")).ok());
  }
  auto tip = *store->AuditTip();
  EXPECT_EQ(tip.seq, 3);
  EXPECT_EQ(tip.checkpointed_seq, 0);
  ASSERT_EQ(tip.hash.size(), 32u);
  ASSERT_TRUE(store->AppendAuditCheckpoint({3, tip.hash, kT0, "statement", "signature"}).ok());
  EXPECT_EQ(store->AuditTip()->checkpointed_seq, 3);
  auto page = *store->ExportAudit(2, 100);
  ASSERT_EQ(page.records.size(), 2u);
  EXPECT_EQ(page.records[0].prev_hash, (*store->ExportAudit(1, 1)).records[0].hash);
  ASSERT_EQ(page.checkpoints.size(), 1u);
  EXPECT_EQ(page.checkpoints[0].statement, "statement");
  EXPECT_TRUE(store->ExportAudit(4, 100)->records.empty());
}

TEST(SqliteIndexStoreAuditTest, UploadsAreAuditedInTheirCommitAndNameThePatient) {
  testing::TempDir dir;
  auto store = *SqliteIndexStore::Open(dir.Join("index.sqlite"));
  ASSERT_TRUE(store->AppendAudit(AuditOf(kT0, "province", "admin", rdg::v1::ADMIN, "before")).ok());
  auto audited = [](NewObject n) {
    n.audit = AuditOf(kT0, "c1", "u1", rdg::v1::CLINIC, "upload", "",
                      "DICOM " + n.object.sop_instance_uid);
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
  ASSERT_TRUE(store->AppendAudit(AuditOf(kT0, "province", "admin", rdg::v1::ADMIN, "after")).ok());

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

TEST(SqliteIndexStoreBackupTest, ASnapshotIsAStandaloneCopyOfEverythingCommitted) {
  testing::TempDir dir;
  auto store = *SqliteIndexStore::Open(dir.Join("index.sqlite"));
  ASSERT_TRUE(store->CommitObjects({MakeObject("c1", "1.2.3", "1.2.3.1", "a1")})[0].ok());
  ASSERT_TRUE(store->AppendAudit(AuditOf(kT0, "province", "admin", rdg::v1::ADMIN, "a")).ok());
  EXPECT_EQ(store->SnapshotTo(dir.Join("snapshot.sqlite")).value(), 1);  // its audit tip
  // Never over an existing file.
  EXPECT_FALSE(store->SnapshotTo(dir.Join("snapshot.sqlite")).ok());
  // Written after the snapshot: not in it.
  ASSERT_TRUE(store->CommitObjects({MakeObject("c1", "1.2.4", "1.2.4.1", "b1")})[0].ok());
  store.reset();
  EXPECT_FALSE(std::filesystem::exists(dir.Join("snapshot.sqlite-wal")));
  auto copy = *SqliteIndexStore::Open(dir.Join("snapshot.sqlite"));
  EXPECT_TRUE(copy->IsBlobReferenced("a1").value());
  EXPECT_FALSE(copy->IsBlobReferenced("b1").value());
  EXPECT_EQ(copy->AuditTip()->seq, 1);
}

}  // namespace
}  // namespace rdg::storage
