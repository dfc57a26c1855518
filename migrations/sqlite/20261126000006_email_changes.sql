-- A requested change of email address, waiting for the link sent to the new address.
-- Only a keyed hash of the link's token is stored.
CREATE TABLE email_changes (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    new_email  TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE UNIQUE INDEX email_changes_token_idx ON email_changes (token_hash);
CREATE INDEX email_changes_account_idx ON email_changes (account_id, created_at);
