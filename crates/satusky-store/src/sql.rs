//! The SQL of every store operation, shared by both dialects: `$N`
//! placeholders (SQLite reads `$N` as parameter N too) and only syntax both
//! databases accept. The few statements that differ live in the dialect
//! modules. Parameters are always bound, never formatted in.
//!
//! Column lists are macros so that statements stay `&'static str`; the row
//! decoders in `store_impl.rs` read columns by position in these orders.

macro_rules! user_cols {
    () => {
        "u.id, u.email, u.name, u.password_hash, u.created_at"
    };
}
macro_rules! session_cols {
    () => {
        "s.id, s.user_id, s.token_hash, s.created_at, s.expires_at"
    };
}
macro_rules! token_cols {
    () => {
        "t.id, t.user_id, t.name, t.prefix, t.token_hash, t.org_id, t.enabled, t.expires_at, \
         t.last_used_at, t.created_at"
    };
}
macro_rules! org_cols {
    () => {
        "o.id, o.slug, o.name, o.namespace, o.created_at"
    };
}
macro_rules! audit_cols {
    () => {
        "a.id, a.org_id, a.actor_id, a.actor_email, a.action, a.target, a.request_id, a.outcome, \
         a.at"
    };
}

pub(crate) const SESSION_COLUMNS: usize = 5;

pub(crate) const PING: &str = "SELECT 1";

// ---- users

pub(crate) const CREATE_USER: &str =
    "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const GET_USER: &str = concat!("SELECT ", user_cols!(), " FROM users u WHERE u.id = $1");
pub(crate) const GET_USER_BY_EMAIL: &str =
    concat!("SELECT ", user_cols!(), " FROM users u WHERE u.email = $1");
pub(crate) const UPDATE_USER_NAME: &str = "UPDATE users SET name = $2 WHERE id = $1";
pub(crate) const UPDATE_USER_PASSWORD: &str = "UPDATE users SET password_hash = $2 WHERE id = $1";
pub(crate) const COUNT_USERS: &str = "SELECT COUNT(*) FROM users";

// ---- sessions

pub(crate) const CREATE_SESSION: &str = "INSERT INTO sessions (id, user_id, token_hash, created_at, \
     expires_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const GET_SESSION_BY_HASH: &str = concat!(
    "SELECT ",
    session_cols!(),
    ", ",
    user_cols!(),
    " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1"
);
pub(crate) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";
pub(crate) const DELETE_USER_SESSIONS: &str =
    "DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR id <> $2)";

// ---- expired sessions

pub(crate) const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";

// ---- failed logins

pub(crate) const RECORD_LOGIN_FAILURE: &str =
    "INSERT INTO login_failures (kind, key, at) VALUES ($1, $2, $3)";
pub(crate) const LOGIN_FAILURES_SINCE: &str = "SELECT f.at FROM login_failures f \
     WHERE f.kind = $1 AND f.key = $2 AND f.at > $3 ORDER BY f.at DESC LIMIT $4";
pub(crate) const CLEAR_LOGIN_FAILURES: &str =
    "DELETE FROM login_failures WHERE kind = $1 AND key = $2";
pub(crate) const PRUNE_LOGIN_FAILURES: &str = "DELETE FROM login_failures WHERE at <= $1";
pub(crate) const RECORD_LOGIN_ATTEMPT: &str =
    "INSERT INTO login_failures (kind, key, at, attempt) VALUES ($1, $2, $3, $4)";
pub(crate) const FORGET_LOGIN_ATTEMPT: &str =
    "DELETE FROM login_failures WHERE kind = $1 AND key = $2 AND attempt = $3";

// ---- personal API tokens

