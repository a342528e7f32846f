// Connections to the PostgreSQL index shared by a gateway's threads, and transactions on them.
// A lost connection is dropped when it is returned and a new one opened on the next demand, so
// the index recovers by itself when the database comes back; until then calls fail UNAVAILABLE.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/postgres/pg_connection.h"

namespace rdg::storage::pg {

class Pool {
 public:
  struct Options {
    std::string conninfo;                                //!< libpq connection string
    int size = 8;                                        //!< connections at most
    absl::Duration acquire_timeout = absl::Seconds(10);  //!< then UNAVAILABLE
    int serialization_retries = 8;  //!< a transaction ABORTED this often: UNAVAILABLE
  };
  //! Opens one connection at once, so that a wrong connection string fails the start.
  static absl::StatusOr<std::unique_ptr<Pool>> Open(Options options);

  //! A connection lent to one thread; returned when the lease ends.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn_) pool_->Return(std::move(conn_));
    }
    Connection* operator->() { return conn_.get(); }
    Connection& operator*() { return *conn_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };
  //! A free connection, a new one while fewer than `size` exist, or UNAVAILABLE after
  //! `acquire_timeout` (or when the database cannot be reached: then without libpq's reason,
  //! which names the database's address; LastConnectError() has it for the operators).
  absl::StatusOr<Lease> Acquire();

  //! Runs `fn(Connection&)` in one transaction at `isolation` ("READ COMMITTED",
  //! "REPEATABLE READ", "SERIALIZABLE") and commits it if `fn` succeeded (and no statement of it
  //! failed). It runs again, up to `serialization_retries` times, after a serialization failure
  //! or deadlock (ABORTED) and after a connection found lost before the COMMIT was sent (a
  //! server restart: nothing of it was committed). A connection lost during the COMMIT is
  //! UNAVAILABLE: whether it committed is unknown.
  template <typename Fn>
  auto InTransaction(const char* isolation, Fn fn) -> decltype(fn(std::declval<Connection&>()));
  //! One statement on its own (autocommit). Only for statements that may run twice: after a
  //! connection found lost, it is sent again once on a new one.
  absl::StatusOr<Result> Query(const char* sql, std::initializer_list<Param> params);
  //! Why the last new connection failed (libpq's words), for /readyz and the log.
  std::string LastConnectError() const;

 private:
  explicit Pool(Options options) : options_(std::move(options)) {}
  //! Takes a lent connection back: a lost one is dropped with every idle one (see the .cc).
  void Return(std::unique_ptr<Connection> conn);
  bool CanLend() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || open_ < options_.size;
  }

  const Options options_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  //!< idle and lent
  std::string last_connect_error_ ABSL_GUARDED_BY(mu_);
};

//! The status of a Status or a StatusOr.
inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

template <typename Fn>
auto Pool::InTransaction(const char* isolation, Fn fn)
    -> decltype(fn(std::declval<Connection&>())) {
  absl::Status last;
  for (int attempt = 0; attempt <= options_.serialization_retries; ++attempt) {
    absl::StatusOr<Lease> conn = Acquire();
    if (!conn.ok()) return conn.status();
    if (absl::Status s = (*conn)->Run(std::string("BEGIN ISOLATION LEVEL ") + isolation); !s.ok()) {
      last = s;
      if ((*conn)->broken()) continue;  // a connection the server closed: try a new one
      return s;
    }
    auto result = fn(**conn);
    if (result.ok() && (*conn)->in_failed_transaction()) {
      result = absl::InternalError("postgres: a statement of the transaction failed unchecked");
    }
    if (!result.ok()) {
      last = StatusOf(result);
      if ((*conn)->broken()) continue;  // lost before the COMMIT: nothing was committed
      (void)(*conn)->Run("ROLLBACK");
      if (absl::IsAborted(last)) continue;  // another transaction won: run this one again
      return last;
    }
    if (absl::Status s = (*conn)->Run("COMMIT"); !s.ok()) {
      if (!(*conn)->broken()) (void)(*conn)->Run("ROLLBACK");
      if (absl::IsAborted(s)) {  // a serialization failure found at COMMIT: nothing committed
        last = s;
        continue;
      }
      return s;
    }
    return result;
  }
  return absl::UnavailableError(
      std::string("the index is too busy (transactions keep conflicting): ") +
      std::string(last.message()));
}

}  // namespace rdg::storage::pg
