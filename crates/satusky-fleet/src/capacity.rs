//! [`CapacityOps`] over kube-rs: a node's allocatable resources and the
//! requests of the pods bound to it, counted as the scheduler counts them.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use satusky_core::apps::parse_quantity;
use satusky_core::fleet::{CapacityOps, NodeCapacity, OpsError};

/// Capacity reads through the Kubernetes API.
#[derive(Clone)]
pub struct KubeCapacity {
    client: kube::Client,
}

impl std::fmt::Debug for KubeCapacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCapacity").finish_non_exhaustive()
    }
}

impl KubeCapacity {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

fn kube_error(what: &str, e: kube::Error) -> OpsError {
    match e {
        kube::Error::Api(ref s) if s.code == 404 => OpsError::NotFound(what.to_owned()),
        e => OpsError::Failed {
            message: format!("reading {what} from the Kubernetes API failed"),
            source: Some(Box::new(e)),
        },
    }
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "quantities are non-negative and far below u64::MAX"
)]
fn amount(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>, scale: f64) -> u64 {
    q.and_then(|q| parse_quantity("quantity", &q.0).ok())
        .map_or(0, |v| (v * scale).round().max(0.0) as u64)
}

/// A pod's requests as the scheduler counts them: the sum over its
/// containers, or an init container's when larger.
fn pod_requests(p: &Pod) -> (u64, u64) {
    let Some(spec) = &p.spec else { return (0, 0) };
    let request = |c: &k8s_openapi::api::core::v1::Container, key: &str, scale: f64| {
        amount(
            c.resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(key)),
            scale,
        )
    };
    let (mut cpu, mut mem) = (0, 0);
    for c in &spec.containers {
        cpu += request(c, "cpu", 1000.0);
        mem += request(c, "memory", 1.0);
    }
    for c in spec.init_containers.iter().flatten() {
        cpu = cpu.max(request(c, "cpu", 1000.0));
        mem = mem.max(request(c, "memory", 1.0));
    }
    (cpu, mem)
}

/// Ready and schedulable, or why not.
fn schedulable(n: &Node) -> Result<(), String> {
    let spec = n.spec.as_ref();
    if spec.and_then(|s| s.unschedulable).unwrap_or(false) {
        return Err("cordoned".to_owned());
    }
    let ready = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if !ready {
        return Err("not Ready".to_owned());
    }
    if let Some(t) = spec.and_then(|s| s.taints.as_ref()).and_then(|ts| {
        ts.iter()
            .find(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
    }) {
        return Err(format!("tainted {}:{}", t.key, t.effect));
    }
    Ok(())
}

#[async_trait]
impl CapacityOps for KubeCapacity {
    async fn capacity(&self, node: &str) -> Result<Option<NodeCapacity>, OpsError> {
        let what = format!("node {node}");
        let nodes: Api<Node> = Api::all(self.client.clone());
        let Some(n) = nodes
            .get_opt(node)
            .await
            .map_err(|e| kube_error(&what, e))?
        else {
            return Ok(None);
        };
        let pods: Api<Pod> = Api::all(self.client.clone());
        let on_node = pods
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map_err(|e| kube_error(&format!("pods of {what}"), e))?;
        let mut cap = NodeCapacity::default();
        for p in on_node.items.iter().filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        }) {
            let (cpu, mem) = pod_requests(p);
            cap.cpu_requested_millis += cpu;
            cap.memory_requested_bytes += mem;
            cap.pods += 1;
        }
        let alloc = n.status.as_ref().and_then(|s| s.allocatable.as_ref());
        cap.cpu_allocatable_millis = amount(alloc.and_then(|a| a.get("cpu")), 1000.0);
        cap.memory_allocatable_bytes = amount(alloc.and_then(|a| a.get("memory")), 1.0);
        cap.pods_allocatable =
            u32::try_from(amount(alloc.and_then(|a| a.get("pods")), 1.0)).unwrap_or(u32::MAX);
        match schedulable(&n) {
            Ok(()) => cap.schedulable = true,
            Err(why) => cap.reason = Some(why),
        }
        Ok(Some(cap))
    }
}