pub(crate) const CREATE_TOKEN: &str = "INSERT INTO api_tokens (id, user_id, name, prefix, \
     token_hash, org_id, enabled, expires_at, last_used_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub(crate) const GET_TOKEN: &str = concat!(
    "SELECT ",
    token_cols!(),
    " FROM api_tokens t WHERE t.user_id = $1 AND t.id = $2"
);
pub(crate) const GET_TOKEN_BY_NAME: &str = concat!(
    "SELECT ",
    token_cols!(),
    " FROM api_tokens t WHERE t.user_id = $1 AND t.name = $2"
);
pub(crate) const GET_TOKEN_BY_HASH: &str = concat!(
    "SELECT ",
    token_cols!(),
    ", ",
    user_cols!(),
    " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
);
/// `$2` is the key to continue after ('' for the first page).
pub(crate) const LIST_TOKENS: &str = concat!(
    "SELECT ",
    token_cols!(),
    " FROM api_tokens t WHERE t.user_id = $1 AND t.id > $2 ORDER BY t.id LIMIT $3"
);
pub(crate) const SET_TOKEN_ENABLED: &str =
    "UPDATE api_tokens SET enabled = $3 WHERE user_id = $1 AND id = $2";
pub(crate) const TOUCH_TOKEN: &str = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1";
pub(crate) const DELETE_TOKEN: &str = "DELETE FROM api_tokens WHERE user_id = $1 AND id = $2";

// ---- organizations and memberships

pub(crate) const CREATE_ORG: &str =
    "INSERT INTO orgs (id, slug, name, namespace, created_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const SLUG_TAKEN: &str = "SELECT COUNT(*) FROM orgs WHERE slug = $1";
pub(crate) const RESERVE_NAMESPACE: &str =
    "INSERT INTO namespaces (name, reserved_at) VALUES ($1, $2)";
pub(crate) const NAMESPACE_RESERVED: &str = "SELECT COUNT(*) FROM namespaces WHERE name = $1";
pub(crate) const GET_ORG: &str = concat!("SELECT ", org_cols!(), " FROM orgs o WHERE o.id = $1");
pub(crate) const GET_ORG_BY_SLUG: &str =
    concat!("SELECT ", org_cols!(), " FROM orgs o WHERE o.slug = $1");
/// `$2` is the key to continue after ('' for the first page).
pub(crate) const LIST_USER_ORGS: &str = concat!(
    "SELECT ",
    org_cols!(),
    ", m.role FROM memberships m JOIN orgs o ON o.id = m.org_id \
     WHERE m.user_id = $1 AND m.org_id > $2 ORDER BY m.org_id LIMIT $3"
);
pub(crate) const RENAME_ORG: &str = "UPDATE orgs SET name = $2 WHERE id = $1";
/// Memberships and org-scoped tokens go by `ON DELETE CASCADE`; the
/// namespace row and audit entries stay.
pub(crate) const DELETE_ORG: &str = "DELETE FROM orgs WHERE id = $1";

pub(crate) const ADD_MEMBER: &str =
    "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)";
pub(crate) const GET_MEMBERSHIP: &str = "SELECT m.org_id, m.user_id, m.role, m.created_at \
     FROM memberships m WHERE m.org_id = $1 AND m.user_id = $2";
/// `$2` is the key to continue after ('' for the first page).
pub(crate) const LIST_MEMBERS: &str = "SELECT m.user_id, u.email, u.name, m.role, m.created_at \
     FROM memberships m JOIN users u ON u.id = m.user_id \
     WHERE m.org_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3";
pub(crate) const SET_MEMBER_ROLE: &str =
    "UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2";
pub(crate) const REMOVE_MEMBER: &str = "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2";

// ---- audit

pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit (id, org_id, actor_id, actor_email, \
     action, target, request_id, outcome, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/// Newest first. `$2` is the key to continue before ([`LAST_KEY`] for the
/// first page), so that the index on `(org_id, id)` bounds the scan on every
/// page. `$3` actor, `$4` exact action, `$5` action prefix, `$6` outcome,
/// `$7` since, `$8` until: each NULL when not filtered on.
pub(crate) const LIST_AUDIT: &str = concat!(
    "SELECT ",
    audit_cols!(),
    " FROM audit a WHERE a.org_id = $1 AND a.id < $2 \
     AND ($3 IS NULL OR a.actor_id = $3 OR a.actor_email = $3) \
     AND ($4 IS NULL OR a.action = $4) \
     AND ($5 IS NULL OR substr(a.action, 1, length($5)) = $5) \
     AND ($6 IS NULL OR a.outcome = $6) \
     AND ($7 IS NULL OR a.at >= $7) \
     AND ($8 IS NULL OR a.at < $8) \
     ORDER BY a.id DESC LIMIT $9"
);
pub(crate) const GET_AUDIT: &str = concat!(
    "SELECT ",
    audit_cols!(),
    " FROM audit a WHERE a.org_id = $1 AND a.id = $2"
);

/// A key greater than every id (ids are ASCII UUID strings, compared
/// byte-wise on both databases): the upper bound of the first audit page.
pub(crate) const LAST_KEY: &str = "\u{7f}";

pub(crate) const TOKEN_COLUMNS: usize = 10;
pub(crate) const ORG_COLUMNS: usize = 5;

// ---- platform administrators

pub(crate) const IS_PLATFORM_ADMIN: &str = "SELECT platform_admin FROM users WHERE id = $1";
pub(crate) const SET_PLATFORM_ADMIN: &str = "UPDATE users SET platform_admin = $2 WHERE id = $1";

// ---- apps

macro_rules! app_cols {
    () => {
        "p.id, p.org_id, p.name, p.environment, p.generation, p.current_release, \
         p.restarted_at, p.cluster_id, p.status, p.deleting, p.delete_volumes, p.created_at, \
         p.updated_at"
    };
}
macro_rules! release_cols {
    () => {
        "r.app_id, r.number, r.spec, r.cause, r.rollback_of, r.author_id, r.author_email, \
         r.created_at"
    };
}
macro_rules! cluster_cols {
    () => {
        "c.id, c.name, c.region, c.zone, c.sealed_kubeconfig, c.is_default, c.priority, \
         c.health, c.health_message, c.created_at"
    };
}

pub(crate) const CREATE_APP: &str = "INSERT INTO apps (id, org_id, name, environment, \
     generation, current_release, restarted_at, cluster_id, status, deleting, delete_volumes, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
pub(crate) const GET_APP: &str = concat!(
    "SELECT ",
    app_cols!(),
    " FROM apps p WHERE p.org_id = $1 AND p.name = $2"
);
pub(crate) const GET_APP_BY_ID: &str =
    concat!("SELECT ", app_cols!(), " FROM apps p WHERE p.id = $1");
/// `$2` is the key to continue after ('' for the first page).
pub(crate) const LIST_APPS: &str = concat!(
    "SELECT ",
    app_cols!(),
    " FROM apps p WHERE p.org_id = $1 AND p.id > $2 ORDER BY p.id LIMIT $3"
);
/// `$1` is the key to continue after ('' for the first page).
pub(crate) const LIST_ALL_APPS: &str = concat!(
    "SELECT ",
    app_cols!(),
    " FROM apps p WHERE p.id > $1 ORDER BY p.id LIMIT $2"
);
/// Compare-and-set of the current release (`$4` is the number before the new
/// one, 0 for none): on PostgreSQL a concurrent append waits for the row
/// lock, then no longer matches.
pub(crate) const ADVANCE_RELEASE: &str = "UPDATE apps SET current_release = $2, \
     generation = generation + 1, updated_at = $3 \
     WHERE id = $1 AND COALESCE(current_release, 0) = $4 RETURNING generation";
pub(crate) const APP_EXISTS: &str = "SELECT COUNT(*) FROM apps WHERE id = $1";
pub(crate) const INSERT_RELEASE: &str = "INSERT INTO releases (app_id, number, spec, cause, \
     rollback_of, author_id, author_email, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(crate) const INSERT_IDEMPOTENCY: &str = "INSERT INTO idempotency (app_id, key, \
     request_hash, release, created_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const GET_RELEASE: &str = concat!(
    "SELECT ",
    release_cols!(),
    " FROM releases r WHERE r.app_id = $1 AND r.number = $2"
);
/// Newest first, strictly below `$2`.
pub(crate) const LIST_RELEASES: &str = concat!(
    "SELECT ",
    release_cols!(),
    " FROM releases r WHERE r.app_id = $1 AND r.number < $2 ORDER BY r.number DESC LIMIT $3"
);
pub(crate) const GET_IDEMPOTENCY: &str = "SELECT i.app_id, i.key, i.request_hash, i.release, \
     i.created_at FROM idempotency i WHERE i.app_id = $1 AND i.key = $2";
pub(crate) const RESTART_APP: &str = "UPDATE apps SET restarted_at = $2, \
     generation = generation + 1, updated_at = $2 WHERE id = $1 RETURNING generation";
pub(crate) const SET_APP_STATUS: &str = "UPDATE apps SET status = $2 WHERE id = $1";
pub(crate) const MARK_APP_DELETING: &str = "UPDATE apps SET deleting = $2, \
     delete_volumes = $3, generation = generation + 1 WHERE id = $1 RETURNING generation";
/// Releases, idempotency keys, secret versions and events go by
/// `ON DELETE CASCADE`.
pub(crate) const DELETE_APP: &str = "DELETE FROM apps WHERE id = $1";
pub(crate) const SET_APP_CLUSTER: &str = "UPDATE apps SET cluster_id = $2 WHERE id = $1";

// ---- app secrets

pub(crate) const CREATE_SECRET_VERSION: &str = "INSERT INTO secret_versions (app_id, version, \
     sealed, created_at) VALUES ($1, $2, $3, $4)";
pub(crate) const GET_SECRET_VERSION: &str = "SELECT s.app_id, s.version, s.sealed, \
     s.created_at FROM secret_versions s WHERE s.app_id = $1 AND s.version = $2";
pub(crate) const LATEST_SECRET_VERSION: &str = "SELECT s.app_id, s.version, s.sealed, \
     s.created_at FROM secret_versions s WHERE s.app_id = $1 ORDER BY s.version DESC LIMIT 1";

// ---- app events

/// Takes the next seq under the app's row lock.
pub(crate) const NEXT_EVENT_SEQ: &str = "UPDATE apps SET last_event_seq = last_event_seq + 1 \
     WHERE id = $1 RETURNING last_event_seq";
pub(crate) const INSERT_APP_EVENT: &str = "INSERT INTO app_events (app_id, seq, kind, message, \
     release, at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const LIST_APP_EVENTS: &str = "SELECT e.app_id, e.seq, e.kind, e.message, e.release, \
     e.at FROM app_events e WHERE e.app_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3";

// ---- clusters

pub(crate) const CLEAR_DEFAULT_CLUSTER: &str =
    "UPDATE clusters SET is_default = $1 WHERE is_default = $2";
pub(crate) const CREATE_CLUSTER: &str = "INSERT INTO clusters (id, name, region, zone, \
     sealed_kubeconfig, is_default, priority, health, health_message, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
pub(crate) const GET_CLUSTER: &str = concat!(
    "SELECT ",
    cluster_cols!(),
    " FROM clusters c WHERE c.id = $1"
);
pub(crate) const GET_CLUSTER_BY_NAME: &str = concat!(
    "SELECT ",
    cluster_cols!(),
    " FROM clusters c WHERE c.name = $1"
);
/// `$1` is the key to continue after ('' for the first page).
pub(crate) const LIST_CLUSTERS: &str = concat!(
    "SELECT ",
    cluster_cols!(),
    " FROM clusters c WHERE c.id > $1 ORDER BY c.id LIMIT $2"
);
pub(crate) const SET_CLUSTER_HEALTH: &str =
    "UPDATE clusters SET health = $2, health_message = $3 WHERE id = $1";
pub(crate) const DELETE_CLUSTER: &str = "DELETE FROM clusters WHERE id = $1";

// ---- leases

/// Inserts the lease, or takes it over when it expired at `$4` or is the
/// holder's own: one statement, so concurrent takers cannot both win.
pub(crate) const ACQUIRE_LEASE: &str = "INSERT INTO leases (name, holder, expires_at) \
     VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE \
     SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE leases.holder = excluded.holder OR leases.expires_at <= $4";
pub(crate) const RENEW_LEASE: &str =
    "UPDATE leases SET expires_at = $3 WHERE name = $1 AND holder = $2";
pub(crate) const RELEASE_LEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";
pub(crate) const GET_LEASE: &str =
    "SELECT l.name, l.holder, l.expires_at FROM leases l WHERE l.name = $1";

// ---- machines

macro_rules! join_token_cols {
    () => {
        "j.id, j.org_id, j.name, j.expires_at, j.revoked_at, j.created_at"
    };
}
macro_rules! machine_cols {
    () => {
        "m.id, m.org_id, m.owner_user_id, m.name, m.uuid, m.fingerprint, m.state, m.visibility, \
         m.labels, m.system_labels, m.hardware, m.zone, m.overlay_address, m.talos_endpoint, \
         m.connected, m.last_seen_at, m.node_name, m.cordoned_by_us, m.operation, m.note, \
         m.version, m.created_at, m.updated_at"
    };
}

pub(crate) const CREATE_JOIN_TOKEN: &str = "INSERT INTO join_tokens (id, org_id, name, \
     expires_at, revoked_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const GET_JOIN_TOKEN: &str = concat!(
    "SELECT ",
    join_token_cols!(),
    " FROM join_tokens j WHERE j.id = $1"
);
/// `$2` is the key to continue after ('' for the first page).
pub(crate) const LIST_JOIN_TOKENS: &str = concat!(
    "SELECT ",
    join_token_cols!(),
    " FROM join_tokens j WHERE j.org_id = $1 AND j.id > $2 ORDER BY j.id LIMIT $3"
);
pub(crate) const REVOKE_JOIN_TOKEN: &str = "UPDATE join_tokens \
     SET revoked_at = COALESCE(revoked_at, $3) WHERE org_id = $1 AND id = $2";

pub(crate) const CREATE_MACHINE: &str = "INSERT INTO machines (id, org_id, owner_user_id, name, \
     uuid, fingerprint, state, visibility, labels, system_labels, hardware, zone, \
     overlay_address, talos_endpoint, connected, last_seen_at, node_name, cordoned_by_us, \
     operation, note, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
     $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)";
