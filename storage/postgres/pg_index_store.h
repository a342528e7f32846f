// IndexStore on PostgreSQL: the index several gateways share. One pool of connections, the
// schema migrated on Open, and each store's PostgreSQL implementation behind the one IndexStore
// the gateway opens (its methods forward to them).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/index_store.h"
#include "storage/postgres/pg_audit_store.h"
#include "storage/postgres/pg_exam_store.h"
#include "storage/postgres/pg_identity_conflict_store.h"
#include "storage/postgres/pg_outbound_store.h"
#include "storage/postgres/pg_pool.h"
#include "storage/postgres/pg_report_store.h"
#include "storage/postgres/pg_session_store.h"
#include "storage/postgres/pg_sla_store.h"
#include "storage/postgres/pg_worklist_store.h"

namespace rdg::storage::pg {

class PostgresIndexStore final : public IndexStore {
 public:
  //! Connects (UNAVAILABLE when the database cannot be reached) and applies pending migrations.
  static absl::StatusOr<std::unique_ptr<PostgresIndexStore>> Open(Pool::Options options);
  //! On a pool that is already migrated (tests share one).
  explicit PostgresIndexStore(std::unique_ptr<Pool> pool);

  Pool& pool() { return *pool_; }

  // SessionStore
  absl::Status CreateSession(const UploadSessionRecord& session, int max_per_institution) override {
    return sessions_.CreateSession(session, max_per_institution);
  }
  absl::StatusOr<std::optional<UploadSessionRecord>> GetSession(
      const std::string& session_id) override {
    return sessions_.GetSession(session_id);
  }
  absl::StatusOr<std::optional<UploadSessionRecord>> FindSession(const std::string& institution,
                                                                 const std::string& sha256_hex,
                                                                 int64_t size) override {
    return sessions_.FindSession(institution, sha256_hex, size);
  }
  absl::StatusOr<int> CountSessions(const std::string& institution) override {
    return sessions_.CountSessions(institution);
  }
  absl::Status TouchSession(const std::string& session_id, absl::Time at) override {
    return sessions_.TouchSession(session_id, at);
  }
  absl::Status DeleteSession(const std::string& session_id) override {
    return sessions_.DeleteSession(session_id);
  }
  absl::StatusOr<std::vector<UploadSessionRecord>> ListSessions() override {
    return sessions_.ListSessions();
  }
  absl::StatusOr<std::vector<UploadSessionRecord>> ListSessionsOf(
      const std::string& institution, const std::optional<SessionCursor>& after,
      int limit) override {
    return sessions_.ListSessionsOf(institution, after, limit);
  }

  // ExamStore
  absl::StatusOr<std::optional<ObjectRecord>> FindObject(
      const std::string& institution, const std::string& sop_instance_uid) override {
    return exams_.FindObject(institution, sop_instance_uid);
  }
  absl::StatusOr<std::optional<ObjectRecord>> FindObjectByContent(
      const std::string& institution, const std::string& sha256_hex) override {
    return exams_.FindObjectByContent(institution, sha256_hex);
  }
  absl::StatusOr<bool> IsBlobReferenced(const std::string& sha256_hex) override {
    return exams_.IsBlobReferenced(sha256_hex);
  }
  std::vector<absl::StatusOr<CommitOutcome>> CommitObjects(
      absl::Span<const NewObject> batch) override {
    return exams_.CommitObjects(batch);
  }
  absl::StatusOr<ExamPage> ListExams(const ExamQuery& query) override {
    return exams_.ListExams(query);
  }
  absl::StatusOr<std::optional<ExamRecord>> GetExam(const std::string& exam_id) override {
    return exams_.GetExam(exam_id);
  }
  absl::StatusOr<std::vector<ExamRecord>> FindExamsByStudy(
      const std::string& study_instance_uid) override {
    return exams_.FindExamsByStudy(study_instance_uid);
  }
  absl::StatusOr<std::vector<ObjectRecord>> ListObjects(const std::string& exam_id) override {
    return exams_.ListObjects(exam_id);
  }
  absl::StatusOr<std::vector<ObjectRecord>> ListObjectsPage(
      const std::string& exam_id, const std::optional<ObjectCursor>& after, int limit) override {
    return exams_.ListObjectsPage(exam_id, after, limit);
  }
  absl::StatusOr<std::vector<ExamEventRecord>> ListEvents(const std::string& exam_id) override {
    return exams_.ListEvents(exam_id);
  }
  absl::StatusOr<std::vector<ExamRecord>> FindPriors(const ExamRecord& exam,
                                                     int32_t limit) override {
    return exams_.FindPriors(exam, limit);
  }
  absl::StatusOr<std::vector<ExamRecord>> FindLabOrders(const std::string& institution,
                                                        const std::string& accession,
                                                        int32_t limit) override {
    return exams_.FindLabOrders(institution, accession, limit);
  }

