//! [`KubeNodeOps`]: the Kubernetes side of machine operations over kube-rs.
//!
//! `drain` follows `kubectl drain` (`kubernetes-behaviour.md` §14): cordon,
//! list the node's pods, skip DaemonSet and mirror pods, refuse the whole
//! drain before evicting anything when a pod has no controller or (unless
//! allowed) an emptyDir volume, evict through `policy/v1` Eviction, retry
//! 429s (a PodDisruptionBudget would be violated) and name the budget in the
//! report, wait until each evicted pod is gone (404 or a new UID), all under
//! one global deadline. Everything it decides is read back from the cluster,
//! so a drain started again after a control-plane restart resumes where the
//! cluster is.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use satusky_core::fleet::ports::CONTROL_PLANE_LABEL;
use satusky_core::fleet::{
    DrainOptions, DrainProgress, NodeCondition, NodeOps, NodeStatus, OpsError,
};
use satusky_types::machines::{DrainBlocker, DrainReport};
use tokio::time::Instant;

/// Annotation on nodes this platform cordoned (like Talos's `talos.dev/cordoned`).
pub const CORDONED_ANNOTATION: &str = "satusky.com/cordoned";
/// Annotation of static (mirror) pods.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Field manager of our patches.
const FIELD_MANAGER: &str = "satusky";

/// Timings of [`KubeNodeOps`].
#[derive(Debug, Clone)]
pub struct NodeOpsSettings {
    /// Deadline of each Kubernetes API call.
    pub call_timeout: Duration,
    /// Wait before retrying an eviction refused with 429 (kubectl: 5 s).
    pub eviction_retry: Duration,
    /// How often evicted pods are checked for being gone (kubectl: 1 s).
    pub poll_interval: Duration,
}

impl Default for NodeOpsSettings {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(30),
            eviction_retry: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// [`NodeOps`] over a `kube::Client`.
#[derive(Clone)]
pub struct KubeNodeOps {
    client: kube::Client,
    settings: NodeOpsSettings,
}

impl std::fmt::Debug for KubeNodeOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeNodeOps")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn ops_error(what: &str, e: kube::Error) -> OpsError {
    match &e {
        kube::Error::Api(r) if r.code == 404 => OpsError::NotFound(what.to_owned()),
        kube::Error::Api(r) => OpsError::Failed {
            message: format!("{what}: the API server answered {} {}", r.code, r.message),
            source: Some(Box::new(e)),
        },
        _ => OpsError::Unreachable {
            what: format!("the Kubernetes API server ({what})"),
            source: Some(Box::new(e)),
        },
    }
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(r) => Some(r.code),
        _ => None,
    }
}

impl KubeNodeOps {
    pub fn new(client: kube::Client) -> Self {
        Self::with_settings(client, NodeOpsSettings::default())
    }

    pub fn with_settings(client: kube::Client, settings: NodeOpsSettings) -> Self {
        Self { client, settings }
    }

    /// Runs one API call under the call deadline.
    async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, OpsError> {
        match tokio::time::timeout(self.settings.call_timeout, fut).await {
            Ok(r) => r.map_err(|e| ops_error(what, e)),
            Err(_) => Err(OpsError::unreachable(format!(
                "the Kubernetes API server ({what}, no answer within {}s)",
                self.settings.call_timeout.as_secs()
            ))),
        }
    }

    /// Like [`Self::call`] but keeps the kube error for the caller to inspect.
    async fn raw<T>(
        &self,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<Result<T, kube::Error>, OpsError> {
        tokio::time::timeout(self.settings.call_timeout, fut)
            .await
            .map_err(|_| OpsError::unreachable("the Kubernetes API server (no answer in time)"))
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    async fn get_node(&self, node: &str) -> Result<Option<Node>, OpsError> {
        let what = format!("node {node}");
        self.call(&what, self.nodes().get_opt(node)).await
    }

    async fn patch_node(&self, node: &str, patch: serde_json::Value) -> Result<(), OpsError> {
        let what = format!("node {node}");
        let pp = PatchParams::apply(FIELD_MANAGER);
        let pp = PatchParams { force: false, ..pp };
        self.call(&what, self.nodes().patch(node, &pp, &Patch::Merge(&patch)))
            .await
            .map(|_| ())
    }

    async fn node_pods(&self, node: &str) -> Result<Vec<Pod>, OpsError> {
        let api: Api<Pod> = Api::all(self.client.clone());
        let mut lp = ListParams::default()
            .fields(&format!("spec.nodeName={node}"))
            .limit(500);
        let mut pods = Vec::new();
        loop {
            let list = self
                .call(&format!("pods of node {node}"), api.list(&lp))
                .await?;
            pods.extend(list.items);
            match list.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => lp = lp.continue_token(&c),
                None => return Ok(pods),
            }
        }
    }

    /// Why the budget blocks `pod`: the matching PodDisruptionBudget and its counts.
    async fn pdb_reason(&self, ns: &str, labels: &BTreeMap<String, String>) -> String {
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), ns);
        let list = self
            .call(
                &format!("PodDisruptionBudgets of namespace {ns}"),
                api.list(&ListParams::default()),
            )
            .await;
        let Ok(list) = list else {
            return "eviction refused (429): a PodDisruptionBudget would be violated".to_owned();
        };
        let matching: Vec<&PodDisruptionBudget> = list
            .items
            .iter()
            .filter(|p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|s| selector_matches(s, labels))
            })
            .collect();
        match matching.as_slice() {
            [] => "eviction refused (429 too many requests); retrying".to_owned(),
            [pdb] => {
                let name = pdb.metadata.name.clone().unwrap_or_default();
                match &pdb.status {
                    Some(s) => format!(
                        "PodDisruptionBudget {name} allows no disruption: it needs {} healthy pod(s) and has {}",
                        s.desired_healthy, s.current_healthy
                    ),
                    None => format!("PodDisruptionBudget {name} allows no disruption yet"),
                }
            }
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|p| p.metadata.name.clone().unwrap_or_default())
                    .collect();
                format!(
                    "PodDisruptionBudgets {} allow no disruption",
                    names.join(", ")
                )
            }
        }
    }
}

