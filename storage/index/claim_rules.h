// The rules of claims every backend of the index applies, inside the transaction that changes a
// claim: which exams may be claimed, for what, and what a refused reader is told.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "storage/index/worklist_store.h"

namespace rdg::storage {

//! An open exam (routed, claimed or with a preliminary report): one a reader may claim.
inline bool Claimable(ExamState s) {
  return s == ExamState::kRouted || s == ExamState::kClaimed || s == ExamState::kPreliminary;
}

//! The refusal of a claim on an exam another reader holds until `until`.
inline absl::Status ClaimedByAnother(const std::string& exam_id, const std::string& holder,
                                     absl::Time until) {
  return absl::FailedPreconditionError(
      absl::StrCat("exam ", exam_id, " is claimed by ", holder, " until ",
                   absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", until, absl::UTCTimeZone())));
}

//! Whether an exam in `state` may be claimed for `action` (nobody holds a live claim on it).
inline absl::Status MayClaim(const std::string& exam_id, ExamState state, ClaimAction action) {
  if (action == ClaimAction::kRenew) {
    return absl::FailedPreconditionError(
        absl::StrCat("you hold no live claim on exam ", exam_id,
                     " (it expired or was released); claim it again"));
  }
  const bool amend = action == ClaimAction::kAmend;
  if (amend && state != ExamState::kFinal) {
    return absl::FailedPreconditionError(
        absl::StrCat("exam ", exam_id, " is ", Name(state),
                     ": only a final report is amended; claim it to report"));
  }
  if (!amend && !Claimable(state)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "exam ", exam_id, " is ", Name(state), " and cannot be claimed",
        state == ExamState::kFinal ? " (to amend its report, claim it for amendment)" : ""));
  }
  return absl::OkStatus();
}

}  // namespace rdg::storage
