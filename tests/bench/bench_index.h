// Where a C++ benchmark's index lives, and how it is filled in bulk: the embedded SQLite index
// in a temporary folder, or a fresh database of a PostgreSQL cluster (`--postgres DSN_FILE`, the
// file `tests/integration/pg_cluster.py start DIR` writes), so that a benchmark prints the two
// side by side on the same data. Fills are SQL both backends run alike: N rows from a recursive
// CTE, "random" values by integer hashing of the row number (the same on both), then the
// planner's statistics.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "storage/base/random.h"
#include "storage/postgres/pg_connection.h"
#include "storage/postgres/pg_index_store.h"
#include "storage/sqlite_index_store.h"

namespace rdg::bench {

struct BenchIndex {
  std::string backend;  //!< "SQLite" or "PostgreSQL"
  std::unique_ptr<storage::IndexStore> store;
  std::function<void(const std::string& sql)> exec;  //!< runs SQL on it; exits on failure
  std::function<void()> analyze;                     //!< refreshes the planner's statistics
  std::function<void()> drop;                        //!< removes it (reset `store` first)
};

[[noreturn]] inline void Die(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::exit(1);
}

//! A fresh, empty index named `name` on `backend`: "" for SQLite, else a PostgreSQL DSN file.
inline BenchIndex OpenBenchIndex(const std::string& pg_dsn_file, const std::string& name,
                                 int pool_size) {
  BenchIndex b;
  if (pg_dsn_file.empty()) {
    const std::string dir = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string path = dir + "/index.sqlite";
    auto store = storage::SqliteIndexStore::Open(path, {pool_size});
    if (!store.ok()) Die(absl::StrCat("cannot open ", path, ": ", store.status().message()));
    b.backend = "SQLite";
    b.store = *std::move(store);
    b.exec = [path](const std::string& sql) {
      sqlite3* db = nullptr;
      sqlite3_open(path.c_str(), &db);
      sqlite3_busy_timeout(db, 60000);
      char* error = nullptr;
      if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        Die(absl::StrCat("fill failed: ", error, "\n", sql));
      }
      sqlite3_close(db);
    };
    // A running gateway's log is checkpointed: so is the freshly filled one.
    b.analyze = [exec = b.exec] { exec("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)"); };
    b.drop = [dir] {
      if (std::getenv("RDG_BENCH_KEEP") != nullptr) {
        std::printf("kept: %s\n", dir.c_str());
        return;
      }
      std::filesystem::remove_all(dir);
    };
    return b;
  }
  std::string cluster;
  std::getline(std::ifstream(pg_dsn_file), cluster);
  cluster = std::string(absl::StripAsciiWhitespace(cluster));
  if (cluster.empty()) Die(absl::StrCat("no connection string in ", pg_dsn_file));
  const std::string database = absl::StrCat("bench_", storage::RandomHex(4));
  auto admin = storage::pg::Connection::Open(cluster);
  if (!admin.ok()) Die(std::string(admin.status().message()));
  if (auto s = (*admin)->Run(absl::StrCat("CREATE DATABASE ", database)); !s.ok()) {
    Die(std::string(s.message()));
  }
  const std::string dsn = absl::StrCat(cluster, " dbname=", database);
  auto store = storage::pg::PostgresIndexStore::Open({.conninfo = dsn, .size = pool_size});
  if (!store.ok()) Die(std::string(store.status().message()));
  b.backend = "PostgreSQL";
  b.store = *std::move(store);
  b.exec = [dsn](const std::string& sql) {
    auto conn = storage::pg::Connection::Open(dsn);
    if (!conn.ok()) Die(std::string(conn.status().message()));
    if (auto s = (*conn)->Run(sql); !s.ok()) Die(absl::StrCat("fill failed: ", s.message()));
  };
  // VACUUM too: the visibility map lets the partial indexes answer without the table.
  b.analyze = [exec = b.exec] { exec("VACUUM (ANALYZE) exams, exam_stages, claims, objects"); };
  b.drop = [cluster, database, dsn] {
    if (std::getenv("RDG_BENCH_KEEP") != nullptr) {  // kept for EXPLAIN and the like
      std::printf("kept: %s\n", dsn.c_str());
      return;
    }
    auto conn = storage::pg::Connection::Open(cluster);
    if (conn.ok()) (void)(*conn)->Run(absl::StrCat("DROP DATABASE IF EXISTS ", database));
  };
  return b;
}

//! The benchmark's main: `[--postgres DSN_FILE] [N ...]` (default 100 K and 1 M); runs
//! `run("", n)` on SQLite, then `run(DSN_FILE, n)` on PostgreSQL when given, for each N.
inline int RunSideBySide(int argc, char** argv,
                         const std::function<void(const std::string& pg_dsn_file, int n)>& run) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string pg;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--postgres") {
      pg = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i),
                 args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      break;
    }
  }
  std::vector<int> sizes;
  for (const auto& a : args) sizes.push_back(std::atoi(a.c_str()));
  if (sizes.empty()) sizes = {100000, 1000000};
  for (int n : sizes) {
    run("", n);
    if (!pg.empty()) run(pg, n);
  }
  return 0;
}

//! "(<hash of i> % m)": a pseudo-random value in [0, m) of row i, the same on both backends.
inline std::string Hash(const std::string& i, int salt, int m) {
  return absl::StrCat("((", i, " * 2654435761 + ", salt, " * 40503) % 1000003 % ", m, ")");
}

//! SQL choosing one of `values` (quoted) by the hash of row i.
inline std::string OneOf(const std::string& i, int salt, const std::vector<std::string>& values) {
  std::string sql = absl::StrCat("CASE ", Hash(i, salt, static_cast<int>(values.size())));
  for (size_t k = 0; k < values.size(); ++k)
    absl::StrAppend(&sql, " WHEN ", k, " THEN '", values[k], "'");
  return sql + " END";
}

//! "WITH RECURSIVE s(i) AS (…)": the rows 0 … n-1 (BIGINT: times are computed from i).
inline std::string Rows(int n) {
  return absl::StrCat(
      "WITH RECURSIVE s(i) AS (SELECT CAST(0 AS BIGINT) UNION ALL SELECT i + 1 FROM s WHERE i < ",
      n - 1, ") ");
}

}  // namespace rdg::bench
