-- Leases: one holder at a time for a named piece of work (e.g.
-- `machine-op/<machine id>`, held by the control-plane replica running that
-- machine's operation), until `expires_at` unless renewed (sqlite).
-- Keep in step with migrations/postgres/20261121000400_leases.sql.
-- `expires_at` is microseconds since the Unix epoch, as every timestamp here.

CREATE TABLE leases (
    name       TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    CONSTRAINT leases_pkey PRIMARY KEY (name)
) STRICT;
