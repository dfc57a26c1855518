-- Every change to an account's 2-step methods, appended and never updated (S10.4): which method,
-- what happened to it (added, removed, restored, renewed), by whom or through which flow, and
-- when. `second_factors` keeps removed methods too, but a lock's roll-back clears a removal
-- (`removed_at` back to NULL) and a row says nothing of how it came or went; this table keeps
-- both. Read newest first, a page at a time, by (account, id).
CREATE TABLE factor_history (
    id         BIGSERIAL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    factor_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    label      TEXT NOT NULL,
    change     TEXT NOT NULL CHECK (change IN ('added', 'removed', 'restored', 'renewed')),
    changed_by TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX factor_history_account_idx ON factor_history (account_id, id);

-- What `second_factors` already knows, in time order: enrolments and removals from before this
-- table, by whom unknown.
INSERT INTO factor_history (account_id, factor_id, kind, label, change, changed_by, at)
SELECT account_id, id, kind, label, change, 'before_history', at FROM (
    SELECT account_id, id, kind, label, 'added' AS change, confirmed_at AS at, 0 AS step FROM second_factors WHERE confirmed_at IS NOT NULL
    UNION ALL
    SELECT account_id, id, kind, label, 'removed', removed_at, 1 FROM second_factors WHERE confirmed_at IS NOT NULL AND removed_at IS NOT NULL
) known
ORDER BY at, step, id;
