-- "This wasn't me" (issue 11 §4). Each report link is tied to the event it reports: its kind
-- and what a lock needs to roll it back (the old address, the method's id).
ALTER TABLE recovery_tokens ADD COLUMN event_kind TEXT;
ALTER TABLE recovery_tokens ADD COLUMN event_detail TEXT;

-- A locked account: password login is refused (after the right password only) until a reset
-- that passes a method older than event_at, or support, unlocks it.
CREATE TABLE account_locks (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    locked_at  BIGINT NOT NULL,
    event_at   BIGINT NOT NULL,
    case_id    TEXT NOT NULL
);

-- Cases for support (the console comes later and builds on this).
CREATE TABLE support_cases (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    account_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    status     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    details    TEXT NOT NULL
);
CREATE INDEX support_cases_status_idx ON support_cases (status, created_at);
