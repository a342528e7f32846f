// OutboundStore on the PostgreSQL index. Only the leading gateway plans and sends, but a leader
// that has just lost its lease may still finish an attempt: an attempt is recorded only while its
// job is still pending (one conditional UPDATE), and planning adds jobs idempotently and moves the
// cursor only forward, so two planners at a handover make each job once.
#pragma once

#include <string>
#include <vector>

#include "storage/index/outbound_store.h"
#include "storage/postgres/pg_pool.h"

namespace rdg::storage::pg {

class PgOutboundStore : public OutboundStore {
 public:
  explicit PgOutboundStore(Pool& pool) : pool_(pool) {}

  absl::StatusOr<std::vector<ReportRecord>> UnplannedReports(int32_t limit) override;
  absl::Status PlanJobs(const std::vector<OutboundJob>& jobs, int64_t planned_through,
                        absl::Time now) override;
  absl::StatusOr<std::vector<OutboundJob>> DueJobs(const std::string& destination, absl::Time now,
                                                   int32_t limit) override;
  absl::Status RecordAttempt(int64_t job_id, const OutboundAttempt& attempt,
                             absl::Time now) override;
  absl::StatusOr<int64_t> RetryFailed(const std::string& destination, absl::Time now) override;
  absl::StatusOr<int64_t> PurgeSent(absl::Time before, int32_t limit) override;
  absl::StatusOr<std::vector<OutboundJob>> ListJobs(const std::string& exam_id) override;
  absl::StatusOr<std::vector<OutboundSummary>> SummarizeOutbound() override;

 private:
  Pool& pool_;
};

}  // namespace rdg::storage::pg
