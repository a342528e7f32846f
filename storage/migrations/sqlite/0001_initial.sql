-- RDG index, version 1: exams, objects, state events, upload sessions, audit log.
-- Times are microseconds since the Unix epoch (UTC). Never edit an applied migration: add a new file.

CREATE TABLE exams (
  seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
  exam_id             TEXT    NOT NULL UNIQUE,
  origin_institution  TEXT    NOT NULL,
  study_instance_uid  TEXT    NOT NULL,
  patient_id          TEXT    NOT NULL DEFAULT '',
  patient_name        TEXT    NOT NULL DEFAULT '',
  patient_sex         TEXT    NOT NULL DEFAULT '',
  patient_birth_date  TEXT    NOT NULL DEFAULT '',
  patient_national_id TEXT    NOT NULL DEFAULT '',
  accession_number    TEXT    NOT NULL DEFAULT '',
  exam_type           TEXT    NOT NULL DEFAULT '',
  modalities          TEXT    NOT NULL DEFAULT '',  -- backslash-separated, as in DICOM
  body_part           TEXT    NOT NULL DEFAULT '',
  study_date          TEXT    NOT NULL DEFAULT '',
  study_time          TEXT    NOT NULL DEFAULT '',
  study_description   TEXT    NOT NULL DEFAULT '',
  priority            INTEGER NOT NULL,
  state               INTEGER NOT NULL,
  queue               TEXT    NOT NULL DEFAULT '',
  instance_count      INTEGER NOT NULL DEFAULT 0,
  total_bytes         INTEGER NOT NULL DEFAULT 0,
  received_at         INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  UNIQUE (origin_institution, study_instance_uid)
);
CREATE INDEX exams_by_origin ON exams (origin_institution, seq);
CREATE INDEX exams_by_patient ON exams (patient_id);

-- SOP Instance UIDs are unique per origin institution: one clinic never learns of another's.
CREATE TABLE objects (
  origin_institution  TEXT    NOT NULL,
  sop_instance_uid    TEXT    NOT NULL,
  exam_id             TEXT    NOT NULL REFERENCES exams (exam_id),
  series_instance_uid TEXT    NOT NULL DEFAULT '',
  sop_class_uid       TEXT    NOT NULL DEFAULT '',
  transfer_syntax_uid TEXT    NOT NULL DEFAULT '',
  modality            TEXT    NOT NULL DEFAULT '',
  instance_number     INTEGER NOT NULL DEFAULT 0,
  kind                INTEGER NOT NULL,
  size                INTEGER NOT NULL,
  sha256              TEXT    NOT NULL,
  received_at         INTEGER NOT NULL,
  PRIMARY KEY (origin_institution, sop_instance_uid)
) WITHOUT ROWID;
CREATE INDEX objects_by_exam ON objects (exam_id, series_instance_uid, instance_number);
CREATE INDEX objects_by_content ON objects (sha256, origin_institution);

CREATE TABLE exam_events (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  exam_id  TEXT    NOT NULL REFERENCES exams (exam_id),
  state    INTEGER NOT NULL,
  at       INTEGER NOT NULL,
  actor    TEXT    NOT NULL,
  detail   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX exam_events_by_exam ON exam_events (exam_id, seq);

CREATE TABLE upload_sessions (
  session_id  TEXT    PRIMARY KEY,
  institution TEXT    NOT NULL,
  user        TEXT    NOT NULL,
  kind        INTEGER NOT NULL,
  size        INTEGER NOT NULL,
  sha256      TEXT    NOT NULL,
  priority    INTEGER NOT NULL,
  client_ref  TEXT    NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX upload_sessions_by_content ON upload_sessions (institution, sha256, size);

CREATE TABLE audit_log (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  at          INTEGER NOT NULL,
  institution TEXT    NOT NULL,
  user        TEXT    NOT NULL,
  role        INTEGER NOT NULL,
  action      TEXT    NOT NULL,
  exam_id     TEXT    NOT NULL DEFAULT '',
  detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_by_exam ON audit_log (exam_id, seq);
CREATE INDEX audit_log_by_user ON audit_log (user, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
