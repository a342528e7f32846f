// OutboundStore: what RDG owes the hospitals' own systems, as a durable queue. Each FINAL or
// AMENDED report version becomes jobs — the study's images, the report as a DICOM SR and as an
// Encapsulated PDF for a PACS, the report as an HL7 ORU for a HIS — one per configured
// destination of the exam's origin institution. Jobs are made from the report feed (a cursor over
// report seq, moved in the same transaction that adds them) and worked off by the leading gateway:
// a job stays PENDING until its destination took it, through restarts, kill -9 and a change of
// leader. Pushes are at least once; what is sent is built so that a repeat is a duplicate at the
// destination (derived DICOM UIDs, one HL7 control id per job), never a second copy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/records.h"

namespace rdg::storage {

enum class OutboundKind : int32_t {
  kUnspecified = 0,
  kStudyImages = 1,  //!< the exam's DICOM instances (with the first FINAL version only)
  kReportSr = 2,     //!< the report version as a Basic Text SR
  kReportPdf = 3,    //!< the report version as an Encapsulated PDF
  kReportOru = 4,    //!< the report version as an HL7 ORU^R01
};
//! "images", "sr", "pdf", "oru" (rdg-admin, /metrics labels).
inline const char* OutboundKindName(OutboundKind kind) {
  switch (kind) {
    case OutboundKind::kStudyImages:
      return "images";
    case OutboundKind::kReportSr:
      return "sr";
    case OutboundKind::kReportPdf:
      return "pdf";
    case OutboundKind::kReportOru:
      return "oru";
    case OutboundKind::kUnspecified:
      break;
  }
  return "unspecified";
}

enum class OutboundState : int32_t {
  kUnspecified = 0,
  kPending = 1,  //!< not taken yet: tried at next_attempt_at
  kSent = 2,     //!< the destination took it (detail says how, e.g. "ACK AA")
  kFailed = 3,   //!< refused for good (detail says why): waits for an administrator's retry
};
//! "pending", "sent", "failed".
inline const char* OutboundStateName(OutboundState state) {
  switch (state) {
    case OutboundState::kPending:
      return "pending";
    case OutboundState::kSent:
      return "sent";
    case OutboundState::kFailed:
      return "failed";
    case OutboundState::kUnspecified:
      break;
  }
  return "unspecified";
}

struct OutboundJob {
  int64_t job_id = 0;       //!< assigned by the store
  std::string destination;  //!< the destination's name in the configuration
  OutboundKind kind = OutboundKind::kUnspecified;
  std::string exam_id;
  std::string report_id;  //!< the version that made the job
  OutboundState state = OutboundState::kPending;
  int32_t attempts = 0;
  absl::Time created_at;
  absl::Time next_attempt_at;         //!< when PENDING
  std::optional<absl::Time> done_at;  //!< when SENT or FAILED
  std::string detail;  //!< the last attempt's outcome: an error, or the destination's answer
};

//! A destination's queue at a glance (rdg-admin outbound, /metrics).
struct OutboundSummary {
  std::string destination;
  int64_t pending = 0;
  int64_t sent = 0;
  int64_t failed = 0;
  std::optional<absl::Time> oldest_pending_since;  //!< created_at of its oldest pending job
  std::optional<absl::Time> last_sent_at;
  std::string last_error;  //!< of its most recently tried job that is not sent, if any
};

//! An attempt's outcome (RecordAttempt).
struct OutboundAttempt {
  OutboundState outcome = OutboundState::kPending;  //!< PENDING: failed, to be retried
  std::string detail;
  absl::Time retry_at;  //!< for PENDING
};

class OutboundStore {
 public:
  virtual ~OutboundStore() = default;

  //! FINAL and AMENDED report versions after the planning cursor, oldest (lowest seq) first.
  virtual absl::StatusOr<std::vector<ReportRecord>> UnplannedReports(int32_t limit) = 0;
  //! Adds `jobs` (one the queue already holds — same destination, kind and report — is kept as it
  //! is) and moves the planning cursor to `planned_through` (never back), in one transaction.
  virtual absl::Status PlanJobs(const std::vector<OutboundJob>& jobs, int64_t planned_through,
                                absl::Time now) = 0;
  //! PENDING jobs of `destination` due at `now`, by next attempt, then job id — but never one
  //! behind an earlier job of the same destination, exam and kind that is still pending: an
  //! amended report reaches a HIS after the version it amends, whatever their retries did.
  virtual absl::StatusOr<std::vector<OutboundJob>> DueJobs(const std::string& destination,
                                                           absl::Time now, int32_t limit) = 0;
  //! Records an attempt of a PENDING job (attempts + 1). FAILED_PRECONDITION when the job is not
  //! pending (another gateway, or an earlier attempt, finished it); NOT_FOUND when there is none.
  virtual absl::Status RecordAttempt(int64_t job_id, const OutboundAttempt& attempt,
                                     absl::Time now) = 0;
  //! Puts FAILED jobs back in the queue, due at `now`: those of `destination` (all when empty).
  //! Returns how many.
  virtual absl::StatusOr<int64_t> RetryFailed(const std::string& destination, absl::Time now) = 0;
  //! Deletes up to `limit` SENT jobs done before `before`, the oldest first; returns how many.
  //! Pending and failed jobs are never purged, nor a destination's last sent job (when it last
  //! took one stays known).
  virtual absl::StatusOr<int64_t> PurgeSent(absl::Time before, int32_t limit) = 0;
  //! The jobs of an exam, by job id.
  virtual absl::StatusOr<std::vector<OutboundJob>> ListJobs(const std::string& exam_id) = 0;
  //! Every destination that has jobs, by name.
  virtual absl::StatusOr<std::vector<OutboundSummary>> SummarizeOutbound() = 0;
};

}  // namespace rdg::storage
