-- The rest of the index as SQLite's migrations 0001-0016 left it: objects, the exams' history,
-- claims, reports, lab results and SLA stage clocks. Two counters (feed_heads) number the report
-- feed and stage completions: a transaction takes the next number by updating its row and holds
-- that row locked until it commits, so numbers follow commit order whichever gateway writes and
-- an incremental reader never skips a row that commits late.
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
  size                BIGINT  NOT NULL,
  sha256              TEXT    NOT NULL,
  received_at         BIGINT  NOT NULL,
  content_key         TEXT    NOT NULL DEFAULT '',
  text_notes          TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (origin_institution, sop_instance_uid)
);
CREATE INDEX objects_by_exam ON objects (exam_id, series_instance_uid, instance_number,
                                         sop_instance_uid);
CREATE INDEX objects_by_content ON objects (sha256, origin_institution);

CREATE TABLE exam_events (
  seq      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  exam_id  TEXT    NOT NULL REFERENCES exams (exam_id),
  state    INTEGER NOT NULL,
  at       BIGINT  NOT NULL,
  actor    TEXT    NOT NULL,
  detail   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX exam_events_by_exam ON exam_events (exam_id, seq);

-- At most one claim per exam (the key); every change of a claim first locks its exam's row.
CREATE TABLE claims (
  exam_id            TEXT    PRIMARY KEY REFERENCES exams (exam_id),
  holder_user        TEXT    NOT NULL,
  holder_institution TEXT    NOT NULL,
  claimed_at         BIGINT  NOT NULL,
  expires_at         BIGINT  NOT NULL
);
CREATE INDEX claims_by_expiry ON claims (expires_at);

CREATE TABLE reports (
  seq                BIGINT  PRIMARY KEY,  -- from feed_heads 'reports': commit order
  report_id          TEXT    NOT NULL UNIQUE,
  exam_id            TEXT    NOT NULL REFERENCES exams (exam_id),
  origin_institution TEXT    NOT NULL,
  version            INTEGER NOT NULL,
  status             INTEGER NOT NULL,
  critical           BOOLEAN NOT NULL,
  reader_user        TEXT    NOT NULL,
  reader_institution TEXT    NOT NULL,
  supersedes         TEXT    NOT NULL DEFAULT '',
  content            BYTEA   NOT NULL,  -- rdg.v1.ReportContent, serialized
  canonical          BYTEA   NOT NULL,  -- the bytes that were signed
  signature_format   INTEGER NOT NULL,
  signature          BYTEA   NOT NULL,
  signer_cert        TEXT    NOT NULL,
  accepted_at        BIGINT  NOT NULL,
  acknowledge_by     BIGINT,            -- critical results: acknowledgement deadline
  delivered_at       BIGINT,
  acknowledged_at    BIGINT,
  acknowledged_by    TEXT,
  UNIQUE (exam_id, version)
);
CREATE INDEX reports_feed ON reports (origin_institution, seq);

CREATE TABLE lab_results (
  seq                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  exam_id            TEXT    NOT NULL REFERENCES exams (exam_id),
  origin_institution TEXT    NOT NULL,
  code               TEXT    NOT NULL,
  coding_system      TEXT    NOT NULL DEFAULT '',
  name               TEXT    NOT NULL DEFAULT '',
  value              TEXT    NOT NULL DEFAULT '',
  numeric            DOUBLE PRECISION,             -- NULL when the value is not a number
  units              TEXT    NOT NULL DEFAULT '',
  reference_range    TEXT    NOT NULL DEFAULT '',
  abnormal_flags     TEXT    NOT NULL DEFAULT '',  -- '~'-separated, as in HL7
  observed_at        TEXT    NOT NULL DEFAULT '',  -- HL7 TS as received
  critical           BOOLEAN NOT NULL DEFAULT FALSE,
  order_service      TEXT    NOT NULL DEFAULT '',
  result_status      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX lab_results_by_exam ON lab_results (exam_id, code);

CREATE TABLE exam_stages (
  exam_id               TEXT    NOT NULL REFERENCES exams (exam_id),
  stage                 INTEGER NOT NULL,
  origin_institution    TEXT    NOT NULL,
  queue                 TEXT    NOT NULL DEFAULT '',
  exam_type             TEXT    NOT NULL DEFAULT '',
  priority              INTEGER NOT NULL,
  reviewing_institution TEXT    NOT NULL DEFAULT '',  -- who completed it (reader's institution)
  started_at            BIGINT  NOT NULL,
  due_at                BIGINT  NOT NULL,
  ended_at              BIGINT,                       -- NULL while the stage runs
  end_seq               BIGINT,                       -- from feed_heads 'stages': commit order
  breached_at           BIGINT,                       -- when the breach was detected
  PRIMARY KEY (exam_id, stage)
);
CREATE INDEX exam_stages_running ON exam_stages (due_at)
  WHERE ended_at IS NULL AND breached_at IS NULL;
CREATE INDEX exam_stages_ended ON exam_stages (ended_at) WHERE ended_at IS NOT NULL;
CREATE UNIQUE INDEX exam_stages_end_seq ON exam_stages (end_seq) WHERE end_seq IS NOT NULL;
CREATE INDEX exam_stages_breached ON exam_stages (breached_at, stage, ended_at)
  WHERE breached_at IS NOT NULL;
CREATE INDEX exam_stages_open_breaches ON exam_stages (stage, due_at)
  WHERE breached_at IS NOT NULL AND ended_at IS NULL;

CREATE TABLE feed_heads (
  name TEXT   PRIMARY KEY,
  seq  BIGINT NOT NULL
);
INSERT INTO feed_heads (name, seq) VALUES ('reports', 0), ('stages', 0);
