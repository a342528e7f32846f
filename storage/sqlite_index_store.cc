#include "storage/sqlite_index_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <limits>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "storage/base/posix_file.h"
#include "storage/base/random.h"
#include "storage/base/status_macros.h"
#include "storage/base/version.h"
#include "storage/migrations.h"
#include "storage/sqlite_internal.h"

namespace rdg::storage {

using sqlite_internal::Connection;
using sqlite_internal::DueMicros;
using sqlite_internal::kSessionColumns;
using sqlite_internal::ReadExam;
using sqlite_internal::ReadObject;
using sqlite_internal::ReadSession;
using sqlite_internal::Stmt;

namespace {

//! The migration that makes the audit log a hash chain (0015_audit_chain.sql).
constexpr int kAuditChainVersion = 15;

//! Creates the index file 0600 before SQLite does (SQLite would take 0644 less the umask, and
//! gives its -wal and -shm files the index's mode), and takes group and other access from an
//! index, WAL and shared-memory file that have it: they hold patient data.
absl::Status KeepToOwner(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    absl::StatusOr<bool> changed = RestrictToOwner(file);
    if (!changed.ok() && !absl::IsNotFound(changed.status())) return changed.status();
  }
  return absl::OkStatus();
}

//! Exam ids are random (CSPRNG: not guessable, not derived from patient data): "ex-" + 16 hex
//! digits.
std::string NewExamId() { return "ex-" + RandomHex(8); }

}  // namespace

SqliteIndexStore::SqliteIndexStore() = default;
SqliteIndexStore::~SqliteIndexStore() = default;

absl::StatusOr<std::unique_ptr<SqliteIndexStore>> SqliteIndexStore::Open(const std::string& path,
                                                                         const Options& options) {
  RDG_RETURN_IF_ERROR(KeepToOwner(path));
  auto store = std::unique_ptr<SqliteIndexStore>(new SqliteIndexStore());
  {
    absl::MutexLock lock(&store->writer_mu_);
    RDG_ASSIGN_OR_RETURN(store->writer_, Connection::Open(path));
  }
  RDG_RETURN_IF_ERROR(store->Migrate());
  absl::MutexLock lock(&store->readers_mu_);
  for (int i = 0; i < std::max(1, options.reader_connections); ++i) {
    RDG_ASSIGN_OR_RETURN(auto conn, Connection::Open(path));
    store->free_readers_.push_back(conn.get());
    store->readers_.push_back(std::move(conn));
  }
  return store;
}

