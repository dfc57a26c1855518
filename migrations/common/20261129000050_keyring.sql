-- Keys that can be rotated (issue 13). One row per data key: `wrapped` is the key sealed
-- under the operator's secret key (the root); the original key's row has none (it is the
-- root itself, and every value without a key id was made under it). A key signs from
-- `active_from`, set later than every replica's next reload; `retired_at` stops it being
-- accepted (the audit chain still verifies the links it sealed).
CREATE TABLE keyring (
    id          TEXT PRIMARY KEY,
    wrapped     TEXT,
    created_at  BIGINT NOT NULL,
    active_from BIGINT NOT NULL,
    retired_at  BIGINT
);
