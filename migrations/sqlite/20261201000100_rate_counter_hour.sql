-- Retention finds old rate counters by the hour of their newest attempt instead of its second
-- (issue 12, fourteenth pass): see the PostgreSQL version of this migration, which also leaves
-- free space on the table's pages. Retention still deletes only rows whose `last_failure` is
-- old too (src/store/retention.rs).
ALTER TABLE rate_counters ADD COLUMN touched_hour BIGINT NOT NULL DEFAULT 0;
UPDATE rate_counters SET touched_hour = last_failure / 3600;
DROP INDEX rate_counters_last_failure_idx;
CREATE INDEX rate_counters_touched_idx ON rate_counters (touched_hour);
