// AuditStore's contract, typed over every backend that has an AuditStore: SQLite and PostgreSQL
// (a fresh database per case in the test cluster). What only one backend promises follows the
// typed cases: several gateways appending to one PostgreSQL index.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/base/audit_chain.h"
#include "storage/index/audit_links.h"
#include "storage/postgres/pg_audit_store.h"
#include "storage/postgres/pg_connection.h"
#include "storage/sqlite_index_store.h"
#include "tests/mocks/temp_dir.h"
#include "tests/storage/index_contract_support.h"
#include "tests/storage/pg_test_database.h"
#include "tests/storage/store_contract.h"

// The backends, outside any namespace so that CTest's names say them plainly
// (unit.AuditStoreContractTest.<case><SqliteAudit>).
struct SqliteAudit {
  static auto Open(rdg::testing::TempDir& dir) {
    return rdg::storage::contract::OpenSqlite<rdg::storage::AuditStore>(dir);
  }
};

struct PostgresAudit {
  using Store = rdg::storage::AuditStore;
  static absl::StatusOr<std::shared_ptr<Store>> Open(rdg::testing::TempDir& dir) {
    absl::StatusOr<std::string> dsn = rdg::storage::contract::FreshDatabaseFor(dir);
    if (!dsn.ok()) return dsn.status();
    return OpenOn(*dsn);
  }
  static absl::StatusOr<std::shared_ptr<Store>> OpenOn(const std::string& dsn) {
    return rdg::storage::contract::OpenPostgres<Store, rdg::storage::pg::PgAuditStore>(dsn);
  }
};

namespace rdg::storage::contract {
namespace {

template <typename Backend>
class AuditStoreContractTest : public StoreContract<AuditStore, Backend> {};

using AuditBackends = ::testing::Types<SqliteAudit, PostgresAudit>;
TYPED_TEST_SUITE(AuditStoreContractTest, AuditBackends);

//! Every record of `store` from the first, walked as `rdg-admin audit verify` does, in pages of
//! `page`: the problems found, "" when the chain is whole; `records` counts them.
std::string WalkChain(AuditStore& store, int32_t page, int64_t* records) {
  audit::ChainWalker walker(audit::GenesisLink());
  std::string problems;
  for (int64_t from = 1;;) {
    auto p = store.ExportAudit(from, page);
    if (!p.ok()) return std::string(p.status().message());
    for (const AuditRecord& r : p->records) {
      for (const audit::Problem& problem : walker.Feed({ChainedFieldsOf(r), r.prev_hash, r.hash})) {
        absl::StrAppend(&problems, problem.message, "; ");
      }
    }
    if (static_cast<int32_t>(p->records.size()) < page) break;
    from = p->records.back().seq + 1;
  }
  *records = walker.records();
  return problems;
}

TYPED_TEST(AuditStoreContractTest, TheTipAndCheckpointsFollowTheChain) {
  AuditStore& store = *this->store_;
  EXPECT_EQ(store.AuditTip()->seq, 0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store.AppendAudit(AuditOf(kT0, "province", "admin", Role::kAdmin, "a")).ok());
  }
  auto tip = store.AuditTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(tip->seq, 3);
  EXPECT_EQ(tip->table_last_seq, 3);
  EXPECT_EQ(tip->checkpointed_seq, 0);
  ASSERT_EQ(tip->hash.size(), 32u);
  ASSERT_TRUE(store.AppendAuditCheckpoint({3, tip->hash, kT0, "statement", "signature"}).ok());
  EXPECT_EQ(store.AuditTip()->checkpointed_seq, 3);
  EXPECT_EQ(store.AuditTip()->checkpoint_statement, "statement");
  auto page = store.ExportAudit(2, 100);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->records.size(), 2u);
  EXPECT_EQ(page->records[0].prev_hash, store.ExportAudit(1, 1)->records[0].hash);
  EXPECT_EQ(page->records[1].hash, tip->hash);
  ASSERT_EQ(page->checkpoints.size(), 1u);
  EXPECT_EQ(page->checkpoints[0].statement, "statement");
  EXPECT_EQ(page->checkpoints[0].signature, "signature");
  EXPECT_EQ(page->checkpoints[0].hash, tip->hash);
  EXPECT_TRUE(store.ExportAudit(4, 100)->records.empty());
}

