-- Machines: join tokens, machine records and their event streams
-- (PostgreSQL). Keep in step with migrations/sqlite/20261121000200_machines.sql.
--
-- Deleting an organization deletes its join tokens and machines (and their
-- events); decommissioning a machine keeps its row (state `decommissioned`
-- or `needs_wipe`). Labels, hardware and the running operation are JSONB.
-- `version` is the compare-and-set counter of update_machine. A UUID is not
-- unique: two machines may report the same one.

CREATE TABLE join_tokens (
    id         TEXT COLLATE "C" NOT NULL,
    org_id     TEXT COLLATE "C" NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name       TEXT             NOT NULL,
    expires_at TIMESTAMPTZ      NOT NULL,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ      NOT NULL,
    CONSTRAINT join_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT join_tokens_org_id_name_key UNIQUE (org_id, name)
);

-- list_join_tokens: an organization's tokens in id order.
CREATE INDEX join_tokens_org_id_id_idx ON join_tokens (org_id, id);

CREATE TABLE machines (
    id              TEXT COLLATE "C" NOT NULL,
    org_id          TEXT COLLATE "C" NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    owner_user_id   TEXT COLLATE "C",
    name            TEXT             NOT NULL,
    uuid            TEXT             NOT NULL,
    fingerprint     TEXT             NOT NULL,
    state           TEXT             NOT NULL,
    visibility      TEXT             NOT NULL,
    labels          JSONB            NOT NULL,
    system_labels   JSONB            NOT NULL,
    hardware        JSONB            NOT NULL, -- Hardware
    zone            TEXT             NOT NULL,
    overlay_address TEXT             NOT NULL,
    talos_endpoint  TEXT             NOT NULL,
    connected       BOOLEAN          NOT NULL,
    last_seen_at    TIMESTAMPTZ,
    node_name       TEXT,
    cordoned_by_us  BOOLEAN          NOT NULL,
    operation       JSONB, -- MachineOperation
    note            TEXT,
    version         BIGINT           NOT NULL,
    -- The seq of the machine's last event (append_machine_event increments it).
    last_event_seq  BIGINT           NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ      NOT NULL,
    updated_at      TIMESTAMPTZ      NOT NULL,
    CONSTRAINT machines_pkey PRIMARY KEY (id),
    CONSTRAINT machines_org_id_name_key UNIQUE (org_id, name)
);

-- list_machines: an organization's machines in id order.
CREATE INDEX machines_org_id_id_idx ON machines (org_id, id);
-- list_machines with public machines of other organizations.
CREATE INDEX machines_visibility_id_idx ON machines (visibility, id);
-- Admission: machines reporting a UUID.
CREATE INDEX machines_uuid_idx ON machines (uuid);

CREATE TABLE machine_events (
    machine_id TEXT COLLATE "C" NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    seq        BIGINT           NOT NULL,
    kind       TEXT             NOT NULL,
    message    TEXT             NOT NULL,
    at         TIMESTAMPTZ      NOT NULL,
    CONSTRAINT machine_events_pkey PRIMARY KEY (machine_id, seq)
);
