-- Status links sent after a case's first (issue 11 §3): each support reply to the requester,
-- and the notice that the case is closed, carries a fresh link to the case's status page. The
-- first link stays on its recovery request (`recovery_requests.status_hash`), where replicas of
-- the previous version look for it. Only keyed hashes are stored; retention deletes expired
-- links by `expires_at`.
CREATE TABLE case_status_links (
    hash       TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES support_cases (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX case_status_links_expiry_idx ON case_status_links (expires_at);
