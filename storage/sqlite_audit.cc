// SqliteIndexStore: the audit log, a hash chain (storage/base/audit_chain.h) with signed
// checkpoints. Rows are only ever inserted (triggers refuse UPDATE and DELETE); each carries the
// link it continues from and its own, computed here under the writer lock.

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "storage/base/audit_chain.h"
#include "storage/base/status_macros.h"
#include "storage/index/audit_links.h"
#include "storage/sqlite_index_store.h"
#include "storage/sqlite_internal.h"

namespace rdg::storage {
namespace {

using sqlite_internal::InWriteTransaction;
using sqlite_internal::Stmt;

#define RDG_AUDIT_COLUMNS                                                                  \
  "seq, at, institution, user, role, action, exam_id, detail, outcome, patient_id, peer, " \
  "subject, prev_hash, hash"

AuditRecord ReadAudit(const Stmt& s) {
  AuditRecord r;
  r.seq = s.Int(0);
  r.at = s.Time(1);
  r.institution = s.Text(2);
  r.user = s.Text(3);
  r.role = static_cast<Role>(s.Int(4));
  r.action = s.Text(5);
  r.exam_id = s.Text(6);
  r.detail = s.Text(7);
  r.outcome = s.Text(8);
  r.patient_id = s.Text(9);
  r.peer = s.Text(10);
  r.subject = s.Text(11);
  r.prev_hash = s.Blob(12);
  r.hash = s.Blob(13);
  return r;
}

//! The patient participant of a record about `exam_id`, in HL7 CX form: "ID^^^issuer", and when
//! the exam has a national ID, "~" and that ID the same way. "" for an exam the index lacks.
absl::StatusOr<std::string> PatientOfExam(sqlite_internal::Connection& db,
                                          const std::string& exam_id) {
  RDG_ASSIGN_OR_RETURN(auto q, db.Prepare("SELECT patient_id, patient_id_issuer, "
                                          "patient_national_id, national_id_issuer FROM exams "
                                          "WHERE exam_id = ?"));
  q->Bind(1, exam_id);
  RDG_ASSIGN_OR_RETURN(bool found, q->Step());
  if (!found) return std::string();
  return PatientParticipant(q->Text(0), q->Text(1), q->Text(2), q->Text(3));
}

}  // namespace

absl::StatusOr<std::string> SqliteIndexStore::AuditTail() {
  if (audit_tail_.has_value()) return *audit_tail_;
  RDG_ASSIGN_OR_RETURN(
      auto q, writer_->Prepare("SELECT " RDG_AUDIT_COLUMNS " FROM audit_log ORDER BY seq DESC"));
  audit_tail_ = audit::GenesisLink();
  audit_tail_seq_ = 0;
  for (;;) {
    RDG_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) break;
    const AuditRecord r = ReadAudit(*q);
    if (r.hash.size() == 32 && audit::Link(r.prev_hash, ChainedFieldsOf(r)) == r.hash) {
      audit_tail_ = r.hash;
      audit_tail_seq_ = r.seq;
      break;
    }
  }
  return *audit_tail_;
}

absl::Status SqliteIndexStore::LoadCheckpointTail() {
  if (checkpoint_tail_.has_value()) return absl::OkStatus();
  RDG_ASSIGN_OR_RETURN(auto q, writer_->Prepare("SELECT seq, statement FROM audit_checkpoints "
                                                "ORDER BY seq DESC LIMIT 1"));
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  checkpoint_tail_ = row ? std::pair<int64_t, std::string>(q->Int(0), q->Text(1))
                         : std::pair<int64_t, std::string>(0, "");
  return absl::OkStatus();
}

