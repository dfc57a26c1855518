-- Issue 12: forgot-password intents are merged at intake, at most one job per login per
-- minute. A merged job carries a key (a keyed hash of the login and the minute); a repeat
-- inserts nothing. Other jobs have no key (NULLs never collide in a unique index).
ALTER TABLE jobs ADD COLUMN coalesce_key TEXT;
CREATE UNIQUE INDEX jobs_coalesce_key_idx ON jobs (coalesce_key);