pub(crate) const GET_MACHINE: &str = concat!(
    "SELECT ",
    machine_cols!(),
    " FROM machines m WHERE m.id = $1"
);
pub(crate) const GET_MACHINE_BY_NAME: &str = concat!(
    "SELECT ",
    machine_cols!(),
    " FROM machines m WHERE m.org_id = $1 AND m.name = $2"
);
pub(crate) const FIND_MACHINES_BY_UUID: &str = concat!(
    "SELECT ",
    machine_cols!(),
    " FROM machines m WHERE m.uuid = $1 ORDER BY m.id"
);
/// `$2` include public machines of others, `$3` the key to continue after
/// ('' for the first page).
pub(crate) const LIST_MACHINES: &str = concat!(
    "SELECT ",
    machine_cols!(),
    " FROM machines m WHERE (m.org_id = $1 OR ($2 AND m.visibility = 'public')) \
     AND m.id > $3 ORDER BY m.id LIMIT $4"
);
/// The start of `list_machines_selected`: the selector's conditions follow
/// (`$5` onwards), then [`SELECTED_MACHINES_END`].
pub(crate) const SELECTED_MACHINES: &str = concat!(
    "SELECT ",
    machine_cols!(),
    " FROM machines m WHERE (m.org_id = $1 OR ($2 AND m.visibility = 'public')) \
     AND m.id > $3"
);
pub(crate) const SELECTED_MACHINES_END: &str = " ORDER BY m.id LIMIT $4";
/// `$1` is the key to continue after ('' for the first page).
pub(crate) const LIST_ALL_MACHINES: &str = concat!(
    "SELECT ",
    machine_cols!(),
    " FROM machines m WHERE m.id > $1 ORDER BY m.id LIMIT $2"
);
/// Compare-and-set on `version` (`$18`).
pub(crate) const UPDATE_MACHINE: &str = "UPDATE machines SET owner_user_id = $2, name = $3, \
     state = $4, visibility = $5, labels = $6, system_labels = $7, hardware = $8, zone = $9, \
     overlay_address = $10, talos_endpoint = $11, connected = $12, last_seen_at = $13, \
     node_name = $14, cordoned_by_us = $15, operation = $16, note = $17, \
     version = version + 1, updated_at = $19 \
     WHERE id = $1 AND version = $18 RETURNING version";
