-- Help center, status banners and account roles (issue 5).

-- Roles granted with `doorman user role add USERNAME admin`.
CREATE TABLE account_roles (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('admin')),
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, role)
);

-- Articles in Markdown; `related` is a comma-separated list of slugs.
CREATE TABLE help_articles (
    slug       TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    category   TEXT NOT NULL,
    body       TEXT NOT NULL,
    related    TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One vote per voter and article, changeable. `voter` is "account:<id>" or
-- "visitor:<keyed hash of the visitor cookie>". `helpful` is 0 or 1.
CREATE TABLE help_votes (
    article_slug TEXT NOT NULL REFERENCES help_articles (slug) ON DELETE CASCADE,
    voter        TEXT NOT NULL,
    helpful      BIGINT NOT NULL CHECK (helpful IN (0, 1)),
    choice       TEXT,
    comment      TEXT NOT NULL DEFAULT '',
    voted_at     BIGINT NOT NULL,
    PRIMARY KEY (article_slug, voter)
);
CREATE INDEX help_votes_time_idx ON help_votes (article_slug, voted_at);

-- The banner document exactly as imported (the seed's JSON shape), one row.
CREATE TABLE banner_document (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    document   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A version per kind of content, bumped by every change: each replica polls these and
-- reloads its in-memory copy when one moves.
CREATE TABLE content_versions (
    name       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO content_versions (name, version, updated_at) VALUES ('help', 0, 0), ('banners', 0, 0);
