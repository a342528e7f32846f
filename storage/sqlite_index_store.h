// IndexStore on SQLite: WAL journal, synchronous=FULL (a commit is durable when it returns), one
// writer connection and a small pool of reader connections; migrations applied on Open.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "storage/exam_text_repairs.h"
#include "storage/index_store.h"

namespace rdg::storage {

namespace sqlite_db {
class Connection;
}  // namespace sqlite_db

class SqliteIndexStore final : public IndexStore, public ExamTextRepairs {
 public:
  struct Options {
    int reader_connections = 4;
  };
  //! Opens (creating if needed) the database at `path` and applies pending migrations.
  static absl::StatusOr<std::unique_ptr<SqliteIndexStore>> Open(const std::string& path,
                                                                const Options& options);
  static absl::StatusOr<std::unique_ptr<SqliteIndexStore>> Open(const std::string& path) {
    return Open(path, Options{});
  }
  ~SqliteIndexStore() override;

  //! Highest applied schema version.
  absl::StatusOr<int> SchemaVersion();

  absl::Status CreateSession(const UploadSessionRecord& session, int max_per_institution) override;
  absl::StatusOr<std::optional<UploadSessionRecord>> GetSession(
      const std::string& session_id) override;
  absl::StatusOr<std::optional<UploadSessionRecord>> FindSession(const std::string& institution,
                                                                 const std::string& sha256_hex,
                                                                 int64_t size) override;
  absl::StatusOr<int> CountSessions(const std::string& institution) override;
  absl::Status TouchSession(const std::string& session_id, absl::Time at) override;
  absl::Status DeleteSession(const std::string& session_id) override;
  absl::StatusOr<std::vector<UploadSessionRecord>> ListSessions() override;
  absl::StatusOr<std::vector<UploadSessionRecord>> ListSessionsOf(
      const std::string& institution, const std::optional<SessionCursor>& after,
      int limit) override;

  absl::StatusOr<std::optional<ObjectRecord>> FindObject(
      const std::string& institution, const std::string& sop_instance_uid) override;
  absl::StatusOr<std::optional<ObjectRecord>> FindObjectByContent(
      const std::string& institution, const std::string& sha256_hex) override;
  absl::StatusOr<bool> IsBlobReferenced(const std::string& sha256_hex) override;
  std::vector<absl::StatusOr<CommitOutcome>> CommitObjects(
      absl::Span<const NewObject> batch) override;
  absl::StatusOr<ExamPage> ListExams(const ExamQuery& query) override;
  absl::StatusOr<std::optional<ExamRecord>> GetExam(const std::string& exam_id) override;
  absl::StatusOr<std::vector<ExamRecord>> FindExamsByStudy(
      const std::string& study_instance_uid) override;
  absl::StatusOr<std::vector<ObjectRecord>> ListObjects(const std::string& exam_id) override;
  absl::StatusOr<std::vector<ObjectRecord>> ListObjectsPage(
      const std::string& exam_id, const std::optional<ObjectCursor>& after, int limit) override;
  absl::StatusOr<std::vector<ExamEventRecord>> ListEvents(const std::string& exam_id) override;

  absl::StatusOr<WorklistPage> ListWorklist(const WorklistQuery& query, absl::Time now) override;
  absl::StatusOr<std::optional<ClaimRecord>> GetLiveClaim(const std::string& exam_id,
                                                          absl::Time now) override;
  absl::StatusOr<ClaimRecord> ClaimExam(const std::string& exam_id, const std::string& user,
                                        const std::string& institution, absl::Time now,
                                        absl::Duration lease, ClaimAction action) override;
  absl::Status ReleaseClaim(const std::string& exam_id, const std::string& user,
                            absl::Time now) override;
  absl::StatusOr<int> ExpireClaims(absl::Time now) override;

  absl::StatusOr<ExamRecord> EscalateExam(const Escalation& escalation, absl::Time now) override;
  absl::StatusOr<std::vector<ExamRecord>> ListClaimOverdue(absl::Time now, int32_t limit) override;
  absl::Status ClearClaimDue(const std::string& exam_id) override;
  absl::StatusOr<std::vector<ExamRecord>> FindPriors(const ExamRecord& exam,
                                                     int32_t limit) override;
  absl::StatusOr<std::vector<ExamRecord>> FindLabOrders(const std::string& institution,
                                                        const std::string& accession,
                                                        int32_t limit) override;
  absl::Status RecordIdentityConflict(const IdentityConflictRecord& conflict) override;
  absl::StatusOr<std::vector<IdentityConflictRecord>> ListIdentityConflicts(absl::Time since,
                                                                            int32_t limit) override;
  absl::StatusOr<std::vector<LabResultRecord>> ListLabResults(
      const std::vector<std::string>& exam_ids, const std::vector<std::string>& codes) override;