/// Whether a label selector matches (null = nothing is handled by the caller;
/// `{}` matches everything).
pub(crate) fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(ml) = &sel.match_labels
        && ml.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    sel.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    })
}

/// Where one pod of a drain is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PodState {
    /// To be evicted (again at `next_attempt`).
    Evict,
    /// Refused with 429; retried at `next_attempt`.
    Blocked(String),
    /// Evicted; waiting until it is gone.
    Waiting,
    Done,
    Failed(String),
}

#[derive(Debug)]
struct Tracked {
    namespace: String,
    name: String,
    uid: String,
    labels: BTreeMap<String, String>,
    state: PodState,
    next_attempt: Instant,
}

/// What the drain filter says about one pod.
enum Verdict {
    Skip,
    Evict,
    /// Already being deleted: only wait for it.
    Wait,
    Refuse(String),
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// kubectl's filters, in its order (§14.1 step 3).
fn verdict(pod: &Pod, opts: &DrainOptions) -> Verdict {
    let meta = &pod.metadata;
    let controller = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    if controller.is_some_and(|c| c.kind == "DaemonSet") {
        return Verdict::Skip;
    }
    if meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
    {
        return Verdict::Skip;
    }
    if meta.deletion_timestamp.is_some() {
        // Going anyway (e.g. evicted before a restart): nothing to refuse.
        return Verdict::Wait;
    }
    if finished(pod) {
        return Verdict::Evict;
    }
    let empty_dir = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some()));
    if empty_dir && !opts.delete_emptydir_data {
        return Verdict::Refuse(
            "has local storage (emptyDir) whose data would be lost; drain with delete_emptydir_data to evict it"
                .to_owned(),
        );
    }
    if controller.is_none() {
        return Verdict::Refuse(
            "declares no controller, so nothing would recreate it; delete it or give it a controller"
                .to_owned(),
        );
    }
    Verdict::Evict
}

fn report(
    phase: &str,
    tracked: &[Tracked],
    refused: &[DrainBlocker],
    started_at: chrono::DateTime<Utc>,
) -> DrainReport {
    let evicted = tracked.iter().filter(|t| t.state == PodState::Done).count() as u32;
    let remaining = tracked.len() as u32 - evicted + refused.len() as u32;
    let mut blockers: Vec<DrainBlocker> = refused.to_vec();
    for t in tracked {
        let reason = match &t.state {
            PodState::Blocked(r) => r.clone(),
            PodState::Failed(r) => format!("eviction failed: {r}"),
            PodState::Waiting if phase == "timed_out" => "evicted but still terminating".to_owned(),
            PodState::Evict if phase == "timed_out" => "not evicted yet".to_owned(),
            _ => continue,
        };
        blockers.push(DrainBlocker {
            namespace: t.namespace.clone(),
            pod: t.name.clone(),
            reason,
        });
    }
    let done = phase != "running";
    DrainReport {
        phase: phase.to_owned(),
        evicted,
        remaining,
        blockers,
        started_at,
        finished_at: done.then(Utc::now),
    }
}

