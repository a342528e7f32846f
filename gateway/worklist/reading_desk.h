// The reader's side of the workflow: worklists of the queues of the reader's desks, claims with
// leases, access checks for fetching, priors, escalation. Every access to patient data is
// audited. This is the interface; IndexReadingDesk implements it.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/auth/principal.h"
#include "storage/index_store.h"

namespace rdg::worklist {

//! The reader's side of the workflow, as the services and the report desk use it. The gateway's
//! implementation is IndexReadingDesk (index_reading_desk.h); unit tests use
//! tests/mocks/mock_reading_desk.h. Every method is thread-safe.
class ReadingDesk {
 public:
  virtual ~ReadingDesk() = default;

  //! The caller's worklist; `filter.queues` is ignored (the caller's queues are used).
  virtual absl::StatusOr<storage::WorklistPage> Worklist(const auth::Principal& reader,
                                                         storage::WorklistQuery filter) = 0;
  //! Takes the exam; `for_amendment`: a FINAL exam, for an addendum by a reader of its desk
  //! who did not write the report, with a reason (audited "claim_for_amendment").
  virtual absl::StatusOr<storage::ClaimRecord> Claim(const auth::Principal& reader,
                                                     const std::string& exam_id, bool for_amendment,
                                                     const std::string& amendment_reason) = 0;
  virtual absl::StatusOr<storage::ClaimRecord> Renew(const auth::Principal& reader,
                                                     const std::string& exam_id) = 0;
  virtual absl::Status Release(const auth::Principal& reader, const std::string& exam_id) = 0;
  //! The exam's objects, for the holder of its live claim only.
  virtual absl::StatusOr<std::vector<storage::ObjectRecord>> OpenForFetch(
      const auth::Principal& reader, const std::string& exam_id) = 0;
  //! Returns expired leases' exams to their queues; returns how many.
  virtual absl::StatusOr<int> ExpireLeases() = 0;

  //! The claim holder moves the exam to the consultation queue of the next level up.
  virtual absl::StatusOr<storage::ExamRecord> Escalate(const auth::Principal& reader,
                                                       const std::string& exam_id,
                                                       const std::string& reason) = 0;
  //! Escalates every exam left unclaimed past its SLA claim target; returns how many moved.
  virtual absl::StatusOr<int> EscalateOverdue() = 0;

  //! What a reader sees of a patient's history (mutual recognition of results).
  struct PriorsView {
    std::vector<storage::ExamRecord> priors;  //!< newest first; ECG/LAB exams: same type only
    //! LAB exams: this exam's results and earlier values of the same test codes (a trend).
    std::vector<storage::LabResultRecord> lab_results;
  };
  //! The same patient's other exams on the platform (identity::PatientLinker's rules); every
  //! prior shown is audited. For the reader holding the exam's live claim or who signed its
  //! report; anyone else of its queues only with a `break_glass_reason`, audited as
  //! "break_glass". PERMISSION_DENIED otherwise.
  virtual absl::StatusOr<PriorsView> Priors(const auth::Principal& reader,
                                            const std::string& exam_id,
                                            const std::string& break_glass_reason) = 0;
  static constexpr size_t kMaxBreakGlassReason = 500;
  static constexpr size_t kMinBreakGlassReason = 4;
  //! The exam, for the reader working on it, or for another reader of its queues who breaks
  //! the glass with a reason (audited "break_glass": "<what>: <reason>"). `what` names the data
  //! in the refusal ("priors", "reports"). PERMISSION_DENIED otherwise.
  virtual absl::StatusOr<storage::ExamRecord> ExamInContextOfWork(
      const auth::Principal& reader, const std::string& exam_id, absl::string_view what,
      const std::string& break_glass_reason) = 0;
  //! How long the author of a FINAL or addendum keeps access to the exam's priors and reports
  //! without a claim (to write an addendum).
  static constexpr absl::Duration kAuthorAccess = absl::Hours(72);

  //! The desk at which `reader` reads `queue`: the first desk of the config that names both;
  //! empty when the reader's institution has no desks (or none of theirs reads the queue).
  virtual std::string SigningDesk(const auth::Principal& reader,
                                  const std::string& queue) const = 0;
  //! The exam if it sits in one of the reader's queues; NOT_FOUND otherwise (no existence leak).
  virtual absl::StatusOr<storage::ExamRecord> ExamInReadersQueues(const auth::Principal& reader,
                                                                  const std::string& exam_id) = 0;
};

}  // namespace rdg::worklist
