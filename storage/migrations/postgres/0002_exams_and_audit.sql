-- The exams table (the index's own schema as SQLite's migrations 0001-0016 left it) and the
-- audit log. The audit chain's end is one row, audit_head, locked by every append: records are
-- numbered and linked in the order they commit, without gaps, whichever gateway writes them.
CREATE TABLE exams (
  seq                 BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  exam_id             TEXT     NOT NULL UNIQUE,
  origin_institution  TEXT     NOT NULL,
  study_instance_uid  TEXT     NOT NULL,
  patient_id          TEXT     NOT NULL DEFAULT '',
  patient_name        TEXT     NOT NULL DEFAULT '',
  patient_sex         TEXT     NOT NULL DEFAULT '',
  patient_birth_date  TEXT     NOT NULL DEFAULT '',
  patient_national_id TEXT     NOT NULL DEFAULT '',
  patient_age         TEXT     NOT NULL DEFAULT '',
  patient_id_issuer   TEXT     NOT NULL DEFAULT '',
  national_id_issuer  TEXT     NOT NULL DEFAULT '',
  accession_number    TEXT     NOT NULL DEFAULT '',
  exam_type           TEXT     NOT NULL DEFAULT '',
  modalities          TEXT     NOT NULL DEFAULT '',  -- backslash-separated, as in DICOM
  body_part           TEXT     NOT NULL DEFAULT '',
  study_date          TEXT     NOT NULL DEFAULT '',
  study_time          TEXT     NOT NULL DEFAULT '',
  study_description   TEXT     NOT NULL DEFAULT '',
  priority            INTEGER  NOT NULL,
  state               INTEGER  NOT NULL,
  queue               TEXT     NOT NULL DEFAULT '',
  instance_count      BIGINT   NOT NULL DEFAULT 0,
  total_bytes         BIGINT   NOT NULL DEFAULT 0,
  received_at         BIGINT   NOT NULL,
  updated_at          BIGINT   NOT NULL,
  sla_due_at          BIGINT   NOT NULL DEFAULT 9223372036854775807,
  claim_due_at        BIGINT   NOT NULL DEFAULT 9223372036854775807,
  critical            BOOLEAN  NOT NULL DEFAULT FALSE,
  escalated_by        TEXT     NOT NULL DEFAULT '',
  escalation_reason   TEXT     NOT NULL DEFAULT '',
  UNIQUE (origin_institution, study_instance_uid)
);
CREATE INDEX exams_by_origin ON exams (origin_institution, seq);
CREATE INDEX exams_by_patient ON exams (patient_id);
CREATE INDEX exams_by_origin_patient ON exams (origin_institution, patient_id);
CREATE INDEX exams_by_national_id ON exams (patient_national_id) WHERE patient_national_id <> '';
CREATE INDEX exams_by_origin_accession ON exams (origin_institution, accession_number)
  WHERE exam_type = 'LAB';
CREATE INDEX exams_worklist ON exams (queue, state, sla_due_at, priority);
CREATE INDEX exams_unclaimed ON exams (state, claim_due_at);
-- Open exams (ROUTED, CLAIMED, PRELIMINARY) only: the worklists and the queues' figures.
CREATE INDEX exams_open_worklist ON exams (sla_due_at, priority, seq) WHERE state IN (2, 3, 4);
CREATE INDEX exams_open_by_queue ON exams (queue, state, updated_at, sla_due_at)
  WHERE state IN (2, 3, 4);

CREATE TABLE audit_log (
  seq         BIGINT  PRIMARY KEY,
  at          BIGINT  NOT NULL,
  institution TEXT    NOT NULL,
  user_name   TEXT    NOT NULL,
  role        INTEGER NOT NULL,
  action      TEXT    NOT NULL,
  exam_id     TEXT    NOT NULL DEFAULT '',
  detail      TEXT    NOT NULL DEFAULT '',
  outcome     TEXT    NOT NULL DEFAULT '',
  patient_id  TEXT    NOT NULL DEFAULT '',
  peer        TEXT    NOT NULL DEFAULT '',
  subject     TEXT    NOT NULL DEFAULT '',
  prev_hash   BYTEA   NOT NULL,
  hash        BYTEA   NOT NULL
);
CREATE INDEX audit_log_by_exam ON audit_log (exam_id, seq);
CREATE INDEX audit_log_by_user ON audit_log (user_name, seq);
CREATE INDEX audit_log_by_at ON audit_log (at);

-- The end of the chain: seq and hash of its last record (0 and the genesis link before any).
CREATE TABLE audit_head (
  id    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
  seq   BIGINT  NOT NULL,
  hash  BYTEA   NOT NULL
);

CREATE TABLE audit_checkpoints (
  seq        BIGINT PRIMARY KEY,
  hash       BYTEA  NOT NULL,
  signed_at  BIGINT NOT NULL,
  statement  TEXT   NOT NULL,
  signature  BYTEA  NOT NULL
);

CREATE TABLE audit_export (
  destination  TEXT   PRIMARY KEY,
  exported_seq BIGINT NOT NULL,
  updated_at   BIGINT NOT NULL
);

-- Append-only: the records and their checkpoints are never changed or removed (a database
-- owner could drop the trigger; the signed checkpoints and rdg-admin audit verify find that).
CREATE FUNCTION rdg_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION rdg_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
  ON audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION rdg_append_only();