pub(crate) const MACHINE_EXISTS: &str = "SELECT COUNT(*) FROM machines WHERE id = $1";

/// Takes the next seq under the machine's row lock.
pub(crate) const NEXT_MACHINE_EVENT_SEQ: &str = "UPDATE machines \
     SET last_event_seq = last_event_seq + 1 WHERE id = $1 RETURNING last_event_seq";
pub(crate) const INSERT_MACHINE_EVENT: &str = "INSERT INTO machine_events (machine_id, seq, kind, \
     message, at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const LIST_MACHINE_EVENTS: &str = "SELECT e.machine_id, e.seq, e.kind, e.message, e.at \
     FROM machine_events e WHERE e.machine_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3";

// ---- machine metric samples

pub(crate) const INSERT_MACHINE_SAMPLE: &str = "INSERT INTO machine_samples (machine_id, at, sample) \
     VALUES ($1, $2, $3) ON CONFLICT (machine_id, at) DO NOTHING";
pub(crate) const LIST_MACHINE_SAMPLES: &str = "SELECT s.machine_id, s.sample FROM machine_samples s \
     WHERE s.machine_id = $1 AND s.at > $2 ORDER BY s.at LIMIT $3";
pub(crate) const PRUNE_MACHINE_SAMPLES: &str = "DELETE FROM machine_samples WHERE at < $1";

