// IdentityConflictStore's contract, typed over SQLite and PostgreSQL (a fresh database per case
// in the test cluster): the administrators' review list of what the identity rules refused.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/postgres/pg_identity_conflict_store.h"
#include "tests/storage/index_contract_support.h"
#include "tests/storage/store_contract.h"

// The backends, outside any namespace so that CTest's names say them plainly
// (unit.IdentityConflictStoreContractTest.<case><SqliteConflicts>).
struct SqliteConflicts {
  static auto Open(rdg::testing::TempDir& dir) {
    return rdg::storage::contract::OpenSqlite<rdg::storage::IdentityConflictStore>(dir);
  }
};

struct PostgresConflicts {
  using Store = rdg::storage::IdentityConflictStore;
  static absl::StatusOr<std::shared_ptr<Store>> Open(rdg::testing::TempDir& dir) {
    absl::StatusOr<std::string> dsn = rdg::storage::contract::FreshDatabaseFor(dir);
    if (!dsn.ok()) return dsn.status();
    return rdg::storage::contract::OpenPostgres<Store, rdg::storage::pg::PgIdentityConflictStore>(
        *dsn);
  }
};

namespace rdg::storage::contract {
namespace {

template <typename Backend>
class IdentityConflictStoreContractTest : public StoreContract<IdentityConflictStore, Backend> {};

using ConflictBackends = ::testing::Types<SqliteConflicts, PostgresConflicts>;
TYPED_TEST_SUITE(IdentityConflictStoreContractTest, ConflictBackends);

IdentityConflictRecord Conflict(absl::Time at, IdentityConflictKind kind, const std::string& exam,
                                const std::string& other, const std::string& detail) {
  IdentityConflictRecord c;
  c.detected_at = at;
  c.kind = kind;
  c.exam_id = exam;
  c.origin_institution = "clinic-a1";
  c.other_exam_id = other;
  c.other_institution = other.empty() ? "" : "clinic-b1";
  c.detail = detail;
  return c;
}

TYPED_TEST(IdentityConflictStoreContractTest, EachConflictIsListedOnceNewestFirst) {
  IdentityConflictStore& store = *this->store_;
  IdentityConflictRecord disagree = Conflict(kT0, IdentityConflictKind::kDemographicsDisagree,
                                             "ex-1", "ex-2", "same national ID, other name");
  disagree.fields = {"name", "sex"};
  ASSERT_TRUE(store.RecordIdentityConflict(disagree).ok());
  // Found again by another upload (another time): still one entry.
  IdentityConflictRecord again = disagree;
  again.detected_at = kT0 + absl::Minutes(5);
  ASSERT_TRUE(store.RecordIdentityConflict(again).ok());
  ASSERT_TRUE(store
                  .RecordIdentityConflict(Conflict(kT0 + absl::Hours(1),
                                                   IdentityConflictKind::kNationalIdRefused, "ex-3",
                                                   "", "check digit"))
                  .ok());
  auto all = store.ListIdentityConflicts(absl::InfinitePast(), 100);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].exam_id, "ex-3");
  EXPECT_EQ((*all)[0].kind, IdentityConflictKind::kNationalIdRefused);
  EXPECT_TRUE((*all)[0].fields.empty());
  EXPECT_EQ((*all)[0].other_exam_id, "");
  const IdentityConflictRecord& first = (*all)[1];
  EXPECT_EQ(first.detected_at, kT0) << "the first detection is kept";
  EXPECT_EQ(first.other_exam_id, "ex-2");
  EXPECT_EQ(first.other_institution, "clinic-b1");
  EXPECT_EQ(first.fields, (std::vector<std::string>{"name", "sex"}));
  EXPECT_EQ(first.detail, "same national ID, other name");
  EXPECT_GT((*all)[0].seq, first.seq);
  auto recent = store.ListIdentityConflicts(kT0 + absl::Minutes(30), 100);
  ASSERT_TRUE(recent.ok()) << recent.status();
  ASSERT_EQ(recent->size(), 1u);
  EXPECT_EQ((*recent)[0].exam_id, "ex-3");
  EXPECT_EQ(store.ListIdentityConflicts(absl::InfinitePast(), 1)->size(), 1u);
}

}  // namespace
}  // namespace rdg::storage::contract
