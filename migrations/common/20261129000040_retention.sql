-- Retention (issue 13): finished and expired rows are pruned in small batches, and resolved
-- support cases lose their personal data. Every prune statement reads the oldest rows of one
-- of these indexes in order, so a batch costs the same at a million accounts as at ten, and
-- the last, empty one reads nothing.
CREATE INDEX jobs_finished_idx ON jobs (created_at) WHERE status IN ('done', 'failed');
CREATE INDEX outbox_finished_idx ON outbox (created_at) WHERE status IN ('sent', 'dead');
CREATE INDEX sessions_created_idx ON sessions (created_at);
CREATE INDEX rate_counters_last_failure_idx ON rate_counters (last_failure);
CREATE INDEX recovery_tokens_expires_idx ON recovery_tokens (expires_at);
CREATE INDEX otp_codes_expires_idx ON otp_codes (expires_at);
CREATE INDEX approvals_expires_idx ON approvals (expires_at);
CREATE INDEX email_changes_expires_idx ON email_changes (expires_at);
CREATE INDEX trusted_devices_expires_idx ON trusted_devices (expires_at);
CREATE INDEX recovery_requests_unconfirmed_idx ON recovery_requests (expires_at) WHERE case_id IS NULL;
-- The newest event before the audit retention's cut-off, in one index read.
CREATE INDEX audit_events_at_idx ON audit_events (at, id);

-- When a resolved case's personal data (contact address, details, notes, the request's
-- hints) was blanked; the row and its status stay.
ALTER TABLE support_cases ADD COLUMN erased_at BIGINT;
CREATE INDEX support_cases_erasable_idx ON support_cases (resolved_at) WHERE status = 'resolved' AND erased_at IS NULL;

-- Before audit events up to event_id are deleted, the chain hash of event_id is kept here, so
-- that `doorman audit verify` starts from it (S10.3). `seal` is an HMAC under the server key
-- of (event_id, chain_hash, event_at): without the key nobody can add a checkpoint that
-- would hide a deleted prefix of the log.
CREATE TABLE audit_checkpoints (
    event_id   BIGINT PRIMARY KEY,
    chain_hash TEXT NOT NULL,
    event_at   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    seal       TEXT NOT NULL
);

-- Checks that failed open (the Pwned Passwords check, S4.4), counted per UTC day for
-- `doorman mail status`. No password or hash is kept: only counts and the last error.
CREATE TABLE fail_open_counts (
    check_name TEXT NOT NULL,
    day        BIGINT NOT NULL,
    failures   BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (check_name, day)
);
CREATE INDEX fail_open_counts_day_idx ON fail_open_counts (day);