  absl::StatusOr<ReportRecord> AddReport(ReportRecord report, absl::Time now) override;
  absl::StatusOr<std::vector<ReportRecord>> ListReports(const std::string& exam_id) override;
  absl::StatusOr<std::vector<ReportRecord>> ReportFeed(const std::string& institution,
                                                       int64_t after_seq, int32_t limit) override;
  absl::Status MarkDelivered(const std::vector<std::string>& report_ids, absl::Time now) override;
  absl::StatusOr<ReportRecord> AcknowledgeReport(const std::string& report_id,
                                                 const std::string& institution,
                                                 const std::string& user, absl::Time now) override;

  absl::StatusOr<std::vector<StageRecord>> DetectBreaches(absl::Time now, int32_t limit) override;
  absl::StatusOr<std::vector<StageRecord>> ListStagesEnded(absl::Time since,
                                                           absl::Time until) override;
  absl::StatusOr<std::vector<StageRecord>> ListStagesEndedAfter(int64_t after_end_seq,
                                                                int32_t limit) override;
  absl::StatusOr<std::vector<StageRecord>> ListBreaches(const BreachQuery& query) override;
  absl::StatusOr<std::vector<OpenBreachCount>> CountOpenBreaches() override;

  absl::StatusOr<std::vector<QueueFigureRecord>> ListQueueFigures(absl::Time now) override;
  // sqlite_audit.cc
  absl::Status AppendAudit(const AuditRecord& entry) override;
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(const AuditQuery& query) override;
  absl::StatusOr<AuditExportRecord> ExportAudit(int64_t from_seq, int32_t limit) override;
  absl::StatusOr<AuditTipRecord> AuditTip() override;
  absl::Status AppendAuditCheckpoint(const AuditCheckpointRecord& checkpoint) override;
  absl::StatusOr<int64_t> SnapshotTo(const std::string& path) override;
  absl::StatusOr<int64_t> AuditExportedUpTo(const std::string& destination) override;
  absl::Status SetAuditExportedUpTo(const std::string& destination, int64_t seq,
                                    absl::Time at) override;

  // sqlite_outbound.cc (UnplannedReports: sqlite_reports.cc)
  absl::StatusOr<std::vector<ReportRecord>> UnplannedReports(int32_t limit) override;
  absl::Status PlanJobs(const std::vector<OutboundJob>& jobs, int64_t planned_through,
                        absl::Time now) override;
  absl::StatusOr<std::vector<OutboundJob>> DueJobs(const std::string& destination, absl::Time now,
                                                   int32_t limit) override;
  absl::Status RecordAttempt(int64_t job_id, const OutboundAttempt& attempt,
                             absl::Time now) override;
  absl::StatusOr<int64_t> RetryFailed(const std::string& destination, absl::Time now) override;
  absl::StatusOr<int64_t> PurgeSent(absl::Time before, int32_t limit) override;
  absl::StatusOr<std::vector<OutboundJob>> ListJobs(const std::string& exam_id) override;
  absl::StatusOr<std::vector<OutboundSummary>> SummarizeOutbound() override;

  absl::StatusOr<bool> RepairPending(const std::string& name) override;
  absl::StatusOr<std::vector<ExamText>> ListExamText(const std::string& after_exam_id,
                                                     int limit) override;
  absl::Status RewriteExamText(const std::string& exam_id, const ExamRecord& text) override;
  absl::Status FinishRepair(const std::string& name) override;

 private:
  //! A borrowed reader connection, returned to the pool on destruction.
  class ReaderLease {
   public:
    ReaderLease(SqliteIndexStore* store, sqlite_db::Connection* conn)
        : store_(store), conn_(conn) {}
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    ~ReaderLease() { store_->ReleaseReader(conn_); }
    sqlite_db::Connection* operator->() const { return conn_; }