absl::Status SqliteIndexStore::LinkEarlierAudit() {
  // The rows are rewritten once, by this migration, with the append-only trigger lifted inside
  // the migration's own transaction.
  RDG_RETURN_IF_ERROR(writer_->Exec("DROP TRIGGER IF EXISTS audit_log_no_update"));
  std::vector<AuditRecord> rows;
  {
    RDG_ASSIGN_OR_RETURN(
        auto q, writer_->Prepare("SELECT " RDG_AUDIT_COLUMNS " FROM audit_log ORDER BY seq"));
    RDG_ASSIGN_OR_RETURN(rows, sqlite_internal::CollectRows(*q, ReadAudit));
  }
  std::string link = audit::GenesisLink();
  for (const AuditRecord& r : rows) {
    std::string next = audit::Link(link, ChainedFieldsOf(r));
    RDG_ASSIGN_OR_RETURN(
        auto u, writer_->Prepare("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?"));
    u->BindBlob(1, link).BindBlob(2, next).Bind(3, r.seq);
    RDG_RETURN_IF_ERROR(u->Run());
    link = std::move(next);
  }
  return writer_->Exec(
      "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
      "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END");
}

absl::StatusOr<std::string> SqliteIndexStore::InsertAuditRow(AuditRecord r,
                                                             const std::string& previous,
                                                             int64_t& seq) {
  // seq is AUTOINCREMENT: the next one is one past the largest ever used.
  RDG_ASSIGN_OR_RETURN(auto next,
                       writer_->Prepare("SELECT COALESCE((SELECT seq FROM sqlite_sequence "
                                        "WHERE name = 'audit_log'), 0) + 1"));
  RDG_ASSIGN_OR_RETURN(bool row, next->Step());
  r.seq = seq = row ? next->Int(0) : 1;
  next.reset();
  if (r.patient_id.empty() && !r.exam_id.empty()) {
    RDG_ASSIGN_OR_RETURN(r.patient_id, PatientOfExam(*writer_, r.exam_id));
  }
  std::string hash = audit::Link(previous, ChainedFieldsOf(r));
  RDG_ASSIGN_OR_RETURN(auto q, writer_->Prepare("INSERT INTO audit_log (" RDG_AUDIT_COLUMNS
                                                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                                "?, ?)"));
  q->Bind(1, r.seq)
      .Bind(2, r.at)
      .Bind(3, r.institution)
      .Bind(4, r.user)
      .Bind(5, int64_t{Number(r.role)})
      .Bind(6, r.action)
      .Bind(7, r.exam_id)
      .Bind(8, r.detail)
      .Bind(9, r.outcome)
      .Bind(10, r.patient_id)
      .Bind(11, r.peer)
      .Bind(12, r.subject)
      .BindBlob(13, previous)
      .BindBlob(14, hash);
  RDG_RETURN_IF_ERROR(q->Run());
  return hash;
}

absl::Status SqliteIndexStore::AppendAudit(const AuditRecord& e) {
  absl::MutexLock lock(&writer_mu_);
  RDG_ASSIGN_OR_RETURN(std::string previous, AuditTail());
  int64_t seq = 0;
  absl::StatusOr<std::string> link =
      InWriteTransaction(*writer_, [&]() -> absl::StatusOr<std::string> {
        writer_mu_.AssertHeld();  // the caller holds it across the transaction
        return InsertAuditRow(e, previous, seq);
      });
  if (!link.ok()) {
    // A COMMIT that failed late may still have made the row durable: read the end again.
    audit_tail_.reset();
    return link.status();
  }
  audit_tail_ = *std::move(link);
  audit_tail_seq_ = seq;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AuditRecord>> SqliteIndexStore::ListAudit(const AuditQuery& query) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q, conn->Prepare("SELECT " RDG_AUDIT_COLUMNS
                            " FROM audit_log WHERE (?1 = '' OR exam_id = ?1) AND (?2 = '' OR "
                            "user = ?2) AND at >= ?4 AND (?5 = '' OR action = ?5) "
                            "ORDER BY seq DESC LIMIT ?3"));
  q->Bind(1, query.exam_id)
      .Bind(2, query.user)
      .Bind(5, query.action)
      .Bind(3, std::clamp<int64_t>(query.limit, 1, 10000))
      .Bind(4, query.since == absl::InfinitePast() ? std::numeric_limits<int64_t>::min()
                                                   : absl::ToUnixMicros(query.since));
  return sqlite_internal::CollectRows(*q, ReadAudit);
}

