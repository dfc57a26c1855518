-- Messages to one recipient go out in the order they were written (issue 13): `seq` numbers
-- the outbox's rows in the order they were inserted, and a message is not claimed while an
-- earlier one to the same recipient on the same channel is still pending (src/store/outbox.rs).
-- SQLite cannot add a column that numbers itself: the insert writes MAX(seq) + 1 (one writer at
-- a time, so no two rows get the same number; the unique index would refuse it anyway).
ALTER TABLE outbox ADD COLUMN seq INTEGER;
UPDATE outbox SET seq = rowid;
CREATE UNIQUE INDEX outbox_seq_idx ON outbox (seq);
CREATE INDEX outbox_pending_recipient_idx ON outbox (channel, recipient, seq) WHERE status = 'pending';
