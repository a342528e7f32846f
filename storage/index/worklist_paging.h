// How a worklist is asked for and paged, the same on every backend: the states it shows (the
// open ones unless the reader names others), and the page cursor "due:priority:seq" — the
// worklist order's key of the previous page's last exam (keyset paging).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/records.h"

namespace rdg::storage {

//! Where a worklist page starts: after this key (SLA due in microseconds, INT64_MAX for none;
//! priority; the exam's seq).
struct WorklistKey {
  int64_t due = std::numeric_limits<int64_t>::min();
  int64_t priority = 0;
  int64_t seq = 0;
};

//! The key a page token names (the start for an empty one); INVALID_ARGUMENT for a token this
//! gateway did not issue.
inline absl::StatusOr<WorklistKey> ParseWorklistCursor(const std::string& after) {
  WorklistKey key;
  if (after.empty()) return key;
  std::vector<std::string> parts = absl::StrSplit(after, ':');
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &key.due) ||
      !absl::SimpleAtoi(parts[1], &key.priority) || !absl::SimpleAtoi(parts[2], &key.seq) ||
      key.priority < 0 || key.priority > 1000 || key.seq < 0) {
    return absl::InvalidArgumentError("page_token is not one this gateway issued");
  }
  return key;
}

//! The token of the page after `last` (whose seq is `seq`).
inline std::string WorklistCursor(const ExamRecord& last, int64_t seq) {
  const int64_t due = last.sla_due_at == absl::InfiniteFuture()
                          ? std::numeric_limits<int64_t>::max()
                          : absl::ToUnixMicros(last.sla_due_at);
  return absl::StrCat(due, ":", static_cast<int>(last.priority), ":", seq);
}

//! The states a worklist shows: the query's, or the open ones (routed, claimed, preliminary).
inline std::vector<ExamState> WorklistStates(const WorklistQuery& query) {
  if (!query.states.empty()) return query.states;
  return {ExamState::kRouted, ExamState::kClaimed, ExamState::kPreliminary};
}

//! Whether `states` are all open ones: then the partial index of open exams serves the query.
inline bool OnlyOpenStates(const std::vector<ExamState>& states) {
  return std::all_of(states.begin(), states.end(), [](ExamState s) {
    return s == ExamState::kRouted || s == ExamState::kClaimed || s == ExamState::kPreliminary;
  });
}

}  // namespace rdg::storage
