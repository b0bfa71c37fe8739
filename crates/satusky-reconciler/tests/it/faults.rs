//! Injected API faults are retried; a pass that still fails backs off and
//! tries again.

use kube_sim::{Fault, Verb};

use crate::support::{TestCluster, app};

#[tokio::test]
async fn injected_409_429_and_500_answers_are_retried() {
    let c = TestCluster::start().await;
    let f = c.sim.faults();
    f.inject(
        Fault::error(409)
            .verb(Verb::Patch)
            .resource("deployments")
            .times(2),
    );
    f.inject(
        Fault::error(429)
            .verb(Verb::Patch)
            .resource("services")
            .times(2),
    );
    f.inject(
        Fault::error(500)
            .verb(Verb::Patch)
            .resource("namespaces")
            .times(2),
    );
    let r = c.reconciler("r1");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 2));
    c.wait_available("app-1", 1).await;
    let s = r.stats.snapshot();
    assert!(s.retries >= 6, "{s:?}");
    assert!(
        s.errors.is_empty(),
        "each fault was absorbed by a retry: {s:?}"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_pass_that_keeps_failing_backs_off_and_then_converges() {
    let c = TestCluster::start().await;
    // More failures than one call retries: whole passes fail for a while.
    c.sim.faults().inject(
        Fault::error(500)
            .verb(Verb::Patch)
            .resource("deployments")
            .times(12),
    );
    let r = c.reconciler("r1");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 1));
    c.wait_available("app-1", 1).await;
    let s = r.stats.snapshot();
    assert!(s.errors.get("kube").copied().unwrap_or(0) >= 2, "{s:?}");
    r.stop().await;
}
