// SqliteIndexStore: the one-time repair of exam text (storage/exam_text_repairs.h).
#include "storage/base/status_macros.h"
#include "storage/sqlite_index_store.h"
#include "storage/sqlite_internal.h"

namespace rdg::storage {

using sqlite_internal::InWriteTransaction;
using sqlite_internal::Stmt;

absl::StatusOr<bool> SqliteIndexStore::RepairPending(const std::string& name) {
  ReaderLease conn = AcquireReader();
  RDG_ASSIGN_OR_RETURN(auto q, conn->Prepare("SELECT 1 FROM pending_repairs WHERE name = ?"));
  q->Bind(1, name);
  return q->Step();
}

absl::StatusOr<std::vector<ExamText>> SqliteIndexStore::ListExamText(
    const std::string& after_exam_id, int limit) {
  ReaderLease conn = AcquireReader();
  // The exam's first object: the one its study attributes were taken from at ingest.
#define RDG_FIRST_OBJECT(column)                     \
  "(SELECT " column                                  \
  " FROM objects o WHERE o.exam_id = exams.exam_id " \
  "ORDER BY o.received_at, o.sop_instance_uid LIMIT 1)"
  RDG_ASSIGN_OR_RETURN(
      auto q,
      conn->Prepare(
          "SELECT " RDG_EXAM_COLUMNS
          ", " RDG_FIRST_OBJECT("o.kind") ", " RDG_FIRST_OBJECT("o.sha256") ", " RDG_FIRST_OBJECT(
              "o.sop_instance_uid") " FROM exams WHERE exam_id > ? "
                                    "ORDER BY exam_id LIMIT ?"));
#undef RDG_FIRST_OBJECT
  q->Bind(1, after_exam_id).Bind(2, int64_t{limit});
  constexpr int k = kExamColumnCount;
  return sqlite_internal::CollectRows(*q, [](const Stmt& s) {
    ExamText t;
    t.exam = sqlite_internal::ReadExam(s, nullptr);
    t.first_object.exam_id = t.exam.exam_id;
    t.first_object.kind = static_cast<ObjectKind>(s.Int(k));
    t.first_object.sha256_hex = s.Text(k + 1);
    t.first_object.sop_instance_uid = s.Text(k + 2);
    return t;
  });
}

absl::Status SqliteIndexStore::RewriteExamText(const std::string& exam_id, const ExamRecord& text) {
  absl::MutexLock lock(&writer_mu_);
  return InWriteTransaction(*writer_, [&]() -> absl::Status {
    writer_mu_.AssertHeld();  // the caller holds it across the transaction
    RDG_ASSIGN_OR_RETURN(
        auto u, writer_->Prepare(
                    "UPDATE exams SET patient_id = ?, patient_name = ?, patient_sex = ?, "
                    "patient_birth_date = ?, accession_number = ?, body_part = ?, study_date = ?, "
                    "study_time = ?, study_description = ? WHERE exam_id = ?"));
    u->Bind(1, text.patient.patient_id)
        .Bind(2, text.patient.name)
        .Bind(3, text.patient.sex)
        .Bind(4, text.patient.birth_date)
        .Bind(5, text.accession_number)
        .Bind(6, text.body_part)
        .Bind(7, text.study_date)
        .Bind(8, text.study_time)
        .Bind(9, text.study_description)
        .Bind(10, exam_id);
    return u->Run();
  });
}

absl::Status SqliteIndexStore::FinishRepair(const std::string& name) {
  absl::MutexLock lock(&writer_mu_);
  RDG_ASSIGN_OR_RETURN(auto d, writer_->Prepare("DELETE FROM pending_repairs WHERE name = ?"));
  return d->Bind(1, name).Run();
}

}  // namespace rdg::storage
