-- Stage completions are numbered for the incremental feed when the feed is read, no longer in
-- the transaction that ends the stage: a claim or a report then takes no index-wide lock, so
-- claims through every gateway commit side by side. The completions not numbered yet:
CREATE INDEX exam_stages_unnumbered ON exam_stages (ended_at)
  WHERE ended_at IS NOT NULL AND end_seq IS NULL;
-- The open breaches, most overdue first (rdg-admin breaches --open, the dashboard): read in order,
-- not sorted from all of them.
CREATE INDEX exam_stages_open_breaches_by_due ON exam_stages (due_at)
  WHERE breached_at IS NOT NULL AND ended_at IS NULL;
