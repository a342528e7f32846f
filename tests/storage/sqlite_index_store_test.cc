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
#include "tests/storage/index_contract_support.h"

namespace rdg::storage::contract {
namespace {

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

TEST_F(SqliteIndexStoreTest, AuditLogIsAppendOnly) {
  ASSERT_TRUE(store_
                  ->AppendAudit(
                      storage::AuditOf(kT0, "c1", "u1", Role::kClinic, "download_exam", "ex-1", ""))
                  .ok());
  ASSERT_TRUE(
      store_->AppendAudit(storage::AuditOf(kT0, "c1", "u2", Role::kClinic, "list_exams", "", ""))
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

}  // namespace
}  // namespace rdg::storage::contract

namespace rdg::storage::contract {
namespace {

TEST_F(SqliteIndexStoreTest, QueueFiguresReadTheCoveringIndexOfOpenExamsOnly) {
  // ListQueueFigures' query reads the covering partial index of open exams, never a table row.
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
  ASSERT_TRUE((*store)->AppendAudit(AuditOf(kT0, "province", "admin", Role::kAdmin, "later")).ok());
  auto page = (*store)->ExportAudit(1, 100);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 6u);
  audit::ChainWalker walker(audit::GenesisLink());
  for (const AuditRecord& r : page->records) {
    audit::StoredRecord stored{
        {r.seq, absl::ToUnixMicros(r.at), r.institution, r.user, Number(r.role), r.action,
         r.exam_id, r.detail, r.outcome, r.patient_id, r.peer, r.subject},
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

TEST(SqliteIndexStoreBackupTest, ASnapshotIsAStandaloneCopyOfEverythingCommitted) {
  testing::TempDir dir;
  auto store = *SqliteIndexStore::Open(dir.Join("index.sqlite"));
  ASSERT_TRUE(store->CommitObjects({MakeObject("c1", "1.2.3", "1.2.3.1", "a1")})[0].ok());
  ASSERT_TRUE(store->AppendAudit(AuditOf(kT0, "province", "admin", Role::kAdmin, "a")).ok());
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
}  // namespace rdg::storage::contract