impl KubeNodeOps {
    /// One eviction attempt; updates the pod's state.
    async fn evict(&self, t: &mut Tracked) -> Result<(), OpsError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &t.namespace);
        let result = self
            .raw(api.evict(&t.name, &EvictParams::default()))
            .await?;
        let now = Instant::now();
        match result {
            Ok(_) => t.state = PodState::Waiting,
            Err(e) => match api_code(&e) {
                Some(404) => t.state = PodState::Done,
                Some(429) => {
                    let reason = self.pdb_reason(&t.namespace, &t.labels).await;
                    t.state = PodState::Blocked(reason);
                    t.next_attempt = now + self.settings.eviction_retry;
                }
                Some(403) => {
                    // e.g. the namespace is terminating: the pod may be going anyway.
                    let gone_soon = self
                        .raw(api.get_opt(&t.name))
                        .await?
                        .ok()
                        .flatten()
                        .is_none_or(|p| p.metadata.deletion_timestamp.is_some());
                    if gone_soon {
                        t.state = PodState::Waiting;
                    } else {
                        t.state = PodState::Blocked(format!("eviction forbidden: {e}"));
                        t.next_attempt = now + self.settings.eviction_retry;
                    }
                }
                Some(_) => t.state = PodState::Failed(e.to_string()),
                None => {
                    return Err(ops_error(
                        &format!("eviction of pod {}/{}", t.namespace, t.name),
                        e,
                    ));
                }
            },
        }
        Ok(())
    }

    /// Whether an evicted pod is gone (404, or recreated under a new UID).
    async fn gone(&self, t: &Tracked) -> Result<bool, OpsError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &t.namespace);
        let pod = self
            .call(
                &format!("pod {}/{}", t.namespace, t.name),
                api.get_opt(&t.name),
            )
            .await?;
        Ok(pod.is_none_or(|p| p.metadata.uid.as_deref() != Some(t.uid.as_str())))
    }
}

