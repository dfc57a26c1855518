-- "No access to my email" (issue 11 §3): a recovery request waits here until its contact
-- address is proved by the code sent to it; then it opens a support case of kind
-- 'recovery_request'. Codes and status links are stored only as keyed hashes.
CREATE TABLE recovery_requests (
    id                TEXT PRIMARY KEY,
    contact_email     TEXT NOT NULL,
    code_hash         TEXT NOT NULL,
    account_id        TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    details           TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    tries             BIGINT NOT NULL DEFAULT 0,
    confirmed_at      BIGINT,
    case_id           TEXT REFERENCES support_cases (id) ON DELETE CASCADE,
    status_hash       TEXT,
    status_expires_at BIGINT
);
CREATE INDEX recovery_requests_contact_idx ON recovery_requests (contact_email, created_at);
CREATE UNIQUE INDEX recovery_requests_status_idx ON recovery_requests (status_hash);

-- The verified contact address of a case, for support.
ALTER TABLE support_cases ADD COLUMN contact_email TEXT;

-- What the requester (and later, support) adds to a case.
CREATE TABLE support_case_notes (
    id         TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES support_cases (id) ON DELETE CASCADE,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX support_case_notes_case_idx ON support_case_notes (case_id, created_at);
