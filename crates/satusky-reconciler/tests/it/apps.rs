//! Deploys, rollouts, failures a user can act on, deletion.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim};
use kube::api::{Api, ListParams};
use satusky_types::apps::{AppPhase, Autoscaling, Volume};

use crate::support::{self, TestCluster, app, objects};
use satusky_reconciler::ReconcilerConfig;

const NS: &str = "org-acme";

#[tokio::test]
async fn a_three_replica_deploy_becomes_available_with_exactly_the_expected_objects() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 3));
    let s = c.wait_available("app-1", 1).await;
    assert_eq!(
        (s.desired_replicas, s.ready_replicas, s.updated_replicas),
        (3, 3, 3)
    );
    assert_eq!(s.observed_release, Some(1));
    assert_eq!(s.replicas.len(), 3);
    assert!(
        s.replicas
            .iter()
            .all(|p| p.ready && p.release == Some(1) && p.node.is_some())
    );
    let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(
        c.owned(NS, "app-1").await,
        objects(&[
            ("Deployment", "web"),
            ("Service", "web"),
            ("HTTPRoute", "web"),
            ("PodDisruptionBudget", "web"),
        ])
    );
    let v = c.versions(NS, "app-1").await;
    for org in [
        ("Namespace", NS),
        ("ResourceQuota", "satusky-quota"),
        ("LimitRange", "satusky-limits"),
        ("NetworkPolicy", "satusky-default-deny"),
    ] {
        assert!(
            v.contains_key(&(org.0.to_owned(), org.1.to_owned())),
            "{org:?}"
        );
    }
    assert_eq!(c.pods(NS, "app-1").await.len(), 3);
    r.stop().await;
}

#[tokio::test]
async fn a_second_pass_changes_nothing() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    let mut a = app("app-1", "web", "ghcr.io/acme/web:1", 2);
    a.secrets.insert("TOKEN".into(), "s3cret".into());
    a.spec.volumes = vec![Volume {
        name: "data".into(),
        size: "1Gi".into(),
        mount_path: "/data".into(),
    }];
    c.source.put(a);
    c.wait_available("app-1", 1).await;
    // Let watch events of the rollout settle, then compare two full passes.
    r.passes(2).await;
    let before = c.versions(NS, "app-1").await;
    assert_eq!(before.len(), 4 + 6, "{before:#?}");
    for _ in 0..3 {
        c.source.poke("app-1");
        r.passes(1).await;
    }
    let after = c.versions(NS, "app-1").await;
    assert_eq!(
        before, after,
        "a pass without a change must not write anything new"
    );
    r.stop().await;
}

#[tokio::test]
async fn scale_env_change_and_rollback_each_roll_out() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    c.source.put(app("app-1", "web", "ghcr.io/acme/web:1", 2));
    c.wait_available("app-1", 1).await;
    let deps = c.deployments(NS);

    // Scale: replicas change, the template does not.
    let tpl_before = deps.get("web").await.unwrap().spec.unwrap().template;
    c.source.change("app-1", |d| d.spec.replicas = 4);
    let s = c.wait_available("app-1", 2).await;
    assert_eq!((s.desired_replicas, s.ready_replicas), (4, 4));
    let dep = deps.get("web").await.unwrap();
    assert_eq!(dep.spec.as_ref().unwrap().replicas, Some(4));
    assert_eq!(dep.spec.unwrap().template, tpl_before);
    assert_eq!(c.pods(NS, "app-1").await.len(), 4);

    // Env change: a new template, a new ReplicaSet, pods replaced.
    c.source.change("app-1", |d| {
        d.spec.env.insert("MODE".into(), "fast".into());
    });
    let s = c.wait_available("app-1", 3).await;
    assert_eq!(s.observed_release, Some(3));
    let dep = deps.get("web").await.unwrap();
    let env = dep.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    assert!(
        env.iter()
            .any(|e| e.name == "MODE" && e.value.as_deref() == Some("fast"))
    );
    assert_eq!(c.replica_sets(NS, "app-1").await.len(), 2);
    c.eventually("old pods to go", || async {
        let pods = c.pods(NS, "app-1").await;
        pods.len() == 4 && pods.iter().all(|p| p.metadata.deletion_timestamp.is_none())
    })
    .await;

    // Rollback to the first release's spec (at 4 replicas): the env goes away again.
    c.source.change("app-1", |d| {
        d.spec.env.clear();
        d.spec.image = "ghcr.io/acme/web:1".into();
    });
    let s = c.wait_available("app-1", 4).await;
    assert_eq!(s.observed_release, Some(4));
    let dep = deps.get("web").await.unwrap();
    let env = dep.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert!(env.is_empty(), "{env:?}");
    // The old ReplicaSet is reused, as `kubectl rollout undo` would.
    assert_eq!(c.replica_sets(NS, "app-1").await.len(), 2);
    assert!(s.replicas.iter().all(|p| p.release == Some(4)));
    r.stop().await;
}

