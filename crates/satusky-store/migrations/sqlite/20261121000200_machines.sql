-- Machines: join tokens, machine records and their event streams (SQLite).
-- Keep in step with migrations/postgres/20261121000200_machines.sql.
--
-- Deleting an organization deletes its join tokens and machines (and their
-- events); decommissioning a machine keeps its row (state `decommissioned`
-- or `needs_wipe`). Labels, hardware and the running operation are JSON
-- TEXT. `version` is the compare-and-set counter of update_machine. A UUID
-- is not unique: two machines may report the same one.

CREATE TABLE join_tokens (
    id         TEXT    NOT NULL,
    org_id     TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL,
    CONSTRAINT join_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT join_tokens_org_id_name_key UNIQUE (org_id, name)
) STRICT;

-- list_join_tokens: an organization's tokens in id order.
CREATE INDEX join_tokens_org_id_id_idx ON join_tokens (org_id, id);

CREATE TABLE machines (
    id              TEXT    NOT NULL,
    org_id          TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    owner_user_id   TEXT,
    name            TEXT    NOT NULL,
    uuid            TEXT    NOT NULL,
    fingerprint     TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    visibility      TEXT    NOT NULL,
    labels          TEXT    NOT NULL, -- JSON object
    system_labels   TEXT    NOT NULL, -- JSON object
    hardware        TEXT    NOT NULL, -- JSON Hardware
    zone            TEXT    NOT NULL,
    overlay_address TEXT    NOT NULL,
    talos_endpoint  TEXT    NOT NULL,
    connected       INTEGER NOT NULL,
    last_seen_at    INTEGER,
    node_name       TEXT,
    cordoned_by_us  INTEGER NOT NULL,
    operation       TEXT, -- JSON MachineOperation
    note            TEXT,
    version         INTEGER NOT NULL,
    -- The seq of the machine's last event (append_machine_event increments it).
    last_event_seq  INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT machines_pkey PRIMARY KEY (id),
    CONSTRAINT machines_org_id_name_key UNIQUE (org_id, name),
    CONSTRAINT machines_connected_check CHECK (connected IN (0, 1)),
    CONSTRAINT machines_cordoned_by_us_check CHECK (cordoned_by_us IN (0, 1))
) STRICT;

-- list_machines: an organization's machines in id order.
CREATE INDEX machines_org_id_id_idx ON machines (org_id, id);
-- list_machines with public machines of other organizations.
CREATE INDEX machines_visibility_id_idx ON machines (visibility, id);
-- Admission: machines reporting a UUID.
CREATE INDEX machines_uuid_idx ON machines (uuid);

CREATE TABLE machine_events (
    machine_id TEXT    NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    CONSTRAINT machine_events_pkey PRIMARY KEY (machine_id, seq)
) STRICT;
