// Turnaround figures: completed SLA stages (storage::StageRecord) grouped by one attribute, with
// count, p50/p90/p99/max and the share completed within target per stage. Pure computation over
// what the index returns for a window; shared by AdminService, /metrics and the dashboard.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gateway/config/institution_directory.h"
#include "rdg/v1/admin.pb.h"
#include "storage/records.h"

namespace rdg::monitoring {

struct StageFigures {
  storage::Stage stage = storage::Stage::kUnspecified;
  int64_t count = 0;
  absl::Duration p50, p90, p99, max, sum;
  int64_t within_target = 0;  //!< completed by the due time (no target counts as within)
  int64_t with_target = 0;
  double WithinShare() const { return count ? static_cast<double>(within_target) / count : 0; }
};

struct TurnaroundGroup {
  std::string key;
  std::vector<StageFigures> stages;  //!< in rdg.v1.Stage order, only stages with completions
};

//! Nearest-rank percentile (0 < p <= 100) of durations sorted ascending; zero if empty.
absl::Duration Percentile(const std::vector<absl::Duration>& sorted, double p);

//! The county (medical community) of an institution, or "(none)".
std::string CountyOf(const std::string& institution, const config::InstitutionDirectory& directory);

//! The group a stage falls in; "all" for TURNAROUND_GROUPING_UNSPECIFIED.
std::string GroupKey(const storage::StageRecord& stage, rdg::v1::TurnaroundGrouping by,
                     const config::InstitutionDirectory& directory);

//! Completed stages (running ones are ignored) grouped and summarised, groups by key.
std::vector<TurnaroundGroup> ComputeTurnaround(const std::vector<storage::StageRecord>& stages,
                                               rdg::v1::TurnaroundGrouping by,
                                               const config::InstitutionDirectory& directory);

//! Short names used by the CLI, metrics labels and the dashboard: "claim", "final", "ack",
//! "critical_ack".
std::string StageLabel(storage::Stage stage);

}  // namespace rdg::monitoring
