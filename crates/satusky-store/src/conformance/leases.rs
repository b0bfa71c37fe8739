//! Conformance of leases: one holder at a time, taken over only after the
//! term ends, renewed and released only by their holder.

use std::sync::Arc;

use satusky_core::store::{LeaseRecord, Store};

use super::{micros, t0};

const NAME: &str = "machine-op/m-1";

pub async fn a_lease_has_one_holder_until_it_expires(store: Arc<dyn Store>) {
    let now = t0();
    let end = now + micros(30_000_000);
    assert_eq!(store.get_lease(NAME).await.expect("get"), None);
    assert!(
        store
            .acquire_lease(NAME, "a", now, end)
            .await
            .expect("take")
    );
    assert_eq!(
        store.get_lease(NAME).await.expect("get"),
        Some(LeaseRecord {
            name: NAME.to_owned(),
            holder: "a".to_owned(),
            expires_at: end,
        })
    );
    // Another holder cannot take it before the end, even a microsecond before.
    assert!(
        !store
            .acquire_lease(NAME, "b", end - micros(1), end + micros(30_000_000))
            .await
            .expect("refused")
    );
    assert_eq!(
        store.get_lease(NAME).await.expect("get").map(|l| l.holder),
        Some("a".to_owned())
    );
    // Its holder takes it again: a renewal.
    let later = end + micros(10_000_000);
    assert!(
        store
            .acquire_lease(NAME, "a", now + micros(5), later)
            .await
            .expect("again")
    );
    assert_eq!(
        store
            .get_lease(NAME)
            .await
            .expect("get")
            .map(|l| l.expires_at),
        Some(later)
    );
    // Other names are independent.
    assert!(
        store
            .acquire_lease("machine-op/m-2", "b", now, end)
            .await
            .expect("other")
    );
    // At the end of the term, another holder takes it over.
    let b_end = later + micros(30_000_000);
    assert!(
        store
            .acquire_lease(NAME, "b", later, b_end)
            .await
            .expect("take over")
    );
    assert_eq!(
        store.get_lease(NAME).await.expect("get"),
        Some(LeaseRecord {
            name: NAME.to_owned(),
            holder: "b".to_owned(),
            expires_at: b_end,
        })
    );
}

pub async fn only_the_holder_renews_and_releases_a_lease(store: Arc<dyn Store>) {
    let now = t0();
    let end = now + micros(30_000_000);
    assert!(
        !store
            .renew_lease(NAME, "a", end)
            .await
            .expect("renew nothing")
    );
    assert!(
        !store
            .release_lease(NAME, "a")
            .await
            .expect("release nothing")
    );
    assert!(
        store
            .acquire_lease(NAME, "a", now, end)
            .await
            .expect("take")
    );
    let longer = end + micros(60_000_000);
    assert!(!store.renew_lease(NAME, "b", longer).await.expect("not b's"));
    assert!(!store.release_lease(NAME, "b").await.expect("not b's"));
    assert!(store.renew_lease(NAME, "a", longer).await.expect("renew"));
    assert_eq!(
        store
            .get_lease(NAME)
            .await
            .expect("get")
            .map(|l| l.expires_at),
        Some(longer)
    );
    // Taken over after expiry: the old holder's renewal fails.
    assert!(
        store
            .acquire_lease(NAME, "b", longer, longer + micros(1_000_000))
            .await
            .expect("take over")
    );
    assert!(
        !store
            .renew_lease(NAME, "a", longer + micros(9))
            .await
            .expect("lost")
    );
    assert!(!store.release_lease(NAME, "a").await.expect("lost"));
    // Released, it is free at once for anybody.
    assert!(store.release_lease(NAME, "b").await.expect("release"));
    assert_eq!(store.get_lease(NAME).await.expect("get"), None);
    assert!(
        store
            .acquire_lease(NAME, "c", now, end)
            .await
            .expect("free")
    );
}

pub async fn concurrent_takers_of_a_free_lease_let_exactly_one_win(store: Arc<dyn Store>) {
    let now = t0();
    // Free, and expired: both are contested the same way.
    assert!(
        store
            .acquire_lease(NAME, "old", now - micros(60_000_000), now)
            .await
            .expect("old")
    );
    for name in ["machine-op/fresh", NAME] {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let holder = format!("replica-{i}");
                    let won = store
                        .acquire_lease(name, &holder, now, now + micros(30_000_000))
                        .await
                        .expect("acquire");
                    won.then_some(holder)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            if let Some(h) = t.await.expect("join") {
                winners.push(h);
            }
        }
        assert_eq!(winners.len(), 1, "{name}: {winners:?}");
        assert_eq!(
            store.get_lease(name).await.expect("get").map(|l| l.holder),
            winners.pop()
        );
    }
}
