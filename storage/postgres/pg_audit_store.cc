#include "storage/postgres/pg_audit_store.h"

#include <algorithm>
#include <limits>

#include "storage/base/audit_chain.h"
#include "storage/index/audit_links.h"

namespace rdg::storage::pg {
namespace {

#define AUDIT_COLUMNS                                                                           \
  "seq, at, institution, user_name, role, action, exam_id, detail, outcome, patient_id, peer, " \
  "subject, prev_hash, hash"

AuditRecord ReadAudit(const Result& r, int row) {
  AuditRecord a;
  a.seq = r.Int(row, 0);
  a.at = r.Time(row, 1);
  a.institution = r.Text(row, 2);
  a.user = r.Text(row, 3);
  a.role = static_cast<Role>(r.Int(row, 4));
  a.action = r.Text(row, 5);
  a.exam_id = r.Text(row, 6);
  a.detail = r.Text(row, 7);
  a.outcome = r.Text(row, 8);
  a.patient_id = r.Text(row, 9);
  a.peer = r.Text(row, 10);
  a.subject = r.Text(row, 11);
  a.prev_hash = r.Bytes(row, 12);
  a.hash = r.Bytes(row, 13);
  return a;
}

//! The chain's end, locked for this transaction (created at the genesis on the first append).
absl::StatusOr<std::pair<int64_t, std::string>> LockHead(Connection& conn) {
  static constexpr char kLock[] = "SELECT seq, hash FROM audit_head FOR UPDATE";
  static constexpr char kCreate[] =
      "INSERT INTO audit_head (seq, hash) VALUES (0, $1) ON CONFLICT DO NOTHING";
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto head = conn.Exec(kLock);
    if (!head.ok()) return head.status();
    if (head->rows() == 1) return std::make_pair(head->Int(0, 0), head->Bytes(0, 1));
    if (auto s = conn.Exec(kCreate, {PBytes(audit::GenesisLink())}); !s.ok()) return s.status();
  }
  return absl::InternalError("postgres: the audit chain's end cannot be read");
}

}  // namespace

absl::Status AppendAuditIn(Connection& conn, const AuditRecord& entry) {
  auto head = LockHead(conn);
  if (!head.ok()) return head.status();
  AuditRecord r = entry;
  r.seq = head->first + 1;
  if (r.patient_id.empty() && !r.exam_id.empty()) {
    static constexpr char kPatient[] =
        "SELECT patient_id, patient_id_issuer, patient_national_id, national_id_issuer "
        "FROM exams WHERE exam_id = $1";
    auto p = conn.Exec(kPatient, {P(r.exam_id)});
    if (!p.ok()) return p.status();
    if (p->rows() == 1) {
      r.patient_id = PatientParticipant(p->Text(0, 0), p->Text(0, 1), p->Text(0, 2), p->Text(0, 3));
    }
  }
  const std::string hash = audit::Link(head->second, ChainedFieldsOf(r));
  static constexpr char kInsert[] =
      "INSERT INTO audit_log (" AUDIT_COLUMNS
      ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
  auto ins = conn.Exec(
      kInsert, {P(r.seq), P(r.at), P(r.institution), P(r.user), P(int64_t{Number(r.role)}),
                P(r.action), P(r.exam_id), P(r.detail), P(r.outcome), P(r.patient_id), P(r.peer),
                P(r.subject), PBytes(head->second), PBytes(hash)});
  if (!ins.ok()) return ins.status();
  static constexpr char kAdvance[] = "UPDATE audit_head SET seq = $1, hash = $2";
  return conn.Exec(kAdvance, {P(r.seq), PBytes(hash)}).status();
}

absl::Status PgAuditStore::AppendAudit(const AuditRecord& entry) {
  return pool_.InTransaction("READ COMMITTED",
                             [&](Connection& conn) { return AppendAuditIn(conn, entry); });
}

