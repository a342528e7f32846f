#include "storage/postgres/pg_exam_store.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "storage/base/random.h"
#include "storage/postgres/pg_audit_store.h"
#include "storage/postgres/pg_exam_changes.h"
#include "storage/postgres/pg_rows.h"

namespace rdg::storage::pg {
namespace {

//! Exam ids are random (CSPRNG: not guessable, not derived from patient data), as on SQLite.
std::string NewExamId() { return "ex-" + RandomHex(8); }

absl::StatusOr<std::optional<ObjectRecord>> FirstObject(absl::StatusOr<Result> r) {
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return ReadObject(*r, 0);
}

//! Locks every identity the batch may look up or create, in one order (see the header).
absl::Status LockIdentities(Connection& conn, absl::Span<const NewObject> batch) {
  std::vector<std::string> keys;
  keys.reserve(batch.size() * 2);
  for (const NewObject& item : batch) {
    keys.push_back(absl::StrCat("sop\x1F", item.object.origin_institution, "\x1F",
                                item.object.sop_instance_uid));
    keys.push_back(absl::StrCat("study\x1F", item.exam.origin_institution, "\x1F",
                                item.exam.study_instance_uid));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  static constexpr char kLock[] = "SELECT pg_advisory_xact_lock(hashtextextended($1, 11))";
  for (const std::string& key : keys) {
    if (auto r = conn.Exec(kLock, {P(key)}); !r.ok()) return r.status();
  }
  return absl::OkStatus();
}

//! A stored object of the same identity: a duplicate (outcome filled) or ALREADY_EXISTS.
absl::Status FindStored(Connection& conn, const ObjectRecord& obj, CommitOutcome& outcome) {
  static constexpr char kFind[] =
      "SELECT o.sha256, o.exam_id, e.instance_count, o.content_key FROM objects o "
      "JOIN exams e USING (exam_id) WHERE o.origin_institution = $1 AND o.sop_instance_uid = $2";
  auto r = conn.Exec(kFind, {P(obj.origin_institution), P(obj.sop_instance_uid)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::OkStatus();
  const bool same_content = !obj.content_key.empty() && r->Text(0, 3) == obj.content_key;
  if (r->Text(0, 0) != obj.sha256_hex && !same_content) {
    return ChangedObjectError(obj.sop_instance_uid);
  }
  outcome.exam_id = r->Text(0, 1);
  outcome.exam_instance_count = static_cast<int32_t>(r->Int(0, 2));
  outcome.duplicate = true;
  return absl::OkStatus();
}

//! Joins the exam of the same study, if any (outcome.exam_id set), after item.check_join.
absl::Status JoinExam(Connection& conn, const NewObject& item, CommitOutcome& outcome) {
  const ExamRecord& exam = item.exam;
  static constexpr char kFind[] =
      "SELECT " RDG_EXAM_COLUMNS
      " FROM exams WHERE origin_institution = $1 AND study_instance_uid = $2 FOR UPDATE";
  auto r = conn.Exec(kFind, {P(exam.origin_institution), P(exam.study_instance_uid)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::OkStatus();
  const ExamRecord joined = ReadExam(*r, 0);
  // Before any write: a refusal leaves nothing of this object behind.
  if (item.check_join) {
    if (absl::Status s = item.check_join(joined); !s.ok()) return s;
  }
  outcome.exam_id = joined.exam_id;
  std::vector<std::string> modalities = joined.modalities;
  for (const auto& m : exam.modalities) {
    if (std::find(modalities.begin(), modalities.end(), m) == modalities.end()) {
      modalities.push_back(m);
    }
  }
  static constexpr char kUpdate[] =
      "UPDATE exams SET instance_count = instance_count + 1, total_bytes = total_bytes + $2, "
      "priority = $3, modalities = $4, updated_at = $5, critical = critical OR $6 "
      "WHERE exam_id = $1 RETURNING instance_count";
  auto u = conn.Exec(kUpdate, {P(outcome.exam_id), P(item.object.size),
                               P(int64_t{Number(MoreUrgent(joined.priority, exam.priority))}),
                               P(absl::StrJoin(modalities, "\\")), P(item.object.received_at),
                               PBool(exam.critical)});
  if (!u.ok()) return u.status();
  outcome.exam_instance_count = static_cast<int32_t>(u->Int(0, 0));
  return absl::OkStatus();
}

//! A new exam with its routing, events and SLA stages.
absl::Status InsertExam(Connection& conn, const NewObject& item, CommitOutcome& outcome) {
  const ObjectRecord& obj = item.object;
  const ExamRecord& exam = item.exam;
  outcome.exam_id = NewExamId();
  outcome.new_exam = true;
  outcome.exam_instance_count = 1;
  const bool routed = !item.routing.queue.empty();
  static constexpr char kInsert[] =
      "INSERT INTO exams (exam_id, origin_institution, study_instance_uid, patient_id, "
      "patient_name, patient_sex, patient_birth_date, patient_national_id, accession_number, "
      "exam_type, modalities, body_part, study_date, study_time, study_description, priority, "
      "state, queue, instance_count, total_bytes, received_at, updated_at, sla_due_at, "
      "claim_due_at, critical, patient_age, patient_id_issuer, national_id_issuer) VALUES ($1, "
      "$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 1, $19, $20, "
      "$20, $21, $22, $23, $24, $25, $26)";
  auto r = conn.Exec(kInsert, {P(outcome.exam_id),
                               P(exam.origin_institution),
                               P(exam.study_instance_uid),
                               P(exam.patient.patient_id),
                               P(exam.patient.name),
                               P(exam.patient.sex),
                               P(exam.patient.birth_date),
                               P(exam.patient.national_id),
                               P(exam.accession_number),
                               P(exam.exam_type),
                               P(absl::StrJoin(exam.modalities, "\\")),
                               P(exam.body_part),
                               P(exam.study_date),
                               P(exam.study_time),
                               P(exam.study_description),
                               P(int64_t{Number(routed ? item.routing.priority : exam.priority)}),
                               P(int64_t{Number(routed ? ExamState::kRouted : exam.state)}),
                               P(item.routing.queue),
                               P(obj.size),
                               P(obj.received_at),
                               P(routed ? item.routing.sla_due_at : absl::InfiniteFuture()),
                               P(routed ? item.routing.claim_due_at : absl::InfiniteFuture()),
                               PBool(exam.critical),
                               P(exam.patient.age),
                               P(exam.patient.id_issuer),
                               P(exam.patient.national_id_issuer)});
  if (!r.ok()) return r.status();
  if (auto s =
          AddEvent(conn, outcome.exam_id, ExamState::kReceived, obj.received_at, item.actor, "");
      !s.ok()) {
    return s;
  }
  if (routed) {
    if (auto s = AddEvent(conn, outcome.exam_id, ExamState::kRouted, obj.received_at, "system",
                          item.routing.detail);
        !s.ok()) {
      return s;
    }
  }
  // The SLA clocks run from receipt (targets from the routing decision).
  if (auto s = StartStage(conn, outcome.exam_id, Stage::kReceivedToClaimed, obj.received_at,
                          routed ? item.routing.claim_due_at : absl::InfiniteFuture());
      !s.ok()) {
    return s;
  }
  return StartStage(conn, outcome.exam_id, Stage::kReceivedToFinal, obj.received_at,
                    routed ? item.routing.sla_due_at : absl::InfiniteFuture());
}

absl::Status InsertObject(Connection& conn, const ObjectRecord& obj, const std::string& exam_id) {
  static constexpr char kInsert[] =
      "INSERT INTO objects (" RDG_OBJECT_COLUMNS
      ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
  return conn
      .Exec(kInsert, {P(obj.origin_institution), P(exam_id), P(obj.sop_instance_uid),
                      P(obj.series_instance_uid), P(obj.sop_class_uid), P(obj.transfer_syntax_uid),
                      P(obj.modality), P(int64_t{Number(obj.instance_number)}),
                      P(int64_t{Number(obj.kind)}), P(obj.size), P(obj.sha256_hex),
                      P(obj.received_at), P(obj.content_key), P(obj.text_notes)})
      .status();
}

absl::Status InsertLabResults(Connection& conn, const std::string& exam_id,
                              const std::vector<LabResultRecord>& results) {
  static constexpr char kInsert[] =
      "INSERT INTO lab_results (exam_id, origin_institution, code, coding_system, name, value, "
      "numeric, units, reference_range, abnormal_flags, observed_at, critical, order_service, "
      "result_status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
  for (const LabResultRecord& r : results) {
    Param numeric;
    if (r.numeric.has_value()) numeric = absl::StrCat(*r.numeric);
    auto ins =
        conn.Exec(kInsert, {P(exam_id), P(r.origin_institution), P(r.code), P(r.coding_system),
                            P(r.name), P(r.value), numeric, P(r.units), P(r.reference_range),
                            P(absl::StrJoin(r.abnormal_flags, "~")), P(r.observed_at),
                            PBool(r.critical), P(r.order_service), P(r.result_status)});
    if (!ins.ok()) return ins.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<CommitOutcome> CommitOne(Connection& conn, const NewObject& item) {
  CommitOutcome outcome;
  if (auto s = FindStored(conn, item.object, outcome); !s.ok()) return s;
  if (!outcome.duplicate) {
    if (auto s = JoinExam(conn, item, outcome); !s.ok()) return s;
    if (outcome.exam_id.empty()) {
      if (auto s = InsertExam(conn, item, outcome); !s.ok()) return s;
    }
    if (auto s = InsertObject(conn, item.object, outcome.exam_id); !s.ok()) return s;
    if (auto s = InsertLabResults(conn, outcome.exam_id, item.lab_results); !s.ok()) return s;
  }
  if (!item.session_id.empty()) {
    static constexpr char kDelete[] = "DELETE FROM upload_sessions WHERE session_id = $1";
    if (auto d = conn.Exec(kDelete, {P(item.session_id)}); !d.ok()) return d.status();
  }
  return outcome;
}

}  // namespace

std::vector<absl::StatusOr<CommitOutcome>> PgExamStore::CommitObjects(
    absl::Span<const NewObject> batch) {
  using Outcomes = std::vector<absl::StatusOr<CommitOutcome>>;
  absl::StatusOr<Outcomes> committed =
      pool_.InTransaction("READ COMMITTED", [&](Connection& conn) -> absl::StatusOr<Outcomes> {
        if (auto s = LockIdentities(conn, batch); !s.ok()) return s;
        Outcomes results;
        results.reserve(batch.size());
        static constexpr char kSavepoint[] = "SAVEPOINT item";
        static constexpr char kRelease[] = "RELEASE SAVEPOINT item";
        static constexpr char kUndo[] = "ROLLBACK TO SAVEPOINT item";
        for (const NewObject& item : batch) {
          if (auto s = conn.Exec(kSavepoint); !s.ok()) return s.status();
          absl::StatusOr<CommitOutcome> outcome = CommitOne(conn, item);
          if (outcome.ok()) {
            if (auto s = conn.Exec(kRelease); !s.ok()) return s.status();
          } else if ((absl::IsAlreadyExists(outcome.status()) ||
                      absl::IsInvalidArgument(outcome.status())) &&
                     !conn.in_failed_transaction()) {
            // This object is refused (an identity conflict, text PostgreSQL cannot hold): undo
            // what it wrote, keep the rest of the batch.
            if (auto s = conn.Exec(kUndo); !s.ok()) return s.status();
            if (auto s = conn.Exec(kRelease); !s.ok()) return s.status();
          } else {
            // An unexpected failure of one item fails the whole batch: nothing half-visible.
            return outcome.status();
          }
          results.push_back(std::move(outcome));
        }
        // The uploads' audit records join the chain last: its end stays locked only for the
        // rest of this transaction.
        for (size_t i = 0; i < batch.size(); ++i) {
          if (!results[i].ok() || !batch[i].audit.has_value()) continue;
          AuditRecord record = *batch[i].audit;
          record.exam_id = results[i]->exam_id;
          if (results[i]->duplicate) absl::StrAppend(&record.detail, " (already stored)");
          if (auto s = AppendAuditIn(conn, record); !s.ok()) return s;
        }
        return results;
      });
  if (!committed.ok()) return Outcomes(batch.size(), committed.status());
  return *std::move(committed);
}

absl::StatusOr<std::optional<ObjectRecord>> PgExamStore::FindObject(
    const std::string& institution, const std::string& sop_instance_uid) {
  static constexpr char kFind[] = "SELECT " RDG_OBJECT_COLUMNS
                                  " FROM objects WHERE origin_institution = $1 AND "
                                  "sop_instance_uid = $2";
  return FirstObject(pool_.Query(kFind, {P(institution), P(sop_instance_uid)}));
}

absl::StatusOr<std::optional<ObjectRecord>> PgExamStore::FindObjectByContent(
    const std::string& institution, const std::string& sha256_hex) {
  static constexpr char kFind[] = "SELECT " RDG_OBJECT_COLUMNS
                                  " FROM objects WHERE sha256 = $1 AND origin_institution = $2 "
                                  "LIMIT 1";
  return FirstObject(pool_.Query(kFind, {P(sha256_hex), P(institution)}));
}

absl::StatusOr<bool> PgExamStore::IsBlobReferenced(const std::string& sha256_hex) {
  static constexpr char kFind[] = "SELECT 1 FROM objects WHERE sha256 = $1 LIMIT 1";
  auto r = pool_.Query(kFind, {P(sha256_hex)});
  if (!r.ok()) return r.status();
  return r->rows() > 0;
}

absl::StatusOr<ExamPage> PgExamStore::ListExams(const ExamQuery& query) {
  // Keyset paging down exams_by_origin (origin_institution, seq).
  static constexpr char kList[] =
      "SELECT " RDG_EXAM_COLUMNS
      " FROM exams WHERE origin_institution = $1 AND seq < $2 AND ($3 = 0 OR state = $3) "
      "ORDER BY seq DESC LIMIT $4";
  const int64_t limit = std::clamp<int64_t>(query.limit, 1, 1000);
  auto r = pool_.Query(
      kList, {P(query.origin_institution),
              P(query.before_seq > 0 ? query.before_seq : std::numeric_limits<int64_t>::max()),
              P(int64_t{Number(query.state.value_or(ExamState::kUnspecified))}), P(limit + 1)});
  if (!r.ok()) return r.status();
  ExamPage page;
  int64_t last_seq = 0;
  for (int i = 0; i < r->rows(); ++i) {
    if (static_cast<int64_t>(page.exams.size()) == limit) {
      page.next_before_seq = last_seq;
      break;
    }
    page.exams.push_back(ReadExam(*r, i, &last_seq));
  }
  return page;
}

absl::StatusOr<std::optional<ExamRecord>> PgExamStore::GetExam(const std::string& exam_id) {
  static constexpr char kGet[] = "SELECT " RDG_EXAM_COLUMNS " FROM exams WHERE exam_id = $1";
  auto r = pool_.Query(kGet, {P(exam_id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::nullopt;
  return ReadExam(*r, 0);
}

absl::StatusOr<std::vector<ExamRecord>> PgExamStore::FindExamsByStudy(
    const std::string& study_instance_uid) {
  static constexpr char kFind[] = "SELECT " RDG_EXAM_COLUMNS
                                  " FROM exams WHERE study_instance_uid = $1 "
                                  "ORDER BY exam_id LIMIT 100";
  auto r = pool_.Query(kFind, {P(study_instance_uid)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, [](const Result& res, int row) { return ReadExam(res, row); });
}

absl::StatusOr<std::vector<ObjectRecord>> PgExamStore::ListObjects(const std::string& exam_id) {
  static constexpr char kList[] = "SELECT " RDG_OBJECT_COLUMNS
                                  " FROM objects WHERE exam_id = $1 "
                                  "ORDER BY series_instance_uid, instance_number, sop_instance_uid";
  auto r = pool_.Query(kList, {P(exam_id)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadObject);
}

absl::StatusOr<std::vector<ObjectRecord>> PgExamStore::ListObjectsPage(
    const std::string& exam_id, const std::optional<ObjectCursor>& after, int limit) {
  static constexpr char kFirst[] =
      "SELECT " RDG_OBJECT_COLUMNS
      " FROM objects WHERE exam_id = $1 "
      "ORDER BY series_instance_uid, instance_number, sop_instance_uid LIMIT $2";
  static constexpr char kAfter[] =
      "SELECT " RDG_OBJECT_COLUMNS
      " FROM objects WHERE exam_id = $1 AND "
      "(series_instance_uid, instance_number, sop_instance_uid) > ($3, $4::integer, $5) "
      "ORDER BY series_instance_uid, instance_number, sop_instance_uid LIMIT $2";
  const int64_t n = std::clamp(limit, 1, 100000);
  auto r =
      after.has_value()
          ? pool_.Query(kAfter, {P(exam_id), P(n), P(after->series_instance_uid),
                                 P(int64_t{after->instance_number}), P(after->sop_instance_uid)})
          : pool_.Query(kFirst, {P(exam_id), P(n)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, ReadObject);
}

absl::StatusOr<std::vector<ExamEventRecord>> PgExamStore::ListEvents(const std::string& exam_id) {
  static constexpr char kList[] =
      "SELECT exam_id, state, at, actor, detail FROM exam_events WHERE exam_id = $1 ORDER BY seq";
  auto r = pool_.Query(kList, {P(exam_id)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, [](const Result& res, int row) {
    return ExamEventRecord{res.Text(row, 0), static_cast<ExamState>(res.Int(row, 1)),
                           res.Time(row, 2), res.Text(row, 3), res.Text(row, 4)};
  });
}

absl::StatusOr<std::vector<ExamRecord>> PgExamStore::FindPriors(const ExamRecord& exam,
                                                                int32_t limit) {
  // Two arms, each served by its index (exams_by_national_id, exams_by_origin_patient). An
  // unstated issuer on either side is no disagreement here; the caller compares issuers and
  // demographics.
  static constexpr char kFind[] =
      "SELECT " RDG_EXAM_COLUMNS
      " FROM exams WHERE exam_id <> $1 AND ("
      "(patient_national_id <> '' AND patient_national_id = $2) OR "
      "($4 <> '' AND origin_institution = $3 AND patient_id = $4 AND "
      " (patient_id_issuer = $6 OR patient_id_issuer = '' OR $6 = ''))) "
      "ORDER BY received_at DESC LIMIT $5";
  auto r = pool_.Query(kFind, {P(exam.exam_id), P(exam.patient.national_id),
                               P(exam.origin_institution), P(exam.patient.patient_id),
                               P(int64_t{std::clamp(limit, 1, 1000)}), P(exam.patient.id_issuer)});
  if (!r.ok()) return r.status();
  return ReadExams(*r);
}

absl::StatusOr<std::vector<ExamRecord>> PgExamStore::FindLabOrders(const std::string& institution,
                                                                   const std::string& accession,
                                                                   int32_t limit) {
  static constexpr char kFind[] =
      "SELECT " RDG_EXAM_COLUMNS
      " FROM exams WHERE origin_institution = $1 AND accession_number = $2 AND "
      "exam_type = 'LAB' ORDER BY received_at DESC LIMIT $3";
  auto r =
      pool_.Query(kFind, {P(institution), P(accession), P(int64_t{std::clamp(limit, 1, 1000)})});
  if (!r.ok()) return r.status();
  return ReadExams(*r);
}

absl::StatusOr<std::vector<LabResultRecord>> PgLabResultStore::ListLabResults(
    const std::vector<std::string>& exam_ids, const std::vector<std::string>& codes) {
  if (exam_ids.empty()) return std::vector<LabResultRecord>{};
  // lab_results_by_exam (exam_id, code) serves each exam's lookup; the exams come from the
  // patient-matching rule of FindPriors, so the set is small.
  static constexpr char kList[] =
      "SELECT exam_id, origin_institution, code, coding_system, name, value, numeric, units, "
      "reference_range, abnormal_flags, observed_at, critical, order_service, result_status "
      "FROM lab_results WHERE exam_id = ANY($1::text[]) "
      "AND ($2::text[] IS NULL OR code = ANY($2::text[])) ORDER BY code, observed_at, seq";
  auto r = pool_.Query(kList, {PTextArray(exam_ids), codes.empty() ? Param() : PTextArray(codes)});
  if (!r.ok()) return r.status();
  return ReadRows(*r, [](const Result& res, int row) {
    LabResultRecord l;
    l.exam_id = res.Text(row, 0);
    l.origin_institution = res.Text(row, 1);
    l.code = res.Text(row, 2);
    l.coding_system = res.Text(row, 3);
    l.name = res.Text(row, 4);
    l.value = res.Text(row, 5);
    if (!res.IsNull(row, 6)) l.numeric = res.Double(row, 6);
    l.units = res.Text(row, 7);
    l.reference_range = res.Text(row, 8);
    const std::string flags = res.Text(row, 9);
    if (!flags.empty()) l.abnormal_flags = absl::StrSplit(flags, '~');
    l.observed_at = res.Text(row, 10);
    l.critical = res.Bool(row, 11);
    l.order_service = res.Text(row, 12);
    l.result_status = res.Text(row, 13);
    return l;
  });
}

}  // namespace rdg::storage::pg
