//! A release that no longer has an optional setting takes what it rendered
//! out of the cluster: the probes, the node affinity, the budget's settings,
//! the budget itself and the autoscaler.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::Api;
use satusky_types::apps::{Autoscaling, DisruptionBudget, HealthCheck};

use crate::support::{TestCluster, app, objects};

const NS: &str = "org-acme";

#[tokio::test]
async fn removed_settings_leave_the_cluster_with_their_objects_and_fields() {
    let c = TestCluster::start().await;
    c.sim
        .add_node(
            "gpu-0",
            [
                ("satusky.com/pool".to_owned(), "gpu".to_owned()),
                (
                    "topology.kubernetes.io/zone".to_owned(),
                    "zone-a".to_owned(),
                ),
            ]
            .into(),
        )
        .unwrap();
    let r = c.reconciler("r1");
    let mut a = app("app-1", "web", "ghcr.io/acme/web:1", 1);
    a.spec.health = Some(HealthCheck {
        path: "/healthz".into(),
        port: None,
        initial_delay_seconds: 0,
    });
    a.spec.autoscaling = Some(Autoscaling {
        min_replicas: 2,
        max_replicas: 4,
        cpu_percent: 70,
    });
    a.spec.machine_selector = Some("pool=gpu".into());
    a.spec.zone = Some("zone-a".into());
    a.spec.disruption_budget = Some(DisruptionBudget {
        min_available: Some("1".into()),
        max_unavailable: None,
    });
    c.source.put(a);
    let deps = c.deployments(NS);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.client.clone(), NS);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.client.clone(), NS);
    c.eventually("every object of release 1", || async {
        c.owned(NS, "app-1").await
            == objects(&[
                ("Deployment", "web"),
                ("Service", "web"),
                ("HTTPRoute", "web"),
                ("PodDisruptionBudget", "web"),
                ("HorizontalPodAutoscaler", "web"),
            ])
    })
    .await;
    let pod = deps
        .get("web")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    assert!(pod.containers[0].readiness_probe.is_some());
    assert!(pod.containers[0].liveness_probe.is_some());
    let terms = pod
        .affinity
        .unwrap()
        .node_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap()
        .node_selector_terms;
    assert_eq!(terms[0].match_expressions.as_ref().unwrap().len(), 2);
    let budget = pdbs.get("web").await.unwrap().spec.unwrap();
    assert_eq!(budget.min_available, Some(IntOrString::Int(1)));

    // Release 2: no health check, no placement, the default budget.
    c.source.change("app-1", |d| {
        d.spec.health = None;
        d.spec.machine_selector = None;
        d.spec.zone = None;
        d.spec.disruption_budget = None;
    });
    c.eventually("probes and node affinity to go", || async {
        let pod = deps
            .get("web")
            .await
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        let app = &pod.containers[0];
        app.readiness_probe.is_none() && app.liveness_probe.is_none() && pod.affinity.is_none()
    })
    .await;
    c.eventually("the budget's own settings to go", || async {
        let b = pdbs.get("web").await.unwrap().spec.unwrap();
        b.min_available.is_none() && b.max_unavailable == Some(IntOrString::Int(1))
    })
    .await;
    assert!(hpas.get_opt("web").await.unwrap().is_some());

    // Release 3: fixed replicas again; one replica needs no budget.
    c.source.change("app-1", |d| {
        d.spec.autoscaling = None;
        d.spec.replicas = 1;
    });
    c.eventually("the autoscaler and the budget to go", || async {
        c.owned(NS, "app-1").await
            == objects(&[
                ("Deployment", "web"),
                ("Service", "web"),
                ("HTTPRoute", "web"),
            ])
    })
    .await;
    assert!(hpas.get_opt("web").await.unwrap().is_none());
    assert!(pdbs.get_opt("web").await.unwrap().is_none());
    let s = c.wait_available("app-1", 3).await;
    assert_eq!(
        deps.get("web").await.unwrap().spec.unwrap().replicas,
        Some(1)
    );
    assert_eq!((s.desired_replicas, s.ready_replicas), (1, 1));
    // And nothing comes back on a later pass.
    c.source.poke("app-1");
    r.passes(2).await;
    assert_eq!(
        c.owned(NS, "app-1").await,
        objects(&[
            ("Deployment", "web"),
            ("Service", "web"),
            ("HTTPRoute", "web")
        ])
    );
    let pod = deps
        .get("web")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    assert!(pod.affinity.is_none() && pod.containers[0].readiness_probe.is_none());
    r.stop().await;
}
