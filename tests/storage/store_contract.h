// What the stores' contract suites share: a typed fixture, and a store of each backend — of a
// SQLite index in the case's temporary directory, or of a fresh PostgreSQL database in the test
// cluster (pg_test_database.h), on its own pool as a gateway would have it.
#pragma once

#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "storage/index_store.h"
#include "storage/postgres/pg_index_store.h"
#include "storage/postgres/pg_pool.h"
#include "storage/sqlite_index_store.h"
#include "tests/mocks/temp_dir.h"
#include "tests/storage/pg_test_database.h"

namespace rdg::storage::contract {

//! `Interface` of the SQLite index in `dir` (opened again: the same index).
template <typename Interface>
absl::StatusOr<std::shared_ptr<Interface>> OpenSqlite(testing::TempDir& dir) {
  auto store = SqliteIndexStore::Open(dir.Join("index.sqlite"));
  if (!store.ok()) return store.status();
  std::shared_ptr<SqliteIndexStore> shared = *std::move(store);
  return std::shared_ptr<Interface>(shared, static_cast<Interface*>(shared.get()));
}

//! A `PgStore` (implementing `Interface`) on a pool of its own on the database `dsn`.
template <typename Interface, typename PgStore>
absl::StatusOr<std::shared_ptr<Interface>> OpenPostgres(const std::string& dsn) {
  struct Holder {
    explicit Holder(std::unique_ptr<pg::Pool> p) : pool(std::move(p)), store(*pool) {}
    std::unique_ptr<pg::Pool> pool;
    PgStore store;
  };
  auto pool = OpenMigrated(dsn);
  if (!pool.ok()) return pool.status();
  auto holder = std::make_shared<Holder>(*std::move(pool));
  return std::shared_ptr<Interface>(holder, &holder->store);
}

//! A whole index (every store) on a fresh database of the test cluster, on a pool of its own.
inline absl::StatusOr<std::shared_ptr<IndexStore>> OpenPostgresIndex() {
  auto dsn = CreateTestDatabase();
  if (!dsn.ok()) return dsn.status();
  auto pool = OpenMigrated(*dsn);
  if (!pool.ok()) return pool.status();
  return std::shared_ptr<IndexStore>(std::make_shared<pg::PostgresIndexStore>(*std::move(pool)));
}

//! A fresh database for the case of `dir` (remembered there: DatabaseOf finds it again).
inline absl::StatusOr<std::string> FreshDatabaseFor(testing::TempDir& dir) {
  absl::StatusOr<std::string> dsn = CreateTestDatabase();
  if (dsn.ok()) std::ofstream(dir.Join("pg.dsn")) << *dsn;
  return dsn;
}
inline std::string DatabaseOf(testing::TempDir& dir) {
  std::string dsn;
  std::getline(std::ifstream(dir.Join("pg.dsn")), dsn);
  return dsn;
}

//! The typed fixture of `Interface`'s contract: `Backend::Open(dir)` gives a fresh, empty store;
//! NOT_FOUND when the backend cannot run here (no PostgreSQL cluster outside ctest): skipped.
template <typename Interface, typename Backend>
class StoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Backend::Open(dir_);
    if (absl::IsNotFound(store.status())) GTEST_SKIP() << store.status().message();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  testing::TempDir dir_;
  std::shared_ptr<Interface> store_;
};

}  // namespace rdg::storage::contract
