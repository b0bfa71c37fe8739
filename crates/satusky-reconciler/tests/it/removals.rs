//! A release that no longer has an optional setting takes what it rendered
//! out of the cluster: the probes, the node affinity, the budget's settings,
//! the budget itself and the autoscaler.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::Api;
use satusky_core::clock::SystemClock;
use satusky_core::{Ctx, Services, ServicesConfig};
use satusky_reconciler::Reconciler;
use satusky_types::apps::{AppPhase, Autoscaling, DeployRequest, DisruptionBudget, HealthCheck};

use crate::support::{RunningReconciler, TestCluster, WAIT, app, config, objects};

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

async fn wait_phase(services: &Services, ctx: &Ctx, phase: AppPhase, generation: u64) {
    let r = tokio::time::timeout(WAIT, async {
        loop {
            let app = services.get_app(ctx, "acme", "web").await.unwrap();
            if app.status.phase == phase && app.status.observed_generation >= generation {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if r.is_err() {
        let app = services.get_app(ctx, "acme", "web").await.unwrap();
        panic!("timed out waiting for {phase:?}: {:#?}", app.status);
    }
}

#[tokio::test]
async fn a_deploy_that_removes_autoscaling_and_the_health_check_takes_them_off_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("satusky.db").display());
    let store = satusky_store::connect(&url).await.unwrap();
    let services = Services::new(store, Arc::new(SystemClock), ServicesConfig::default());
    services
        .create_user("dev@acme.test", "long enough pw", Some("Dev"))
        .await
        .unwrap();
    let session = services
        .login("dev@acme.test", "long enough pw", "127.0.0.1")
        .await
        .unwrap();
    let ctx = Ctx {
        principal: services.authenticate(&session.token).await.unwrap(),
        request_id: "test".into(),
    };
    services.create_org(&ctx, "acme", None).await.unwrap();
    let req: DeployRequest = serde_json::from_value(serde_json::json!({
        "image": "ghcr.io/acme/web:1",
        "create": true,
        "ports": [{"container_port": 8080, "public": true}],
        "health": {"path": "/healthz"},
        "autoscaling": {"min_replicas": 2, "max_replicas": 4},
        "disruption_budget": {"min_available": "1"},
    }))
    .unwrap();
    let first = services
        .deploy(&ctx, "acme", "web", &req, None)
        .await
        .unwrap();
    let app_id = first.app.id.clone();
    let ns = services
        .desired_app(&app_id)
        .await
        .unwrap()
        .unwrap()
        .namespace;
    let c = TestCluster::start().await;
    let r = RunningReconciler::spawn(Reconciler::new(
        services.clone(),
        c.client.clone(),
        config("e2e"),
    ));
    c.eventually("the autoscaler and the budget", || async {
        c.owned(&ns, &app_id).await
            == objects(&[
                ("Deployment", "web"),
                ("Service", "web"),
                ("HTTPRoute", "web"),
                ("PodDisruptionBudget", "web"),
                ("HorizontalPodAutoscaler", "web"),
            ])
    })
    .await;

    let req: DeployRequest = serde_json::from_value(serde_json::json!({
        "image": "ghcr.io/acme/web:1",
        "autoscaling": null,
        "health": null,
        "replicas": 1,
    }))
    .unwrap();
    let second = services
        .deploy(&ctx, "acme", "web", &req, Some("fixed-again"))
        .await
        .unwrap();
    assert_eq!(second.release.number, 2);
    wait_phase(&services, &ctx, AppPhase::Available, second.app.generation).await;
    c.eventually("only the fixed-replica objects", || async {
        c.owned(&ns, &app_id).await
            == objects(&[
                ("Deployment", "web"),
                ("Service", "web"),
                ("HTTPRoute", "web"),
            ])
    })
    .await;
    let dep = c.deployments(&ns).get("web").await.unwrap().spec.unwrap();
    assert_eq!(dep.replicas, Some(1));
    let container = &dep.template.spec.unwrap().containers[0];
    assert!(container.readiness_probe.is_none() && container.liveness_probe.is_none());
    // A retry with the same key replays the release and changes nothing.
    let replay = services
        .deploy(&ctx, "acme", "web", &req, Some("fixed-again"))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.release.number, 2);
    r.stop().await;
}