absl::Status SqliteIndexStore::Migrate() {
  absl::MutexLock lock(&writer_mu_);
  RDG_RETURN_IF_ERROR(
      writer_->Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, applied_at INTEGER NOT NULL)"));
  int64_t current = 0;
  {
    RDG_ASSIGN_OR_RETURN(
        auto q, writer_->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    RDG_ASSIGN_OR_RETURN(bool row, q->Step());
    if (row) current = q->Int(0);
  }
  RDG_RETURN_IF_ERROR(NewerSchemaError(current, SqliteMigrations(), ReleaseVersion()));
  for (const Migration& m : SqliteMigrations()) {
    if (m.version <= current) continue;
    RDG_RETURN_IF_ERROR(writer_->Exec("BEGIN IMMEDIATE"));
    absl::Status s = writer_->Exec(m.sql);
    if (s.ok() && m.version == kAuditChainVersion) s = LinkEarlierAudit();
    if (s.ok()) {
      RDG_ASSIGN_OR_RETURN(
          auto ins,
          writer_->Prepare(
              "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"));
      ins->Bind(1, static_cast<int64_t>(m.version)).Bind(2, m.name).Bind(3, absl::Now());
      s = ins->Run();
    }
    if (!s.ok()) {
      writer_->Exec("ROLLBACK").IgnoreError();
      return absl::InternalError(absl::StrCat("migration ", m.name, " failed: ", s.message()));
    }
    RDG_RETURN_IF_ERROR(writer_->Exec("COMMIT"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> SqliteIndexStore::SchemaVersion() {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q,
                       conn->Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  return row ? static_cast<int>(q->Int(0)) : 0;
}

SqliteIndexStore::ReaderLease SqliteIndexStore::AcquireReader() {
  absl::MutexLock lock(&readers_mu_);
  readers_mu_.Await(absl::Condition(
      +[](std::vector<Connection*>* free) { return !free->empty(); }, &free_readers_));
  Connection* conn = free_readers_.back();
  free_readers_.pop_back();
  return ReaderLease(this, conn);
}

void SqliteIndexStore::ReleaseReader(Connection* conn) {
  absl::MutexLock lock(&readers_mu_);
  free_readers_.push_back(conn);
}

// --- Upload sessions ---

absl::Status SqliteIndexStore::CreateSession(const UploadSessionRecord& r,
                                             int max_per_institution) {
  absl::MutexLock lock(&writer_mu_);
  // One statement: the count and the insert cannot be split by another writer.
  RDG_ASSIGN_OR_RETURN(
      auto q, writer_->Prepare(
                  "INSERT INTO upload_sessions (session_id, institution, user, kind, size, sha256, "
                  "priority, "
                  "client_ref, created_at, updated_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
                  "WHERE (SELECT COUNT(*) FROM upload_sessions WHERE institution = ?2) < ?11"));
  q->Bind(1, r.session_id)
      .Bind(2, r.institution)
      .Bind(3, r.user)
      .Bind(4, int64_t{Number(r.kind)})
      .Bind(5, r.size)
      .Bind(6, r.sha256_hex)
      .Bind(7, int64_t{Number(r.priority)})
      .Bind(8, r.client_ref)
      .Bind(9, r.created_at)
      .Bind(10, r.updated_at)
      .Bind(11, int64_t{max_per_institution});
  RDG_RETURN_IF_ERROR(q->Run());
  if (writer_->Changes() == 0) return SessionQuotaError(r.institution, max_per_institution);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<UploadSessionRecord>> SqliteIndexStore::GetSession(
    const std::string& session_id) {
  static const std::string sql =
      absl::StrCat("SELECT ", kSessionColumns, " FROM upload_sessions WHERE session_id = ?");
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare(sql.c_str()));
  q->Bind(1, session_id);
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return std::nullopt;
  return ReadSession(*q);
}

absl::StatusOr<std::optional<UploadSessionRecord>> SqliteIndexStore::FindSession(
    const std::string& institution, const std::string& sha256_hex, int64_t size) {
  static const std::string sql = absl::StrCat(
      "SELECT ", kSessionColumns,
      " FROM upload_sessions WHERE institution = ? AND sha256 = ? AND size = ? LIMIT 1");
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare(sql.c_str()));
  q->Bind(1, institution).Bind(2, sha256_hex).Bind(3, size);
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return std::nullopt;
  return ReadSession(*q);
}

absl::StatusOr<int> SqliteIndexStore::CountSessions(const std::string& institution) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q,
                       conn->Prepare("SELECT COUNT(*) FROM upload_sessions WHERE institution = ?"));
  q->Bind(1, institution);
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  return row ? static_cast<int>(q->Int(0)) : 0;
}

absl::Status SqliteIndexStore::TouchSession(const std::string& session_id, absl::Time at) {
  absl::MutexLock lock(&writer_mu_);
  RDG_ASSIGN_OR_RETURN(
      auto q, writer_->Prepare("UPDATE upload_sessions SET updated_at = ? WHERE session_id = ?"));
  q->Bind(1, at).Bind(2, session_id);
  return q->Run();
}

absl::Status SqliteIndexStore::DeleteSession(const std::string& session_id) {
  absl::MutexLock lock(&writer_mu_);
  RDG_ASSIGN_OR_RETURN(auto q,
                       writer_->Prepare("DELETE FROM upload_sessions WHERE session_id = ?"));
  q->Bind(1, session_id);
  return q->Run();
}

absl::StatusOr<std::vector<UploadSessionRecord>> SqliteIndexStore::ListSessions() {
  static const std::string sql =
      absl::StrCat("SELECT ", kSessionColumns, " FROM upload_sessions ORDER BY created_at");
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare(sql.c_str()));
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) { return ReadSession(s); });
}

absl::StatusOr<std::vector<UploadSessionRecord>> SqliteIndexStore::ListSessionsOf(
    const std::string& institution, const std::optional<SessionCursor>& after, int limit) {
  static const std::string sql =
      absl::StrCat("SELECT ", kSessionColumns,
                   " FROM upload_sessions WHERE institution = ?1 "
                   "AND (?2 IS NULL OR (created_at, session_id) > (?2, ?3)) "
                   "ORDER BY created_at, session_id LIMIT ?4");
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare(sql.c_str()));
  q->Bind(1, institution).Bind(4, int64_t{limit});
  if (after.has_value()) q->Bind(2, after->created_at).Bind(3, after->session_id);
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) { return ReadSession(s); });
}