   private:
    SqliteIndexStore* store_;
    sqlite_db::Connection* conn_;
  };
  SqliteIndexStore();
  absl::Status Migrate();
  //! Links the audit records written before migration 15, in seq order (inside its transaction).
  absl::Status LinkEarlierAudit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! The link the next audit record continues from: the last record's, kept in memory from the
  //! first use, so that a record removed from or slipped in at the end of the table while the
  //! gateway runs breaks the chain at the next record the gateway writes. Loaded from the last
  //! record whose own link holds (one slipped in without a valid link is not continued).
  absl::StatusOr<std::string> AuditTail() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  absl::Status LoadCheckpointTail() ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! Inserts `r` (its patient filled in from its exam when empty) as the next audit record after
  //! the link `previous`, inside the caller's transaction; its seq in `seq`, its link returned.
  //! The caller moves audit_tail_ once the transaction has committed.
  absl::StatusOr<std::string> InsertAuditRow(AuditRecord r, const std::string& previous,
                                             int64_t& seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  ReaderLease AcquireReader();
  void ReleaseReader(sqlite_db::Connection* conn);
  absl::StatusOr<CommitOutcome> CommitOne(const NewObject& item)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // The steps of CommitOne, inside its savepoint.
  //! A stored object of the same identity: a duplicate (outcome filled) or ALREADY_EXISTS.
  absl::Status FindStored(const ObjectRecord& obj, CommitOutcome& outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! Joins the exam of the same study, if any (outcome.exam_id set), after item.check_join.
  absl::Status JoinExam(const NewObject& item, CommitOutcome& outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! A new exam with its routing, events and SLA stages.
  absl::Status InsertExam(const NewObject& item, CommitOutcome& outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  absl::Status InsertObject(const ObjectRecord& obj, const std::string& exam_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! What a new report version changes (inside AddReport's transaction): the exam's state, its
  //! claim (a FINAL ends it), its events and SLA stages.
  absl::Status AfterReport(const ReportRecord& report, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! A new claim (ClaimExam's last step): its row, and for a claim to read the CLAIMED state and
  //! the end of the claim stage; a claim for amendment leaves the exam FINAL.
  absl::Status StartClaim(const ClaimRecord& claim, bool amend)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! Records a state change of an exam (inside the caller's transaction).
  absl::Status AddEvent(const std::string& exam_id, ExamState state, absl::Time at,
                        const std::string& actor, const std::string& detail)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! Indexes a LAB object's observations (inside the caller's transaction).
  absl::Status InsertLabResults(const std::string& exam_id,
                                const std::vector<LabResultRecord>& results)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! Deletes a claim, returns a CLAIMED exam to ROUTED and records RELEASED.
  absl::Status EndClaim(const std::string& exam_id, absl::Time at, const std::string& actor,
                        const std::string& detail) ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);

  // SLA stage clocks (sqlite_sla_stages.cc), inside the caller's transaction.
  //! Starts a stage of an exam with the exam's grouping attributes (once per exam and stage).
  absl::Status StartStage(const std::string& exam_id, Stage stage, absl::Time started_at,
                          absl::Time due_at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! Starts a stage again for a new deadline: a new row, or a completed one reopened (a critical
  //! addendum after the critical FINAL was acknowledged); a running one keeps its earlier due.
  absl::Status RestartStage(const std::string& exam_id, Stage stage, absl::Time started_at,
                            absl::Time due_at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! Ends a running stage (no-op if it is not running); a late end is recorded as a breach.
  absl::Status EndStage(const std::string& exam_id, Stage stage, absl::Time at,
                        const std::string& reviewing_institution)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  //! The exam's running stages follow it to another queue.
  absl::Status MoveRunningStages(const std::string& exam_id, const std::string& queue)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);

  absl::Mutex writer_mu_;  //!< SQLite allows one writer; this serialises transactions
  std::unique_ptr<sqlite_db::Connection> writer_ ABSL_GUARDED_BY(writer_mu_);
  std::optional<std::string> audit_tail_ ABSL_GUARDED_BY(writer_mu_);  //!< see AuditTail
  int64_t audit_tail_seq_ ABSL_GUARDED_BY(writer_mu_) = 0;             //!< its record
  //! The last checkpoint (seq, statement), kept like audit_tail_ so that removing it shows.
  std::optional<std::pair<int64_t, std::string>> checkpoint_tail_ ABSL_GUARDED_BY(writer_mu_);

  std::vector<std::unique_ptr<sqlite_db::Connection>> readers_;  //!< owned, fixed set
  absl::Mutex readers_mu_;                                       //!< guards the free list below
  std::vector<sqlite_db::Connection*> free_readers_ ABSL_GUARDED_BY(readers_mu_);
};

}  // namespace rdg::storage
