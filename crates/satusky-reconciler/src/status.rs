//! Pure status derivation: what the Deployment, its ReplicaSets and the
//! app's pods say, turned into an [`AppStatus`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use satusky_core::apps::DesiredApp;
use satusky_types::apps::{AppPhase, AppStatus, Condition, ReplicaStatus};

use crate::labels;

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH: &str = "pod-template-hash";

/// Reasons a user can act on, most specific first.
pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
pub const IMAGE_PULL_BACK_OFF: &str = "ImagePullBackOff";
pub const CRASH_LOOP_BACK_OFF: &str = "CrashLoopBackOff";
pub const UNSCHEDULABLE: &str = "Unschedulable";
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// What Kubernetes showed for one app.
#[derive(Debug, Default)]
pub struct Observed<'a> {
    pub deployment: Option<&'a Deployment>,
    pub replica_sets: &'a [ReplicaSet],
    pub pods: &'a [Pod],
}

/// One pod as the status and the pod-change events see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub status: ReplicaStatus,
    /// The pod belongs to the Deployment's current revision.
    pub current: bool,
    /// Why it is not ready, with the detail Kubernetes gave.
    pub message: Option<String>,
    /// Since when it has been unschedulable (the `PodScheduled=False`
    /// condition's transition time), when it is.
    pub unschedulable_since: Option<DateTime<Utc>>,
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn label<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

/// The pod-template hash of the Deployment's current revision.
fn current_hash<'a>(dep: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a str> {
    let rev = annotation(&dep.metadata, REVISION)?;
    let uid = dep.metadata.uid.as_deref();
    rss.iter()
        .filter(|rs| {
            uid.is_none()
                || rs
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| Some(o.uid.as_str()) == uid)
        })
        .find(|rs| annotation(&rs.metadata, REVISION) == Some(rev))
        .and_then(|rs| label(&rs.metadata, HASH))
}

/// Why one pod is not running well, from its containers and conditions.
fn pod_problem(pod: &Pod) -> Option<(String, Option<String>)> {
    let status = pod.status.as_ref()?;
    for cs in status.container_statuses.iter().flatten() {
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.clone().unwrap_or_else(|| "Waiting".to_owned());
            let reason = match reason.as_str() {
                "ErrImagePull" | "InvalidImageName" => IMAGE_PULL_BACK_OFF.to_owned(),
                _ => reason,
            };
            return Some((reason, w.message.clone()));
        }
    }
    for c in status.conditions.iter().flatten() {
        if c.type_ == "PodScheduled" && c.status == "False" {
            let reason = c.reason.clone().unwrap_or_else(|| UNSCHEDULABLE.to_owned());
            return Some((reason, c.message.clone()));
        }
    }
    None
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Every live pod of the app, sorted by name.
pub fn pod_views(d: &DesiredApp, obs: &Observed<'_>) -> Vec<PodView> {
    let hash = obs
        .deployment
        .and_then(|dep| current_hash(dep, obs.replica_sets));
    let mut views: Vec<PodView> = obs
        .pods
        .iter()
        .filter(|p| label(&p.metadata, labels::APP_ID) == Some(d.app_id.as_str()))
        .map(|p| {
            let status = p.status.as_ref();
            let terminating = p.metadata.deletion_timestamp.is_some();
            let problem = pod_problem(p);
            let (reason, message) = match (terminating, problem) {
                (true, _) => (Some("Terminating".to_owned()), None),
                (false, Some((r, m))) => (Some(r), m),
                (false, None) => (None, None),
            };
            let unschedulable_since = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                })
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0);
            let current = !terminating
                && match hash {
                    Some(h) => label(&p.metadata, HASH) == Some(h),
                    None => true,
                };
            PodView {
                status: ReplicaStatus {
                    pod: p.metadata.name.clone().unwrap_or_default(),
                    node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
                    phase: status
                        .and_then(|s| s.phase.clone())
                        .unwrap_or_else(|| "Pending".to_owned()),
                    ready: pod_ready(p),
                    restarts: status
                        .and_then(|s| s.container_statuses.as_ref())
                        .map_or(0, |cs| {
                            cs.iter().map(|c| c.restart_count.max(0) as u32).sum()
                        }),
                    reason,
                    release: (current && hash.is_some()).then_some(d.release),
                },
                current,
                message,
                unschedulable_since,
            }
        })
        .collect();
    views.sort_by(|a, b| a.status.pod.cmp(&b.status.pod));
    views
}

