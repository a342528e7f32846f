#include "gateway/monitoring/turnaround.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace rdg::monitoring {

absl::Duration Percentile(const std::vector<absl::Duration>& sorted, double p) {
  if (sorted.empty()) return absl::ZeroDuration();
  // Nearest rank: the smallest value with at least p % of the values at or below it.
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

std::string CountyOf(const std::string& institution,
                     const config::InstitutionDirectory& directory) {
  const rdg::v1::Institution* inst = directory.Find(institution);
  return inst == nullptr || inst->community().empty() ? "(none)" : inst->community();
}

std::string GroupKey(const storage::StageRecord& stage, rdg::v1::TurnaroundGrouping by,
                     const config::InstitutionDirectory& directory) {
  switch (by) {
    case rdg::v1::BY_ORIGIN_INSTITUTION:
      return stage.origin_institution;
    case rdg::v1::BY_REVIEWING_INSTITUTION:
      return stage.reviewing_institution.empty() ? "(none)" : stage.reviewing_institution;
    case rdg::v1::BY_QUEUE:
      return stage.queue.empty() ? "(none)" : stage.queue;
    case rdg::v1::BY_EXAM_TYPE:
      return stage.exam_type.empty() ? "(none)" : stage.exam_type;
    case rdg::v1::BY_PRIORITY:
      return storage::Name(stage.priority);
    case rdg::v1::BY_COUNTY:
      return CountyOf(stage.origin_institution, directory);
    default:
      return "all";
  }
}

std::vector<TurnaroundGroup> ComputeTurnaround(const std::vector<storage::StageRecord>& stages,
                                               rdg::v1::TurnaroundGrouping by,
                                               const config::InstitutionDirectory& directory) {
  struct Acc {
    std::vector<absl::Duration> durations;
    int64_t within = 0, with_target = 0;
  };
  std::map<std::string, std::map<storage::Stage, Acc>> acc;  // key → stage → durations
  for (const auto& s : stages) {
    if (!s.ended_at) continue;
    Acc& a = acc[GroupKey(s, by, directory)][s.stage];
    a.durations.push_back(*s.ended_at - s.started_at);
    if (s.WithinTarget()) ++a.within;
    if (s.due_at != absl::InfiniteFuture()) ++a.with_target;
  }
  std::vector<TurnaroundGroup> groups;
  for (auto& [key, by_stage] : acc) {
    TurnaroundGroup g{key, {}};
    for (auto& [stage, a] : by_stage) {
      std::sort(a.durations.begin(), a.durations.end());
      StageFigures f;
      f.stage = stage;
      f.count = static_cast<int64_t>(a.durations.size());
      f.p50 = Percentile(a.durations, 50);
      f.p90 = Percentile(a.durations, 90);
      f.p99 = Percentile(a.durations, 99);
      f.max = a.durations.back();
      for (const auto& d : a.durations) f.sum += d;
      f.within_target = a.within;
      f.with_target = a.with_target;
      g.stages.push_back(f);
    }
    groups.push_back(std::move(g));
  }
  return groups;
}

std::string StageLabel(storage::Stage stage) {
  switch (stage) {
    case storage::Stage::kReceivedToClaimed:
      return "claim";
    case storage::Stage::kReceivedToFinal:
      return "final";
    case storage::Stage::kFinalToAcknowledged:
      return "ack";
    case storage::Stage::kCriticalAcknowledgement:
      return "critical_ack";
    default:
      return "unknown";
  }
}

}  // namespace rdg::monitoring
