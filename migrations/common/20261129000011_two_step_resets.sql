-- 2-step resets after a waiting period (issue 11 §2): someone who knows the password and
-- reads the account's email, but lost every method, asks; the email link starts the wait;
-- after it, the "finish" link and the password remove the methods. Tokens are stored only
-- as keyed hashes, one column per purpose; each is cleared when used.
CREATE TABLE two_step_resets (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- requested (link sent), waiting (confirmed), cancelled, completed
    status             TEXT NOT NULL,
    confirm_hash       TEXT,
    cancel_hash        TEXT,
    finish_hash        TEXT,
    created_at         BIGINT NOT NULL,
    confirm_expires_at BIGINT NOT NULL,
    ready_at           BIGINT,
    -- the "finish" email, written when the wait starts and due at ready_at; a cancel drops it
    finish_message_id  TEXT,
    ended_at           BIGINT
);
CREATE INDEX two_step_resets_account_idx ON two_step_resets (account_id, created_at);
CREATE UNIQUE INDEX two_step_resets_confirm_idx ON two_step_resets (confirm_hash);
CREATE UNIQUE INDEX two_step_resets_cancel_idx ON two_step_resets (cancel_hash);
CREATE UNIQUE INDEX two_step_resets_finish_idx ON two_step_resets (finish_hash);
