// IndexStore: the transactional index of exams, objects, upload sessions, state events and audit.
// SQLite is the embedded default; PostgreSQL the shared index for several gateways.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "storage/records.h"

namespace rdg::storage {

//! The refusal of an object whose SOP Instance UID is stored with other bytes: the text a clinic
//! reads, whether ingest's early check finds it or the commit does (a concurrent upload).
inline absl::Status ChangedObjectError(absl::string_view sop_instance_uid) {
  return absl::AlreadyExistsError(absl::StrCat(
      "SOP Instance UID ", sop_instance_uid,
      " is already stored with different content; the stored object was kept. Give the "
      "corrected image a new SOP Instance UID (e.g. re-export it from the modality)"));
}

class IndexStore {
 public:
  virtual ~IndexStore() = default;

  // --- Upload sessions (persisted so that uploads resume across restarts) ---
  //! Inserts a new session unless its institution already has `max_per_institution` sessions
  //! (RESOURCE_EXHAUSTED then); the count and the insert are one atomic step.
  virtual absl::Status CreateSession(const UploadSessionRecord& session,
                                     int max_per_institution) = 0;
  virtual absl::StatusOr<std::optional<UploadSessionRecord>> GetSession(
      const std::string& session_id) = 0;
  //! The open session of `institution` for the same content, if any.
  virtual absl::StatusOr<std::optional<UploadSessionRecord>> FindSession(
      const std::string& institution, const std::string& sha256_hex, int64_t size) = 0;
  virtual absl::StatusOr<int> CountSessions(const std::string& institution) = 0;
  virtual absl::Status TouchSession(const std::string& session_id, absl::Time at) = 0;
  virtual absl::Status DeleteSession(const std::string& session_id) = 0;
  virtual absl::StatusOr<std::vector<UploadSessionRecord>> ListSessions() = 0;
  //! Up to `limit` sessions of `institution` after `after`, oldest first.
  virtual absl::StatusOr<std::vector<UploadSessionRecord>> ListSessionsOf(
      const std::string& institution, const std::optional<SessionCursor>& after, int limit) = 0;

  // --- Objects and exams ---
  virtual absl::StatusOr<std::optional<ObjectRecord>> FindObject(
      const std::string& institution, const std::string& sop_instance_uid) = 0;
  //! An object of `institution` with these bytes, if any (resuming a finished upload).
  virtual absl::StatusOr<std::optional<ObjectRecord>> FindObjectByContent(
      const std::string& institution, const std::string& sha256_hex) = 0;
  //! Whether any object references the blob.
  virtual absl::StatusOr<bool> IsBlobReferenced(const std::string& sha256_hex) = 0;
  //! Commits a batch in ONE durable transaction (group commit). Per item: the outcome, or
  //! ALREADY_EXISTS if the SOP Instance UID is stored with other bytes (that item adds nothing).
  //! If the transaction itself fails, every item gets that error and nothing is visible.
  virtual std::vector<absl::StatusOr<CommitOutcome>> CommitObjects(
      absl::Span<const NewObject> batch) = 0;
  virtual absl::StatusOr<ExamPage> ListExams(const ExamQuery& query) = 0;
  virtual absl::StatusOr<std::optional<ExamRecord>> GetExam(const std::string& exam_id) = 0;
  virtual absl::StatusOr<std::vector<ObjectRecord>> ListObjects(const std::string& exam_id) = 0;
  //! Up to `limit` objects of the exam after `after`, in the order of ListObjects.
  virtual absl::StatusOr<std::vector<ObjectRecord>> ListObjectsPage(
      const std::string& exam_id, const std::optional<ObjectCursor>& after, int limit) = 0;
  virtual absl::StatusOr<std::vector<ExamEventRecord>> ListEvents(const std::string& exam_id) = 0;

  // --- Worklists and claims (at most one live claim per exam, also under concurrency) ---
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

