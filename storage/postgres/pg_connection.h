// One libpq connection to the PostgreSQL index: statements prepared once per connection (keyed
// by their static text), parameters and results as text, and PostgreSQL's errors mapped to the
// codes the index's callers act on (see Error()). Not thread-safe: a Pool lends it to one thread
// at a time.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace rdg::storage::pg {

//! A statement parameter: its text, or SQL NULL.
using Param = std::optional<std::string>;
inline Param P(absl::string_view text) { return std::string(text); }
inline Param P(int64_t v) { return std::to_string(v); }
inline Param P(int v) { return std::to_string(v); }
//! Times are stored as microseconds since the epoch (BIGINT), as in the SQLite index; the
//! infinite future as INT64_MAX.
Param P(absl::Time t);
inline Param PBool(bool v) { return std::string(v ? "true" : "false"); }
//! A TEXT[] parameter (array literal; every element quoted and escaped).
Param PTextArray(const std::vector<std::string>& values);
//! An INTEGER[] parameter of enumerators or numbers.
template <typename Int>
Param PIntArray(const std::vector<Int>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(static_cast<int64_t>(values[i]));
  }
  return out + "}";
}
//! Bytes for a BYTEA parameter (hex text form).
Param PBytes(absl::string_view bytes);

//! The rows of one statement.
class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  Result(Result&& other) noexcept : r_(other.r_) { other.r_ = nullptr; }
  Result& operator=(Result&& other) noexcept;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result();

  int rows() const;
  //! Rows an INSERT, UPDATE or DELETE touched.
  int64_t affected() const;
  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;
  int64_t Int(int row, int col) const;
  bool Bool(int row, int col) const;
  double Double(int row, int col) const;
  //! A time column that may be NULL.
  std::optional<absl::Time> OptionalTime(int row, int col) const;
  absl::Time Time(int row, int col) const;
  //! A BYTEA column's bytes.
  std::string Bytes(int row, int col) const;

 private:
  friend class Connection;
  PGresult* r_;
};

//! Every row of `r` read by `read(r, row)`.
template <typename Read>
auto ReadRows(const Result& r, Read read) -> std::vector<decltype(read(r, 0))> {
  std::vector<decltype(read(r, 0))> out;
  out.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(read(r, i));
  return out;
}

class Connection {
 public:
  //! Connects with a libpq connection string (client encoding UTF-8, JIT off); UNAVAILABLE
  //! (with libpq's reason, never the password) when the server cannot be reached or refuses.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& conninfo);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  //! Runs `sql` with `params` ($1, $2, …). `sql` must be a string with static storage: it is
  //! prepared on this connection the first time and found again by its address. A text
  //! parameter holding a NUL character is INVALID_ARGUMENT (PostgreSQL text cannot hold one).
  absl::StatusOr<Result> Exec(const char* sql, std::initializer_list<Param> params = {});
  //! Runs one or more statements without parameters (transaction control, migrations).
  absl::Status Run(const std::string& sql);
  //! Whether the connection was lost (a pool replaces it).
  bool broken() const;
  //! Whether no transaction is open on it (what a pool lends).
  bool idle() const;
  //! Whether a statement of the open transaction failed (it can only be rolled back).
  bool in_failed_transaction() const;
  //! Waits up to `timeout` for the server to send something (a notification): whether it did.
  bool WaitReadable(absl::Duration timeout);
  //! The payloads of the notifications received so far (LISTEN); UNAVAILABLE when the
  //! connection is lost.
  absl::StatusOr<std::vector<std::string>> TakeNotifications();

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  PGconn* conn_;
  std::map<const char*, std::string> prepared_;  //!< statement text → its name here
};

//! PostgreSQL's error as a status, by SQLSTATE: the connection lost or the server shutting down
//! or out of resources (classes 08 but 08P01, 53, 57P0x) → UNAVAILABLE; a serialization failure
//! or a deadlock (40001, 40P01) → ABORTED (a transaction retries it); a unique violation (23505)
//! → ALREADY_EXISTS; anything else → INTERNAL. The message is "postgres: " with the server's
//! primary message, the SQLSTATE and the constraint, never its DETAIL (which quotes rows).
absl::Status Error(const PGresult* result, PGconn* conn);

}  // namespace rdg::storage::pg
