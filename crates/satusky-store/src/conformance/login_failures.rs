//! Conformance of the failed-login records that every replica's login
//! limiter shares: recorded per kind and key, counted newest first after a
//! time and up to a limit, cleared per key, pruned by time.

use std::sync::Arc;

use satusky_core::store::{LoginFailureKind, Store};

use super::{micros, t0};

const ACCOUNT: LoginFailureKind = LoginFailureKind::Account;
const ADDRESS: LoginFailureKind = LoginFailureKind::Address;

pub async fn login_failures_are_counted_per_kind_and_key_newest_first(store: Arc<dyn Store>) {
    for (kind, key, at) in [
        (ACCOUNT, "ann", 1),
        (ACCOUNT, "ann", 3),
        (ACCOUNT, "ann", 2),
        // The same instant twice is two failures.
        (ACCOUNT, "ann", 3),
        (ACCOUNT, "bob", 2),
        // The same key of the other kind is another key.
        (ADDRESS, "ann", 2),
    ] {
        store
            .record_login_failure(kind, key, t0() + micros(at))
            .await
            .expect("record_login_failure");
    }
    let since = |kind: LoginFailureKind, key: &'static str, after: i64, limit: u32| {
        let store = Arc::clone(&store);
        async move {
            store
                .login_failures_since(kind, key, t0() + micros(after), limit)
                .await
                .expect("login_failures_since")
        }
    };
    let at = |us: i64| t0() + micros(us);

    assert_eq!(
        since(ACCOUNT, "ann", 0, 10).await,
        [at(3), at(3), at(2), at(1)]
    );
    // Strictly after `since`.
    assert_eq!(since(ACCOUNT, "ann", 1, 10).await, [at(3), at(3), at(2)]);
    assert!(since(ACCOUNT, "ann", 3, 10).await.is_empty());
    // At most `limit`, the newest.
    assert_eq!(since(ACCOUNT, "ann", 0, 3).await, [at(3), at(3), at(2)]);
    assert_eq!(since(ACCOUNT, "bob", 0, 10).await, [at(2)]);
    assert_eq!(since(ADDRESS, "ann", 0, 10).await, [at(2)]);
    assert!(since(ADDRESS, "bob", 0, 10).await.is_empty());
    // Keys compare exactly.
    assert!(since(ACCOUNT, "Ann", 0, 10).await.is_empty());
}

pub async fn clearing_login_failures_forgets_one_key_only(store: Arc<dyn Store>) {
    for (kind, key) in [
        (ACCOUNT, "ann"),
        (ACCOUNT, "ann"),
        (ACCOUNT, "bob"),
        (ADDRESS, "ann"),
    ] {
        store
            .record_login_failure(kind, key, t0())
            .await
            .expect("record_login_failure");
    }
    let count = |kind: LoginFailureKind, key: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .login_failures_since(kind, key, t0() - micros(1), 10)
                .await
                .expect("login_failures_since")
                .len()
        }
    };

    assert_eq!(
        store.clear_login_failures(ACCOUNT, "ann").await.ok(),
        Some(2)
    );
    assert_eq!(count(ACCOUNT, "ann").await, 0);
    assert_eq!(count(ACCOUNT, "bob").await, 1);
    assert_eq!(count(ADDRESS, "ann").await, 1);
    // Clearing a key without failures is no error.
    assert_eq!(
        store.clear_login_failures(ACCOUNT, "ann").await.ok(),
        Some(0)
    );
}

pub async fn pruning_login_failures_deletes_exactly_those_at_or_before_then(store: Arc<dyn Store>) {
    for (kind, key, at) in [
        (ACCOUNT, "ann", 1),
        (ADDRESS, "10.0.0.1", 2),
        (ACCOUNT, "ann", 3),
        (ADDRESS, "10.0.0.1", 4),
    ] {
        store
            .record_login_failure(kind, key, t0() + micros(at))
            .await
            .expect("record_login_failure");
    }
    let left = |kind: LoginFailureKind, key: &'static str| {
        let store = Arc::clone(&store);
        async move {
            store
                .login_failures_since(kind, key, t0(), 10)
                .await
                .expect("login_failures_since")
        }
    };

    let pruned = store
        .prune_login_failures(t0() + micros(2))
        .await
        .expect("prune");
    assert_eq!(pruned, 2);
    assert_eq!(left(ACCOUNT, "ann").await, [t0() + micros(3)]);
    assert_eq!(left(ADDRESS, "10.0.0.1").await, [t0() + micros(4)]);
    // Idempotent: a second prune (or a concurrent replica's) finds nothing.
    assert_eq!(
        store
            .prune_login_failures(t0() + micros(2))
            .await
            .expect("again"),
        0
    );
}

pub async fn a_login_attempt_counts_as_a_failure_until_exactly_its_row_is_forgotten(
    store: Arc<dyn Store>,
) {
    // Two attempts and an older failure at the very same instant.
    store
        .record_login_failure(ADDRESS, "10.0.0.1", t0())
        .await
        .expect("record failure");
    for attempt in ["a1", "a2"] {
        store
            .record_login_attempt(ADDRESS, "10.0.0.1", t0(), attempt)
            .await
            .expect("record attempt");
    }
    let count = |store: Arc<dyn Store>| async move {
        store
            .login_failures_since(ADDRESS, "10.0.0.1", t0() - micros(1), 100)
            .await
            .expect("count")
            .len()
    };
    assert_eq!(count(store.clone()).await, 3, "attempts count as failures");
    assert_eq!(
        store
            .forget_login_attempt(ADDRESS, "10.0.0.1", "a1")
            .await
            .expect("forget"),
        1
    );
    assert_eq!(
        count(store.clone()).await,
        2,
        "only that attempt's row went"
    );
    // Another key's or kind's attempt of the same name is not this one.
    assert_eq!(
        store
            .forget_login_attempt(ACCOUNT, "10.0.0.1", "a2")
            .await
            .expect("forget"),
        0
    );
    assert_eq!(
        store
            .forget_login_attempt(ADDRESS, "10.0.0.1", "a1")
            .await
            .expect("forget"),
        0,
        "forgetting twice is a no-op"
    );
    assert_eq!(count(store.clone()).await, 2);
}
