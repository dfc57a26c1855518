-- The support console, first slice (issue 11 §6): an agent claims a case, writes notes on it
-- and resolves it. Every change is also in the audit log, with the agent.

-- The role `support` (granted with `doorman user role add LOGIN support`). The CHECK of
-- account_roles allowed only 'admin', and SQLite cannot alter a CHECK: the table is copied
-- into a new one with the wider CHECK, in SQL both databases accept.
CREATE TABLE account_roles_v2 (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'support')),
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, role)
);
INSERT INTO account_roles_v2 (account_id, role, granted_at) SELECT account_id, role, granted_at FROM account_roles;
DROP TABLE account_roles;
ALTER TABLE account_roles_v2 RENAME TO account_roles;

ALTER TABLE support_cases ADD COLUMN claimed_by TEXT REFERENCES accounts (id) ON DELETE SET NULL;
ALTER TABLE support_cases ADD COLUMN resolved_at BIGINT;

-- Notes: the table came with recovery requests (migration 20261129000013, where the
-- requester writes); an agent's note also names its agent. `author` says who wrote it.
ALTER TABLE support_case_notes ADD COLUMN agent_id TEXT REFERENCES accounts (id) ON DELETE SET NULL;
