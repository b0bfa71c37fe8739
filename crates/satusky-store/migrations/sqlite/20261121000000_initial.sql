-- Initial schema (SQLite). Keep in step with migrations/postgres: same tables,
-- columns, constraints and indexes, same meaning.
--
-- Ids are UUIDv7 strings (TEXT, compared byte-wise, so they sort by time).
-- Timestamps are INTEGER microseconds since the Unix epoch (UTC): they
-- round-trip exactly at microsecond precision and sort and compare correctly.
-- Constraint names match the PostgreSQL ones; the store maps unique
-- violations to conflict names from SQLite's "UNIQUE constraint failed:
-- table.column" messages.

CREATE TABLE users (
    id            TEXT    NOT NULL,
    email         TEXT    NOT NULL, -- stored lowercased
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email)
) STRICT;

CREATE TABLE sessions (
    id         TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
) STRICT;

CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Every namespace name ever reserved. Rows are never deleted.
CREATE TABLE namespaces (
    name        TEXT    NOT NULL,
    reserved_at INTEGER NOT NULL,
    CONSTRAINT namespaces_pkey PRIMARY KEY (name)
) STRICT;

CREATE TABLE orgs (
    id         TEXT    NOT NULL,
    slug       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    -- Deferred: create_org inserts the org first, so that a taken slug is
    -- reported before a reserved namespace.
    namespace  TEXT    NOT NULL REFERENCES namespaces (name) DEFERRABLE INITIALLY DEFERRED,
    created_at INTEGER NOT NULL,
    CONSTRAINT orgs_pkey PRIMARY KEY (id),
    CONSTRAINT orgs_slug_key UNIQUE (slug),
    CONSTRAINT orgs_namespace_key UNIQUE (namespace)
) STRICT;

CREATE TABLE memberships (
    org_id     TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT memberships_pkey PRIMARY KEY (org_id, user_id),
    CONSTRAINT memberships_role_check CHECK (role IN ('owner', 'admin', 'member', 'viewer'))
) STRICT;

-- list_user_orgs: a user's memberships in org id order.
CREATE INDEX memberships_user_id_org_id_idx ON memberships (user_id, org_id);

CREATE TABLE api_tokens (
    id           TEXT    NOT NULL,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL,
    org_id       TEXT    REFERENCES orgs (id) ON DELETE CASCADE, -- NULL: all of the user's orgs
    enabled      INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    created_at   INTEGER NOT NULL,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT api_tokens_user_id_name_key UNIQUE (user_id, name),
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_enabled_check CHECK (enabled IN (0, 1))
) STRICT;

-- list_tokens: a user's tokens in id order.
CREATE INDEX api_tokens_user_id_id_idx ON api_tokens (user_id, id);
-- delete_org's cascade to org-scoped tokens.
CREATE INDEX api_tokens_org_id_idx ON api_tokens (org_id);

-- No foreign keys: entries outlive their organization and actor.
CREATE TABLE audit (
    id          TEXT    NOT NULL,
    org_id      TEXT    NOT NULL,
    actor_id    TEXT,
    actor_email TEXT,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    CONSTRAINT audit_pkey PRIMARY KEY (id),
    CONSTRAINT audit_outcome_check CHECK (outcome IN ('success', 'denied', 'failure'))
) STRICT;

-- list_audit: an organization's entries newest first (keyset on id).
CREATE INDEX audit_org_id_id_idx ON audit (org_id, id);
