// LabResultStore: lab observations (HL7 v2 OBX) of LAB exams, written by
// ExamStore::CommitObjects.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/records.h"

namespace rdg::storage {

class LabResultStore {
 public:
  virtual ~LabResultStore() = default;

  //! Lab observations of the given exams, restricted to `codes` when not empty; ordered by code,
  //! then observation time, then arrival.
  virtual absl::StatusOr<std::vector<LabResultRecord>> ListLabResults(
      const std::vector<std::string>& exam_ids, const std::vector<std::string>& codes) = 0;
};

}  // namespace rdg::storage
