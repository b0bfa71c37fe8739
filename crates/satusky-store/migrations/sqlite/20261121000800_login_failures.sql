-- Failed logins, shared by every control-plane replica (sqlite): one row per
-- failure of a key, `kind` saying whether the key is an account or a client
-- address. A key is the SHA-256 (hex) of the lowercased email or of the
-- address, so no attempted email is kept. Rows older than the login window
-- are pruned by the periodic session purge.
-- Keep in step with migrations/postgres/20261121000800_login_failures.sql.
-- `at` is microseconds since the Unix epoch, as every timestamp here.

CREATE TABLE login_failures (
    kind TEXT    NOT NULL CHECK (kind IN ('account', 'address')),
    key  TEXT    NOT NULL,
    at   INTEGER NOT NULL
) STRICT;

-- The limiter reads a key's latest failures; the purge deletes by time.
CREATE INDEX login_failures_key_at_idx ON login_failures (kind, key, at);
CREATE INDEX login_failures_at_idx ON login_failures (at);

-- The hourly purge of expired sessions deletes by `expires_at`.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
