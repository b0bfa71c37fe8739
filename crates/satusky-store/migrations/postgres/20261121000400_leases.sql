-- Leases: one holder at a time for a named piece of work (e.g.
-- `machine-op/<machine id>`, held by the control-plane replica running that
-- machine's operation), until `expires_at` unless renewed (postgres).
-- Keep in step with migrations/sqlite/20261121000400_leases.sql.

CREATE TABLE leases (
    name       TEXT COLLATE "C" NOT NULL,
    holder     TEXT             NOT NULL,
    expires_at TIMESTAMPTZ      NOT NULL,
    CONSTRAINT leases_pkey PRIMARY KEY (name)
);