absl::StatusOr<std::vector<AuditRecord>> PgAuditStore::ListAudit(const AuditQuery& query) {
  // One statement per filter that picks an index: a prepared "$1 = '' OR exam_id = $1" gets,
  // after a few runs, a generic plan that can use neither audit_log_by_exam nor _by_user and
  // reads the whole log backwards.
#define RDG_AUDIT_REST " AND at >= $3 AND ($4 = '' OR action = $4) ORDER BY seq DESC LIMIT $2"
  static constexpr char kByExam[] = "SELECT " AUDIT_COLUMNS
                                    " FROM audit_log WHERE exam_id = $1 AND ($5 = '' OR "
                                    "user_name = $5)" RDG_AUDIT_REST;
  static constexpr char kByUser[] = "SELECT " AUDIT_COLUMNS
                                    " FROM audit_log WHERE user_name = $1 AND ($5 = '' OR "
                                    "exam_id = $5)" RDG_AUDIT_REST;
  static constexpr char kAll[] =
      "SELECT " AUDIT_COLUMNS " FROM audit_log WHERE $1 = '' AND $5 = ''" RDG_AUDIT_REST;
#undef RDG_AUDIT_REST
  const bool by_exam = !query.exam_id.empty();
  const char* sql = by_exam ? kByExam : !query.user.empty() ? kByUser : kAll;
  const std::string& first = by_exam ? query.exam_id : query.user;
  const std::string& other = by_exam ? query.user : query.exam_id;
  auto r =
      pool_.Query(sql, {P(first), P(std::clamp<int64_t>(query.limit, 1, 10000)),
                        P(query.since == absl::InfinitePast() ? std::numeric_limits<int64_t>::min()
                                                              : absl::ToUnixMicros(query.since)),
                        P(query.action), P(other)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadAudit);
}

absl::StatusOr<AuditExportRecord> PgAuditStore::ExportAudit(int64_t from_seq, int32_t limit) {
  const int32_t n = std::clamp(limit, 1, 10000);
  // One snapshot: the records and the checkpoints are of the same moment.
  return pool_.InTransaction(
      "REPEATABLE READ", [&](Connection& conn) -> absl::StatusOr<AuditExportRecord> {
        AuditExportRecord page;
        static constexpr char kRecords[] =
            "SELECT " AUDIT_COLUMNS " FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2";
        auto records = conn.Exec(kRecords, {P(from_seq), P(n)});
        if (!records.ok()) return records.status();
        page.records = ReadRows(*records, ReadAudit);
        if (page.records.empty()) return page;
        // The last page also carries checkpoints past its last record: they name records that
        // were removed from the end.
        const bool last_page = static_cast<int32_t>(page.records.size()) < n;
        static constexpr char kCheckpoints[] =
            "SELECT seq, hash, signed_at, statement, signature FROM audit_checkpoints "
            "WHERE seq BETWEEN $1 AND $2 ORDER BY seq";
        auto c = conn.Exec(kCheckpoints, {P(page.records.front().seq),
                                          P(last_page ? std::numeric_limits<int64_t>::max()
                                                      : page.records.back().seq)});
        if (!c.ok()) return c.status();
        for (int i = 0; i < c->rows(); ++i) {
          page.checkpoints.push_back(
              {c->Int(i, 0), c->Bytes(i, 1), c->Time(i, 2), c->Text(i, 3), c->Bytes(i, 4)});
        }
        return page;
      });
}

absl::StatusOr<AuditTipRecord> PgAuditStore::AuditTip() {
  return pool_.InTransaction(
      "REPEATABLE READ", [&](Connection& conn) -> absl::StatusOr<AuditTipRecord> {
        AuditTipRecord tip;
        tip.hash = audit::GenesisLink();
        static constexpr char kHead[] = "SELECT seq, hash FROM audit_head";
        auto head = conn.Exec(kHead);
        if (!head.ok()) return head.status();
        if (head->rows() == 1) {
          tip.seq = head->Int(0, 0);
          tip.hash = head->Bytes(0, 1);
        }
        static constexpr char kLast[] = "SELECT COALESCE(MAX(seq), 0) FROM audit_log";
        auto last = conn.Exec(kLast);
        if (!last.ok()) return last.status();
        tip.table_last_seq = last->Int(0, 0);
        static constexpr char kCheckpoint[] =
            "SELECT seq, statement FROM audit_checkpoints "
            "ORDER BY seq DESC LIMIT 1";
        auto c = conn.Exec(kCheckpoint);
        if (!c.ok()) return c.status();
        if (c->rows() == 1) {
          tip.checkpointed_seq = c->Int(0, 0);
          tip.checkpoint_statement = c->Text(0, 1);
        }
        return tip;
      });
}

absl::Status PgAuditStore::AppendAuditCheckpoint(const AuditCheckpointRecord& c) {
  static constexpr char kInsert[] =
      "INSERT INTO audit_checkpoints (seq, hash, signed_at, statement, signature) "
      "VALUES ($1, $2, $3, $4, $5)";
  // Not retried: a second insert of the same checkpoint would be refused as a duplicate.
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  return (*conn)
      ->Exec(kInsert,
             {P(c.seq), PBytes(c.hash), P(c.signed_at), P(c.statement), PBytes(c.signature)})
      .status();
}

absl::StatusOr<int64_t> PgAuditStore::AuditExportedUpTo(const std::string& destination) {
  static constexpr char kGet[] = "SELECT exported_seq FROM audit_export WHERE destination = $1";
  auto r = pool_.Query(kGet, {P(destination)});
  if (!r.ok()) return r.status();
  return r->rows() == 1 ? r->Int(0, 0) : int64_t{0};
}

absl::Status PgAuditStore::SetAuditExportedUpTo(const std::string& destination, int64_t seq,
                                                absl::Time at) {
  static constexpr char kSet[] =
      "INSERT INTO audit_export (destination, exported_seq, updated_at) VALUES ($1, $2, $3) "
      "ON CONFLICT (destination) DO UPDATE SET exported_seq = GREATEST(audit_export.exported_seq, "
      "EXCLUDED.exported_seq), updated_at = EXCLUDED.updated_at";
  return pool_.Query(kSet, {P(destination), P(seq), P(at)}).status();
}

}  // namespace rdg::storage::pg
