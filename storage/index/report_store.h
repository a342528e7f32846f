// ReportStore: reports (versions are only ever added), their delivery to the origin clinic and
// its acknowledgement.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/records.h"

namespace rdg::storage {

class ReportStore {
 public:
  virtual ~ReportStore() = default;

  //! Adds `report` as the exam's next version (report_id, version and seq are assigned). The
  //! caller must still hold `holder` 's live claim for PRELIMINARY/FINAL (checked in the same
  //! transaction); FINAL and AMENDED end the claim. The exam moves to PRELIMINARY or FINAL and
  //! the change is recorded as an event.
  virtual absl::StatusOr<ReportRecord> AddReport(ReportRecord report, absl::Time now) = 0;
  //! Versions of an exam's reports, oldest first.
  virtual absl::StatusOr<std::vector<ReportRecord>> ListReports(const std::string& exam_id) = 0;
  //! Final and amended reports for an origin institution with seq > after_seq, oldest first.
  virtual absl::StatusOr<std::vector<ReportRecord>> ReportFeed(const std::string& institution,
                                                               int64_t after_seq,
                                                               int32_t limit) = 0;
  //! Marks reports delivered (first time only; a DELIVERED event per exam).
  virtual absl::Status MarkDelivered(const std::vector<std::string>& report_ids,
                                     absl::Time now) = 0;
  //! The origin clinic acknowledges a report (ACKNOWLEDGED event). NOT_FOUND unless the report
  //! belongs to `institution`.
  virtual absl::StatusOr<ReportRecord> AcknowledgeReport(const std::string& report_id,
                                                         const std::string& institution,
                                                         const std::string& user,
                                                         absl::Time now) = 0;
};

}  // namespace rdg::storage
