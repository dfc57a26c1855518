-- A lock that took away the account's last 2-step methods (S1.12, S11.5): every method was
-- enrolled after the reported event, so a reset by email would unlock an account that had
-- 2-step on with the email alone, which whoever reads the mailbox could do by reporting a
-- security email. Such a lock is lifted by support only (after its identity checks).
ALTER TABLE account_locks ADD COLUMN support_only INTEGER NOT NULL DEFAULT 0;
