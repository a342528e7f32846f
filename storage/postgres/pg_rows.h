// Internal to storage/postgres: the row readers the PostgreSQL stores share (exams and objects
// are read by several of them), in the order of storage/index/columns.h. Not an interface.
#pragma once

#include <string>

#include "absl/strings/str_split.h"
#include "storage/index/columns.h"
#include "storage/postgres/pg_connection.h"
#include "storage/records.h"

namespace rdg::storage::pg {

inline ExamRecord ReadExam(const Result& r, int row, int64_t* seq = nullptr) {
  ExamRecord e;
  if (seq != nullptr) *seq = r.Int(row, 0);
  e.exam_id = r.Text(row, 1);
  e.origin_institution = r.Text(row, 2);
  e.study_instance_uid = r.Text(row, 3);
  e.patient.patient_id = r.Text(row, 4);
  e.patient.name = r.Text(row, 5);
  e.patient.sex = r.Text(row, 6);
  e.patient.birth_date = r.Text(row, 7);
  e.patient.national_id = r.Text(row, 8);
  e.accession_number = r.Text(row, 9);
  e.exam_type = r.Text(row, 10);
  const std::string modalities = r.Text(row, 11);
  if (!modalities.empty()) e.modalities = absl::StrSplit(modalities, '\\');
  e.body_part = r.Text(row, 12);
  e.study_date = r.Text(row, 13);
  e.study_time = r.Text(row, 14);
  e.study_description = r.Text(row, 15);
  e.priority = static_cast<Priority>(r.Int(row, 16));
  e.state = static_cast<ExamState>(r.Int(row, 17));
  e.queue = r.Text(row, 18);
  e.instance_count = static_cast<int32_t>(r.Int(row, 19));
  e.total_bytes = r.Int(row, 20);
  e.received_at = r.Time(row, 21);
  e.updated_at = r.Time(row, 22);
  e.sla_due_at = r.Time(row, 23);
  e.claim_due_at = r.Time(row, 24);
  e.critical = r.Bool(row, 25);
  e.patient.age = r.Text(row, 26);
  e.patient.id_issuer = r.Text(row, 27);
  e.patient.national_id_issuer = r.Text(row, 28);
  e.escalated_by = r.Text(row, 29);
  e.escalation_reason = r.Text(row, 30);
  return e;
}

inline ObjectRecord ReadObject(const Result& r, int row) {
  ObjectRecord o;
  o.origin_institution = r.Text(row, 0);
  o.exam_id = r.Text(row, 1);
  o.sop_instance_uid = r.Text(row, 2);
  o.series_instance_uid = r.Text(row, 3);
  o.sop_class_uid = r.Text(row, 4);
  o.transfer_syntax_uid = r.Text(row, 5);
  o.modality = r.Text(row, 6);
  o.instance_number = static_cast<int32_t>(r.Int(row, 7));
  o.kind = static_cast<ObjectKind>(r.Int(row, 8));
  o.size = r.Int(row, 9);
  o.sha256_hex = r.Text(row, 10);
  o.received_at = r.Time(row, 11);
  o.content_key = r.Text(row, 12);
  o.text_notes = r.Text(row, 13);
  return o;
}

//! Every exam of `r` (selected with RDG_EXAM_COLUMNS).
inline std::vector<ExamRecord> ReadExams(const Result& r) {
  return ReadRows(r, [](const Result& res, int row) { return ReadExam(res, row); });
}

}  // namespace rdg::storage::pg
