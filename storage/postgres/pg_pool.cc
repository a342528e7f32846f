#include "storage/postgres/pg_pool.h"

#include "absl/strings/str_cat.h"

namespace rdg::storage::pg {

absl::StatusOr<std::unique_ptr<Pool>> Pool::Open(Options options) {
  if (options.size < 1) options.size = 1;
  auto pool = std::unique_ptr<Pool>(new Pool(std::move(options)));
  auto first = Connection::Open(pool->options_.conninfo);
  if (!first.ok()) return first.status();
  absl::MutexLock lock(&pool->mu_);
  pool->idle_.push_back(*std::move(first));
  pool->open_ = 1;
  return pool;
}

absl::StatusOr<Pool::Lease> Pool::Acquire() {
  const absl::Time deadline = absl::Now() + options_.acquire_timeout;
  {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithDeadline(absl::Condition(this, &Pool::CanLend), deadline)) {
      return absl::UnavailableError(absl::StrCat("postgres: all ", options_.size,
                                                 " connections to the index stayed busy for ",
                                                 absl::FormatDuration(options_.acquire_timeout)));
    }
    if (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;  // a slot for a new connection, opened without the lock
  }
  auto conn = Connection::Open(options_.conninfo);
  if (!conn.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
    last_connect_error_ = std::string(conn.status().message());
    // libpq's reason names the database's host and port: for the operators, not every caller.
    return absl::UnavailableError(
        "postgres: the index database cannot be reached now; retry shortly");
  }
  return Lease(this, *std::move(conn));
}

absl::StatusOr<Result> Pool::Query(const char* sql, std::initializer_list<Param> params) {
  absl::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<Lease> conn = Acquire();
    if (!conn.ok()) return conn.status();
    absl::StatusOr<Result> r = (*conn)->Exec(sql, params);
    if (r.ok() || !(*conn)->broken()) return r;
    last = r.status();  // a connection the server closed (a restart): once more on a new one
  }
  return last;
}

std::string Pool::LastConnectError() const {
  absl::MutexLock lock(&mu_);
  return last_connect_error_;
}

void Pool::Return(std::unique_ptr<Connection> conn) {
  std::vector<std::unique_ptr<Connection>> dropped;  // closed after the lock is let go
  absl::MutexLock lock(&mu_);
  if (conn->broken()) {
    // Lost: the connections idle beside it were most likely closed with it (a server restart, a
    // failover, a firewall's purge). They go too, so that the calls after it open new ones
    // instead of each finding a dead one first.
    open_ -= 1 + static_cast<int>(idle_.size());
    dropped.swap(idle_);
    return;
  }
  if (!conn->idle()) {
    --open_;  // left inside a transaction: dropped; the next Acquire opens a new one
    return;
  }
  idle_.push_back(std::move(conn));
}

}  // namespace rdg::storage::pg
