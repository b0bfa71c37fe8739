-- The short metrics history of machines: one row per machine and sample
-- time, the sample as JSON (MachineMetrics). Pruned by age. Keep in step
-- with migrations/sqlite/20261121000500_machine_samples.sql.

CREATE TABLE machine_samples (
    machine_id TEXT COLLATE "C" NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    at         TIMESTAMPTZ      NOT NULL,
    sample     JSONB            NOT NULL,
    CONSTRAINT machine_samples_pkey PRIMARY KEY (machine_id, at)
);

CREATE INDEX machine_samples_at ON machine_samples (at);
