// The index a gateway test runs on: SQLite in the case's temporary directory, or — in the CTest
// pass "pg." (RDG_TEST_INDEX=postgres, tests/CMakeLists.txt) — a fresh database of the test
// PostgreSQL cluster, so that the same cases check both backends through the gateway's code.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "storage/index_store.h"
#include "storage/postgres/pg_index_store.h"
#include "storage/sqlite_index_store.h"
#include "tests/mocks/temp_dir.h"
#include "tests/storage/pg_test_database.h"

namespace rdg::testing {

inline bool TestIndexIsPostgres() {
  const char* backend = std::getenv("RDG_TEST_INDEX");
  return backend != nullptr && std::string(backend) == "postgres";
}

//! A fresh, empty index; nullptr (with the test failed) if it cannot be opened.
inline std::unique_ptr<storage::IndexStore> OpenTestIndex(TempDir& dir) {
  if (!TestIndexIsPostgres()) {
    auto store = storage::SqliteIndexStore::Open(dir.Join("index.sqlite"));
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::unique_ptr<storage::IndexStore>(*std::move(store)) : nullptr;
  }
  auto dsn = storage::contract::CreateTestDatabase();
  EXPECT_TRUE(dsn.ok()) << dsn.status();
  if (!dsn.ok()) return nullptr;
  auto pool = storage::contract::OpenMigrated(*dsn);
  EXPECT_TRUE(pool.ok()) << pool.status();
  if (!pool.ok()) return nullptr;
  return std::make_unique<storage::pg::PostgresIndexStore>(*std::move(pool));
}

}  // namespace rdg::testing
