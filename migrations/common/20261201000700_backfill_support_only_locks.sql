-- Locks made before `support_only` existed (20261201000500) that took away every 2-step
-- method: no method from before the reported event is left, and the lock removed at least
-- one. They are marked, so a reset by email no longer lifts them either (S1.12).
UPDATE account_locks SET support_only = 1
WHERE NOT EXISTS (
    SELECT 1 FROM second_factors f WHERE f.account_id = account_locks.account_id AND f.confirmed_at IS NOT NULL
      AND f.removed_at IS NULL AND f.created_at < account_locks.event_at AND f.confirmed_at < account_locks.event_at
) AND EXISTS (
    SELECT 1 FROM second_factors f WHERE f.account_id = account_locks.account_id AND f.confirmed_at IS NOT NULL
      AND f.removed_at >= account_locks.locked_at
);
