-- Apps, releases, idempotency keys, sealed secret versions, app events,
-- clusters and platform administrators (SQLite). Keep in step with
-- migrations/postgres/20261121000100_apps.sql.
--
-- Counters (generation, release numbers, versions, seq) are INTEGER (u64 in
-- Rust, checked on the way in and out). JSON documents (status, spec) are
-- TEXT. Release causes are not CHECKed: a new cause must not need a table
-- rebuild; the store refuses unknown ones on read.

ALTER TABLE users ADD COLUMN platform_admin INTEGER NOT NULL DEFAULT 0
    CONSTRAINT users_platform_admin_check CHECK (platform_admin IN (0, 1));

CREATE TABLE clusters (
    id                TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    region            TEXT    NOT NULL,
    zone              TEXT    NOT NULL,
    sealed_kubeconfig BLOB    NOT NULL, -- empty: in-cluster credentials
    is_default        INTEGER NOT NULL,
    priority          INTEGER NOT NULL,
    health            TEXT    NOT NULL,
    health_message    TEXT,
    created_at        INTEGER NOT NULL,
    CONSTRAINT clusters_pkey PRIMARY KEY (id),
    CONSTRAINT clusters_name_key UNIQUE (name),
    CONSTRAINT clusters_is_default_check CHECK (is_default IN (0, 1))
) STRICT;

-- At most one default cluster.
CREATE UNIQUE INDEX clusters_one_default_idx ON clusters (is_default) WHERE is_default = 1;

-- Deleting an organization deletes its apps and, through them, everything
-- below. `cluster_id` has no foreign key: placement outlives a cluster row.
CREATE TABLE apps (
    id              TEXT    NOT NULL,
    org_id          TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    environment     TEXT    NOT NULL,
    generation      INTEGER NOT NULL,
    current_release INTEGER,
    restarted_at    INTEGER,
    cluster_id      TEXT,
    status          TEXT    NOT NULL, -- JSON AppStatus
    deleting        INTEGER NOT NULL,
    delete_volumes  INTEGER NOT NULL,
    -- The seq of the app's last event (append_app_event increments it).
    last_event_seq  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT apps_pkey PRIMARY KEY (id),
    CONSTRAINT apps_org_id_name_key UNIQUE (org_id, name),
    CONSTRAINT apps_deleting_check CHECK (deleting IN (0, 1)),
    CONSTRAINT apps_delete_volumes_check CHECK (delete_volumes IN (0, 1))
) STRICT;

-- list_apps: an organization's apps in id order.
CREATE INDEX apps_org_id_id_idx ON apps (org_id, id);

CREATE TABLE releases (
    app_id       TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    spec         TEXT    NOT NULL, -- JSON AppSpec
    cause        TEXT    NOT NULL,
    rollback_of  INTEGER,
    author_id    TEXT,
    author_email TEXT,
    created_at   INTEGER NOT NULL,
    CONSTRAINT releases_pkey PRIMARY KEY (app_id, number)
) STRICT;

CREATE TABLE idempotency (
    app_id       TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    release      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    CONSTRAINT idempotency_pkey PRIMARY KEY (app_id, key)
) STRICT;

CREATE TABLE secret_versions (
    app_id     TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT secret_versions_pkey PRIMARY KEY (app_id, version)
) STRICT;

CREATE TABLE app_events (
    app_id  TEXT    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    message TEXT    NOT NULL,
    release INTEGER,
    at      INTEGER NOT NULL,
    CONSTRAINT app_events_pkey PRIMARY KEY (app_id, seq)
) STRICT;
