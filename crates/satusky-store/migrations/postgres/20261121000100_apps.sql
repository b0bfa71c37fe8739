-- Apps, releases, idempotency keys, sealed secret versions, app events,
-- clusters and platform administrators (PostgreSQL). Keep in step with
-- migrations/sqlite/20261121000100_apps.sql.
--
-- Counters (generation, release numbers, versions, seq) are BIGINT (u64 in
-- Rust, checked on the way in and out). JSON documents (status, spec) are
-- JSONB. Release causes are not CHECKed: a new cause must not need a
-- migration; the store refuses unknown ones on read.

ALTER TABLE users ADD COLUMN platform_admin BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE clusters (
    id                TEXT COLLATE "C" NOT NULL,
    name              TEXT             NOT NULL,
    region            TEXT             NOT NULL,
    zone              TEXT             NOT NULL,
    sealed_kubeconfig BYTEA            NOT NULL, -- empty: in-cluster credentials
    is_default        BOOLEAN          NOT NULL,
    priority          INTEGER          NOT NULL,
    health            TEXT             NOT NULL,
    health_message    TEXT,
    created_at        TIMESTAMPTZ      NOT NULL,
    CONSTRAINT clusters_pkey PRIMARY KEY (id),
    CONSTRAINT clusters_name_key UNIQUE (name)
);

-- At most one default cluster.
CREATE UNIQUE INDEX clusters_one_default_idx ON clusters (is_default) WHERE is_default;

-- Deleting an organization deletes its apps and, through them, everything
-- below. `cluster_id` has no foreign key: placement outlives a cluster row.
CREATE TABLE apps (
    id              TEXT COLLATE "C" NOT NULL,
    org_id          TEXT COLLATE "C" NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name            TEXT             NOT NULL,
    environment     TEXT             NOT NULL,
    generation      BIGINT           NOT NULL,
    current_release BIGINT,
    restarted_at    TIMESTAMPTZ,
    cluster_id      TEXT COLLATE "C",
    status          JSONB            NOT NULL, -- AppStatus
    deleting        BOOLEAN          NOT NULL,
    delete_volumes  BOOLEAN          NOT NULL,
    -- The seq of the app's last event (append_app_event increments it).
    last_event_seq  BIGINT           NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ      NOT NULL,
    updated_at      TIMESTAMPTZ      NOT NULL,
    CONSTRAINT apps_pkey PRIMARY KEY (id),
    CONSTRAINT apps_org_id_name_key UNIQUE (org_id, name)
);

-- list_apps: an organization's apps in id order.
CREATE INDEX apps_org_id_id_idx ON apps (org_id, id);

CREATE TABLE releases (
    app_id       TEXT COLLATE "C" NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    number       BIGINT           NOT NULL,
    spec         JSONB            NOT NULL, -- AppSpec
    cause        TEXT             NOT NULL,
    rollback_of  BIGINT,
    author_id    TEXT,
    author_email TEXT,
    created_at   TIMESTAMPTZ      NOT NULL,
    CONSTRAINT releases_pkey PRIMARY KEY (app_id, number)
);

CREATE TABLE idempotency (
    app_id       TEXT COLLATE "C" NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    key          TEXT             NOT NULL,
    request_hash TEXT             NOT NULL,
    release      BIGINT           NOT NULL,
    created_at   TIMESTAMPTZ      NOT NULL,
    CONSTRAINT idempotency_pkey PRIMARY KEY (app_id, key)
);

CREATE TABLE secret_versions (
    app_id     TEXT COLLATE "C" NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    version    BIGINT           NOT NULL,
    sealed     BYTEA            NOT NULL,
    created_at TIMESTAMPTZ      NOT NULL,
    CONSTRAINT secret_versions_pkey PRIMARY KEY (app_id, version)
);

CREATE TABLE app_events (
    app_id  TEXT COLLATE "C" NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    seq     BIGINT           NOT NULL,
    kind    TEXT             NOT NULL,
    message TEXT             NOT NULL,
    release BIGINT,
    at      TIMESTAMPTZ      NOT NULL,
    CONSTRAINT app_events_pkey PRIMARY KEY (app_id, seq)
);
