//! Conformance of the expired-session purge: it deletes exactly the sessions
//! expired by the given instant, of every user, and is idempotent.

use std::sync::Arc;

use satusky_core::store::{SessionRecord, Store, UserRecord};

use super::{given_user, micros, session, t0};

pub async fn purging_expired_sessions_deletes_exactly_those_expired_by_then(store: Arc<dyn Store>) {
    let ada = given_user(&*store, "ada@example.com").await;
    let bob = given_user(&*store, "bob@example.com").await;
    let now = t0() + micros(3_600_000_000);
    let expiring = |owner: &UserRecord, at| SessionRecord {
        expires_at: at,
        ..session(owner)
    };
    let long_gone = expiring(&ada, t0());
    let just_now = expiring(&bob, now);
    let a_microsecond_left = expiring(&ada, now + micros(1));
    let fresh = session(&bob);
    for s in [&long_gone, &just_now, &a_microsecond_left, &fresh] {
        store.create_session(s).await.expect("create_session");
    }

    let purged = store.delete_expired_sessions(now).await.expect("purge");
    assert_eq!(purged, 2);
    for gone in [&long_gone, &just_now] {
        assert_eq!(
            store
                .get_session_by_hash(&gone.token_hash)
                .await
                .expect("by hash"),
            None,
            "session expiring at {} was not purged",
            gone.expires_at
        );
    }
    for kept in [&a_microsecond_left, &fresh] {
        let found = store
            .get_session_by_hash(&kept.token_hash)
            .await
            .expect("by hash")
            .map(|(s, _)| s);
        assert_eq!(found.as_ref(), Some(kept));
    }

    // Idempotent: a second sweep (or a concurrent replica's) finds nothing.
    assert_eq!(store.delete_expired_sessions(now).await.expect("again"), 0);
    // A later sweep takes what has expired since.
    assert_eq!(
        store
            .delete_expired_sessions(now + micros(1))
            .await
            .expect("later"),
        1
    );
}
