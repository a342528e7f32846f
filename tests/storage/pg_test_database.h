// A fresh, migrated database for one test case in the throwaway PostgreSQL cluster the CTest
// fixture `pg.cluster.start` runs (tests/integration/pg_cluster.py); RDG_TEST_PG_DSN_FILE names
// the file with its connection string. Without that variable (a test binary run by hand) there
// is no cluster, and the PostgreSQL cases are skipped with a message saying so.
#pragma once

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "storage/base/random.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_migrate.h"
#include "storage/postgres/pg_pool.h"

namespace rdg::storage::contract {

//! The cluster's connection string (its database "rdg"), or NOT_FOUND when no cluster runs.
inline absl::StatusOr<std::string> TestClusterDsn() {
  const char* file = std::getenv("RDG_TEST_PG_DSN_FILE");
  if (file == nullptr || *file == '\0') {
    return absl::NotFoundError(
        "RDG_TEST_PG_DSN_FILE is not set: run through ctest, whose fixture starts PostgreSQL");
  }
  std::ifstream in(file);
  std::string dsn;
  if (!std::getline(in, dsn) || dsn.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("no connection string in ", file));
  }
  return std::string(absl::StripAsciiWhitespace(dsn));
}

//! Creates a new database in the cluster; returns its connection string.
inline absl::StatusOr<std::string> CreateTestDatabase() {
  absl::StatusOr<std::string> dsn = TestClusterDsn();
  if (!dsn.ok()) return dsn.status();
  auto admin = pg::Connection::Open(*dsn);
  if (!admin.ok()) return admin.status();
  const std::string name = absl::StrCat("t_", RandomHex(8));
  if (absl::Status s = (*admin)->Run(absl::StrCat("CREATE DATABASE ", name)); !s.ok()) return s;
  return absl::StrCat(*dsn, " dbname=", name);  // libpq: the last dbname= wins
}

//! A pool on `dsn` with the index's schema applied.
inline absl::StatusOr<std::unique_ptr<pg::Pool>> OpenMigrated(const std::string& dsn) {
  auto pool = pg::Pool::Open({dsn, 8});
  if (!pool.ok()) return pool.status();
  if (absl::Status s = pg::Migrate(**pool); !s.ok()) return s;
  return pool;
}

}  // namespace rdg::storage::contract
