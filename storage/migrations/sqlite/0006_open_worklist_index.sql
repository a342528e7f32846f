-- RDG index, version 6: worklists read a partial index of the exams still open for reading
-- (ROUTED, CLAIMED, PRELIMINARY) in worklist order, so a page costs a few index entries whatever
-- the number of exams already read.

CREATE INDEX exams_open_worklist ON exams (sla_due_at, priority, seq) WHERE state IN (2, 3, 4);