  // WorklistStore
  absl::StatusOr<WorklistPage> ListWorklist(const WorklistQuery& query, absl::Time now) override {
    return worklist_.ListWorklist(query, now);
  }
  absl::StatusOr<std::optional<ClaimRecord>> GetLiveClaim(const std::string& exam_id,
                                                          absl::Time now) override {
    return worklist_.GetLiveClaim(exam_id, now);
  }
  absl::StatusOr<ClaimRecord> ClaimExam(const std::string& exam_id, const std::string& user,
                                        const std::string& institution, absl::Time now,
                                        absl::Duration lease, ClaimAction action) override {
    return worklist_.ClaimExam(exam_id, user, institution, now, lease, action);
  }
  absl::Status ReleaseClaim(const std::string& exam_id, const std::string& user,
                            absl::Time now) override {
    return worklist_.ReleaseClaim(exam_id, user, now);
  }
  absl::StatusOr<int> ExpireClaims(absl::Time now) override { return worklist_.ExpireClaims(now); }
  absl::StatusOr<ExamRecord> EscalateExam(const Escalation& escalation, absl::Time now) override {
    return worklist_.EscalateExam(escalation, now);
  }
  absl::StatusOr<std::vector<ExamRecord>> ListClaimOverdue(absl::Time now, int32_t limit) override {
    return worklist_.ListClaimOverdue(now, limit);
  }
  absl::Status ClearClaimDue(const std::string& exam_id) override {
    return worklist_.ClearClaimDue(exam_id);
  }
  absl::StatusOr<std::vector<QueueFigureRecord>> ListQueueFigures(absl::Time now) override {
    return worklist_.ListQueueFigures(now);
  }

  // ReportStore
  absl::StatusOr<ReportRecord> AddReport(ReportRecord report, absl::Time now) override {
    return reports_.AddReport(std::move(report), now);
  }
  absl::StatusOr<std::vector<ReportRecord>> ListReports(const std::string& exam_id) override {
    return reports_.ListReports(exam_id);
  }
  absl::StatusOr<std::vector<ReportRecord>> ReportFeed(const std::string& institution,
                                                       int64_t after_seq, int32_t limit) override {
    return reports_.ReportFeed(institution, after_seq, limit);
  }
  absl::Status MarkDelivered(const std::vector<std::string>& report_ids, absl::Time now) override {
    return reports_.MarkDelivered(report_ids, now);
  }
  absl::StatusOr<ReportRecord> AcknowledgeReport(const std::string& report_id,
                                                 const std::string& institution,
                                                 const std::string& user, absl::Time now) override {
    return reports_.AcknowledgeReport(report_id, institution, user, now);
  }

  // SlaStore
  absl::StatusOr<std::vector<StageRecord>> DetectBreaches(absl::Time now, int32_t limit) override {
    return sla_.DetectBreaches(now, limit);
  }
  absl::StatusOr<std::vector<StageRecord>> ListStagesEnded(absl::Time since,
                                                           absl::Time until) override {
    return sla_.ListStagesEnded(since, until);
  }
  absl::StatusOr<std::vector<StageRecord>> ListStagesEndedAfter(int64_t after_end_seq,
                                                                int32_t limit) override {
    return sla_.ListStagesEndedAfter(after_end_seq, limit);
  }
  absl::StatusOr<std::vector<StageRecord>> ListBreaches(const BreachQuery& query) override {
    return sla_.ListBreaches(query);
  }
  absl::StatusOr<std::vector<OpenBreachCount>> CountOpenBreaches() override {
    return sla_.CountOpenBreaches();
  }