TYPED_TEST(AuditStoreContractTest, RecordsKeepEveryFieldAndChainWhole) {
  AuditStore& store = *this->store_;
  AuditRecord r = AuditOf(kT0 + absl::Microseconds(7), "county-a", "李医生", Role::kReader,
                          "download_exam", "ex-unknown", "系列 1");
  r.outcome = "PERMISSION_DENIED";
  r.peer = "ipv4:10.1.2.3:50122";
  r.subject = "CN=李医生,O=county-a";
  ASSERT_TRUE(store.AppendAudit(r).ok());
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(store.AppendAudit(AuditOf(kT0, "c1", "u", Role::kClinic, "list")).ok());
  }
  auto got = store.ExportAudit(1, 1);
  ASSERT_TRUE(got.ok() && got->records.size() == 1) << got.status();
  const AuditRecord& first = got->records[0];
  EXPECT_EQ(first.seq, 1);
  EXPECT_EQ(first.at, kT0 + absl::Microseconds(7));
  EXPECT_EQ(first.user, "李医生");
  EXPECT_EQ(first.role, Role::kReader);
  EXPECT_EQ(first.detail, "系列 1");
  EXPECT_EQ(first.outcome, "PERMISSION_DENIED");
  EXPECT_EQ(first.peer, "ipv4:10.1.2.3:50122");
  EXPECT_EQ(first.subject, "CN=李医生,O=county-a");
  EXPECT_EQ(first.patient_id, "") << "an exam the index lacks names no patient";
  EXPECT_EQ(first.prev_hash, audit::GenesisLink());
  int64_t records = 0;
  EXPECT_EQ(WalkChain(store, 2, &records), "");
  EXPECT_EQ(records, 7);
}

TYPED_TEST(AuditStoreContractTest, ListAuditFiltersNewestFirst) {
  AuditStore& store = *this->store_;
  ASSERT_TRUE(
      store.AppendAudit(AuditOf(kT0, "c1", "u1", Role::kClinic, "download_exam", "ex-1", "")).ok());
  ASSERT_TRUE(store
                  .AppendAudit(AuditOf(kT0 + absl::Hours(1), "c1", "u2", Role::kClinic,
                                       "list_exams", "", ""))
                  .ok());
  ASSERT_TRUE(store
                  .AppendAudit(AuditOf(kT0 + absl::Hours(2), "c1", "u1", Role::kClinic,
                                       "list_exams", "", ""))
                  .ok());
  auto actions = [&](AuditQuery q) {
    std::vector<std::string> out;
    auto rows = store.ListAudit(q);
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (rows.ok()) {
      for (const auto& r : *rows) out.push_back(absl::StrCat(r.seq, ":", r.action));
    }
    return out;
  };
  AuditQuery by_user;
  by_user.user = "u1";
  EXPECT_EQ(actions(by_user), (std::vector<std::string>{"3:list_exams", "1:download_exam"}));
  AuditQuery by_exam;
  by_exam.exam_id = "ex-1";
  EXPECT_EQ(actions(by_exam), (std::vector<std::string>{"1:download_exam"}));
  AuditQuery by_action;
  by_action.action = "list_exams";
  by_action.since = kT0 + absl::Minutes(90);
  EXPECT_EQ(actions(by_action), (std::vector<std::string>{"3:list_exams"}));
  AuditQuery limited;
  limited.limit = 2;
  EXPECT_EQ(actions(limited), (std::vector<std::string>{"3:list_exams", "2:list_exams"}));
  // Filters together: each narrows the others.
  AuditQuery user_and_exam;
  user_and_exam.user = "u2";
  user_and_exam.exam_id = "ex-1";
  EXPECT_TRUE(actions(user_and_exam).empty());
  user_and_exam.user = "u1";
  EXPECT_EQ(actions(user_and_exam), (std::vector<std::string>{"1:download_exam"}));
  AuditQuery user_and_action;
  user_and_action.user = "u1";
  user_and_action.action = "list_exams";
  EXPECT_EQ(actions(user_and_action), (std::vector<std::string>{"3:list_exams"}));
  user_and_action.since = kT0 + absl::Hours(3);
  EXPECT_TRUE(actions(user_and_action).empty());
}

