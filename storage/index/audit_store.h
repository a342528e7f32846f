// AuditStore: the append-only, hash-linked audit log, its signed checkpoints and how far each
// audit repository has confirmed it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/records.h"

namespace rdg::storage {

class AuditStore {
 public:
  virtual ~AuditStore() = default;

  //! Appends a record linked to the chain (prev_hash and hash are computed here; seq too).
  virtual absl::Status AppendAudit(const AuditRecord& entry) = 0;
  virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(const AuditQuery& query) = 0;
  //! Up to `limit` records from `from_seq` on, in seq order, with their links, and the
  //! checkpoints among them.
  virtual absl::StatusOr<AuditExportRecord> ExportAudit(int64_t from_seq, int32_t limit) = 0;
  virtual absl::StatusOr<AuditTipRecord> AuditTip() = 0;
  virtual absl::Status AppendAuditCheckpoint(const AuditCheckpointRecord& checkpoint) = 0;
  //! The last seq the audit repository `destination` confirmed (0 before the first).
  virtual absl::StatusOr<int64_t> AuditExportedUpTo(const std::string& destination) = 0;
  //! Records that `destination` confirmed everything up to `seq` (never moves back).
  virtual absl::Status SetAuditExportedUpTo(const std::string& destination, int64_t seq,
                                            absl::Time at) = 0;
};

}  // namespace rdg::storage
