// WorklistStore on the PostgreSQL index. Every change of a claim first locks its exam's row
// (SELECT … FOR UPDATE), and claims has one row per exam at most (its key): at most one live
// claim per exam holds with any number of gateways. The lease sweep skips exams another
// transaction holds (SKIP LOCKED) and finds them on its next round.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "storage/index/worklist_store.h"
#include "storage/postgres/pg_pool.h"

namespace rdg::storage::pg {

class PgWorklistStore : public WorklistStore {
 public:
  explicit PgWorklistStore(Pool& pool) : pool_(pool) {}

  absl::StatusOr<WorklistPage> ListWorklist(const WorklistQuery& query, absl::Time now) override;
  absl::StatusOr<std::optional<ClaimRecord>> GetLiveClaim(const std::string& exam_id,
                                                          absl::Time now) override;
  absl::StatusOr<ClaimRecord> ClaimExam(const std::string& exam_id, const std::string& user,
                                        const std::string& institution, absl::Time now,
                                        absl::Duration lease, ClaimAction action) override;
  absl::Status ReleaseClaim(const std::string& exam_id, const std::string& user,
                            absl::Time now) override;
  absl::StatusOr<int> ExpireClaims(absl::Time now) override;
  absl::StatusOr<ExamRecord> EscalateExam(const Escalation& escalation, absl::Time now) override;
  absl::StatusOr<std::vector<ExamRecord>> ListClaimOverdue(absl::Time now, int32_t limit) override;
  absl::Status ClearClaimDue(const std::string& exam_id) override;
  absl::StatusOr<std::vector<QueueFigureRecord>> ListQueueFigures(absl::Time now) override;

 private:
  Pool& pool_;
};

}  // namespace rdg::storage::pg
