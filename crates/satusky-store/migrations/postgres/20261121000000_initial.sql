-- Initial schema (PostgreSQL). Keep in step with migrations/sqlite: same
-- tables, columns, constraints and indexes, same meaning.
--
-- Ids are UUIDv7 strings in TEXT COLLATE "C": compared byte-wise as on
-- SQLite, so they sort by time whatever the database's locale.
-- Timestamps are TIMESTAMPTZ (microsecond precision).
-- The store maps unique violations to conflict names by constraint name:
-- keep the names.

CREATE TABLE users (
    id            TEXT COLLATE "C" NOT NULL,
    email         TEXT             NOT NULL, -- stored lowercased
    name          TEXT             NOT NULL,
    password_hash TEXT             NOT NULL,
    created_at    TIMESTAMPTZ      NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE sessions (
    id         TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT             NOT NULL,
    created_at TIMESTAMPTZ      NOT NULL,
    expires_at TIMESTAMPTZ      NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Every namespace name ever reserved. Rows are never deleted.
CREATE TABLE namespaces (
    name        TEXT        NOT NULL,
    reserved_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT namespaces_pkey PRIMARY KEY (name)
);

CREATE TABLE orgs (
    id         TEXT COLLATE "C" NOT NULL,
    slug       TEXT             NOT NULL,
    name       TEXT             NOT NULL,
    -- Deferred: create_org inserts the org first, so that a taken slug is
    -- reported before a reserved namespace.
    namespace  TEXT             NOT NULL REFERENCES namespaces (name) DEFERRABLE INITIALLY DEFERRED,
    created_at TIMESTAMPTZ      NOT NULL,
    CONSTRAINT orgs_pkey PRIMARY KEY (id),
    CONSTRAINT orgs_slug_key UNIQUE (slug),
    CONSTRAINT orgs_namespace_key UNIQUE (namespace)
);

CREATE TABLE memberships (
    org_id     TEXT COLLATE "C" NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT             NOT NULL,
    created_at TIMESTAMPTZ      NOT NULL,
    CONSTRAINT memberships_pkey PRIMARY KEY (org_id, user_id),
    CONSTRAINT memberships_role_check CHECK (role IN ('owner', 'admin', 'member', 'viewer'))
);

-- list_user_orgs: a user's memberships in org id order.
CREATE INDEX memberships_user_id_org_id_idx ON memberships (user_id, org_id);

CREATE TABLE api_tokens (
    id           TEXT COLLATE "C" NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT             NOT NULL,
    prefix       TEXT             NOT NULL,
    token_hash   TEXT             NOT NULL,
    org_id       TEXT COLLATE "C" REFERENCES orgs (id) ON DELETE CASCADE, -- NULL: all of the user's orgs
    enabled      BOOLEAN          NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    created_at   TIMESTAMPTZ      NOT NULL,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT api_tokens_user_id_name_key UNIQUE (user_id, name),
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash)
);

-- list_tokens: a user's tokens in id order.
CREATE INDEX api_tokens_user_id_id_idx ON api_tokens (user_id, id);
-- delete_org's cascade to org-scoped tokens.
CREATE INDEX api_tokens_org_id_idx ON api_tokens (org_id);

-- No foreign keys: entries outlive their organization and actor.
CREATE TABLE audit (
    id          TEXT COLLATE "C" NOT NULL,
    org_id      TEXT COLLATE "C" NOT NULL,
    actor_id    TEXT,
    actor_email TEXT,
    action      TEXT             NOT NULL,
    target      TEXT             NOT NULL,
    request_id  TEXT             NOT NULL,
    outcome     TEXT             NOT NULL,
    at          TIMESTAMPTZ      NOT NULL,
    CONSTRAINT audit_pkey PRIMARY KEY (id),
    CONSTRAINT audit_outcome_check CHECK (outcome IN ('success', 'denied', 'failure'))
);

-- list_audit: an organization's entries newest first (keyset on id).
CREATE INDEX audit_org_id_id_idx ON audit (org_id, id);