// ---- machine SideroLink peers

pub(crate) const PUT_MACHINE_LINK: &str = "INSERT INTO machine_links (machine_id, public_key, \
     uuid, overlay_address, last_endpoint, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (machine_id) DO UPDATE SET public_key = excluded.public_key, \
     uuid = excluded.uuid, overlay_address = excluded.overlay_address, \
     last_endpoint = excluded.last_endpoint, updated_at = excluded.updated_at";
pub(crate) const SET_MACHINE_LINK_ENDPOINT: &str = "UPDATE machine_links \
     SET last_endpoint = $3, updated_at = $4 WHERE machine_id = $1 AND public_key = $2";
pub(crate) const LIST_MACHINE_LINKS: &str = "SELECT l.machine_id, l.public_key, l.uuid, \
     l.overlay_address, l.last_endpoint, l.updated_at FROM machine_links l ORDER BY l.machine_id";
/// `$2` NULL: whatever key is stored.
pub(crate) const DELETE_MACHINE_LINK: &str = "DELETE FROM machine_links \
     WHERE machine_id = $1 AND public_key = COALESCE($2, public_key)";

// ---- machine usage (billing history)

pub(crate) const OPEN_MACHINE_USAGE: &str = "INSERT INTO machine_usage (id, org_id, machine_id, \
     machine_name, cpu_cores, memory_bytes, gpus, started_at, ended_at, end_reason) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL) \
     ON CONFLICT (machine_id) WHERE ended_at IS NULL DO NOTHING";
pub(crate) const CLOSE_MACHINE_USAGE: &str = "UPDATE machine_usage SET ended_at = $2, \
     end_reason = $3 WHERE machine_id = $1 AND ended_at IS NULL";
/// Newest first, before `$2` ([`LAST_KEY`] for the first page); `$3`
/// machine, `$4` since, `$5` until: each NULL when not filtered on.
pub(crate) const LIST_MACHINE_USAGE: &str = "SELECT u.id, u.org_id, u.machine_id, \
     u.machine_name, u.cpu_cores, u.memory_bytes, u.gpus, u.started_at, u.ended_at, u.end_reason \
     FROM machine_usage u WHERE u.org_id = $1 AND u.id < $2 \
     AND ($3 IS NULL OR u.machine_id = $3) \
     AND ($4 IS NULL OR u.ended_at IS NULL OR u.ended_at > $4) \
     AND ($5 IS NULL OR u.started_at < $5) \
     ORDER BY u.id DESC LIMIT $6";