// --- Objects and exams ---

absl::StatusOr<std::optional<ObjectRecord>> SqliteIndexStore::FindObject(
    const std::string& institution, const std::string& sop_instance_uid) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q,
                       conn->Prepare("SELECT " RDG_OBJECT_COLUMNS " FROM objects "
                                     "WHERE origin_institution = ? AND sop_instance_uid = ?"));
  q->Bind(1, institution).Bind(2, sop_instance_uid);
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return std::nullopt;
  return ReadObject(*q);
}

absl::StatusOr<std::optional<ObjectRecord>> SqliteIndexStore::FindObjectByContent(
    const std::string& institution, const std::string& sha256_hex) {
  // The unary "+" keeps SQLite from preferring the primary key (origin_institution, …), which
  // would scan all of the institution's objects; objects_by_content seeks on the digest.
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q,
                       conn->Prepare("SELECT " RDG_OBJECT_COLUMNS " FROM objects "
                                     "WHERE sha256 = ? AND +origin_institution = ? LIMIT 1"));
  q->Bind(1, sha256_hex).Bind(2, institution);
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return std::nullopt;
  return ReadObject(*q);
}

absl::StatusOr<bool> SqliteIndexStore::IsBlobReferenced(const std::string& sha256_hex) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare("SELECT 1 FROM objects WHERE sha256 = ? LIMIT 1"));
  q->Bind(1, sha256_hex);
  return q->Step();
}

std::vector<absl::StatusOr<CommitOutcome>> SqliteIndexStore::CommitObjects(
    absl::Span<const NewObject> batch) {
  std::vector<absl::StatusOr<CommitOutcome>> results;
  results.reserve(batch.size());
  absl::MutexLock lock(&writer_mu_);
  // The uploads' audit records join the chain inside the same transaction.
  absl::StatusOr<std::string> audit_tail = AuditTail();
  int64_t audit_seq = 0;
  absl::Status txn = audit_tail.ok() ? writer_->Exec("BEGIN IMMEDIATE") : audit_tail.status();
  for (const NewObject& item : batch) {
    if (!txn.ok()) break;
    writer_->Exec("SAVEPOINT item").IgnoreError();
    absl::StatusOr<CommitOutcome> outcome = CommitOne(item);
    if (outcome.ok() && item.audit.has_value()) {
      storage::AuditRecord record = *item.audit;
      record.exam_id = outcome->exam_id;
      if (outcome->duplicate) absl::StrAppend(&record.detail, " (already stored)");
      absl::StatusOr<std::string> link = InsertAuditRow(record, *audit_tail, audit_seq);
      if (link.ok()) {
        audit_tail = *std::move(link);
      } else {
        outcome = link.status();
      }
    }
    if (outcome.ok()) {
      txn = writer_->Exec("RELEASE item");
    } else if (absl::IsAlreadyExists(outcome.status())) {
      // This object is refused (identity conflict): undo whatever it wrote, keep the batch.
      txn = writer_->Exec("ROLLBACK TO item");
      if (txn.ok()) txn = writer_->Exec("RELEASE item");
    } else {
      // An unexpected failure of one item fails the whole batch: nothing half-visible.
      txn = outcome.status();
    }
    results.push_back(std::move(outcome));
  }
  if (txn.ok()) txn = writer_->Exec("COMMIT");
  if (!txn.ok()) {
    writer_->Exec("ROLLBACK").IgnoreError();
    results.assign(batch.size(), txn);
    audit_tail_.reset();  // a COMMIT that failed late may still have made rows durable
  } else if (audit_seq > 0) {
    audit_tail_ = *std::move(audit_tail);
    audit_tail_seq_ = audit_seq;
  }
  return results;
}

absl::StatusOr<CommitOutcome> SqliteIndexStore::CommitOne(const NewObject& item) {
  CommitOutcome outcome;
  RDG_RETURN_IF_ERROR(FindStored(item.object, outcome));
  if (!outcome.duplicate) {
    RDG_RETURN_IF_ERROR(JoinExam(item, outcome));
    if (outcome.exam_id.empty()) RDG_RETURN_IF_ERROR(InsertExam(item, outcome));
    RDG_RETURN_IF_ERROR(InsertObject(item.object, outcome.exam_id));
    RDG_RETURN_IF_ERROR(InsertLabResults(outcome.exam_id, item.lab_results));
    RDG_ASSIGN_OR_RETURN(auto q,
                         writer_->Prepare("SELECT instance_count FROM exams WHERE exam_id = ?"));
    q->Bind(1, outcome.exam_id);
    RDG_ASSIGN_OR_RETURN(bool row, q->Step());
    if (row) outcome.exam_instance_count = static_cast<int32_t>(q->Int(0));
  }
  if (!item.session_id.empty()) {
    RDG_ASSIGN_OR_RETURN(auto del,
                         writer_->Prepare("DELETE FROM upload_sessions WHERE session_id = ?"));
    del->Bind(1, item.session_id);
    RDG_RETURN_IF_ERROR(del->Run());
  }
  return outcome;
}