#[async_trait]
impl NodeOps for KubeNodeOps {
    #[tracing::instrument(skip_all, fields(k8s.node = node))]
    async fn set_labels(
        &self,
        node: &str,
        set: &BTreeMap<String, String>,
        unset: &[String],
    ) -> Result<(), OpsError> {
        if set.is_empty() && unset.is_empty() {
            return Ok(());
        }
        let mut labels = serde_json::Map::new();
        for (k, v) in set {
            labels.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        for k in unset {
            labels.insert(k.clone(), serde_json::Value::Null);
        }
        self.patch_node(node, serde_json::json!({"metadata": {"labels": labels}}))
            .await
    }

    #[tracing::instrument(skip_all, fields(k8s.node = node))]
    async fn cordon(&self, node: &str, unschedulable: bool) -> Result<(), OpsError> {
        let patch = if unschedulable {
            serde_json::json!({
                "metadata": {"annotations": {CORDONED_ANNOTATION: "true"}},
                "spec": {"unschedulable": true},
            })
        } else {
            serde_json::json!({
                "metadata": {"annotations": {CORDONED_ANNOTATION: null}},
                "spec": {"unschedulable": null},
            })
        };
        self.patch_node(node, patch).await
    }

    #[tracing::instrument(skip_all, fields(k8s.node = node))]
    async fn drain(
        &self,
        node: &str,
        opts: &DrainOptions,
        progress: DrainProgress<'_>,
    ) -> Result<DrainReport, OpsError> {
        let started_at = Utc::now();
        let deadline = Instant::now() + opts.timeout;
        let n = self
            .get_node(node)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("node {node}")))?;
        if !n
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
        {
            self.cordon(node, true).await?;
        }
        let pods = self.node_pods(node).await?;
        let now = Instant::now();
        let mut tracked = Vec::new();
        let mut refused = Vec::new();
        for pod in pods {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            match verdict(&pod, opts) {
                Verdict::Skip => {}
                Verdict::Refuse(reason) => refused.push(DrainBlocker {
                    namespace,
                    pod: name,
                    reason,
                }),
                v @ (Verdict::Evict | Verdict::Wait) => tracked.push(Tracked {
                    namespace,
                    name,
                    uid: pod.metadata.uid.clone().unwrap_or_default(),
                    labels: pod.metadata.labels.clone().unwrap_or_default(),
                    state: if matches!(v, Verdict::Wait) {
                        PodState::Waiting
                    } else {
                        PodState::Evict
                    },
                    next_attempt: now,
                }),
            }
        }
        if !refused.is_empty() {
            // As kubectl: any refused pod aborts the drain before anything is evicted.
            let r = report("failed", &tracked, &refused, started_at);
            progress(&r);
            return Ok(r);
        }
        let mut last: Option<DrainReport> = None;
        loop {
            let now = Instant::now();
            let retry = self.settings.eviction_retry;
            let round = async {
                for t in &mut tracked {
                    match t.state {
                        PodState::Evict | PodState::Blocked(_) if t.next_attempt <= now => {
                            if let Err(e) = self.evict(t).await {
                                // The API server hiccupped: try again, within the deadline.
                                tracing::debug!(k8s.namespace = %t.namespace, k8s.pod = %t.name, error = %e, "eviction attempt failed");
                                t.next_attempt = now + retry;
                            }
                        }
                        PodState::Waiting => match self.gone(t).await {
                            Ok(true) => t.state = PodState::Done,
                            Ok(false) => {}
                            Err(e) => {
                                tracing::debug!(k8s.namespace = %t.namespace, k8s.pod = %t.name, error = %e, "pod check failed");
                            }
                        },
                        _ => {}
                    }
                }
            };
            // No call may carry the drain past its deadline.
            let _ = tokio::time::timeout_at(deadline, round).await;
            let open = tracked.iter().any(|t| {
                matches!(
                    t.state,
                    PodState::Evict | PodState::Blocked(_) | PodState::Waiting
                )
            });
            if !open {
                let failed = tracked
                    .iter()
                    .any(|t| matches!(t.state, PodState::Failed(_)));
                let r = report(
                    if failed { "failed" } else { "completed" },
                    &tracked,
                    &refused,
                    started_at,
                );
                progress(&r);
                return Ok(r);
            }
            if Instant::now() >= deadline {
                let r = report("timed_out", &tracked, &refused, started_at);
                progress(&r);
                return Ok(r);
            }
            let r = report("running", &tracked, &refused, started_at);
            if last.as_ref().is_none_or(|l| {
                (l.evicted, l.remaining, &l.blockers) != (r.evicted, r.remaining, &r.blockers)
            }) {
                progress(&r);
                last = Some(r);
            }
            let next_retry = tracked
                .iter()
                .filter(|t| matches!(t.state, PodState::Evict | PodState::Blocked(_)))
                .map(|t| t.next_attempt)
                .min();
            let mut wake = Instant::now() + self.settings.poll_interval;
            if let Some(r) = next_retry {
                wake = wake.min(r);
            }
            tokio::time::sleep_until(wake.min(deadline)).await;
        }
    }

    #[tracing::instrument(skip_all, fields(k8s.node = node))]
    async fn node_status(&self, node: &str) -> Result<Option<NodeStatus>, OpsError> {
        Ok(self.get_node(node).await?.map(|n| node_status(&n)))
    }

    #[tracing::instrument(skip_all, fields(k8s.node = node))]
    async fn delete_node(&self, node: &str) -> Result<(), OpsError> {
        let what = format!("node {node}");
        match self
            .call(&what, self.nodes().delete(node, &DeleteParams::default()))
            .await
        {
            Ok(_) | Err(OpsError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The parts of a Node that machine operations look at.
pub(crate) fn node_status(n: &Node) -> NodeStatus {
    let conditions: Vec<NodeCondition> = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| NodeCondition {
                    kind: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone().unwrap_or_default(),
                    message: c.message.clone().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    NodeStatus {
        ready: conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.status == "True"),
        unschedulable: n
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        conditions,
        boot_id: n
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.boot_id.clone())
            .filter(|id| !id.is_empty()),
        control_plane: n
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(CONTROL_PLANE_LABEL)),
    }
}

/// Pressure conditions that are `True`, for events (`MemoryPressure`, …).
pub(crate) fn pressures(s: &NodeStatus) -> Vec<String> {
    s.conditions
        .iter()
        .filter(|c| c.kind.ends_with("Pressure") && c.status == "True")
        .map(|c| c.kind.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels: BTreeMap<String, String> =
            [("app".to_owned(), "web".to_owned())].into_iter().collect();
        let sel = LabelSelector {
            match_labels: Some([("app".to_owned(), "web".to_owned())].into_iter().collect()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "DoesNotExist".into(),
                values: None,
            }]),
        };
        assert!(selector_matches(&sel, &labels));
        assert!(selector_matches(&LabelSelector::default(), &labels));
        let other = LabelSelector {
            match_labels: Some([("app".to_owned(), "db".to_owned())].into_iter().collect()),
            match_expressions: None,
        };
        assert!(!selector_matches(&other, &labels));
    }

    #[test]
    fn node_status_reads_the_boot_id_and_the_control_plane_role() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cp-1", "labels": {CONTROL_PLANE_LABEL: ""}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {
                    "bootID": "b-1", "machineID": "", "systemUUID": "", "kernelVersion": "",
                    "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "",
                    "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"
                }
            }
        }))
        .unwrap();
        let s = node_status(&node);
        assert!(s.ready && s.unschedulable && s.control_plane);
        assert_eq!(s.boot_id.as_deref(), Some("b-1"));
        let worker: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "w-1", "labels": {"kubernetes.io/os": "linux"}},
        }))
        .unwrap();
        let s = node_status(&worker);
        assert!(!s.ready && !s.control_plane);
        assert_eq!(s.boot_id, None);
    }
}
