-- The support console's actions (issue 11 §6): the identity checklist of a case, and the
-- actions that follow the two-person rule with their cooling-off period.

-- What an agent checked about the person behind a case, by whom and when. `contact_verified`
-- is recorded by doorman itself when a recovery request's contact address is proved by its
-- code (agent_id NULL); it never counts toward the two kinds of evidence an action needs.
CREATE TABLE support_case_checks (
    id         TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES support_cases (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('contact_verified', 'last_sign_in', 'sign_in_country', 'payout_method', 'account_age', 'other')),
    note       TEXT NOT NULL,
    agent_id   TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX support_case_checks_case_idx ON support_case_checks (case_id, created_at);

-- Existing verified contacts get their check too.
INSERT INTO support_case_checks (id, case_id, kind, note, agent_id, created_at)
SELECT 'contact-' || id, id, 'contact_verified', 'The contact address was proved by the code sent to it.', NULL, created_at
FROM support_cases WHERE contact_email IS NOT NULL;

-- A two-person action: proposed by one agent, approved by another within 24 hours, bound to
-- its account and target (the case's contact address as it was when proposed), applied after
-- the cooling-off period unless cancelled. Only keyed hashes of cancel links are stored.
CREATE TABLE support_actions (
    id               TEXT PRIMARY KEY,
    case_id          TEXT NOT NULL REFERENCES support_cases (id) ON DELETE CASCADE,
    account_id       TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    action           TEXT NOT NULL CHECK (action IN ('reset_two_step', 'change_email')),
    target           TEXT NOT NULL,
    reason           TEXT NOT NULL,
    proposed_by      TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    proposed_at      BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    approved_by      TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    approved_at      BIGINT,
    approval_reason  TEXT,
    effective_at     BIGINT,
    cancel_hash      TEXT,
    status           TEXT NOT NULL CHECK (status IN ('proposed', 'approved', 'applied', 'cancelled', 'expired', 'failed')),
    ended_at         BIGINT
);
-- One action waits per account at a time.
CREATE UNIQUE INDEX support_actions_pending_idx ON support_actions (account_id) WHERE status IN ('proposed', 'approved');
CREATE INDEX support_actions_case_idx ON support_actions (case_id, proposed_at);
CREATE UNIQUE INDEX support_actions_cancel_idx ON support_actions (cancel_hash);