#[tokio::test]
async fn a_crash_looping_image_makes_the_app_degraded_with_crash_loop_back_off() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    c.source
        .put(app("app-1", "web", "ghcr.io/acme/kube-sim/crashloop:1", 2));
    let s = c
        .wait_status("app-1", "Degraded", |s| s.phase == AppPhase::Degraded)
        .await;
    assert_eq!(s.reason.as_deref(), Some("CrashLoopBackOff"));
    let degraded = s.conditions.iter().find(|c| c.type_ == "Degraded").unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_deref()),
        ("True", Some("CrashLoopBackOff"))
    );
    // A Warning Event on the Deployment says so, and the user's stream tells it.
    let events: Api<Event> = Api::namespaced(c.client.clone(), NS);
    c.eventually("a CrashLoopBackOff event on the Deployment", || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("CrashLoopBackOff")
                    && e.involved_object.kind.as_deref() == Some("Deployment")
                    && e.involved_object.name.as_deref() == Some("web")
                    && e.type_.as_deref() == Some("Warning")
            })
    })
    .await;
    // Once per new reason, not once per pass.
    r.passes(3).await;
    let ours = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reporting_component.as_deref() == Some("satusky-reconciler"))
        .count();
    assert_eq!(ours, 1);
    assert!(
        c.source
            .events("app-1")
            .iter()
            .any(|(k, m)| k == "pod.changed" && m.contains("CrashLoopBackOff"))
    );

    // Deploying a good image heals it.
    c.source
        .change("app-1", |d| d.spec.image = "ghcr.io/acme/web:2".into());
    c.wait_available("app-1", 2).await;
    r.stop().await;
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_makes_the_app_degraded_with_image_pull_back_off() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    c.source
        .put(app("app-1", "web", "ghcr.io/acme/kube-sim/pullfail:1", 1));
    let s = c
        .wait_status("app-1", "Degraded", |s| s.phase == AppPhase::Degraded)
        .await;
    assert_eq!(s.reason.as_deref(), Some("ImagePullBackOff"));
    assert!(s.message.unwrap().contains("pod web-"));
    r.stop().await;
}

#[tokio::test]
async fn an_unschedulable_pod_is_waited_for_during_the_grace_then_degrades_the_app() {
    let c = TestCluster::start().await;
    let r = c.reconciler_with(ReconcilerConfig {
        unschedulable_grace: std::time::Duration::from_secs(2),
        ..support::config("r1")
    });
    let mut a = app("app-1", "web", "ghcr.io/acme/web:1", 1);
    a.spec.machine_selector = Some("pool=gpu".into());
    c.source.put(a);
    let waiting = c
        .wait_status("app-1", "progressing while unschedulable", |s| {
            s.phase == AppPhase::Progressing
                && s.message
                    .as_deref()
                    .is_some_and(|m| m.contains("unschedulable for"))
        })
        .await;
    assert_eq!(waiting.replicas[0].reason.as_deref(), Some("Unschedulable"));
    let s = c
        .wait_status("app-1", "Degraded", |s| s.phase == AppPhase::Degraded)
        .await;
    assert_eq!(s.reason.as_deref(), Some("Unschedulable"));
    r.stop().await;
}

#[tokio::test]
async fn an_unsatisfiable_machine_selector_makes_the_app_degraded_with_unschedulable() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    let mut a = app("app-1", "web", "ghcr.io/acme/web:1", 1);
    a.spec.machine_selector = Some("pool=gpu".into());
    c.source.put(a);
    let s = c
        .wait_status("app-1", "Degraded", |s| s.phase == AppPhase::Degraded)
        .await;
    assert_eq!(s.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(s.replicas[0].reason.as_deref(), Some("Unschedulable"));

    // A machine with the label arrives: the pod schedules there.
    c.sim
        .add_node(
            "gpu-0",
            [("satusky.com/pool".to_owned(), "gpu".to_owned())].into(),
        )
        .unwrap();
    let s = c.wait_available("app-1", 1).await;
    assert_eq!(s.replicas[0].node.as_deref(), Some("gpu-0"));
    r.stop().await;
}

#[tokio::test]
async fn objects_the_app_no_longer_needs_are_deleted_but_volumes_are_kept() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    let mut a = app("app-1", "web", "ghcr.io/acme/web:1", 2);
    a.spec.volumes = vec![Volume {
        name: "data".into(),
        size: "1Gi".into(),
        mount_path: "/data".into(),
    }];
    a.secrets.insert("K".into(), "v".into());
    c.source.put(a);
    c.wait_available("app-1", 1).await;
    c.source.change("app-1", |d| {
        d.spec.ports.clear();
        d.spec.replicas = 1;
        d.spec.volumes.clear();
        d.secrets.clear();
    });
    c.wait_available("app-1", 2).await;
    c.eventually("orphans to go", || async {
        c.owned(NS, "app-1").await
            == objects(&[("Deployment", "web"), ("PersistentVolumeClaim", "web-data")])
    })
    .await;
    r.stop().await;
}

