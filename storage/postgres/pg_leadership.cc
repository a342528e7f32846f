#include "storage/postgres/pg_leadership.h"

#include <utility>

namespace rdg::storage::pg {

bool AdvisoryLeadership::Leads() {
  absl::MutexLock lock(&mu_);
  if (conn_ != nullptr && conn_->broken()) {
    conn_.reset();  // the server released the lock with the session
    leading_ = false;
  }
  if (conn_ == nullptr) {
    auto conn = Connection::Open(conninfo_);
    if (!conn.ok()) return false;
    conn_ = *std::move(conn);
    leading_ = false;
  }
  if (leading_) {
    static constexpr char kAlive[] = "SELECT 1";
    if (conn_->Exec(kAlive).ok()) return true;
    conn_.reset();
    leading_ = false;
    return false;
  }
  static constexpr char kTake[] =
      "SELECT pg_try_advisory_lock(hashtextextended('rdg housekeeping', 0))";
  auto taken = conn_->Exec(kTake);
  if (!taken.ok()) {
    if (conn_->broken()) conn_.reset();
    return false;
  }
  leading_ = taken->Bool(0, 0);
  return leading_;
}

}  // namespace rdg::storage::pg