absl::Status SqliteIndexStore::FindStored(const ObjectRecord& obj, CommitOutcome& outcome) {
  RDG_ASSIGN_OR_RETURN(
      auto q,
      writer_->Prepare("SELECT o.sha256, o.exam_id, e.instance_count, o.content_key FROM objects o "
                       "JOIN exams e USING (exam_id) WHERE o.origin_institution = ? AND "
                       "o.sop_instance_uid = ?"));
  q->Bind(1, obj.origin_institution).Bind(2, obj.sop_instance_uid);
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return absl::OkStatus();
  const bool same_content = !obj.content_key.empty() && q->Text(3) == obj.content_key;
  if (q->Text(0) != obj.sha256_hex && !same_content) {
    return ChangedObjectError(obj.sop_instance_uid);
  }
  outcome.exam_id = q->Text(1);
  outcome.exam_instance_count = static_cast<int32_t>(q->Int(2));
  outcome.duplicate = true;
  return absl::OkStatus();
}

absl::Status SqliteIndexStore::JoinExam(const NewObject& item, CommitOutcome& outcome) {
  const ObjectRecord& obj = item.object;
  const ExamRecord& exam = item.exam;
  RDG_ASSIGN_OR_RETURN(auto q,
                       writer_->Prepare("SELECT " RDG_EXAM_COLUMNS " FROM exams "
                                        "WHERE origin_institution = ? AND study_instance_uid = ?"));
  q->Bind(1, exam.origin_institution).Bind(2, exam.study_instance_uid);
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return absl::OkStatus();
  const ExamRecord joined = ReadExam(*q, nullptr);
  q.reset();
  // Before any write: a refusal leaves nothing of this object behind.
  if (item.check_join) RDG_RETURN_IF_ERROR(item.check_join(joined));
  outcome.exam_id = joined.exam_id;
  auto priority = MoreUrgent(joined.priority, exam.priority);
  std::vector<std::string> modalities = joined.modalities;
  for (const auto& m : exam.modalities) {
    if (std::find(modalities.begin(), modalities.end(), m) == modalities.end()) {
      modalities.push_back(m);
    }
  }
  RDG_ASSIGN_OR_RETURN(
      auto u,
      writer_->Prepare("UPDATE exams SET instance_count = instance_count + 1, total_bytes = "
                       "total_bytes + ?, "
                       "priority = ?, modalities = ?, updated_at = ?, critical = MAX(critical, ?) "
                       "WHERE exam_id = ?"));
  u->Bind(1, obj.size)
      .Bind(2, int64_t{Number(priority)})
      .Bind(3, absl::StrJoin(modalities, "\\"))
      .Bind(4, obj.received_at)
      .Bind(5, int64_t{exam.critical})
      .Bind(6, outcome.exam_id);
  return u->Run();
}

