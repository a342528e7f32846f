-- RDG index, version 14: the escalation travels with the exam; audit entries by action.
-- escalated_by, escalation_reason: who moved the exam to the consultation queue above ("system"
--   for an SLA escalation) and why, so that the receiving desk reads it on its worklist and in
--   GetExam without digging through the history. Empty when never escalated; the latest
--   escalation wins.
ALTER TABLE exams ADD COLUMN escalated_by TEXT NOT NULL DEFAULT '';
ALTER TABLE exams ADD COLUMN escalation_reason TEXT NOT NULL DEFAULT '';
-- Audit entries of one action, newest first (the dashboard's priors seen by breaking the glass)
-- without reading the whole log.
CREATE INDEX audit_log_by_action ON audit_log (action, seq);
