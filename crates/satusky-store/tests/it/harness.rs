//! A fresh database per test: a SQLite file in a temporary directory, or a
//! PostgreSQL database `satusky_test_<random>` created through
//! `SATUSKY_TEST_POSTGRES_URL` and dropped afterwards, even when the test
//! fails.

use std::future::Future;
use std::sync::Arc;

use satusky_core::store::Store;
use sqlx::migrate::MigrateDatabase as _;

/// The PostgreSQL admin URL, when PostgreSQL tests are asked for.
#[expect(
    clippy::disallowed_methods,
    reason = "tests read their settings from the environment"
)]
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(satusky_types::env::SATUSKY_TEST_POSTGRES_URL) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => None,
    }
}

/// A fresh SQLite database file; dropping the directory removes it.
pub async fn sqlite_store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("satusky.db").display());
    let store = satusky_store::connect(&url)
        .await
        .expect("open the SQLite test database");
    (dir, store)
}

pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (_dir, store) = sqlite_store().await;
    test(store).await;
}

pub async fn on_sqlite_memory<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let store = satusky_store::connect("sqlite::memory:")
        .await
        .expect("open an in-memory database");
    test(store).await;
}

/// A fresh, empty database on the PostgreSQL server of `admin_url`; drop it
/// with [`drop_postgres_database`].
pub async fn create_postgres_database(admin_url: &str) -> String {
    let mut url = url::Url::parse(admin_url).expect("SATUSKY_TEST_POSTGRES_URL is a URL");
    let name = format!("satusky_test_{}", uuid::Uuid::new_v4().simple());
    url.set_path(&name);
    sqlx::Postgres::create_database(url.as_str())
        .await
        .unwrap_or_else(|e| {
            panic!("SATUSKY_TEST_POSTGRES_URL is set but the test database cannot be created: {e}")
        });
    url.into()
}

pub async fn drop_postgres_database(url: &str) {
    sqlx::Postgres::force_drop_database(url)
        .await
        .expect("drop the test database");
}

pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin_url) = postgres_admin_url() else {
        eprintln!("SATUSKY_TEST_POSTGRES_URL is not set: not running on PostgreSQL");
        return;
    };
    let url = create_postgres_database(&admin_url).await;
    let outcome = match satusky_store::connect(&url).await {
        // In a task, so that a failed assertion still drops the database.
        Ok(store) => tokio::spawn(test(store))
            .await
            .map_err(tokio::task::JoinError::into_panic),
        Err(e) => Err(Box::new(format!("cannot open the PostgreSQL test database: {e:?}")) as _),
    };
    drop_postgres_database(&url).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
