-- RDG index, version 11: every text column holds valid UTF-8. Before this version DICOM text was
-- stored in the object's own character set (GB18030, Latin-1, ISO 2022 …), and one such name
-- made whole listings fail. The rows are repaired from the stored objects by the gateway at its
-- next start (ingest/text_repair): a row of `pending_repairs` names the work, and goes when done.
ALTER TABLE objects ADD COLUMN text_notes TEXT NOT NULL DEFAULT '';

CREATE TABLE pending_repairs (
  name       TEXT    PRIMARY KEY,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO pending_repairs (name, created_at)
  VALUES ('exam_text_utf8', CAST(strftime('%s', 'now') AS INTEGER) * 1000000);
