-- RDG index, version 15: the audit log becomes tamper-evident (issue 17).
-- outcome, patient_id, peer, subject: what ATNA (DICOM PS3.15 A.5) records of an access besides
--   who and what: its outcome ('' = success, else the refusal's status code name), the patient
--   participant, the caller's address and certificate subject. '' when not known.
-- prev_hash, hash: the hash chain (storage/base/audit_chain.h): hash = SHA-256(prev_hash ‖
--   canonical record). Rows written before this version are linked in order by the gateway in
--   the same transaction as this migration (SqliteIndexStore::Migrate).
ALTER TABLE audit_log ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN patient_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN peer TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_log ADD COLUMN hash BLOB;
-- Checkpoints: the chain's link at record `seq`, signed by the gateway's certificate (a DER CMS
-- signature over `statement`, RDG-AUDIT-CHECKPOINT-V1 text). Append-only like the log.
CREATE TABLE audit_checkpoints (
  seq        INTEGER PRIMARY KEY,
  hash       BLOB    NOT NULL,
  signed_at  INTEGER NOT NULL,
  statement  TEXT    NOT NULL,
  signature  BLOB    NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
