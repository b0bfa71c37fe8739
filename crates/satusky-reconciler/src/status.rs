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

/// The first problem a user can act on, with its message.
fn degraded(obs: &Observed<'_>, pods: &[PodView]) -> Option<(String, String)> {
    for rs in obs.replica_sets {
        for c in rs.status.iter().flat_map(|s| s.conditions.iter().flatten()) {
            let msg = c.message.clone().unwrap_or_default();
            if c.type_ == "ReplicaFailure" && c.status == "True" && msg.contains("exceeded quota") {
                return Some((QUOTA_EXCEEDED.to_owned(), msg));
            }
        }
    }
    for wanted in [IMAGE_PULL_BACK_OFF, CRASH_LOOP_BACK_OFF, UNSCHEDULABLE] {
        if let Some(p) = pods
            .iter()
            .find(|p| p.current && p.status.reason.as_deref() == Some(wanted))
        {
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
    let problem = degraded(obs, &pods);
    let counts = format!("{ready}/{desired} replicas ready, {updated} updated");
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
