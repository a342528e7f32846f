// SlaStore: SLA stage clocks and turnaround. The clocks are started and ended by the
// transactions of the exam, worklist and report stores; detecting breaches is this store's only
// write.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/records.h"

namespace rdg::storage {

class SlaStore {
 public:
  virtual ~SlaStore() = default;

  //! Marks running stages whose due time passed before `now` as breached (at `now`) and returns
  //! them, earliest due first. A stage that completes late without having been swept is marked
  //! breached when it completes.
  virtual absl::StatusOr<std::vector<StageRecord>> DetectBreaches(absl::Time now,
                                                                  int32_t limit) = 0;
  //! Stages completed in [since, until), read through the completion-time index only.
  virtual absl::StatusOr<std::vector<StageRecord>> ListStagesEnded(absl::Time since,
                                                                   absl::Time until) = 0;
  //! Stages completed after `after_end_seq` in completion order (an incremental feed).
  virtual absl::StatusOr<std::vector<StageRecord>> ListStagesEndedAfter(int64_t after_end_seq,
                                                                        int32_t limit) = 0;
  //! Breached stages: open ones most overdue first, else the most recently detected first.
  virtual absl::StatusOr<std::vector<StageRecord>> ListBreaches(const BreachQuery& query) = 0;
  //! Open breaches per stage (stages without any are left out), from the partial index of open
  //! breaches only. Closed breaches are completed stages with breached_at set (in the feed).
  virtual absl::StatusOr<std::vector<OpenBreachCount>> CountOpenBreaches() = 0;
};

}  // namespace rdg::storage
