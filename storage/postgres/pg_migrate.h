// The PostgreSQL index's schema: storage/migrations/postgres/NNNN_name.sql, embedded at build time
// and applied at start-up in one transaction under an advisory lock, so that replicas starting
// together apply each migration once. A schema newer than the binary is refused.
#pragma once

#include "absl/status/status.h"
#include "storage/postgres/pg_pool.h"

namespace rdg::storage::pg {

absl::Status Migrate(Pool& pool);

}  // namespace rdg::storage::pg
