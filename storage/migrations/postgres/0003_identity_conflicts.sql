-- What the patient-identity rules refused to link or merge: the administrators' review list
-- (SQLite's migration 0013). The same conflict is listed once.
CREATE TABLE identity_conflicts (
  seq                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  detected_at        BIGINT  NOT NULL,
  kind               INTEGER NOT NULL,
  exam_id            TEXT    NOT NULL,
  origin_institution TEXT    NOT NULL,
  other_exam_id      TEXT    NOT NULL DEFAULT '',
  other_institution  TEXT    NOT NULL DEFAULT '',
  fields             TEXT    NOT NULL DEFAULT '',  -- ", "-separated
  detail             TEXT    NOT NULL DEFAULT '',
  UNIQUE (kind, exam_id, other_exam_id, detail)
);
CREATE INDEX identity_conflicts_by_time ON identity_conflicts (detected_at);
