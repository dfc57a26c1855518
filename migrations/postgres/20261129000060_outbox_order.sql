-- Messages to one recipient go out in the order they were written (issue 13): `seq` numbers
-- the outbox's rows in the order they were inserted, and a message is not claimed while an
-- earlier one to the same recipient on the same channel is still pending (src/store/outbox.rs).
-- SQLite's version of this migration fills `seq` at insert time instead.
ALTER TABLE outbox ADD COLUMN seq BIGSERIAL;
CREATE INDEX outbox_pending_recipient_idx ON outbox (channel, recipient, seq) WHERE status = 'pending';
