// Reports: a reader submits PRELIMINARY, FINAL or AMENDED versions (signed unless preliminary);
// the origin clinic receives final versions through a resumable feed and acknowledges them. This
// is the interface the services use; IndexReportDesk (index_report_desk.h) implements it, unit
// tests use tests/mocks/mock_report_desk.h.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "gateway/auth/principal.h"
#include "rdg/v1/reading.pb.h"
#include "storage/records.h"

namespace rdg::worklist {

class ReportDesk {
 public:
  virtual ~ReportDesk() = default;

  //! Accepts a report version after checking the caller, the claim, the desk it names
  //! (ReadingDesk::SigningDesk), the canonical bytes and — for FINAL and AMENDED — the signature
  //! and that the signer is the caller.
  virtual absl::StatusOr<storage::ReportRecord> Submit(
      const auth::Principal& reader, const rdg::v1::SubmitReportRequest& request) = 0;

  //! An exam's reports as the reader working on it sees them.
  struct ExamReports {
    std::vector<storage::ReportRecord> versions;
    std::string desk;  //!< where the caller reads the exam: what their reports must name
  };
  //! Every version of the reports on an exam the reader works on, or breaks the glass for
  //! (ReadingDesk::ExamInContextOfWork).
  virtual absl::StatusOr<ExamReports> Versions(const auth::Principal& reader,
                                               const std::string& exam_id,
                                               const std::string& break_glass_reason) = 0;

  //! Final and amended reports for the clinic after `after_seq` (marked delivered).
  virtual absl::StatusOr<std::vector<storage::ReportRecord>> Feed(const auth::Principal& clinic,
                                                                  int64_t after_seq,
                                                                  int32_t limit) = 0;
  virtual absl::StatusOr<storage::ReportRecord> Acknowledge(const auth::Principal& clinic,
                                                            const std::string& report_id) = 0;
  //! The latest final/amended version of one of the clinic's exams.
  virtual absl::StatusOr<storage::ReportRecord> Latest(const auth::Principal& clinic,
                                                       const std::string& exam_id) = 0;

  //! The exams of reports Feed or Latest gave `clinic`, by exam id: what a printed report shows
  //! besides the signed content. An exam of another institution is never returned.
  virtual absl::StatusOr<absl::flat_hash_map<std::string, storage::ExamRecord>> ExamsOf(
      const auth::Principal& clinic, const std::vector<storage::ReportRecord>& reports) = 0;

  //! Calls `wake` (from any thread) whenever a report for `institution` becomes deliverable,
  //! until Unsubscribe(token).
  virtual int64_t Subscribe(const std::string& institution, std::function<void()> wake) = 0;
  virtual void Unsubscribe(int64_t token) = 0;
};

}  // namespace rdg::worklist
