-- A claim counts an attempt under each of its keys in one upsert, and needs what the row held
-- before to decide whether the attempt was allowed (issue 12, eleventh pass): the counted row
-- returns its failures and window as they are after (one failure more, or a new window), and
-- the time of the failure before this one is kept here, since the limits' delays run from it.
ALTER TABLE rate_counters ADD COLUMN previous_failure BIGINT NOT NULL DEFAULT 0;