absl::Status SqliteIndexStore::InsertExam(const NewObject& item, CommitOutcome& outcome) {
  const ObjectRecord& obj = item.object;
  const ExamRecord& exam = item.exam;
  outcome.exam_id = NewExamId();
  outcome.new_exam = true;
  RDG_ASSIGN_OR_RETURN(
      auto q,
      writer_->Prepare(
          "INSERT INTO exams (exam_id, origin_institution, study_instance_uid, patient_id, "
          "patient_name, patient_sex, patient_birth_date, patient_national_id, "
          "accession_number, "
          "exam_type, modalities, body_part, study_date, study_time, study_description, "
          "priority, "
          "state, queue, instance_count, total_bytes, received_at, updated_at, sla_due_at, "
          "claim_due_at, critical, patient_age, patient_id_issuer, national_id_issuer) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, "
          "?, ?, "
          "?)"));
  const bool routed = !item.routing.queue.empty();
  q->Bind(1, outcome.exam_id)
      .Bind(2, exam.origin_institution)
      .Bind(3, exam.study_instance_uid)
      .Bind(4, exam.patient.patient_id)
      .Bind(5, exam.patient.name)
      .Bind(6, exam.patient.sex)
      .Bind(7, exam.patient.birth_date)
      .Bind(8, exam.patient.national_id)
      .Bind(9, exam.accession_number)
      .Bind(10, exam.exam_type)
      .Bind(11, absl::StrJoin(exam.modalities, "\\"))
      .Bind(12, exam.body_part)
      .Bind(13, exam.study_date)
      .Bind(14, exam.study_time)
      .Bind(15, exam.study_description)
      .Bind(16, int64_t{Number(routed ? item.routing.priority : exam.priority)})
      .Bind(17, int64_t{Number(routed ? ExamState::kRouted : exam.state)})
      .Bind(18, item.routing.queue)
      .Bind(19, obj.size)
      .Bind(20, obj.received_at)
      .Bind(21, obj.received_at)
      .Bind(22, DueMicros(routed ? item.routing.sla_due_at : absl::InfiniteFuture()))
      .Bind(23, DueMicros(routed ? item.routing.claim_due_at : absl::InfiniteFuture()))
      .Bind(24, int64_t{exam.critical})
      .Bind(25, exam.patient.age)
      .Bind(26, exam.patient.id_issuer)
      .Bind(27, exam.patient.national_id_issuer);
  RDG_RETURN_IF_ERROR(q->Run());
  RDG_RETURN_IF_ERROR(
      AddEvent(outcome.exam_id, ExamState::kReceived, obj.received_at, item.actor, ""));
  if (routed) {
    RDG_RETURN_IF_ERROR(AddEvent(outcome.exam_id, ExamState::kRouted, obj.received_at, "system",
                                 item.routing.detail));
  }
  // The SLA clocks run from receipt (targets from the routing decision).
  RDG_RETURN_IF_ERROR(StartStage(outcome.exam_id, Stage::kReceivedToClaimed, obj.received_at,
                                 routed ? item.routing.claim_due_at : absl::InfiniteFuture()));
  return StartStage(outcome.exam_id, Stage::kReceivedToFinal, obj.received_at,
                    routed ? item.routing.sla_due_at : absl::InfiniteFuture());
}

absl::Status SqliteIndexStore::InsertObject(const ObjectRecord& obj, const std::string& exam_id) {
  RDG_ASSIGN_OR_RETURN(
      auto ins,
      writer_->Prepare(
          "INSERT INTO objects (origin_institution, exam_id, sop_instance_uid, "
          "series_instance_uid, "
          "sop_class_uid, transfer_syntax_uid, modality, instance_number, kind, size, sha256, "
          "received_at, content_key, text_notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
          "?)"));
  ins->Bind(1, obj.origin_institution)
      .Bind(2, exam_id)
      .Bind(3, obj.sop_instance_uid)
      .Bind(4, obj.series_instance_uid)
      .Bind(5, obj.sop_class_uid)
      .Bind(6, obj.transfer_syntax_uid)
      .Bind(7, obj.modality)
      .Bind(8, int64_t{obj.instance_number})
      .Bind(9, int64_t{Number(obj.kind)})
      .Bind(10, obj.size)
      .Bind(11, obj.sha256_hex)
      .Bind(12, obj.received_at)
      .Bind(13, obj.content_key)
      .Bind(14, obj.text_notes);
  return ins->Run();
}

absl::Status SqliteIndexStore::AddEvent(const std::string& exam_id, ExamState state, absl::Time at,
                                        const std::string& actor, const std::string& detail) {
  RDG_ASSIGN_OR_RETURN(
      auto ev,
      writer_->Prepare(
          "INSERT INTO exam_events (exam_id, state, at, actor, detail) VALUES (?, ?, ?, ?, ?)"));
  ev->Bind(1, exam_id).Bind(2, int64_t{Number(state)}).Bind(3, at).Bind(4, actor).Bind(5, detail);
  return ev->Run();
}

absl::StatusOr<ExamPage> SqliteIndexStore::ListExams(const ExamQuery& query) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare(
          "SELECT " RDG_EXAM_COLUMNS " FROM exams WHERE origin_institution = ?1 "
          "AND (?2 = 0 OR seq < ?2) AND (?3 = 0 OR state = ?3) ORDER BY seq DESC LIMIT ?4"));
  const int64_t limit = std::clamp<int64_t>(query.limit, 1, 1000);
  q->Bind(1, query.origin_institution)
      .Bind(2, query.before_seq)
      .Bind(3, int64_t{Number(query.state.value_or(ExamState::kUnspecified))})
      .Bind(4, limit + 1);
  ExamPage page;
  int64_t last_seq = 0;
  for (;;) {
    RDG_ASSIGN_OR_RETURN(bool row, q->Step());
    if (!row) break;
    if (static_cast<int64_t>(page.exams.size()) == limit) {
      page.next_before_seq = last_seq;
      break;
    }
    page.exams.push_back(ReadExam(*q, &last_seq));
  }
  return page;
}