fn condition(
    type_: &str,
    on: bool,
    reason: &str,
    message: Option<String>,
    now: DateTime<Utc>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if on { "True" } else { "False" }.to_owned(),
        reason: Some(reason.to_owned()),
        message,
        last_transition_time: now,
    }
}

/// How long a pod has been unschedulable, when it says since when.
fn unschedulable_for(p: &PodView, now: DateTime<Utc>) -> Option<chrono::Duration> {
    p.unschedulable_since.map(|t| now - t)
}

/// The first problem a user can act on, with its message.
fn degraded(
    obs: &Observed<'_>,
    pods: &[PodView],
    now: DateTime<Utc>,
    unschedulable_grace: chrono::Duration,
) -> Option<(String, String)> {
    for rs in obs.replica_sets {
        for c in rs.status.iter().flat_map(|s| s.conditions.iter().flatten()) {
            let msg = c.message.clone().unwrap_or_default();
            if c.type_ == "ReplicaFailure" && c.status == "True" && msg.contains("exceeded quota") {
                return Some((QUOTA_EXCEEDED.to_owned(), msg));
            }
        }
    }
    for wanted in [IMAGE_PULL_BACK_OFF, CRASH_LOOP_BACK_OFF, UNSCHEDULABLE] {
        if let Some(p) = pods.iter().find(|p| {
            p.current
                && p.status.reason.as_deref() == Some(wanted)
                && (wanted != UNSCHEDULABLE
                    || unschedulable_for(p, now).is_none_or(|d| d >= unschedulable_grace))
        }) {
            let detail = p.message.clone().unwrap_or_else(|| wanted.to_owned());
            return Some((wanted.to_owned(), format!("pod {}: {detail}", p.status.pod)));
        }
    }
    let dep_status = obs.deployment.and_then(|d| d.status.as_ref());
    for c in dep_status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
    {
        if c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED)
        {
            return Some((
                PROGRESS_DEADLINE_EXCEEDED.to_owned(),
                c.message.clone().unwrap_or_default(),
            ));
        }
    }
    None
}

/// Whether the Deployment has seen the spec we applied for this desired state.
pub fn observed_ours(d: &DesiredApp, dep: &Deployment) -> bool {
    let generation = dep.metadata.generation.unwrap_or(0);
    let seen = dep
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or(0);
    seen >= generation
        && annotation(&dep.metadata, labels::GENERATION) == Some(d.generation.to_string().as_str())
}

/// The app's status. `last_observed_generation` is reported while the
/// Deployment has not caught up with the newest spec.
pub fn derive(
    d: &DesiredApp,
    obs: &Observed<'_>,
    last_observed_generation: u64,
    now: DateTime<Utc>,
    unschedulable_grace: chrono::Duration,
) -> AppStatus {
    let pods = pod_views(d, obs);
    let replicas = pods.iter().map(|p| p.status.clone()).collect();
    let Some(dep) = obs.deployment else {
        let desired = d
            .spec
            .autoscaling
            .as_ref()
            .map_or(d.spec.replicas, |a| a.min_replicas);
        return AppStatus {
            phase: AppPhase::Progressing,
            reason: Some("Creating".to_owned()),
            message: Some("the Deployment does not exist yet".to_owned()),
            observed_generation: last_observed_generation,
            observed_release: None,
            desired_replicas: desired,
            ready_replicas: 0,
            updated_replicas: 0,
            conditions: vec![
                condition("Ready", false, "Creating", None, now),
                condition("Progressing", true, "Creating", None, now),
                condition("Degraded", false, "AsExpected", None, now),
            ],
            replicas,
            updated_at: None,
        };
    };
    let st = dep.status.clone().unwrap_or_default();
    let desired = dep
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0) as u32;
    let count = |v: Option<i32>| v.unwrap_or(0).max(0) as u32;
    let ready = count(st.ready_replicas);
    let updated = count(st.updated_replicas);
    let available = count(st.available_replicas);
    let total = count(st.replicas);
    let observed = observed_ours(d, dep);
    let complete = observed
        && updated >= desired
        && ready >= desired
        && available >= desired
        && total <= desired;
    let problem = degraded(obs, &pods, now, unschedulable_grace);
    let mut counts = format!("{ready}/{desired} replicas ready, {updated} updated");
    // A pod waiting for room within the grace: progressing, and saying so.
    if problem.is_none()
        && let Some(p) = pods
            .iter()
            .find(|p| p.current && p.status.reason.as_deref() == Some(UNSCHEDULABLE))
    {
        let waited = unschedulable_for(p, now).map_or(0, |d| d.num_seconds().max(0));
        counts = format!(
            "{counts}; pod {} unschedulable for {waited}s (degraded after {}s): {}",
            p.status.pod,
            unschedulable_grace.num_seconds(),
            p.message.as_deref().unwrap_or(UNSCHEDULABLE)
        );
    }
    let (phase, reason, message) = match (&problem, complete) {
        (Some((r, m)), _) => (AppPhase::Degraded, Some(r.clone()), Some(m.clone())),
        (None, true) => (AppPhase::Available, None, Some(counts.clone())),
        (None, false) => (
            AppPhase::Progressing,
            Some(if observed { "RollingOut" } else { "Applying" }.to_owned()),
            Some(counts.clone()),
        ),
    };
    let conditions = match phase {
        AppPhase::Available => vec![
            condition("Ready", true, "ReplicasReady", Some(counts), now),
            condition("Progressing", false, "RolloutComplete", None, now),
            condition("Degraded", false, "AsExpected", None, now),
        ],
        AppPhase::Degraded => {
            let r = reason.clone().unwrap_or_default();
            vec![
                condition("Ready", false, &r, Some(counts), now),
                condition("Progressing", false, "RolloutStuck", None, now),
                condition("Degraded", true, &r, message.clone(), now),
            ]
        }
        _ => vec![
            condition("Ready", false, "RolloutInProgress", Some(counts), now),
            condition("Progressing", true, "RolloutInProgress", None, now),
            condition("Degraded", false, "AsExpected", None, now),
        ],
    };
    AppStatus {
        phase,
        reason,
        message,
        observed_generation: if observed {
            d.generation
        } else {
            last_observed_generation
        },
        observed_release: observed.then_some(d.release),
        desired_replicas: desired,
        ready_replicas: ready,
        updated_replicas: updated,
        conditions,
        replicas,
        updated_at: None,
    }
}

