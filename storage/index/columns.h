// The column lists both backends of the index read rows with: the schemas name their columns
// alike (storage/migrations/*/), so a row reader of either backend takes columns in this order.
#pragma once

#define RDG_EXAM_COLUMNS                                                                       \
  "seq, exam_id, origin_institution, study_instance_uid, patient_id, patient_name, "           \
  "patient_sex, patient_birth_date, patient_national_id, accession_number, exam_type, "        \
  "modalities, body_part, study_date, study_time, study_description, priority, state, queue, " \
  "instance_count, total_bytes, received_at, updated_at, sla_due_at, claim_due_at, critical, " \
  "patient_age, patient_id_issuer, national_id_issuer, escalated_by, escalation_reason"

namespace rdg::storage {
//! Number of RDG_EXAM_COLUMNS: columns selected after them start at this index.
inline constexpr int kExamColumnCount = 31;
}  // namespace rdg::storage

#define RDG_OBJECT_COLUMNS                                                                         \
  "origin_institution, exam_id, sop_instance_uid, series_instance_uid, sop_class_uid, "            \
  "transfer_syntax_uid, modality, instance_number, kind, size, sha256, received_at, content_key, " \
  "text_notes"

#define RDG_REPORT_COLUMNS                                                                \
  "seq, report_id, exam_id, origin_institution, version, status, critical, reader_user, " \
  "reader_institution, supersedes, content, canonical, signature_format, signature, "     \
  "signer_cert, accepted_at, acknowledge_by, delivered_at, acknowledged_at, acknowledged_by"

#define RDG_STAGE_COLUMNS                                                                   \
  "exam_id, stage, origin_institution, queue, exam_type, priority, reviewing_institution, " \
  "started_at, due_at, ended_at, breached_at, COALESCE(end_seq, 0)"
