-- RDG index, version 12: Patient's Age (0010,1010) as the modality wrote it ("045Y", "011M",
-- "003W", "020D"), kept with the exam: many devices send an age and no birth date, and the age at
-- the exam is shown on every worklist row and printout. Empty for exams indexed before (their age
-- is computed from the birth date when there is one) and when the object gives none or a
-- malformed one.
ALTER TABLE exams ADD COLUMN patient_age TEXT NOT NULL DEFAULT '';
