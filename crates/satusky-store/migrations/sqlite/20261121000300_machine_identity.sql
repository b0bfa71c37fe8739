-- One live record per machine identity (UUID and fingerprint), so that two
-- concurrent Provision calls of the same new machine cannot both create one
-- (sqlite). Keep in step with migrations/postgres/20261121000300_machine_identity.sql.
-- Decommissioned records keep their identity as history and leave the index,
-- so a reset machine that joins again gets a new record.

CREATE UNIQUE INDEX machines_uuid_fingerprint_key ON machines (uuid, fingerprint)
    WHERE state <> 'decommissioned';
