// WorklistStore: reading queues — worklists, claims (at most one live claim per exam, also under
// concurrency), escalation and the queues' figures.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/records.h"

namespace rdg::storage {

class WorklistStore {
 public:
  virtual ~WorklistStore() = default;

  virtual absl::StatusOr<WorklistPage> ListWorklist(const WorklistQuery& query, absl::Time now) = 0;
  virtual absl::StatusOr<std::optional<ClaimRecord>> GetLiveClaim(const std::string& exam_id,
                                                                  absl::Time now) = 0;
  //! kClaim takes (or, for the holder, renews) the lease; kRenew only renews the holder's live
  //! lease; kAmend takes a lease on a FINAL exam for an addendum (FAILED_PRECONDITION otherwise).
  //! FAILED_PRECONDITION if another user holds a live claim or the exam is not claimable; NOT_FOUND
  //! if the exam does not exist. A new claim records a CLAIMED event; taking over an expired lease
  //! first records RELEASED for the previous holder.
  virtual absl::StatusOr<ClaimRecord> ClaimExam(const std::string& exam_id, const std::string& user,
                                                const std::string& institution, absl::Time now,
                                                absl::Duration lease, ClaimAction action) = 0;
  //! Ends the caller's live claim: the exam returns to its queue (RELEASED event).
  virtual absl::Status ReleaseClaim(const std::string& exam_id, const std::string& user,
                                    absl::Time now) = 0;
  //! Releases every lease that expired before `now` (RELEASED by "system"); returns how many.
  virtual absl::StatusOr<int> ExpireClaims(absl::Time now) = 0;
  //! Moves the exam to `to_queue` (state ROUTED, claim ended, ESCALATED event with the reason).
  //! A system escalation (require_claim false) applies only to an exam still ROUTED past its
  //! claim target, FAILED_PRECONDITION otherwise (claimed or escalated meanwhile).
  virtual absl::StatusOr<ExamRecord> EscalateExam(const Escalation& escalation, absl::Time now) = 0;
  //! ROUTED exams whose claim target passed before `now`, most overdue first.
  virtual absl::StatusOr<std::vector<ExamRecord>> ListClaimOverdue(absl::Time now,
                                                                   int32_t limit) = 0;
  //! Stops automatic escalation of an exam (no queue above its current one).
  virtual absl::Status ClearClaimDue(const std::string& exam_id) = 0;
  //! Figures of every queue holding open exams, read from the partial index of open exams only
  //! (cost follows the open work, not the history).
  virtual absl::StatusOr<std::vector<QueueFigureRecord>> ListQueueFigures(absl::Time now) = 0;
};

}  // namespace rdg::storage
