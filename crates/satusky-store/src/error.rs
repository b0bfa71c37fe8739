//! This crate's errors: [`Error`] for opening and migrating a database, and
//! the mapping of sqlx errors to [`StoreError`] for store operations.

use satusky_core::store::{StoreError, conflict};
use sqlx::error::{DatabaseError, ErrorKind};

/// A failure to open or migrate a database. Store operations fail with
/// [`StoreError`] instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL names neither SQLite nor PostgreSQL. Only the scheme is kept,
    /// so that a password in the URL never reaches a log.
    #[error("unsupported database URL scheme `{scheme}:` (expected `sqlite:` or `postgres:`)")]
    UnsupportedUrl { scheme: String },
    #[error("invalid database URL")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("could not connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("could not migrate the database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Each unique constraint: its PostgreSQL name, the columns SQLite names in
/// "UNIQUE constraint failed: …", and the conflict it is. Both migrations
/// directories name their constraints accordingly.
const UNIQUE_CONSTRAINTS: &[(&str, &str, &str)] = &[
    ("users_email_key", "users.email", conflict::USER_EMAIL),
    ("orgs_slug_key", "orgs.slug", conflict::ORG_SLUG),
    ("orgs_namespace_key", "orgs.namespace", conflict::NAMESPACE),
    ("namespaces_pkey", "namespaces.name", conflict::NAMESPACE),
    (
        "memberships_pkey",
        "memberships.org_id, memberships.user_id",
        conflict::MEMBERSHIP,
    ),
    (
        "api_tokens_user_id_name_key",
        "api_tokens.user_id, api_tokens.name",
        conflict::TOKEN_NAME,
    ),
    (
        "apps_org_id_name_key",
        "apps.org_id, apps.name",
        conflict::APP_NAME,
    ),
    (
        "releases_pkey",
        "releases.app_id, releases.number",
        conflict::RELEASE_NUMBER,
    ),
    (
        "idempotency_pkey",
        "idempotency.app_id, idempotency.key",
        conflict::IDEMPOTENCY_KEY,
    ),
    (
        "secret_versions_pkey",
        "secret_versions.app_id, secret_versions.version",
        conflict::SECRET_VERSION,
    ),
    ("clusters_name_key", "clusters.name", conflict::CLUSTER_NAME),
    (
        "join_tokens_org_id_name_key",
        "join_tokens.org_id, join_tokens.name",
        conflict::JOIN_TOKEN_NAME,
    ),
    (
        "machines_org_id_name_key",
        "machines.org_id, machines.name",
        conflict::MACHINE_NAME,
    ),
    (
        "machine_events_pkey",
        "machine_events.machine_id, machine_events.seq",
        "machine_events.seq",
    ),
    (
        "machines_uuid_fingerprint_key",
        "machines.uuid, machines.fingerprint",
        conflict::MACHINE_IDENTITY,
    ),
    ("join_tokens_pkey", "join_tokens.id", "join_tokens.id"),
    ("machines_pkey", "machines.id", "machines.id"),
    // Two concurrent new defaults: the loser may retry.
    (
        "clusters_one_default_idx",
        "clusters.is_default",
        "clusters.is_default",
    ),
    (
        "app_events_pkey",
        "app_events.app_id, app_events.seq",
        "app_events.seq",
    ),
    // Caller-chosen ids and secret hashes: not expected to collide, but named
    // precisely if they ever do.
    ("users_pkey", "users.id", "users.id"),
    ("sessions_pkey", "sessions.id", "sessions.id"),
    (
        "sessions_token_hash_key",
        "sessions.token_hash",
        "sessions.token_hash",
    ),
    ("api_tokens_pkey", "api_tokens.id", "api_tokens.id"),
    (
        "api_tokens_token_hash_key",
        "api_tokens.token_hash",
        "api_tokens.token_hash",
    ),
    ("orgs_pkey", "orgs.id", "orgs.id"),
    ("audit_pkey", "audit.id", "audit.id"),
    ("apps_pkey", "apps.id", "apps.id"),
    ("clusters_pkey", "clusters.id", "clusters.id"),
];

/// The conflict a PostgreSQL unique violation is, by constraint name.
pub(crate) fn pg_conflict(e: &dyn DatabaseError) -> Option<&'static str> {
    let constraint = e.constraint()?;
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|(pg, _, _)| *pg == constraint)
        .map(|(_, _, name)| *name)
}

/// The conflict a SQLite unique violation is, by the columns its message names.
pub(crate) fn sqlite_conflict(e: &dyn DatabaseError) -> Option<&'static str> {
    let columns = e.message().strip_prefix("UNIQUE constraint failed: ")?;
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|(_, lite, _)| *lite == columns)
        .map(|(_, _, name)| *name)
}

pub(crate) fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Backend(e.into())
}

/// Unique violations become [`StoreError::Conflict`]; a foreign key naming a
/// missing row (a user, an organization) becomes [`StoreError::NotFound`];
/// anything else is [`StoreError::Backend`].
pub(crate) fn map_sqlx(
    e: sqlx::Error,
    conflict_name: fn(&dyn DatabaseError) -> Option<&'static str>,
) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        match db.kind() {
            ErrorKind::UniqueViolation => {
                if let Some(name) = conflict_name(db.as_ref()) {
                    return StoreError::Conflict(name);
                }
            }
            ErrorKind::ForeignKeyViolation => return StoreError::NotFound,
            _ => {}
        }
    }
    backend(e)
}
