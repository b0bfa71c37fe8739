//! The leader Lease: one writer at a time; hand-over on stop and after a crash.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube_sim::Fault;

use crate::support::{TestCluster, app};

#[tokio::test]
async fn with_two_reconcilers_only_the_lease_holder_writes() {
    let c = TestCluster::start().await;
    let r1 = c.reconciler("r1");
    r1.wait_leader().await;
    let r2 = c.reconciler("r2");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 2));
    c.wait_available("app-1", 1).await;
    r1.passes(1).await;
    assert!(r1.stats.snapshot().writes > 0);
    let s2 = r2.stats.snapshot();
    assert_eq!(
        (s2.writes, s2.passes, s2.lease_acquisitions),
        (0, 0, 0),
        "{s2:?}"
    );
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "satusky-system");
    let l = leases.get("satusky-reconciler").await.unwrap();
    assert_eq!(l.spec.unwrap().holder_identity.as_deref(), Some("r1"));

    // r1 stops and releases: r2 takes over at once and applies the next change.
    r1.stop().await;
    let released = leases
        .get("satusky-reconciler")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert!(
        released.holder_identity.is_none() || released.holder_identity.as_deref() == Some("r2"),
        "{released:?}"
    );
    let stopped = Instant::now();
    r2.wait_leader().await;
    assert!(
        stopped.elapsed() < Duration::from_secs(2),
        "no wait for expiry after a release"
    );
    c.source
        .change("app-1", |d| d.spec.image = "ghcr.io/acme/web:2".into());
    c.wait_available("app-1", 2).await;
    assert!(r2.stats.snapshot().writes > 0);
    let l = leases.get("satusky-reconciler").await.unwrap();
    assert_eq!(l.spec.unwrap().holder_identity.as_deref(), Some("r2"));
    r2.stop().await;
}

#[tokio::test]
async fn a_crashed_holders_lease_is_taken_over_after_it_expires() {
    let c = TestCluster::start().await;
    let r1 = c.reconciler("r1");
    r1.wait_leader().await;
    let r2 = c.reconciler("r2");
    r1.crash();
    let started = std::time::Instant::now();
    r2.wait_leader().await;
    // Not before the 2 s lease ran out (minus the time r1 had renewed it).
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 1));
    c.wait_available("app-1", 1).await;
    r2.stop().await;
}

#[tokio::test]
async fn a_reconciler_stopped_mid_deploy_is_succeeded_without_duplicates() {
    let c = TestCluster::with(|b| b.pod_start_delay(std::time::Duration::from_millis(600))).await;
    let r1 = c.reconciler("r1");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 3));
    c.wait_status("app-1", "a rollout under way", |s| {
        s.phase == satusky_types::apps::AppPhase::Progressing
    })
    .await;
    r1.stop().await;
    let events_before = c.source.events("app-1").len();
    let r2 = c.reconciler("r2");
    c.wait_available("app-1", 1).await;
    // r2 continued from r1's record: no pod became ready twice.
    let events = c.source.events("app-1");
    let mut ready: Vec<&String> = events
        .iter()
        .filter(|(_, m)| m.contains(" is ready"))
        .map(|(_, m)| m)
        .collect();
    let n = ready.len();
    ready.sort();
    ready.dedup();
    assert_eq!(ready.len(), n, "{events:?}");
    assert!(events.len() > events_before);
    assert_eq!(
        c.owned("org-acme", "app-1").await,
        crate::support::objects(&[
            ("Deployment", "web"),
            ("Service", "web"),
            ("HTTPRoute", "web"),
            ("PodDisruptionBudget", "web"),
        ])
    );
    assert_eq!(c.replica_sets("org-acme", "app-1").await.len(), 1);
    assert_eq!(c.pods("org-acme", "app-1").await.len(), 3);
    r2.stop().await;
}

#[tokio::test]
async fn a_holder_that_cannot_renew_steps_down_before_its_lease_expires() {
    let c = TestCluster::start().await;
    let r1 = c.reconciler("r1");
    r1.wait_leader().await;
    c.sim.faults().inject(Fault::error(500).resource("leases"));
    let cut_off = Instant::now();
    let stats = r1.stats.clone();
    c.eventually("r1 to step down", || {
        let stats = stats.clone();
        async move { !stats.is_leader() }
    })
    .await;
    // Before the 2 s lease could look expired to anyone else.
    assert!(
        cut_off.elapsed() < Duration::from_secs(2),
        "{:?}",
        cut_off.elapsed()
    );
    let writes = r1.stats.snapshot().writes;
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        r1.stats.snapshot().writes,
        writes,
        "a follower never writes"
    );

    // The API answers again: r1 takes its lease back and catches up.
    c.sim.faults().clear();
    c.wait_available("app-1", 1).await;
    assert!(r1.stats.is_leader());
    r1.stop().await;
}
