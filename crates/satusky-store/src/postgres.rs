//! The PostgreSQL store.
//!
//! Timestamps are TIMESTAMPTZ. The last-owner check locks the org's owner
//! rows with `SELECT … FOR UPDATE` (in user id order, so that two checks
//! never deadlock), so two concurrent demotions serialise.

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Transaction};

use crate::AppliedMigration;
use crate::error::{Error, pg_conflict as conflict_name};

type Db = Postgres;
type Row = PgRow;
type Backend = PgStore;

const MAX_CONNECTIONS: u32 = 10;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// [`Store`](satusky_core::store::Store) on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `postgres://…` and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let store = Self::open(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating. Fails when the server is unreachable.
    pub async fn open(url: &str) -> Result<Self, Error> {
        let options = PgConnectOptions::from_str(url).map_err(Error::InvalidUrl)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(Error::Connect)?;
        tracing::debug!(db.dialect = "postgres", "database opened");
        Ok(Self { pool })
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection; later operations fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("migrations/postgres");
    // A database migrated by a newer release stays usable: forward-only
    // migrations only expand before code switches over.
    migrator.set_ignore_missing(true);
    migrator
}

async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

/// The org's owners and the member being changed, locked until commit. A
/// concurrent change waits, then re-reads the rows as committed: a demoted
/// owner no longer matches.
const LOCK_OWNERS: &str = "SELECT user_id, role FROM memberships \
     WHERE org_id = $1 AND (role = 'owner' OR user_id = $2) ORDER BY user_id FOR UPDATE";

/// Not a cached prepared statement: PostgreSQL then plans every call with
/// its actual parameters, and never settles on a generic plan that cannot
/// know which filters are NULL or how selective the keyset bound is.
const LIST_AUDIT_PERSISTENT: bool = false;

/// Truncated to microseconds as on SQLite (PostgreSQL would round).
fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

fn ts_at(row: &Row, i: usize) -> StoreResult<DateTime<Utc>> {
    col(row, i)
}

fn opt_ts_at(row: &Row, i: usize) -> StoreResult<Option<DateTime<Utc>>> {
    col(row, i)
}

// Imports of this module's items (`DateTime`, `StoreResult`, `col`…) come
// with the shared implementation.
/// The SQL value of label `key` (bound at `$param` as [`label_param`]) in
/// the JSONB column `col`; NULL when absent.
fn label_value(col: &str, param: usize) -> String {
    format!("({col} ->> ${param}::text)")
}

/// How a label key is bound for [`label_value`]: the key itself.
fn label_param(key: &str) -> String {
    key.to_owned()
}

include!("store_impl.rs");
