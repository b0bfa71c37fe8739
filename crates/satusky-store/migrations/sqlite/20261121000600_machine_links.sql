-- The machines' SideroLink WireGuard peers, as last admitted: the fleet
-- runtime restores them into its WireGuard endpoint when it starts, so that a
-- control-plane restart keeps the links of known machines (their next
-- handshake is answered without provisioning again). One row per machine.
-- `public_key` is base64 (the wire form); `last_endpoint` is the `ip:port` the
-- peer was last heard from, if known. Keep in step with
-- migrations/postgres/20261121000600_machine_links.sql.

CREATE TABLE machine_links (
    machine_id      TEXT    NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    public_key      TEXT    NOT NULL,
    uuid            TEXT    NOT NULL,
    overlay_address TEXT    NOT NULL,
    last_endpoint   TEXT,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT machine_links_pkey PRIMARY KEY (machine_id)
) STRICT;
