//! Expired sessions are purged from the store, not only refused.

use std::time::Duration;

use crate::support::TestApp;

#[tokio::test]
async fn purging_deletes_expired_sessions_and_keeps_live_ones() {
    let app = TestApp::new().await;
    let expired = app.user("ann@example.com").await;
    app.clock.advance(chrono::Duration::days(8));
    let live = app.login("ann@example.com").await;
    let other = app.user("bob@example.com").await;
    app.get("/v1/me", &expired).await.err(401, "token_expired");

    assert_eq!(app.services.purge_expired_sessions().await.unwrap(), 1);
    // The row is gone: the secret is now unknown, not merely expired.
    app.get("/v1/me", &expired)
        .await
        .err(401, "unauthenticated");
    app.get("/v1/me", &live).await.ok();
    app.get("/v1/me", &other).await.ok();
    assert_eq!(app.services.purge_expired_sessions().await.unwrap(), 0);
}

#[tokio::test]
async fn the_periodic_sweep_purges_until_stopped() {
    let app = TestApp::new().await;
    let token = app.user("ann@example.com").await;
    app.clock.advance(chrono::Duration::days(8));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let services = app.services.clone();
    let sweep = tokio::spawn(async move {
        services
            .run_session_purge(Duration::from_millis(10), async {
                let _ = stopped.await;
            })
            .await;
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.get("/v1/me", &token).await.code() != "unauthenticated" {
        assert!(tokio::time::Instant::now() < deadline, "never purged");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), sweep)
        .await
        .expect("the sweep stops when told")
        .unwrap();
}
