// IdentityConflictStore: what the patient-identity rules refused to link or merge (the
// administrators' review list).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/records.h"

namespace rdg::storage {

class IdentityConflictStore {
 public:
  virtual ~IdentityConflictStore() = default;

  //! Adds a conflict to the administrators' review list; the same conflict (kind, exams, detail)
  //! is listed once.
  virtual absl::Status RecordIdentityConflict(const IdentityConflictRecord& conflict) = 0;
  //! Conflicts detected at or after `since`, newest first.
  virtual absl::StatusOr<std::vector<IdentityConflictRecord>> ListIdentityConflicts(
      absl::Time since, int32_t limit) = 0;
};

}  // namespace rdg::storage
