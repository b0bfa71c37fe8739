//! Opening and migrating databases by URL.

use satusky_store::{Dialect, Error, SqliteStore};

use crate::harness;

#[test]
fn urls_name_their_dialect() {
    assert_eq!(
        Dialect::of_url("sqlite:///var/lib/satusky/satusky.db").ok(),
        Some(Dialect::Sqlite)
    );
    assert_eq!(
        Dialect::of_url("sqlite::memory:").ok(),
        Some(Dialect::Sqlite)
    );
    assert_eq!(
        Dialect::of_url("postgres://u:p@db/satusky").ok(),
        Some(Dialect::Postgres)
    );
    assert_eq!(
        Dialect::of_url("postgresql://db/satusky").ok(),
        Some(Dialect::Postgres)
    );
}

#[tokio::test]
async fn an_unsupported_url_is_refused_without_echoing_it() {
    let err = satusky_store::connect("mysql://root:hunter2@db/satusky")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedUrl { ref scheme } if scheme == "mysql"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn an_in_memory_database_is_migrated_and_usable() {
    let store = satusky_store::connect("sqlite::memory:")
        .await
        .expect("connect");
    satusky_store::conformance::users_round_trip_exactly(store.clone()).await;
    assert_eq!(
        store.count_users().await.expect("count"),
        1,
        "one database across calls"
    );
}

#[tokio::test]
async fn in_memory_databases_are_private_to_their_store() {
    let first = satusky_store::connect("sqlite::memory:")
        .await
        .expect("connect");
    let second = satusky_store::connect("sqlite::memory:")
        .await
        .expect("connect");
    satusky_store::conformance::users_round_trip_exactly(first.clone()).await;
    assert_eq!(first.count_users().await.expect("count"), 1);
    assert_eq!(second.count_users().await.expect("count"), 0);
}

#[tokio::test]
async fn a_missing_sqlite_file_is_created_in_wal_mode_with_foreign_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("new.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open");
    assert!(path.exists());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .expect("pragma");
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(store.pool())
        .await
        .expect("pragma");
    assert!(busy >= 1000, "busy_timeout {busy}");
}

#[tokio::test]
async fn migrate_reports_what_it_applied_then_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    check_migrate(&url).await;
}

#[tokio::test]
async fn migrate_reports_what_it_applied_then_nothing_on_postgres() {
    let Some(admin) = harness::postgres_admin_url() else {
        return;
    };
    let url = harness::create_postgres_database(&admin).await;
    // No panic between create and drop but the asserts, which report the URL.
    let applied = satusky_store::migrate(&url).await;
    let again = satusky_store::migrate(&url).await;
    harness::drop_postgres_database(&url).await;
    let applied = applied.expect("migrate");
    assert!(!applied.is_empty());
    assert_eq!(applied[0].description, "initial");
    assert_eq!(again.expect("migrate again"), vec![]);
}

async fn check_migrate(url: &str) {
    let applied = satusky_store::migrate(url).await.expect("migrate");
    assert!(!applied.is_empty());
    assert_eq!(applied[0].description, "initial");
    assert_eq!(
        applied[0].to_string(),
        format!("{} initial", applied[0].version)
    );
    let versions: Vec<i64> = applied.iter().map(|m| m.version).collect();
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    assert_eq!(versions, sorted, "in order");
    assert_eq!(
        satusky_store::migrate(url).await.expect("migrate again"),
        vec![]
    );
    // `connect` finds nothing left to do and the store works.
    let store = satusky_store::connect(url).await.expect("connect");
    store.ping().await.expect("ping");
}

#[tokio::test]
async fn an_unreachable_postgres_server_is_an_error() {
    // Port 1 on loopback: nothing listens there.
    let err = satusky_store::connect("postgres://satusky@127.0.0.1:1/satusky")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_on_postgres_all_connect() {
    let Some(admin) = harness::postgres_admin_url() else {
        return;
    };
    let url = harness::create_postgres_database(&admin).await;
    let connects: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { satusky_store::connect(&url).await.map(|_| ()) })
        })
        .collect();
    let mut results = Vec::new();
    for c in connects {
        results.push(c.await.expect("task"));
    }
    let applied = satusky_store::migrate(&url).await;
    harness::drop_postgres_database(&url).await;
    for r in results {
        r.expect("connect while others migrate");
    }
    assert_eq!(applied.expect("migrate"), vec![], "migrated once");
}

/// What a set but unreachable `SATUSKY_TEST_POSTGRES_URL` does to every
/// PostgreSQL test: it fails, it is never skipped.
#[tokio::test]
#[should_panic(
    expected = "SATUSKY_TEST_POSTGRES_URL is set but the test database cannot be created"
)]
async fn an_unreachable_test_server_fails_the_postgres_tests() {
    harness::create_postgres_database("postgres://postgres@127.0.0.1:1/postgres").await;
}
