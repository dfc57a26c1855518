-- "Has this account signed in before?" (a sign-in from a new browser sends the new-device email
-- only then) read the account's events in id order until a successful sign-in: for an account
-- that never signed in, every event it has, and each refused guess at it adds one (issue 12,
-- tenth pass). Only successful sign-ins are in this index, so the answer is one index probe,
-- and only those events pay for its upkeep. The query names the event as this literal, which
-- both databases need to use a partial index.
CREATE INDEX audit_events_sign_in_idx ON audit_events (account_id) WHERE event = 'login_succeeded';
