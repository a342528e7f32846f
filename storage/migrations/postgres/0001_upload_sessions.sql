-- The PostgreSQL index, first part: resumable upload sessions (SessionStore). Times are
-- microseconds since the epoch (BIGINT), as in the SQLite index; "user" is reserved here, so the
-- column is user_name.
CREATE TABLE upload_sessions (
  session_id  TEXT     PRIMARY KEY,
  institution TEXT     NOT NULL,
  user_name   TEXT     NOT NULL,
  kind        INTEGER  NOT NULL,
  size        BIGINT   NOT NULL,
  sha256      TEXT     NOT NULL,
  priority    INTEGER  NOT NULL,
  client_ref  TEXT     NOT NULL DEFAULT '',
  created_at  BIGINT   NOT NULL,
  updated_at  BIGINT   NOT NULL
);
CREATE INDEX upload_sessions_by_content ON upload_sessions (institution, sha256, size);
CREATE INDEX upload_sessions_by_institution ON upload_sessions (institution, created_at, session_id);
