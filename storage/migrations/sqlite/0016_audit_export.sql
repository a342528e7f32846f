-- RDG index, version 16: audit export to an external audit repository (issue 17).
-- audit_export: per destination (the repository's "host:port"), the last audit_log seq it
--   confirmed. The audit log itself is the durable queue: records after this seq are still to
--   send, so nothing is lost while the repository is down or the gateway restarts.
CREATE TABLE audit_export (
  destination  TEXT    PRIMARY KEY,
  exported_seq INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);
