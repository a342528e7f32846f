-- Version 7: sent outbound jobs are kept for outbound.keep_sent_days, then purged
-- (OutboundStore::PurgeSent), found by when they were sent.
CREATE INDEX outbound_jobs_sent ON outbound_jobs (done_at) WHERE state = 2;
-- A destination's last sent job (kept by the purge; its time is in /metrics).
CREATE INDEX outbound_jobs_last_sent ON outbound_jobs (destination, done_at) WHERE state = 2;