  // --- Escalation and priors ---
  //! Moves the exam to `to_queue` (state ROUTED, claim ended, ESCALATED event with the reason).
  virtual absl::StatusOr<ExamRecord> EscalateExam(const Escalation& escalation, absl::Time now) = 0;
  //! ROUTED exams whose claim target passed before `now`, most overdue first.
  virtual absl::StatusOr<std::vector<ExamRecord>> ListClaimOverdue(absl::Time now,
                                                                   int32_t limit) = 0;
  //! Stops automatic escalation of an exam (no queue above its current one).
  virtual absl::Status ClearClaimDue(const std::string& exam_id) = 0;
  //! Candidates for the same patient's other exams: same national ID (any institution), or same
  //! patient ID and issuer at the same origin institution. Newest first. Whether they are the
  //! same person (agreeing demographics) is the caller's decision.
  virtual absl::StatusOr<std::vector<ExamRecord>> FindPriors(const ExamRecord& exam,
                                                             int32_t limit) = 0;
  //! LAB exams of an origin institution with this order number (accession), newest first.
  virtual absl::StatusOr<std::vector<ExamRecord>> FindLabOrders(const std::string& institution,
                                                                const std::string& accession,
                                                                int32_t limit) = 0;
  //! Adds a conflict to the administrators' review list; the same conflict (kind, exams, detail)
  //! is listed once.
  virtual absl::Status RecordIdentityConflict(const IdentityConflictRecord& conflict) = 0;
  //! Conflicts detected at or after `since`, newest first.
  virtual absl::StatusOr<std::vector<IdentityConflictRecord>> ListIdentityConflicts(
      absl::Time since, int32_t limit) = 0;
  //! Lab observations of the given exams, restricted to `codes` when not empty; ordered by code,
  //! then observation time, then arrival.
  virtual absl::StatusOr<std::vector<LabResultRecord>> ListLabResults(
      const std::vector<std::string>& exam_ids, const std::vector<std::string>& codes) = 0;

  // --- Reports (versions are only ever added) ---
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

  // --- SLA stage clocks (started and ended by the transactions above) ---
  //! Marks running stages whose due time passed before `now` as breached (at `now`) and returns
  //! them, earliest due first. A stage that completes late without having been swept is marked
  //! breached when it completes.
  virtual absl::StatusOr<std::vector<StageRecord>> DetectBreaches(absl::Time now,
                                                                  int32_t limit) = 0;
  //! Stages completed in [since, until), read through the completion-time index only.
  virtual absl::StatusOr<std::vector<StageRecord>> ListStagesEnded(absl::Time since,
                                                                   absl::Time until) = 0;
  //! Stages completed after `after_end_seq` in completion order (an incremental feed).
  virtual absl::StatusOr<std::vector<StageRecord>> ListStagesEndedAfter(int64_t after_end_seq,
                                                                        int32_t limit) = 0;
  //! Breached stages: open ones most overdue first, else the most recently detected first.
  virtual absl::StatusOr<std::vector<StageRecord>> ListBreaches(const BreachQuery& query) = 0;
  //! Open breaches per stage (stages without any are left out), from the partial index of open
  //! breaches only. Closed breaches are completed stages with breached_at set (in the feed).
  virtual absl::StatusOr<std::vector<OpenBreachCount>> CountOpenBreaches() = 0;

  // --- Queues and audit (append-only) ---
  //! Figures of every queue holding open exams, read from the partial index of open exams only
  //! (cost follows the open work, not the history).
  virtual absl::StatusOr<std::vector<QueueFigureRecord>> ListQueueFigures(absl::Time now) = 0;

  //! Appends a record linked to the chain (prev_hash and hash are computed here; seq too).
  virtual absl::Status AppendAudit(const AuditRecord& entry) = 0;
  virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(const AuditQuery& query) = 0;
  //! Up to `limit` records from `from_seq` on, in seq order, with their links, and the
  //! checkpoints among them.
  virtual absl::StatusOr<AuditExportRecord> ExportAudit(int64_t from_seq, int32_t limit) = 0;
  virtual absl::StatusOr<AuditTipRecord> AuditTip() = 0;
  virtual absl::Status AppendAuditCheckpoint(const AuditCheckpointRecord& checkpoint) = 0;
  //! A consistent copy of the whole index as of now into a new file `path` (online: writers
  //! carry on), for a backup. Returns the last audit record's seq in the copy.
  virtual absl::StatusOr<int64_t> SnapshotTo(const std::string& path) = 0;
  //! The last seq the audit repository `destination` confirmed (0 before the first).
  virtual absl::StatusOr<int64_t> AuditExportedUpTo(const std::string& destination) = 0;
  //! Records that `destination` confirmed everything up to `seq` (never moves back).
  virtual absl::Status SetAuditExportedUpTo(const std::string& destination, int64_t seq,
                                            absl::Time at) = 0;
};

}  // namespace rdg::storage
