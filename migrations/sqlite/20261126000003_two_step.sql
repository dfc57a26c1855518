-- 2-step verification. A session now knows its stage (a password alone on an account with
-- 2-step reaches only the second step) and when its owner last proved who they are.
ALTER TABLE sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'full';
ALTER TABLE sessions ADD COLUMN verified_at BIGINT NOT NULL DEFAULT 0;

-- Every method ever enrolled, removed ones included (history, S10.4).
CREATE TABLE second_factors (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('totp', 'sms', 'email', 'security_question', 'recovery_code')),
    label          TEXT NOT NULL,
    secret         TEXT NOT NULL,
    is_default     BIGINT NOT NULL DEFAULT 0,
    confirmed_at   BIGINT,
    last_used_step BIGINT,
    created_at     BIGINT NOT NULL,
    removed_at     BIGINT
);
CREATE INDEX second_factors_account_idx ON second_factors (account_id);

CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE UNIQUE INDEX recovery_codes_hash_idx ON recovery_codes (account_id, code_hash);

-- Codes sent by SMS or email, bound to one session (or reset link) and one method.
CREATE TABLE otp_codes (
    id         TEXT PRIMARY KEY,
    binding    TEXT NOT NULL,
    factor_id  TEXT NOT NULL REFERENCES second_factors (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX otp_codes_binding_idx ON otp_codes (binding, factor_id, created_at);
CREATE INDEX otp_codes_factor_idx ON otp_codes (factor_id, created_at);

-- Step-up bound to one transaction: the verification approves exactly this context
-- (amount and destination), once.
CREATE TABLE approvals (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    binding     TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    context     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    approved_at BIGINT,
    used_at     BIGINT
);
CREATE INDEX approvals_account_idx ON approvals (account_id, created_at);

-- The demo payments page's withdrawals.
CREATE TABLE withdrawals (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    amount_cents BIGINT NOT NULL,
    destination  TEXT NOT NULL,
    approval_id  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL
);
CREATE INDEX withdrawals_account_idx ON withdrawals (account_id, created_at);
