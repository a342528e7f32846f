-- RDG index, version 3: claims. A reader's lease on an exam; the primary key makes "at most one
-- claim per exam" a property of the schema, not only of the code.

CREATE TABLE claims (
  exam_id            TEXT    PRIMARY KEY REFERENCES exams (exam_id),
  holder_user        TEXT    NOT NULL,
  holder_institution TEXT    NOT NULL,
  claimed_at         INTEGER NOT NULL,
  expires_at         INTEGER NOT NULL
);
CREATE INDEX claims_by_expiry ON claims (expires_at);
