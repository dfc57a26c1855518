-- Retention finds old rate counters by the hour of their newest attempt instead of its second
-- (issue 12, fourteenth pass). Every claim set `last_failure`, a column of an index, so each of
-- a login's five counts wrote a new row version with an entry in both of the table's indexes,
-- and PostgreSQL could never update a counter in place (a HOT update): about 4 of a login's 7
-- counter updates. The hour changes once an hour, so a claim leaves every index as it is; the
-- free space left on each page (fillfactor) is where the new version goes. Retention still
-- deletes only rows whose `last_failure` is old too (src/store/retention.rs).
-- SQLite's version of this migration has no fillfactor.
ALTER TABLE rate_counters ADD COLUMN touched_hour BIGINT NOT NULL DEFAULT 0;
UPDATE rate_counters SET touched_hour = last_failure / 3600;
DROP INDEX rate_counters_last_failure_idx;
CREATE INDEX rate_counters_touched_idx ON rate_counters (touched_hour);
ALTER TABLE rate_counters SET (fillfactor = 70);