TYPED_TEST(AuditStoreContractTest, ExportMarksOnlyMoveForward) {
  AuditStore& store = *this->store_;
  EXPECT_EQ(*store.AuditExportedUpTo("syslog-a"), 0);
  ASSERT_TRUE(store.SetAuditExportedUpTo("syslog-a", 40, kT0).ok());
  ASSERT_TRUE(store.SetAuditExportedUpTo("syslog-a", 12, kT0 + absl::Seconds(1)).ok());
  ASSERT_TRUE(store.SetAuditExportedUpTo("syslog-b", 5, kT0).ok());
  EXPECT_EQ(*store.AuditExportedUpTo("syslog-a"), 40);
  EXPECT_EQ(*store.AuditExportedUpTo("syslog-b"), 5);
}

// PostgreSQL only: gateways sharing one index append to one chain. (A SQLite index has one
// gateway: its data dir is locked.)
TEST(PostgresAuditStoreTest, GatewaysAppendingAtOnceKeepOneWholeChainWithoutGaps) {
  absl::StatusOr<std::string> dsn = CreateTestDatabase();
  if (absl::IsNotFound(dsn.status())) GTEST_SKIP() << dsn.status().message();
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  auto a = PostgresAudit::OpenOn(*dsn);
  auto b = PostgresAudit::OpenOn(*dsn);
  ASSERT_TRUE(a.ok() && b.ok());
  std::shared_ptr<AuditStore> gateways[] = {*a, *b};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        absl::Status s = gateways[t % 2]->AppendAudit(
            AuditOf(kT0, "c1", absl::StrCat("u", t), Role::kClinic, absl::StrCat("a", i)));
        if (!s.ok()) ADD_FAILURE() << s;
      }
    });
  }
  for (auto& t : threads) t.join();
  int64_t records = 0;
  EXPECT_EQ(WalkChain(*gateways[1], 25, &records), "");
  EXPECT_EQ(records, 120);
  auto tip = gateways[0]->AuditTip();
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(tip->seq, 120);
  EXPECT_EQ(tip->table_last_seq, 120);
}

TEST(PostgresAuditStoreTest, TheLogCannotBeChangedOrEmptied) {
  absl::StatusOr<std::string> dsn = CreateTestDatabase();
  if (absl::IsNotFound(dsn.status())) GTEST_SKIP() << dsn.status().message();
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  auto store = PostgresAudit::OpenOn(*dsn);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->AppendAudit(AuditOf(kT0, "c1", "u1", Role::kClinic, "a")).ok());
  auto conn = pg::Connection::Open(*dsn);
  ASSERT_TRUE(conn.ok()) << conn.status();
  for (const char* sql : {"UPDATE audit_log SET user_name = 'x'", "DELETE FROM audit_log",
                          "TRUNCATE audit_log", "DELETE FROM audit_checkpoints"}) {
    absl::Status s = (*conn)->Run(sql);
    EXPECT_FALSE(s.ok()) << sql;
    EXPECT_NE(s.message().find("append-only"), std::string::npos) << sql << ": " << s;
  }
  EXPECT_EQ((*store)->ExportAudit(1, 10)->records.size(), 1u);
}

}  // namespace
}  // namespace rdg::storage::contract