  // AuditStore
  absl::Status AppendAudit(const AuditRecord& entry) override { return audit_.AppendAudit(entry); }
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(const AuditQuery& query) override {
    return audit_.ListAudit(query);
  }
  absl::StatusOr<AuditExportRecord> ExportAudit(int64_t from_seq, int32_t limit) override {
    return audit_.ExportAudit(from_seq, limit);
  }
  absl::StatusOr<AuditTipRecord> AuditTip() override { return audit_.AuditTip(); }
  absl::Status AppendAuditCheckpoint(const AuditCheckpointRecord& checkpoint) override {
    return audit_.AppendAuditCheckpoint(checkpoint);
  }
  absl::StatusOr<int64_t> AuditExportedUpTo(const std::string& destination) override {
    return audit_.AuditExportedUpTo(destination);
  }
  absl::Status SetAuditExportedUpTo(const std::string& destination, int64_t seq,
                                    absl::Time at) override {
    return audit_.SetAuditExportedUpTo(destination, seq, at);
  }

  // LabResultStore
  absl::StatusOr<std::vector<LabResultRecord>> ListLabResults(
      const std::vector<std::string>& exam_ids, const std::vector<std::string>& codes) override {
    return lab_results_.ListLabResults(exam_ids, codes);
  }

  // IdentityConflictStore
  absl::Status RecordIdentityConflict(const IdentityConflictRecord& conflict) override {
    return identity_conflicts_.RecordIdentityConflict(conflict);
  }
  absl::StatusOr<std::vector<IdentityConflictRecord>> ListIdentityConflicts(
      absl::Time since, int32_t limit) override {
    return identity_conflicts_.ListIdentityConflicts(since, limit);
  }

  // OutboundStore
  absl::StatusOr<std::vector<ReportRecord>> UnplannedReports(int32_t limit) override {
    return outbound_.UnplannedReports(limit);
  }
  absl::Status PlanJobs(const std::vector<OutboundJob>& jobs, int64_t planned_through,
                        absl::Time now) override {
    return outbound_.PlanJobs(jobs, planned_through, now);
  }
  absl::StatusOr<std::vector<OutboundJob>> DueJobs(const std::string& destination, absl::Time now,
                                                   int32_t limit) override {
    return outbound_.DueJobs(destination, now, limit);
  }
  absl::Status RecordAttempt(int64_t job_id, const OutboundAttempt& attempt,
                             absl::Time now) override {
    return outbound_.RecordAttempt(job_id, attempt, now);
  }
  absl::StatusOr<int64_t> RetryFailed(const std::string& destination, absl::Time now) override {
    return outbound_.RetryFailed(destination, now);
  }
  absl::StatusOr<std::vector<OutboundJob>> ListJobs(const std::string& exam_id) override {
    return outbound_.ListJobs(exam_id);
  }
  absl::StatusOr<int64_t> PurgeSent(absl::Time before, int32_t limit) override {
    return outbound_.PurgeSent(before, limit);
  }
  absl::StatusOr<std::vector<OutboundSummary>> SummarizeOutbound() override {
    return outbound_.SummarizeOutbound();
  }

  //! IndexBackup: a PostgreSQL index is backed up with PostgreSQL's own tools (pg_dump, or
  //! pg_basebackup with WAL archiving for point-in-time recovery); FAILED_PRECONDITION saying so.
  absl::StatusOr<int64_t> SnapshotTo(const std::string& path) override;

 private:
  std::unique_ptr<Pool> pool_;
  PgSessionStore sessions_{*pool_};
  PgExamStore exams_{*pool_};
  PgWorklistStore worklist_{*pool_};
  PgReportStore reports_{*pool_};
  PgSlaStore sla_{*pool_};
  PgAuditStore audit_{*pool_};
  PgLabResultStore lab_results_{*pool_};
  PgIdentityConflictStore identity_conflicts_{*pool_};
  PgOutboundStore outbound_{*pool_};
};

}  // namespace rdg::storage::pg