/// Pod changes worth telling the user: a pod became ready, or hit a new problem.
pub fn pod_changes(before: &BTreeMap<String, ReplicaStatus>, now: &[ReplicaStatus]) -> Vec<String> {
    let mut out = Vec::new();
    for p in now {
        let old = before.get(&p.pod);
        if p.ready && !old.is_some_and(|o| o.ready) {
            out.push(format!(
                "pod {} is ready{}",
                p.pod,
                p.node
                    .as_deref()
                    .map(|n| format!(" on {n}"))
                    .unwrap_or_default()
            ));
        }
        if let Some(r) = &p.reason
            && r != "Terminating"
            && r != "ContainerCreating"
            && old.and_then(|o| o.reason.as_ref()) != Some(r)
        {
            out.push(format!("pod {}: {r}", p.pod));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn desired() -> DesiredApp {
        DesiredApp {
            app_id: "app-1".into(),
            app_name: "web".into(),
            org_id: "org-1".into(),
            org_slug: "acme".into(),
            namespace: "org-acme".into(),
            generation: 7,
            release: 3,
            spec: satusky_types::apps::AppSpec {
                image: "web:1".into(),
                replicas: 2,
                ..Default::default()
            },
            secrets: BTreeMap::new(),
            restarted_at: None,
            domain: "web-acme.example".into(),
            cluster_id: None,
            deleting: false,
            delete_volumes: false,
        }
    }

    fn deployment(
        generation: i64,
        observed: i64,
        ready: i32,
        updated: i32,
        total: i32,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "uid": "dep-uid", "generation": generation,
                "annotations": {"satusky.com/generation": "7", "deployment.kubernetes.io/revision": "2"}},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": observed, "replicas": total, "readyReplicas": ready,
                "updatedReplicas": updated, "availableReplicas": ready},
        }))
        .unwrap()
    }

    fn replica_set(hash: &str, revision: &str, conditions: serde_json::Value) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{hash}"), "labels": {"pod-template-hash": hash},
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "dep-uid", "controller": true}]},
            "status": {"replicas": 0, "conditions": conditions},
        }))
        .unwrap()
    }

    fn pod(name: &str, hash: &str, ready: bool, waiting: Option<&str>) -> Pod {
        let state = match waiting {
            Some(r) => json!({"waiting": {"reason": r, "message": format!("{r} details")}}),
            None => json!({"running": {}}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"satusky.com/app-id": "app-1", "pod-template-hash": hash}},
            "spec": {"nodeName": "node-0", "containers": [{"name": "app"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 2, "image": "x", "imageID": "",
                    "state": state}]},
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_000, 0).unwrap()
    }

    #[test]
    fn a_complete_rollout_is_available_with_ready_true() {
        let dep = deployment(5, 5, 2, 2, 2);
        let rss = [replica_set("new", "2", json!([]))];
        let pods = [
            pod("web-new-a", "new", true, None),
            pod("web-new-b", "new", true, None),
        ];
        let obs = Observed {
            deployment: Some(&dep),
            replica_sets: &rss,
            pods: &pods,
        };
        let s = derive(&desired(), &obs, 0, now(), chrono::Duration::zero());
        assert_eq!(s.phase, AppPhase::Available);
        assert_eq!((s.observed_generation, s.observed_release), (7, Some(3)));
        assert_eq!(
            (s.desired_replicas, s.ready_replicas, s.updated_replicas),
            (2, 2, 2)
        );
        let types: Vec<(&str, &str)> = s
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("Ready", "True"),
                ("Progressing", "False"),
                ("Degraded", "False")
            ]
        );
        assert_eq!(s.replicas[0].restarts, 2);
        assert_eq!(s.replicas[0].release, Some(3));
    }

    #[test]
    fn a_deployment_that_has_not_seen_our_spec_is_progressing_at_the_old_generation() {
        let dep = deployment(6, 5, 2, 2, 2);
        let obs = Observed {
            deployment: Some(&dep),
            replica_sets: &[],
            pods: &[],
        };
        let s = derive(&desired(), &obs, 6, now(), chrono::Duration::zero());
        assert_eq!(s.phase, AppPhase::Progressing);
        assert_eq!((s.observed_generation, s.observed_release), (6, None));
        // Old pods still around: not yet available either.
        let dep = deployment(5, 5, 2, 2, 3);
        let obs = Observed {
            deployment: Some(&dep),
            replica_sets: &[],
            pods: &[],
        };
        assert_eq!(
            derive(&desired(), &obs, 6, now(), chrono::Duration::zero()).phase,
            AppPhase::Progressing
        );
        let none = Observed::default();
        assert_eq!(
            derive(&desired(), &none, 0, now(), chrono::Duration::zero()).phase,
            AppPhase::Progressing
        );
    }

    #[test]
    fn pod_problems_of_the_current_revision_degrade_the_app() {
        let dep = deployment(5, 5, 1, 1, 2);
        let rss = [
            replica_set("old", "1", json!([])),
            replica_set("new", "2", json!([])),
        ];
        for (waiting, reason) in [
            ("CrashLoopBackOff", CRASH_LOOP_BACK_OFF),
            ("ErrImagePull", IMAGE_PULL_BACK_OFF),
            ("ImagePullBackOff", IMAGE_PULL_BACK_OFF),
        ] {
            let pods = [
                pod("web-old-a", "old", true, None),
                pod("web-new-a", "new", false, Some(waiting)),
            ];
            let obs = Observed {
                deployment: Some(&dep),
                replica_sets: &rss,
                pods: &pods,
            };
            let s = derive(&desired(), &obs, 0, now(), chrono::Duration::zero());
            assert_eq!(s.phase, AppPhase::Degraded, "{waiting}");
            assert_eq!(s.reason.as_deref(), Some(reason));
            assert!(s.message.as_deref().unwrap().starts_with("pod web-new-a: "));
            let old = s.replicas.iter().find(|p| p.pod == "web-old-a").unwrap();
            assert_eq!(old.release, None, "old pods belong to an older release");
        }
        // The same problem on an old revision's pod does not.
        let pods = [
            pod("web-old-a", "old", false, Some("CrashLoopBackOff")),
            pod("web-new-a", "new", true, None),
        ];
        let obs = Observed {
            deployment: Some(&dep),
            replica_sets: &rss,
            pods: &pods,
        };
        assert_eq!(
            derive(&desired(), &obs, 0, now(), chrono::Duration::zero()).phase,
            AppPhase::Progressing
        );
    }

    #[test]
    fn an_unschedulable_pod_degrades_the_app_only_after_the_grace() {
        let dep = deployment(5, 5, 0, 0, 0);
        let rss = [replica_set("new", "2", json!([]))];
        let since = now() - chrono::Duration::seconds(30);
        let pending: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-new-a", "labels": {"satusky.com/app-id": "app-1", "pod-template-hash": "new"}},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/3 nodes are available",
                "lastTransitionTime": since.to_rfc3339()}]},
        }))
        .unwrap();
        let pods = [pending];
        let obs = Observed {
            deployment: Some(&dep),
            replica_sets: &rss,
            pods: &pods,
        };
        // 30 s into a 120 s grace: still progressing, the wait in the message.
        let s = derive(&desired(), &obs, 0, now(), chrono::Duration::seconds(120));
        assert_eq!(s.phase, AppPhase::Progressing);
        let msg = s.message.unwrap_or_default();
        assert!(
            msg.contains(
                "pod web-new-a unschedulable for 30s (degraded after 120s): 0/3 nodes are available"
            ),
            "{msg}"
        );
        assert_eq!(s.replicas[0].reason.as_deref(), Some(UNSCHEDULABLE));
        // Past the grace: degraded.
        let s = derive(&desired(), &obs, 0, now(), chrono::Duration::seconds(20));
        assert_eq!(s.phase, AppPhase::Degraded);
        assert_eq!(s.reason.as_deref(), Some(UNSCHEDULABLE));
    }

    #[test]
    fn unschedulable_pods_and_exceeded_quota_degrade_the_app() {
        let dep = deployment(5, 5, 0, 0, 0);
        let rss = [replica_set("new", "2", json!([]))];
        let pending: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-new-a", "labels": {"satusky.com/app-id": "app-1", "pod-template-hash": "new"}},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/3 nodes are available"}]},
        }))
        .unwrap();
        let pods = [pending];
        let obs = Observed {
            deployment: Some(&dep),
            replica_sets: &rss,
            pods: &pods,
        };
        let s = derive(&desired(), &obs, 0, now(), chrono::Duration::zero());
        assert_eq!(s.reason.as_deref(), Some(UNSCHEDULABLE));
        assert_eq!(
            s.message.as_deref(),
            Some("pod web-new-a: 0/3 nodes are available")
        );

        let rss = [replica_set(
            "new",
            "2",
            json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
            "message": "pods \"web-new-x\" is forbidden: exceeded quota: satusky-quota, requested: pods=1, used: pods=10, limited: pods=10"}]),
        )];
        let obs = Observed {
            deployment: Some(&dep),
            replica_sets: &rss,
            pods: &[],
        };
        let s = derive(&desired(), &obs, 0, now(), chrono::Duration::zero());
        assert_eq!(s.phase, AppPhase::Degraded);
        assert_eq!(s.reason.as_deref(), Some(QUOTA_EXCEEDED));
        assert!(s.message.unwrap().contains("exceeded quota"));
        let degraded = s.conditions.iter().find(|c| c.type_ == "Degraded").unwrap();
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_deref()),
            ("True", Some(QUOTA_EXCEEDED))
        );
    }

    #[test]
    fn a_rollout_past_its_deadline_is_degraded() {
        let mut dep = deployment(5, 5, 1, 1, 2);
        dep.status.as_mut().unwrap().conditions = Some(vec![
            serde_json::from_value(json!({"type": "Progressing", "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"web-new\" has timed out progressing."}))
            .unwrap(),
        ]);
        let obs = Observed {
            deployment: Some(&dep),
            replica_sets: &[],
            pods: &[],
        };
        let s = derive(&desired(), &obs, 0, now(), chrono::Duration::zero());
        assert_eq!(s.phase, AppPhase::Degraded);
        assert_eq!(s.reason.as_deref(), Some(PROGRESS_DEADLINE_EXCEEDED));
    }

    #[test]
    fn pod_changes_report_readiness_and_new_problems_once() {
        let mk = |ready, reason: Option<&str>| ReplicaStatus {
            pod: "web-a".into(),
            node: Some("node-1".into()),
            phase: "Running".into(),
            ready,
            restarts: 0,
            reason: reason.map(str::to_owned),
            release: Some(1),
        };
        let before = BTreeMap::new();
        assert_eq!(
            pod_changes(&before, &[mk(true, None)]),
            vec!["pod web-a is ready on node-1"]
        );
        let crash = [mk(false, Some("CrashLoopBackOff"))];
        assert_eq!(
            pod_changes(&before, &crash),
            vec!["pod web-a: CrashLoopBackOff"]
        );
        let seen: BTreeMap<String, ReplicaStatus> =
            crash.iter().map(|r| (r.pod.clone(), r.clone())).collect();
        assert!(pod_changes(&seen, &crash).is_empty());
    }
}
