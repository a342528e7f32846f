// Leadership on the PostgreSQL index: a session-level advisory lock on a connection of the
// leader's own. The server releases it when that connection ends — the leader stopped, was
// killed, or lost the network — and the next gateway to ask takes it: the housekeeping is taken
// over within one housekeeping period. A leader proves the connection alive before each round.
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "storage/index/leadership.h"
#include "storage/postgres/pg_connection.h"

namespace rdg::storage::pg {

class AdvisoryLeadership final : public Leadership {
 public:
  explicit AdvisoryLeadership(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  bool Leads() override;

 private:
  const std::string conninfo_;
  absl::Mutex mu_;
  std::unique_ptr<Connection> conn_ ABSL_GUARDED_BY(mu_);  //!< holds the lock while leading
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace rdg::storage::pg
