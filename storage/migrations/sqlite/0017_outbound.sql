-- RDG index, version 17: pushes to the hospitals' own systems (issue 20), and the exams by study.
-- outbound_jobs: the durable queue of what RDG owes a destination (a PACS, a HIS): one row per
--   destination, kind (1 images, 2 SR, 3 PDF, 4 ORU) and report version; state 1 pending,
--   2 sent, 3 failed (refused for good, waits for an administrator).
-- outbound_plan: the report seq up to which FINAL and AMENDED versions have been made into jobs.
--   It starts at the reports already signed: pushes begin with the reports signed after this
--   version, not with the history.
CREATE TABLE outbound_jobs (
  job_id          INTEGER PRIMARY KEY AUTOINCREMENT,
  destination     TEXT    NOT NULL,
  kind            INTEGER NOT NULL,
  exam_id         TEXT    NOT NULL,
  report_id       TEXT    NOT NULL,
  state           INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  done_at         INTEGER,
  detail          TEXT    NOT NULL DEFAULT '',
  UNIQUE (destination, kind, report_id)
);
CREATE INDEX outbound_jobs_due ON outbound_jobs (destination, next_attempt_at, job_id)
  WHERE state = 1;
CREATE INDEX outbound_jobs_by_exam ON outbound_jobs (exam_id);

CREATE TABLE outbound_plan (
  id              INTEGER PRIMARY KEY CHECK (id = 1),
  planned_through INTEGER NOT NULL
);
INSERT INTO outbound_plan (id, planned_through) SELECT 1, COALESCE(MAX(seq), 0) FROM reports;

-- DICOMweb finds a study by its Study Instance UID alone (the exams' unique key leads with the
-- institution).
CREATE INDEX exams_by_study ON exams (study_instance_uid);
