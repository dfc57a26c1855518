-- The outbox: every message is written here in the transaction of the change that caused
-- it, then delivered by a worker. A row is leased (lease_owner, lease_until) while a worker
-- sends it; `body_*` are erased once sent, since they may hold a link with a token.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    account_id      TEXT,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_account_idx ON outbox (account_id, created_at);

-- Work that must not run inside a request, such as the account lookup behind "forgot
-- password" (the request only records the intent, so it answers the same for everyone).
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX jobs_due_idx ON jobs (status, next_attempt_at);

-- Recovery tokens (password reset, "this wasn't me"): only keyed hashes are stored.
CREATE TABLE recovery_tokens (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    purpose       TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    code_hash     TEXT,
    code_attempts BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
CREATE UNIQUE INDEX recovery_tokens_hash_idx ON recovery_tokens (token_hash);
CREATE INDEX recovery_tokens_account_idx ON recovery_tokens (account_id, purpose, created_at);
