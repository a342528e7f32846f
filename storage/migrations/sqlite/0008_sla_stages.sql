-- RDG index, version 8: SLA stage clocks. One row per exam and stage (rdg.v1.Stage):
--   1 received -> first claim, 2 received -> first final report (started on receipt),
--   3 final -> acknowledged by the clinic, 4 critical result acknowledgement (started by the
--   final report). A row ends when its stage completes; a breach is recorded on the row when it
--   is detected (breached_at), with the due time kept for the overrun. Grouping attributes are
--   copied onto the row so turnaround figures read one table through a window index.
-- due_at is 9223372036854775807 when no SLA policy sets a target.

CREATE TABLE exam_stages (
  exam_id               TEXT    NOT NULL REFERENCES exams (exam_id),
  stage                 INTEGER NOT NULL,
  origin_institution    TEXT    NOT NULL,
  queue                 TEXT    NOT NULL DEFAULT '',
  exam_type             TEXT    NOT NULL DEFAULT '',
  priority              INTEGER NOT NULL,
  reviewing_institution TEXT    NOT NULL DEFAULT '',  -- who completed it (reader's institution)
  started_at            INTEGER NOT NULL,
  due_at                INTEGER NOT NULL,
  ended_at              INTEGER,                      -- NULL while the stage runs
  end_seq               INTEGER,                      -- completion order, for incremental feeds
  breached_at           INTEGER,                      -- when the breach was detected
  PRIMARY KEY (exam_id, stage)
);
-- Running stages by due time: the breach sweep reads only what has just fallen due.
CREATE INDEX exam_stages_running ON exam_stages (due_at)
  WHERE ended_at IS NULL AND breached_at IS NULL;
-- Completed stages by completion time: turnaround over a window reads that window only.
CREATE INDEX exam_stages_ended ON exam_stages (ended_at) WHERE ended_at IS NOT NULL;
CREATE UNIQUE INDEX exam_stages_end_seq ON exam_stages (end_seq) WHERE end_seq IS NOT NULL;
-- (stage, ended_at) make breach counting read the index only.
CREATE INDEX exam_stages_breached ON exam_stages (breached_at, stage, ended_at)
  WHERE breached_at IS NOT NULL;
CREATE INDEX exam_stages_open_breaches ON exam_stages (stage, due_at)
  WHERE breached_at IS NOT NULL AND ended_at IS NULL;

-- Exams indexed before this version: their receipt stages, ended by the first CLAIMED and the
-- first FINAL event (no claim target is known any more; the final target is the exam's).
INSERT INTO exam_stages (exam_id, stage, origin_institution, queue, exam_type, priority,
                         started_at, due_at, ended_at)
SELECT exam_id, 1, origin_institution, queue, exam_type, priority, received_at,
       9223372036854775807,
       (SELECT min(at) FROM exam_events v WHERE v.exam_id = exams.exam_id AND v.state = 3)
FROM exams;
INSERT INTO exam_stages (exam_id, stage, origin_institution, queue, exam_type, priority,
                         started_at, due_at, ended_at)
SELECT exam_id, 2, origin_institution, queue, exam_type, priority, received_at, sla_due_at,
       (SELECT min(at) FROM exam_events v WHERE v.exam_id = exams.exam_id AND v.state = 5)
FROM exams;
UPDATE exam_stages SET end_seq = rowid WHERE ended_at IS NOT NULL;
