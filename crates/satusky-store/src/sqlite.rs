//! The SQLite store: one file in WAL mode (or `sqlite::memory:` for tests).
//!
//! Timestamps are INTEGER microseconds since the Unix epoch. Write
//! transactions start with `BEGIN IMMEDIATE`, which takes SQLite's single
//! write lock up front: a transaction that reads then writes (the last-owner
//! check) can neither interleave with another writer nor fail to upgrade.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::AppliedMigration;
use crate::error::{Error, sqlite_conflict as conflict_name};

type Db = Sqlite;
type Row = SqliteRow;
type Backend = SqliteStore;

/// How long a writer waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections to a database file: readers run in parallel under WAL.
const MAX_CONNECTIONS: u32 = 8;

/// [`Store`](satusky_core::store::Store) on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens `sqlite://PATH` (creating the file if missing) or
    /// `sqlite::memory:`, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let store = Self::open(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating it.
    ///
    /// Every connection has foreign keys on and a busy timeout; a file
    /// database runs in WAL mode. An in-memory database lives as long as its
    /// single, never-recycled connection.
    pub async fn open(url: &str) -> Result<Self, Error> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(Error::InvalidUrl)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let (options, pool) = if in_memory {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            (options, pool)
        } else {
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            (
                options,
                SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS),
            )
        };
        let pool = pool.connect_with(options).await.map_err(Error::Connect)?;
        tracing::debug!(db.dialect = "sqlite", in_memory, "database opened");
        Ok(Self { pool })
    }

    /// A store over an existing pool (its connections should have foreign
    /// keys on).
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection; later operations fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("migrations/sqlite");
    // A database migrated by a newer release stays usable: forward-only
    // migrations only expand before code switches over.
    migrator.set_ignore_missing(true);
    migrator
}

async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// The org's owners and the member being changed. `BEGIN IMMEDIATE` already
/// holds the write lock, so nothing can change them before the write.
const LOCK_OWNERS: &str = "SELECT user_id, role FROM memberships \
     WHERE org_id = $1 AND (role = 'owner' OR user_id = $2) ORDER BY user_id";

/// SQLite plans `list_audit` the same whatever its parameters (a range of
/// the `(org_id, id)` index), so the prepared statement is cached.
const LIST_AUDIT_PERSISTENT: bool = true;

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(micros: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| backend(format!("timestamp of {micros} µs is out of range")))
}

fn ts_at(row: &Row, i: usize) -> StoreResult<DateTime<Utc>> {
    from_micros(col(row, i)?)
}

fn opt_ts_at(row: &Row, i: usize) -> StoreResult<Option<DateTime<Utc>>> {
    col::<Option<i64>>(row, i)?.map(from_micros).transpose()
}

// Imports of this module's items (`DateTime`, `StoreResult`, `col`…) come
// with the shared implementation.
/// The SQL value of label `key` (bound at `$param` as [`label_param`]) in
/// the JSON object column `col`; NULL when absent.
fn label_value(col: &str, param: usize) -> String {
    format!("json_extract({col}, ${param})")
}

/// How a label key is bound for [`label_value`]: a JSON path naming the
/// key as one member (keys hold `.` and `/`; selector keys never hold `"`).
fn label_param(key: &str) -> String {
    format!("$.\"{key}\"")
}

include!("store_impl.rs");
