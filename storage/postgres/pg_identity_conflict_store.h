// IdentityConflictStore on the PostgreSQL index: the administrators' review list of what the
// patient-identity rules refused, each conflict listed once whichever gateway found it.
#pragma once

#include <vector>

#include "storage/index/identity_conflict_store.h"
#include "storage/postgres/pg_pool.h"

namespace rdg::storage::pg {

class PgIdentityConflictStore : public IdentityConflictStore {
 public:
  explicit PgIdentityConflictStore(Pool& pool) : pool_(pool) {}

  absl::Status RecordIdentityConflict(const IdentityConflictRecord& conflict) override;
  absl::StatusOr<std::vector<IdentityConflictRecord>> ListIdentityConflicts(absl::Time since,
                                                                            int32_t limit) override;

 private:
  Pool& pool_;
};

}  // namespace rdg::storage::pg
