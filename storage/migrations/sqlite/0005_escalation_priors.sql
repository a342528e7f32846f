-- RDG index, version 5: automatic escalation and priors.
-- claim_due_at: when an unclaimed exam misses its SLA claim target in its current queue.

ALTER TABLE exams ADD COLUMN claim_due_at INTEGER NOT NULL DEFAULT 9223372036854775807;
CREATE INDEX exams_unclaimed ON exams (state, claim_due_at);
CREATE INDEX exams_by_national_id ON exams (patient_national_id) WHERE patient_national_id != '';
CREATE INDEX exams_by_origin_patient ON exams (origin_institution, patient_id);