absl::StatusOr<std::optional<ExamRecord>> SqliteIndexStore::GetExam(const std::string& exam_id) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q,
                       conn->Prepare("SELECT " RDG_EXAM_COLUMNS " FROM exams WHERE exam_id = ?"));
  q->Bind(1, exam_id);
  RDG_ASSIGN_OR_RETURN(bool row, q->Step());
  if (!row) return std::nullopt;
  return ReadExam(*q, nullptr);
}

absl::StatusOr<std::vector<ExamRecord>> SqliteIndexStore::FindExamsByStudy(
    const std::string& study_instance_uid) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q, conn->Prepare("SELECT " RDG_EXAM_COLUMNS " FROM exams WHERE study_instance_uid = ? "
                            "ORDER BY exam_id LIMIT 100"));
  q->Bind(1, study_instance_uid);
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) { return ReadExam(s, nullptr); });
}

absl::StatusOr<std::vector<ObjectRecord>> SqliteIndexStore::ListObjects(
    const std::string& exam_id) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q, conn->Prepare("SELECT " RDG_OBJECT_COLUMNS " FROM objects WHERE exam_id = ? "
                            "ORDER BY series_instance_uid, instance_number, sop_instance_uid"));
  q->Bind(1, exam_id);
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) { return ReadObject(s); });
}

absl::StatusOr<std::vector<ObjectRecord>> SqliteIndexStore::ListObjectsPage(
    const std::string& exam_id, const std::optional<ObjectCursor>& after, int limit) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare("SELECT " RDG_OBJECT_COLUMNS
                    " FROM objects WHERE exam_id = ?1 AND (?2 IS NULL OR "
                    "(series_instance_uid, instance_number, sop_instance_uid) > (?2, ?3, ?4)) "
                    "ORDER BY series_instance_uid, instance_number, sop_instance_uid LIMIT ?5"));
  q->Bind(1, exam_id).Bind(5, int64_t{limit});
  if (after.has_value()) {
    q->Bind(2, after->series_instance_uid)
        .Bind(3, int64_t{after->instance_number})
        .Bind(4, after->sop_instance_uid);
  }
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) { return ReadObject(s); });
}

absl::StatusOr<std::vector<ExamEventRecord>> SqliteIndexStore::ListEvents(
    const std::string& exam_id) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare("SELECT exam_id, state, at, actor, detail FROM "
                                             "exam_events WHERE exam_id = ? ORDER BY seq"));
  q->Bind(1, exam_id);
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) {
    return ExamEventRecord{s.Text(0), static_cast<ExamState>(s.Int(1)), s.Time(2), s.Text(3),
                           s.Text(4)};
  });
}

absl::StatusOr<std::vector<QueueFigureRecord>> SqliteIndexStore::ListQueueFigures(absl::Time now) {
  ReaderLease conn = AcquireReader();
  // INDEXED BY: a covering partial index of the open exams by queue (migration 0009), so this
  // reads the open work's index entries and never a table row or the history.
  RDG_ASSIGN_OR_RETURN(
      auto q, conn->Prepare("SELECT queue, count(*), sum(state IN (3, 4)), min(CASE WHEN state = 2 "
                            "THEN updated_at END), "
                            "sum(sla_due_at < ?1) FROM exams INDEXED BY exams_open_by_queue "
                            "WHERE state IN (2, 3, 4) GROUP BY queue ORDER BY queue"));
  q->Bind(1, now);
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) {
    QueueFigureRecord r{s.Text(0), s.Int(1), s.Int(2), std::nullopt, s.Int(4)};
    if (!s.IsNull(3)) r.oldest_waiting_since = s.Time(3);
    return r;
  });
}

absl::StatusOr<int64_t> SqliteIndexStore::SnapshotTo(const std::string& path) {
  ReaderLease reader = AcquireReader();
  return reader->BackupTo(path, "SELECT COALESCE(MAX(seq), 0) FROM audit_log");
}

}  // namespace rdg::storage