absl::StatusOr<AuditExportRecord> SqliteIndexStore::ExportAudit(int64_t from_seq, int32_t limit) {
  ReaderLease conn = AcquireReader();
  // One read transaction: the records and the checkpoints are of the same moment.
  RDG_RETURN_IF_ERROR(conn->Exec("BEGIN"));
  auto read = [&]() -> absl::StatusOr<AuditExportRecord> {
    AuditExportRecord page;
    RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare("SELECT " RDG_AUDIT_COLUMNS
                                               " FROM audit_log WHERE seq >= ? ORDER BY seq "
                                               "LIMIT ?"));
    q->Bind(1, from_seq).Bind(2, static_cast<int64_t>(std::clamp(limit, 1, 10000)));
    RDG_ASSIGN_OR_RETURN(page.records, sqlite_internal::CollectRows(*q, ReadAudit));
    if (page.records.empty()) return page;
    RDG_ASSIGN_OR_RETURN(auto c, conn->Prepare("SELECT seq, hash, signed_at, statement, signature "
                                               "FROM audit_checkpoints WHERE seq BETWEEN ? AND ? "
                                               "ORDER BY seq"));
    // The last page also carries checkpoints past its last record: they name records that
    // were removed from the end.
    const bool last_page = static_cast<int32_t>(page.records.size()) < std::clamp(limit, 1, 10000);
    c->Bind(1, page.records.front().seq)
        .Bind(2, last_page ? std::numeric_limits<int64_t>::max() : page.records.back().seq);
    RDG_ASSIGN_OR_RETURN(
        page.checkpoints, sqlite_internal::CollectRows(*c, [](const Stmt& s) {
          return AuditCheckpointRecord{s.Int(0), s.Blob(1), s.Time(2), s.Text(3), s.Blob(4)};
        }));
    return page;
  };
  absl::StatusOr<AuditExportRecord> page = read();
  conn->Exec("COMMIT").IgnoreError();
  return page;
}

absl::StatusOr<AuditTipRecord> SqliteIndexStore::AuditTip() {
  absl::MutexLock lock(&writer_mu_);
  AuditTipRecord tip;
  RDG_ASSIGN_OR_RETURN(tip.hash, AuditTail());
  tip.seq = audit_tail_seq_;
  RDG_RETURN_IF_ERROR(LoadCheckpointTail());
  tip.checkpointed_seq = checkpoint_tail_->first;
  tip.checkpoint_statement = checkpoint_tail_->second;
  RDG_ASSIGN_OR_RETURN(auto q, writer_->Prepare("SELECT COALESCE(MAX(seq), 0) FROM audit_log"));
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  tip.table_last_seq = row ? q->Int(0) : 0;
  return tip;
}

absl::Status SqliteIndexStore::AppendAuditCheckpoint(const AuditCheckpointRecord& c) {
  absl::MutexLock lock(&writer_mu_);
  RDG_ASSIGN_OR_RETURN(auto q, writer_->Prepare("INSERT INTO audit_checkpoints (seq, hash, "
                                                "signed_at, statement, signature) VALUES (?, ?, "
                                                "?, ?, ?)"));
  q->Bind(1, c.seq).BindBlob(2, c.hash).Bind(3, c.signed_at).Bind(4, c.statement);
  q->BindBlob(5, c.signature);
  RDG_RETURN_IF_ERROR(q->Run());
  checkpoint_tail_ = std::make_pair(c.seq, c.statement);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SqliteIndexStore::AuditExportedUpTo(const std::string& destination) {
  ReaderLease reader = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q, reader->Prepare("SELECT exported_seq FROM audit_export WHERE destination = ?"));
  q->Bind(1, destination);
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  return row ? q->Int(0) : int64_t{0};
}

absl::Status SqliteIndexStore::SetAuditExportedUpTo(const std::string& destination, int64_t seq,
                                                    absl::Time at) {
  absl::MutexLock lock(&writer_mu_);
  RDG_ASSIGN_OR_RETURN(
      auto q, writer_->Prepare("INSERT INTO audit_export (destination, exported_seq, updated_at) "
                               "VALUES (?1, ?2, ?3) ON CONFLICT (destination) DO UPDATE SET "
                               "exported_seq = MAX(exported_seq, ?2), updated_at = ?3"));
  q->Bind(1, destination).Bind(2, seq).Bind(3, at);
  return q->Run();
}

}  // namespace rdg::storage