#[tokio::test]
async fn deleting_an_app_removes_every_object_it_owned_and_then_the_app() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    for (id, name) in [("app-1", "web"), ("app-2", "api")] {
        let mut a = app(id, name, "ghcr.io/acme/web:1", 2);
        a.spec.volumes = vec![Volume {
            name: "data".into(),
            size: "1Gi".into(),
            mount_path: "/data".into(),
        }];
        c.source.put(a);
    }
    c.wait_available("app-1", 1).await;
    c.wait_available("app-2", 1).await;

    // With its volumes.
    c.source.change("app-1", |d| {
        d.deleting = true;
        d.delete_volumes = true;
    });
    c.eventually("app-1 to be finalized", || async {
        !c.source.exists("app-1")
    })
    .await;
    assert!(c.owned(NS, "app-1").await.is_empty());
    assert!(c.pods(NS, "app-1").await.is_empty());
    assert!(c.replica_sets(NS, "app-1").await.is_empty());

    // Without: the claim stays; the other app and the namespace are untouched.
    c.source.change("app-2", |d| d.deleting = true);
    c.eventually("app-2 to be finalized", || async {
        !c.source.exists("app-2")
    })
    .await;
    assert_eq!(
        c.owned(NS, "app-2").await,
        objects(&[("PersistentVolumeClaim", "api-data")])
    );
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), NS);
    assert!(pvcs.get_opt("web-data").await.unwrap().is_none());
    assert!(
        c.versions(NS, "none")
            .await
            .contains_key(&("Namespace".to_owned(), NS.to_owned()))
    );
    r.stop().await;
}

#[tokio::test]
async fn an_autoscaled_app_gets_an_autoscaler_that_owns_the_replica_count() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    let mut a = app("app-1", "web", "ghcr.io/acme/web:1", 1);
    a.spec.autoscaling = Some(Autoscaling {
        min_replicas: 2,
        max_replicas: 5,
        cpu_percent: 60,
    });
    c.source.put(a);
    c.eventually("the autoscaler", || async {
        c.owned(NS, "app-1")
            .await
            .contains(&("HorizontalPodAutoscaler".to_owned(), "web".to_owned()))
    })
    .await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.client.clone(), NS);
    let spec = hpas.get("web").await.unwrap().spec.unwrap();
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 5));
    assert_eq!(spec.scale_target_ref.name, "web");
    // The autoscaler (here: someone acting as it) sets replicas; we leave them be.
    let deps = c.deployments(NS);
    let pp = kube::api::PatchParams {
        field_manager: Some("horizontal-pod-autoscaler".into()),
        ..kube::api::PatchParams::default()
    };
    deps.patch(
        "web",
        &pp,
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    let s = c
        .wait_status("app-1", "3 ready replicas", |s| {
            s.phase == AppPhase::Available && s.ready_replicas == 3
        })
        .await;
    assert_eq!(s.desired_replicas, 3);
    c.source.poke("app-1");
    r.passes(2).await;
    assert_eq!(
        deps.get("web").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );
    r.stop().await;
}

#[tokio::test]
async fn many_apps_converge_with_few_passes_at_a_time() {
    let c = TestCluster::start().await;
    let r = c.reconciler_with(satusky_reconciler::ReconcilerConfig {
        concurrency: 2,
        ..crate::support::config("r1")
    });
    for i in 0..6 {
        c.source.put(app(
            &format!("app-{i}"),
            &format!("web{i}"),
            "ghcr.io/acme/web:1",
            1,
        ));
    }
    for i in 0..6 {
        c.wait_available(&format!("app-{i}"), 1).await;
    }
    assert!(r.stats.snapshot().errors.is_empty());
    r.stop().await;
}

#[tokio::test]
async fn an_app_the_source_no_longer_has_is_removed_from_the_cluster_but_its_volumes_stay() {
    let c = TestCluster::start().await;
    let r = c.reconciler("r1");
    let mut a = app("app-1", "web", "ghcr.io/acme/web:1", 2);
    a.spec.volumes = vec![Volume {
        name: "data".into(),
        size: "1Gi".into(),
        mount_path: "/data".into(),
    }];
    c.source.put(a);
    c.wait_available("app-1", 1).await;
    // E.g. placed on another cluster: for this one, the app is gone.
    c.source.vanish("app-1");
    c.eventually("the app's objects to go", || async {
        c.owned(NS, "app-1").await == objects(&[("PersistentVolumeClaim", "web-data")])
    })
    .await;
    c.eventually("its pods to go", || async {
        c.pods(NS, "app-1").await.is_empty()
    })
    .await;
    r.stop().await;
}
