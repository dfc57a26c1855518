-- One running 2-step reset per account (issue 11 §2, S3.8), held by the database: counted and
-- then inserted, parallel requests on PostgreSQL left several running, and a sign-in with a
-- method cancelled only one of them. Accounts that have more than one now have them all
-- cancelled (a race made them; the owner can ask again), with their unsent finish emails.
DELETE FROM outbox WHERE status = 'pending' AND id IN (
    SELECT r.finish_message_id FROM two_step_resets r
    WHERE r.finish_message_id IS NOT NULL AND r.status IN ('requested', 'waiting')
      AND (SELECT COUNT(*) FROM two_step_resets o WHERE o.account_id = r.account_id AND o.status IN ('requested', 'waiting')) > 1
);
UPDATE two_step_resets SET status = 'cancelled', confirm_hash = NULL, cancel_hash = NULL, finish_hash = NULL, ended_at = created_at
WHERE status IN ('requested', 'waiting')
  AND (SELECT COUNT(*) FROM two_step_resets o WHERE o.account_id = two_step_resets.account_id AND o.status IN ('requested', 'waiting')) > 1;
CREATE UNIQUE INDEX two_step_resets_one_running_idx ON two_step_resets (account_id) WHERE status IN ('requested', 'waiting');
