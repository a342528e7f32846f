// AuditStore on the PostgreSQL index. Every append locks the chain's end (audit_head) for its
// transaction, so records from any number of gateways are numbered and linked in commit order,
// without gaps; AuditTip is the chain's end as the index holds it.
#pragma once

#include <string>
#include <vector>

#include "storage/index/audit_store.h"
#include "storage/postgres/pg_pool.h"

namespace rdg::storage::pg {

class PgAuditStore : public AuditStore {
 public:
  explicit PgAuditStore(Pool& pool) : pool_(pool) {}

  absl::Status AppendAudit(const AuditRecord& entry) override;
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(const AuditQuery& query) override;
  absl::StatusOr<AuditExportRecord> ExportAudit(int64_t from_seq, int32_t limit) override;
  absl::StatusOr<AuditTipRecord> AuditTip() override;
  absl::Status AppendAuditCheckpoint(const AuditCheckpointRecord& checkpoint) override;
  absl::StatusOr<int64_t> AuditExportedUpTo(const std::string& destination) override;
  absl::Status SetAuditExportedUpTo(const std::string& destination, int64_t seq,
                                    absl::Time at) override;

 private:
  Pool& pool_;
};

//! Appends `entry` (its patient filled in from its exam when empty) as the chain's next record
//! inside the caller's transaction; the chain's end stays locked until that transaction ends.
absl::Status AppendAuditIn(Connection& conn, const AuditRecord& entry);

}  // namespace rdg::storage::pg
