-- RDG index, version 7: ECG and lab results.
-- exams.critical: a critical value (危急值) was found on ingest; the exam reads as STAT and its
-- reports need acknowledgement by a deadline.
-- lab_results: one row per HL7 v2 OBX of a LAB exam, so that a reader sees a patient's earlier
-- values of the same tests from any institution (mutual recognition of results).

ALTER TABLE exams ADD COLUMN critical INTEGER NOT NULL DEFAULT 0;

CREATE TABLE lab_results (
  seq                INTEGER PRIMARY KEY AUTOINCREMENT,
  exam_id            TEXT    NOT NULL REFERENCES exams (exam_id),
  origin_institution TEXT    NOT NULL,
  code               TEXT    NOT NULL,
  coding_system      TEXT    NOT NULL DEFAULT '',
  name               TEXT    NOT NULL DEFAULT '',
  value              TEXT    NOT NULL DEFAULT '',
  numeric            REAL,                          -- NULL when the value is not a number
  units              TEXT    NOT NULL DEFAULT '',
  reference_range    TEXT    NOT NULL DEFAULT '',
  abnormal_flags     TEXT    NOT NULL DEFAULT '',   -- '~'-separated, as in HL7
  observed_at        TEXT    NOT NULL DEFAULT '',   -- HL7 TS as received
  critical           INTEGER NOT NULL DEFAULT 0,
  order_service      TEXT    NOT NULL DEFAULT '',
  result_status      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX lab_results_by_exam ON lab_results (exam_id, code);
