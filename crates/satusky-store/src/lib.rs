//! Satusky's [`Store`] on SQLite and PostgreSQL, with sqlx.
//!
//! - [`connect`] opens a database by URL, applies pending migrations and
//!   returns it as `Arc<dyn Store>`; [`migrate`] only migrates (for
//!   `satusky migrate`) and says what it applied.
//! - [`SqliteStore`] and [`PgStore`] are the two implementations, for callers
//!   that need the concrete type (its pool, `close`).
//! - [`conformance`] is the behaviour every `Store` must show; the
//!   integration tests run it on both databases.
//!
//! Migrations are forward-only and embedded: `migrations/sqlite` and
//! `migrations/postgres` hold the same schema in each dialect (see the
//! crate's README).

pub mod conformance;
mod error;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use satusky_core::store::Store;

pub use error::Error;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// The database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`.
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
}

impl Dialect {
    pub fn of_url(url: &str) -> Result<Self, Error> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(Error::UnsupportedUrl {
                scheme: other.to_owned(),
            }),
        }
    }
}

/// A migration that [`migrate`] applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// The number its file name starts with.
    pub version: i64,
    pub description: String,
}

impl std::fmt::Display for AppliedMigration {
    /// `20261121000000 initial`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.version, self.description)
    }
}

/// Opens the database `url` names, applies pending migrations and returns
/// the store.
///
/// Accepts `sqlite://PATH` (the file is created if missing), `sqlite::memory:`
/// and `postgres://…`.
#[tracing::instrument(skip_all)]
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, Error> {
    Ok(match Dialect::of_url(url)? {
        Dialect::Sqlite => Arc::new(SqliteStore::connect(url).await?),
        Dialect::Postgres => Arc::new(PgStore::connect(url).await?),
    })
}

/// Applies the pending migrations of the database `url` names and returns
/// them in order; empty when it was up to date.
#[tracing::instrument(skip_all)]
pub async fn migrate(url: &str) -> Result<Vec<AppliedMigration>, Error> {
    match Dialect::of_url(url)? {
        Dialect::Sqlite => {
            let store = SqliteStore::open(url).await?;
            let applied = store.migrate().await;
            store.close().await;
            applied
        }
        Dialect::Postgres => {
            let store = PgStore::open(url).await?;
            let applied = store.migrate().await;
            store.close().await;
            applied
        }
    }
}
