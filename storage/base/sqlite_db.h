// A SQLite connection with cached prepared statements, and a statement wrapper returning
// absl::Status. Shared by the index store (storage/sqlite_*.cc) and the edge agent's outbox
// (clients/agent/); knows nothing about either's tables.
#pragma once

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace rdg::storage::sqlite_db {

//! The status for a failed SQLite call: a busy or locked database, a full disk or an I/O error
//! passes (UNAVAILABLE: callers retry and keep what they hold); anything else is INTERNAL.
inline absl::Status Error(sqlite3* db, int rc, absl::string_view detail = {}) {
  std::string msg = absl::StrCat("sqlite: ", detail.empty() ? sqlite3_errmsg(db) : detail);
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

//! A prepared statement borrowed from a connection's cache; reset (not finalised) when done.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Stmt& Bind(int i, absl::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, absl::Time t) { return Bind(i, absl::ToUnixMicros(t)); }
  Stmt& Bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Stmt& BindBlob(int i, absl::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }

  //! Steps once: true while a row is available, false when done.
  absl::StatusOr<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Error(db_, rc);
  }
  absl::Status Run() {
    auto r = Step();
    return r.ok() ? absl::OkStatus() : r.status();
  }

  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p ? std::string(static_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }
  absl::Time Time(int col) const { return absl::FromUnixMicros(Int(col)); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path) {
    sqlite3* db = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    auto conn = std::unique_ptr<Connection>(new Connection(db));
    if (rc != SQLITE_OK) {
      return absl::UnavailableError(
          absl::StrCat("cannot open database ", path, ": ", sqlite3_errstr(rc)));
    }
    // SQLite opens a file it may not write (mode, immutable flag, read-only mount) read-only
    // without a word, and the first write fails much later.
    if (sqlite3_db_readonly(db, "main") == 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("database ", path, " is read-only for this user (uid ", ::geteuid(),
                       "): check its owner and mode, its immutable flag (lsattr) and the mount"));
    }
    sqlite3_busy_timeout(db, 10000);
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                               "PRAGMA foreign_keys=ON", "PRAGMA temp_store=MEMORY"}) {
      if (auto s = conn->Exec(pragma); !s.ok()) return s;
    }
    return conn;
  }

  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  //! A consistent copy of the whole database as of now into a new file `path` (SQLite's online
  //! backup API, in one step: one read transaction, so writers carry on meanwhile), made a
  //! standalone file (rollback journal, not WAL). Returns what `probe_sql` (one integer) gives
  //! on the copy. On failure nothing of it is left.
  absl::StatusOr<int64_t> BackupTo(const std::string& path, const char* probe_sql) {
    // A new file, never an existing one (SQLite would overwrite it), owner-only.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("index snapshot: cannot create ", path, ": ", std::strerror(errno)));
    }
    ::close(fd);
    sqlite3* dest = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &dest, SQLITE_OPEN_READWRITE, nullptr);
    if (rc == SQLITE_OK) {
      sqlite3_backup* backup = sqlite3_backup_init(dest, "main", db_, "main");
      if (backup == nullptr) {
        rc = sqlite3_errcode(dest);
      } else {
        rc = sqlite3_backup_step(backup, -1);
        const int finished = sqlite3_backup_finish(backup);
        if (rc == SQLITE_DONE) rc = finished;
      }
    }
    if (rc == SQLITE_OK) {
      rc = sqlite3_exec(dest, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr);
    }
    int64_t probed = 0;
    if (rc == SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      rc = sqlite3_prepare_v2(dest, probe_sql, -1, &stmt, nullptr);
      if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        probed = sqlite3_column_int64(stmt, 0);
      sqlite3_finalize(stmt);
    }
    const std::string error = dest != nullptr ? sqlite3_errmsg(dest) : sqlite3_errstr(rc);
    sqlite3_close_v2(dest);
    if (rc != SQLITE_OK) {
      for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
        ::unlink(absl::StrCat(path, suffix).c_str());
      }
      return absl::InternalError(absl::StrCat("index snapshot into ", path, " failed: ", error));
    }
    return probed;
  }

  absl::Status Exec(absl::string_view sql) {
    char* err = nullptr;
    std::string text(sql);
    if (int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err); rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return Error(db_, rc, msg);
    }
    return absl::OkStatus();
  }

  //! Statements are cached per connection, keyed by the (static) SQL text's address.
  absl::StatusOr<std::unique_ptr<Stmt>> Prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      if (int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
          rc != SQLITE_OK) {
        return Error(db_, rc);
      }
      it = cache_.emplace(sql, stmt).first;
    }
    return std::make_unique<Stmt>(db_, it->second);
  }

  int64_t Changes() const { return sqlite3_changes64(db_); }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

//! Runs `fn` (returning absl::Status or absl::StatusOr) inside BEGIN IMMEDIATE … COMMIT on `conn`,
//! rolling back on any error. The caller serialises writers on
//! `conn` (the index store's writer lock, the outbox's mutex).
template <typename Fn>
auto InWriteTransaction(Connection& conn, Fn fn) -> decltype(fn()) {
  if (auto s = conn.Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  auto result = fn();
  absl::Status s = result.ok() ? conn.Exec("COMMIT") : absl::OkStatus();
  if (!result.ok() || !s.ok()) {
    conn.Exec("ROLLBACK").IgnoreError();
    if (!s.ok()) return s;
  }
  return result;
}

}  // namespace rdg::storage::sqlite_db
