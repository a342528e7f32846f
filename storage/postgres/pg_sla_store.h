// SlaStore on the PostgreSQL index: the reads behind turnaround figures and breach lists, and
// the breach sweep. The stage clocks themselves are started and ended by the other stores'
// transactions (pg_exam_changes.h); completions get their feed numbers when the feed is read.
#pragma once

#include <vector>

#include "storage/index/sla_store.h"
#include "storage/postgres/pg_pool.h"

namespace rdg::storage::pg {

class PgSlaStore : public SlaStore {
 public:
  explicit PgSlaStore(Pool& pool) : pool_(pool) {}

  absl::StatusOr<std::vector<StageRecord>> DetectBreaches(absl::Time now, int32_t limit) override;
  absl::StatusOr<std::vector<StageRecord>> ListStagesEnded(absl::Time since,
                                                           absl::Time until) override;
  absl::StatusOr<std::vector<StageRecord>> ListStagesEndedAfter(int64_t after_end_seq,
                                                                int32_t limit) override;
  absl::StatusOr<std::vector<StageRecord>> ListBreaches(const BreachQuery& query) override;
  absl::StatusOr<std::vector<OpenBreachCount>> CountOpenBreaches() override;

 private:
  //! Numbers the completions committed and not numbered yet, after every earlier number.
  absl::Status NumberCompletions();

  Pool& pool_;
};

}  // namespace rdg::storage::pg
