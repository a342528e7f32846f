// IndexStore: one backend of the index (SQLite embedded, PostgreSQL shared by several gateways),
// which is all the stores below at once. Services take only the stores they use (the accessors
// name them); only the code that opens the index sees a whole IndexStore. Methods whose one
// transaction writes several stores' tables (CommitObjects, ClaimExam, AddReport, …) belong to the
// store of what the caller means to change; see storage/README.md, "Stores".
#pragma once

#include "storage/index/audit_store.h"
#include "storage/index/exam_store.h"
#include "storage/index/identity_conflict_store.h"
#include "storage/index/index_backup.h"
#include "storage/index/lab_result_store.h"
#include "storage/index/outbound_store.h"
#include "storage/index/report_store.h"
#include "storage/index/session_store.h"
#include "storage/index/sla_store.h"
#include "storage/index/worklist_store.h"

namespace rdg::storage {

class IndexStore : public SessionStore,
                   public ExamStore,
                   public WorklistStore,
                   public ReportStore,
                   public SlaStore,
                   public AuditStore,
                   public LabResultStore,
                   public IdentityConflictStore,
                   public OutboundStore,
                   public IndexBackup {
 public:
  ~IndexStore() override = default;

  SessionStore& sessions() { return *this; }
  ExamStore& exams() { return *this; }
  WorklistStore& worklist() { return *this; }
  ReportStore& reports() { return *this; }
  SlaStore& sla() { return *this; }
  AuditStore& audit() { return *this; }
  LabResultStore& lab_results() { return *this; }
  IdentityConflictStore& identity_conflicts() { return *this; }
  OutboundStore& outbound() { return *this; }
  IndexBackup& backup() { return *this; }
};

}  // namespace rdg::storage
