// gMock of storage::IndexStore, for fault injection in ingest tests.
#pragma once

#include <gmock/gmock.h>

#include "storage/index_store.h"

namespace rdg::storage {

class MockIndexStore : public IndexStore {
 public:
  MOCK_METHOD(absl::Status, CreateSession, (const UploadSessionRecord&, int), (override));
  MOCK_METHOD(absl::StatusOr<std::optional<UploadSessionRecord>>, GetSession, (const std::string&),
              (override));
  MOCK_METHOD(absl::StatusOr<std::optional<UploadSessionRecord>>, FindSession,
              (const std::string&, const std::string&, int64_t), (override));
  MOCK_METHOD(absl::StatusOr<int>, CountSessions, (const std::string&), (override));
  MOCK_METHOD(absl::Status, TouchSession, (const std::string&, absl::Time), (override));
  MOCK_METHOD(absl::Status, DeleteSession, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<UploadSessionRecord>>, ListSessions, (), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<UploadSessionRecord>>, ListSessionsOf,
              (const std::string&, const std::optional<SessionCursor>&, int), (override));
  MOCK_METHOD(absl::StatusOr<std::optional<ObjectRecord>>, FindObject,
              (const std::string&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::optional<ObjectRecord>>, FindObjectByContent,
              (const std::string&, const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<bool>, IsBlobReferenced, (const std::string&), (override));
  MOCK_METHOD(std::vector<absl::StatusOr<CommitOutcome>>, CommitObjects,
              (absl::Span<const NewObject>), (override));
  MOCK_METHOD(absl::StatusOr<ExamPage>, ListExams, (const ExamQuery&), (override));
  MOCK_METHOD(absl::StatusOr<std::optional<ExamRecord>>, GetExam, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ExamRecord>>, FindExamsByStudy, (const std::string&),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ObjectRecord>>, ListObjects, (const std::string&),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ObjectRecord>>, ListObjectsPage,
              (const std::string&, const std::optional<ObjectCursor>&, int), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ExamEventRecord>>, ListEvents, (const std::string&),
              (override));
  MOCK_METHOD(absl::StatusOr<WorklistPage>, ListWorklist, (const WorklistQuery&, absl::Time),
              (override));
  MOCK_METHOD(absl::StatusOr<std::optional<ClaimRecord>>, GetLiveClaim,
              (const std::string&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<ClaimRecord>, ClaimExam,
              (const std::string&, const std::string&, const std::string&, absl::Time,
               absl::Duration, ClaimAction),
              (override));
  MOCK_METHOD(absl::Status, ReleaseClaim, (const std::string&, const std::string&, absl::Time),
              (override));
  MOCK_METHOD(absl::StatusOr<int>, ExpireClaims, (absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<ExamRecord>, EscalateExam, (const Escalation&, absl::Time),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ExamRecord>>, ListClaimOverdue, (absl::Time, int32_t),
              (override));
  MOCK_METHOD(absl::Status, ClearClaimDue, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<QueueFigureRecord>>, ListQueueFigures, (absl::Time),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ExamRecord>>, FindLabOrders,
              (const std::string&, const std::string&, int32_t), (override));
  MOCK_METHOD(absl::Status, RecordIdentityConflict, (const IdentityConflictRecord&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<IdentityConflictRecord>>, ListIdentityConflicts,
              (absl::Time, int32_t), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ExamRecord>>, FindPriors, (const ExamRecord&, int32_t),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<LabResultRecord>>, ListLabResults,
              (const std::vector<std::string>&, const std::vector<std::string>&), (override));
  MOCK_METHOD(absl::StatusOr<ReportRecord>, AddReport, (ReportRecord, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ReportRecord>>, ListReports, (const std::string&),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ReportRecord>>, ReportFeed,
              (const std::string&, int64_t, int32_t), (override));
  MOCK_METHOD(absl::Status, MarkDelivered, (const std::vector<std::string>&, absl::Time),
              (override));
  MOCK_METHOD(absl::StatusOr<ReportRecord>, AcknowledgeReport,
              (const std::string&, const std::string&, const std::string&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<StageRecord>>, DetectBreaches, (absl::Time, int32_t),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<StageRecord>>, ListStagesEnded, (absl::Time, absl::Time),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<StageRecord>>, ListStagesEndedAfter, (int64_t, int32_t),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<StageRecord>>, ListBreaches, (const BreachQuery&),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<OpenBreachCount>>, CountOpenBreaches, (), (override));
  MOCK_METHOD(absl::Status, AppendAudit, (const AuditRecord&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<AuditRecord>>, ListAudit, (const AuditQuery&), (override));
  MOCK_METHOD(absl::StatusOr<AuditExportRecord>, ExportAudit, (int64_t, int32_t), (override));
  MOCK_METHOD(absl::StatusOr<AuditTipRecord>, AuditTip, (), (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, SnapshotTo, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<ReportRecord>>, UnplannedReports, (int32_t), (override));
  MOCK_METHOD(absl::Status, PlanJobs, (const std::vector<OutboundJob>&, int64_t, absl::Time),
              (override));
  MOCK_METHOD(absl::StatusOr<std::vector<OutboundJob>>, DueJobs,
              (const std::string&, absl::Time, int32_t), (override));
  MOCK_METHOD(absl::Status, RecordAttempt, (int64_t, const OutboundAttempt&, absl::Time),
              (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, RetryFailed, (const std::string&, absl::Time), (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, PurgeSent, (absl::Time, int32_t), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<OutboundJob>>, ListJobs, (const std::string&), (override));
  MOCK_METHOD(absl::StatusOr<std::vector<OutboundSummary>>, SummarizeOutbound, (), (override));
  MOCK_METHOD(absl::StatusOr<int64_t>, AuditExportedUpTo, (const std::string&), (override));
  MOCK_METHOD(absl::Status, SetAuditExportedUpTo, (const std::string&, int64_t, absl::Time),
              (override));
  MOCK_METHOD(absl::Status, AppendAuditCheckpoint, (const AuditCheckpointRecord&), (override));
};

}  // namespace rdg::storage
