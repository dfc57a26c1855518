-- Trusted devices (S3.9): browsers that completed a full sign-in, by a keyed hash of their
-- cookie. Their password attempts have their own budget in rate_counters.
CREATE TABLE trusted_devices (
    id_hash    TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX trusted_devices_account_idx ON trusted_devices (account_id);
