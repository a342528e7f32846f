-- RDG index, version 13: patient identity that can be trusted.
-- patient_id_issuer: who assigned the patient ID (DICOM Issuer of Patient ID, HL7 CX.4); local
--   IDs link exams only within one institution and one issuer.
-- national_id_issuer: where the national ID came from ("issuer^type" or its source). Exams
--   indexed before keep an empty issuer; their national IDs are checked again whenever they are
--   linked.
-- identity_conflicts: what ingest and priors refused to link or merge, for the administrators'
--   review (like a PIX manager's list). Field names only, never patient data.
ALTER TABLE exams ADD COLUMN patient_id_issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE exams ADD COLUMN national_id_issuer TEXT NOT NULL DEFAULT '';
CREATE TABLE identity_conflicts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  detected_at INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  exam_id TEXT NOT NULL,
  origin_institution TEXT NOT NULL,
  other_exam_id TEXT NOT NULL DEFAULT '',
  other_institution TEXT NOT NULL DEFAULT '',
  fields TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '',
  UNIQUE (kind, exam_id, other_exam_id, detail));
CREATE INDEX exams_by_origin_accession ON exams (origin_institution, accession_number)
  WHERE exam_type = 'LAB';
