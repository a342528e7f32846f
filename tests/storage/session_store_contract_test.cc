// SessionStore's contract, one set of cases typed over every backend that has a SessionStore:
// SQLite (the embedded default) and PostgreSQL (a fresh database per case in the test cluster).
// A backend's Open gives a fresh, empty store; OpenAgain a second store on the same index, as a
// second gateway process sees it.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_pool.h"
#include "storage/postgres/pg_session_store.h"
#include "storage/sqlite_index_store.h"
#include "tests/mocks/temp_dir.h"
#include "tests/storage/index_contract_support.h"
#include "tests/storage/pg_test_database.h"
#include "tests/storage/store_contract.h"

// The backends of the contract, outside any namespace so that CTest's names say them plainly
// (unit.SessionStoreContractTest.<case><SqliteSessions>).
struct SqliteSessions {
  static auto Open(rdg::testing::TempDir& dir) {
    return rdg::storage::contract::OpenSqlite<rdg::storage::SessionStore>(dir);
  }
  static auto OpenAgain(rdg::testing::TempDir& dir) { return Open(dir); }
};

struct PostgresSessions {
  using Store = rdg::storage::SessionStore;
  static absl::StatusOr<std::shared_ptr<Store>> Open(rdg::testing::TempDir& dir) {
    absl::StatusOr<std::string> dsn = rdg::storage::contract::FreshDatabaseFor(dir);
    if (!dsn.ok()) return dsn.status();
    return OpenAgain(dir);
  }
  static absl::StatusOr<std::shared_ptr<Store>> OpenAgain(rdg::testing::TempDir& dir) {
    return rdg::storage::contract::OpenPostgres<Store, rdg::storage::pg::PgSessionStore>(
        rdg::storage::contract::DatabaseOf(dir));
  }
};

namespace rdg::storage::contract {
namespace {

template <typename Backend>
class SessionStoreContractTest : public StoreContract<SessionStore, Backend> {};

using SessionBackends = ::testing::Types<SqliteSessions, PostgresSessions>;
TYPED_TEST_SUITE(SessionStoreContractTest, SessionBackends);

TYPED_TEST(SessionStoreContractTest, SessionsAreFoundTouchedListedAndDeleted) {
  SessionStore& store = *this->store_;
  UploadSessionRecord a{"up-a", "c1", "张三医生",      ObjectKind::kDicom,
                        100,    "ab", Priority::kStat, "检查-001",
                        kT0,    kT0};
  UploadSessionRecord b = Session("up-b", "c1", kT0 + absl::Seconds(1));
  UploadSessionRecord c = Session("up-c", "c2", kT0 + absl::Seconds(2));
  for (const auto& s : {a, b, c}) ASSERT_TRUE(store.CreateSession(s, 10).ok()) << s.session_id;
  auto got = store.GetSession("up-a");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_EQ((*got)->institution, "c1");
  EXPECT_EQ((*got)->user, "张三医生");
  EXPECT_EQ((*got)->kind, ObjectKind::kDicom);
  EXPECT_EQ((*got)->size, 100);
  EXPECT_EQ((*got)->sha256_hex, "ab");
  EXPECT_EQ((*got)->priority, Priority::kStat);
  EXPECT_EQ((*got)->client_ref, "检查-001");
  EXPECT_EQ((*got)->created_at, kT0);
  EXPECT_FALSE(store.GetSession("up-none")->has_value());
  // The same content at the same institution is the same upload; anywhere else it is not.
  EXPECT_EQ((*store.FindSession("c1", "ab", 100))->session_id, "up-a");
  EXPECT_FALSE(store.FindSession("c1", "ab", 101)->has_value());
  EXPECT_FALSE(store.FindSession("c2", "ab", 100)->has_value());
  EXPECT_EQ(*store.CountSessions("c1"), 2);
  ASSERT_TRUE(store.TouchSession("up-a", kT0 + absl::Hours(1)).ok());
  EXPECT_EQ((*store.GetSession("up-a"))->updated_at, kT0 + absl::Hours(1));
  std::vector<std::string> all;
  auto listed = store.ListSessions();
  ASSERT_TRUE(listed.ok()) << listed.status();
  for (const auto& s : *listed) all.push_back(s.session_id);
  EXPECT_EQ(all, (std::vector<std::string>{"up-a", "up-b", "up-c"}));
  ASSERT_TRUE(store.DeleteSession("up-a").ok());
  EXPECT_FALSE(store.GetSession("up-a")->has_value());
  EXPECT_EQ(*store.CountSessions("c1"), 1);
  EXPECT_TRUE(store.DeleteSession("up-a").ok()) << "deleting twice is no error";
}

// What was seen: a race let 1,003 sessions in under a limit of 1,000 (count, then insert).
TYPED_TEST(SessionStoreContractTest, OpenSessionQuotaIsAtomicUnderConcurrency) {
  constexpr int kLimit = 100;
  std::atomic<int> created{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        absl::Status s =
            this->store_->CreateSession(Session(absl::StrCat("up-", t, "-", i), "c1", kT0), kLimit);
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
  EXPECT_EQ(*this->store_->CountSessions("c1"), kLimit);
  // Another institution has its own quota.
  EXPECT_TRUE(this->store_->CreateSession(Session("other", "c2", kT0), kLimit).ok());
}

TYPED_TEST(SessionStoreContractTest, ListSessionsOfPagesOldestFirstAndScopesByInstitution) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        this->store_
            ->CreateSession(Session(absl::StrCat("a", i), "c1", kT0 + absl::Seconds(5 - i)), 100)
            .ok());
  }
  // Two more opened in the same microsecond as a2: the session id orders them.
  for (const char* id : {"a2b", "a2a"}) {
    ASSERT_TRUE(this->store_->CreateSession(Session(id, "c1", kT0 + absl::Seconds(3)), 100).ok());
  }
  ASSERT_TRUE(this->store_->CreateSession(Session("b0", "c2", kT0), 100).ok());
  std::vector<std::string> seen;
  std::optional<SessionCursor> after;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = this->store_->ListSessionsOf("c1", after, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& s : *page) seen.push_back(s.session_id);
    if (page->size() < 2) break;
    after = SessionCursor{page->back().created_at, page->back().session_id};
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a4", "a3", "a2", "a2a", "a2b", "a1", "a0"}));
}

