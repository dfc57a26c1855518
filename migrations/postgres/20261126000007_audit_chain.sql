-- Tamper evidence (S10.3): each sealed event carries an HMAC over its fields and the hash of
-- the event sealed before it, so an edited, removed or inserted event breaks the chain.
ALTER TABLE audit_events ADD COLUMN chain_hash TEXT;
CREATE INDEX audit_events_unsealed_idx ON audit_events (id) WHERE chain_hash IS NULL;
