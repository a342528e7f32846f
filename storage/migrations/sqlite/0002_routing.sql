-- RDG index, version 2: routing. Every exam is routed once, in the transaction that creates it;
-- sla_due_at (when its final report is due) orders worklists.

ALTER TABLE exams ADD COLUMN sla_due_at INTEGER NOT NULL DEFAULT 9223372036854775807;
CREATE INDEX exams_worklist ON exams (queue, state, sla_due_at, priority);