TYPED_TEST(SessionStoreContractTest, TheQuotaHoldsAcrossTwoGatewaysOnOneIndex) {
  auto second = TypeParam::OpenAgain(this->dir_);
  ASSERT_TRUE(second.ok()) << second.status();
  std::shared_ptr<SessionStore> stores[] = {this->store_, *second};
  constexpr int kLimit = 50;
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        absl::Status s = stores[t % 2]->CreateSession(
            Session(absl::StrCat("up-", t, "-", i), "c1", kT0), kLimit);
        if (s.ok()) {
          ++created;
        } else if (!absl::IsResourceExhausted(s)) {
          ADD_FAILURE() << s;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), kLimit);
  EXPECT_EQ(*stores[1]->CountSessions("c1"), kLimit);
}

//! What a restart of the server does to the database `dsn`: every connection to it (but this
//! one) ended by the server; how many.
absl::StatusOr<int64_t> TerminateEveryConnection(const std::string& dsn) {
  auto killer = pg::Connection::Open(dsn);
  if (!killer.ok()) return killer.status();
  static constexpr char kTerminate[] =
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE datname = current_database() AND pid <> pg_backend_pid() "
      "AND backend_type = 'client backend'";  // not an autovacuum worker passing by
  auto killed = (*killer)->Exec(kTerminate);
  if (!killed.ok()) return killed.status();
  return killed->Int(0, 0);
}

// PostgreSQL only: the database restarted (every connection of the index closed by the server)
// costs the next calls nothing; the pool opens new connections.
TEST(PostgresSessionStoreTest, ConnectionsClosedByTheServerAreReplaced) {
  absl::StatusOr<std::string> dsn = CreateTestDatabase();
  if (absl::IsNotFound(dsn.status())) GTEST_SKIP() << dsn.status().message();
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  auto pool = OpenMigrated(*dsn);
  ASSERT_TRUE(pool.ok()) << pool.status();
  pg::PgSessionStore store(**pool);
  ASSERT_TRUE(store.CreateSession(Session("up-1", "c1", kT0), 10).ok());
  ASSERT_TRUE(store.CountSessions("c1").ok());
  auto killed = TerminateEveryConnection(*dsn);
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_GE(*killed, 1);
  EXPECT_TRUE(store.CreateSession(Session("up-2", "c1", kT0), 10).ok());
  auto count = store.CountSessions("c1");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 2);
}

TEST(PostgresPoolTest, AfterTheServerDroppedEveryConnectionNoCallFindsADeadOne) {
  // A restart of the database closes every connection of the pool; each call after it must not
  // first meet one of them (Query tries a second connection, not a fifth).
  absl::StatusOr<std::string> dsn = CreateTestDatabase();
  if (absl::IsNotFound(dsn.status())) GTEST_SKIP() << dsn.status().message();
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  auto pool = pg::Pool::Open({.conninfo = *dsn, .size = 6});
  ASSERT_TRUE(pool.ok()) << pool.status();
  {
    std::vector<pg::Pool::Lease> leases;  // six connections open, then idle
    for (int i = 0; i < 6; ++i) {
      auto lease = (*pool)->Acquire();
      ASSERT_TRUE(lease.ok()) << lease.status();
      leases.push_back(*std::move(lease));
    }
  }
  auto killed = TerminateEveryConnection(*dsn);
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_EQ(*killed, 6);
  static constexpr char kOne[] = "SELECT 1";
  for (int i = 0; i < 6; ++i) {
    auto r = (*pool)->Query(kOne, {});
    EXPECT_TRUE(r.ok()) << "call " << i << ": " << r.status();
  }
}

}  // namespace
}  // namespace rdg::storage::contract
