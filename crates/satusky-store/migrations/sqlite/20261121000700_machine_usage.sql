-- Machine usage: the periods during which an organization held a machine
-- (claimed until released, decommissioned or removed), the basis of billing
-- history. Kept like audit entries: no foreign keys, so the history outlives
-- the machine record and the organization. At most one open period per
-- machine. Keep in step with migrations/postgres/20261121000700_machine_usage.sql.

CREATE TABLE machine_usage (
    id           TEXT    NOT NULL,
    org_id       TEXT    NOT NULL,
    machine_id   TEXT    NOT NULL,
    machine_name TEXT    NOT NULL,
    cpu_cores    INTEGER NOT NULL,
    memory_bytes INTEGER NOT NULL,
    gpus         INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    end_reason   TEXT,
    CONSTRAINT machine_usage_pkey PRIMARY KEY (id)
) STRICT;

CREATE UNIQUE INDEX machine_usage_open_key ON machine_usage (machine_id) WHERE ended_at IS NULL;
CREATE INDEX machine_usage_org_id_id_idx ON machine_usage (org_id, id);
