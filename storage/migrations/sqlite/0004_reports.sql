-- RDG index, version 4: reports. Every version is a new row (PRELIMINARY, FINAL, AMENDED);
-- nothing is ever overwritten. seq is the delivery cursor of the origin clinic's report feed.

CREATE TABLE reports (
  seq                INTEGER PRIMARY KEY AUTOINCREMENT,
  report_id          TEXT    NOT NULL UNIQUE,
  exam_id            TEXT    NOT NULL REFERENCES exams (exam_id),
  origin_institution TEXT    NOT NULL,
  version            INTEGER NOT NULL,
  status             INTEGER NOT NULL,
  critical           INTEGER NOT NULL,
  reader_user        TEXT    NOT NULL,
  reader_institution TEXT    NOT NULL,
  supersedes         TEXT    NOT NULL DEFAULT '',
  content            BLOB    NOT NULL,  -- rdg.v1.ReportContent, serialized
  canonical          BLOB    NOT NULL,  -- the bytes that were signed
  signature_format   INTEGER NOT NULL,
  signature          BLOB    NOT NULL,
  signer_cert        TEXT    NOT NULL,
  accepted_at        INTEGER NOT NULL,
  acknowledge_by     INTEGER,           -- critical results: acknowledgement deadline
  delivered_at       INTEGER,
  acknowledged_at    INTEGER,
  acknowledged_by    TEXT,
  UNIQUE (exam_id, version)
);
CREATE INDEX reports_feed ON reports (origin_institution, seq);
