//! What the kubelet does with the Kubernetes API, through a plain `kube::Client`:
//! register the Node (labels, capacity, allocatable, nodeInfo), then renew the Lease
//! in `kube-node-lease` and refresh the node conditions every heartbeat; mark the node
//! NotReady when the machine goes down. `nodeInfo.bootID` is the machine's boot id,
//! new on every boot, so the node shows Ready with a new one only once it booted again.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::machine::Shared;

/// Namespace of node leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Talos's kubelet defaults: `systemReserved` and `evictionHard`.
const RESERVED_CPU_MILLI: u64 = 50;
const RESERVED_MEMORY_KIB: u64 = 192 * 1024;
const EVICTION_MEMORY_KIB: u64 = 100 * 1024;
const RESERVED_EPHEMERAL_KIB: u64 = 256 * 1024;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The labels a kubelet sets on its node.
pub(crate) fn node_labels(shared: &Shared) -> BTreeMap<String, String> {
    let hw = &shared.hardware;
    let mut l = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        l.insert(k.to_owned(), v.to_owned());
    };
    put("kubernetes.io/arch", hw.arch.as_str());
    put("kubernetes.io/os", "linux");
    put("kubernetes.io/hostname", &shared.hostname);
    put("beta.kubernetes.io/arch", hw.arch.as_str());
    put("beta.kubernetes.io/os", "linux");
    put("topology.kubernetes.io/region", &hw.region);
    put("topology.kubernetes.io/zone", &hw.zone);
    put(
        "node.kubernetes.io/instance-type",
        &format!("sim.{}c{}g", hw.cpu.logical_cpus(), hw.memory_mib / 1024),
    );
    l
}

fn resources(shared: &Shared) -> (BTreeMap<String, Quantity>, BTreeMap<String, Quantity>) {
    let hw = &shared.hardware;
    let cpus = u64::from(hw.cpu.logical_cpus());
    let mem_kib = hw.memory_kib() - hw.memory_kib() * 3 / 100;
    let eph_kib = hw.system_disk().map_or(0, |d| d.size_bytes / 1024);
    let q = |s: String| Quantity(s);
    let mut cap = BTreeMap::new();
    cap.insert("cpu".to_owned(), q(cpus.to_string()));
    cap.insert("memory".to_owned(), q(format!("{mem_kib}Ki")));
    cap.insert("ephemeral-storage".to_owned(), q(format!("{eph_kib}Ki")));
    cap.insert("pods".to_owned(), q("110".into()));
    cap.insert("hugepages-2Mi".to_owned(), q("0".into()));
    cap.insert("hugepages-1Gi".to_owned(), q("0".into()));
    let mut alloc = cap.clone();
    alloc.insert(
        "cpu".to_owned(),
        q(format!("{}m", cpus * 1000 - RESERVED_CPU_MILLI)),
    );
    alloc.insert(
        "memory".to_owned(),
        q(format!(
            "{}Ki",
            mem_kib.saturating_sub(RESERVED_MEMORY_KIB + EVICTION_MEMORY_KIB)
        )),
    );
    alloc.insert(
        "ephemeral-storage".to_owned(),
        q(format!(
            "{}Ki",
            (eph_kib * 9 / 10).saturating_sub(RESERVED_EPHEMERAL_KIB)
        )),
    );
    if let Some(gpu) = &hw.gpu {
        cap.insert(gpu.resource.clone(), q(gpu.count.to_string()));
        alloc.insert(gpu.resource.clone(), q(gpu.count.to_string()));
    }
    (cap, alloc)
}

/// Node conditions; `since` is when Ready last changed (it moves only on a real change).
fn conditions(ready: bool, message: &str, now: DateTime<Utc>, since: DateTime<Utc>) -> Value {
    let hb = rfc3339(now);
    let boot = rfc3339(since);
    let ok = |t: &str, reason: &str, msg: &str| {
        json!({"type": t, "status": "False", "reason": reason, "message": msg,
               "lastHeartbeatTime": hb, "lastTransitionTime": boot})
    };
    json!([
        ok("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ok("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ok("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        {
            "type": "Ready",
            "status": if ready { "True" } else { "False" },
            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
            "message": message,
            "lastHeartbeatTime": hb,
            "lastTransitionTime": boot,
        }
    ])
}

fn status_body(shared: &Shared, ready: bool, message: &str, transition: DateTime<Utc>) -> Value {
    let (cap, alloc) = resources(shared);
    let st = shared.lock();
    let now = Utc::now();
    let conds = conditions(ready, message, now, transition);
    json!({
        "status": {
            "capacity": cap,
            "allocatable": alloc,
            "conditions": conds,
            "addresses": [
                {"type": "Hostname", "address": shared.hostname},
            ],
            "nodeInfo": {
                "machineID": shared.uuid.replace('-', ""),
                "systemUUID": shared.uuid,
                "bootID": st.boot_id,
                "kernelVersion": "6.12.40-talos",
                "osImage": format!("Talos ({})", shared.config.talos_version),
                "containerRuntimeVersion": "containerd://2.1.4",
                "kubeletVersion": shared.config.kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": shared.hardware.arch.as_str(),
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        }
    })
}

#[derive(Debug, thiserror::Error)]
enum KubeletError {
    #[error("registering node failed")]
    Register(#[source] kube::Error),
    #[error("updating node status failed")]
    Status(#[source] kube::Error),
    #[error("renewing node lease failed")]
    Lease(#[source] kube::Error),
}

async fn register(shared: &Shared, client: kube::Client) -> Result<Node, KubeletError> {
    let nodes: Api<Node> = Api::all(client);
    let node = Node {
        metadata: ObjectMeta {
            name: Some(shared.hostname.clone()),
            labels: Some(node_labels(shared)),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec::default()),
        status: None,
    };
    match nodes.create(&PostParams::default(), &node).await {
        Ok(n) => Ok(n),
        Err(kube::Error::Api(e)) if e.code == 409 => nodes
            .get(&shared.hostname)
            .await
            .map_err(KubeletError::Register),
        Err(e) => Err(KubeletError::Register(e)),
    }
}

async fn patch_status(
    shared: &Shared,
    ready: bool,
    message: &str,
    transition: DateTime<Utc>,
) -> Result<(), KubeletError> {
    let Some(client) = shared.config.kube.clone() else {
        return Ok(());
    };
    let nodes: Api<Node> = Api::all(client);
    nodes
        .patch_status(
            &shared.hostname,
            &PatchParams::default(),
            &Patch::Merge(status_body(shared, ready, message, transition)),
        )
        .await
        .map(|_| ())
        .map_err(KubeletError::Status)
}

async fn renew_lease(shared: &Shared, node_uid: Option<&str>) -> Result<(), KubeletError> {
    let Some(client) = shared.config.kube.clone() else {
        return Ok(());
    };
    let leases: Api<Lease> = Api::namespaced(client, NODE_LEASE_NAMESPACE);
    let now = MicroTime(Utc::now());
    let patch = json!({"spec": {"renewTime": now, "holderIdentity": shared.hostname,
        "leaseDurationSeconds": shared.config.timings.lease_duration_secs}});
    match leases
        .patch(
            &shared.hostname,
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(shared.hostname.clone()),
                    namespace: Some(NODE_LEASE_NAMESPACE.to_owned()),
                    owner_references: node_uid.map(|uid| {
                        vec![OwnerReference {
                            api_version: "v1".into(),
                            kind: "Node".into(),
                            name: shared.hostname.clone(),
                            uid: uid.to_owned(),
                            ..OwnerReference::default()
                        }]
                    }),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(shared.hostname.clone()),
                    lease_duration_seconds: Some(shared.config.timings.lease_duration_secs),
                    renew_time: Some(now),
                    ..LeaseSpec::default()
                }),
            };
            leases
                .create(&PostParams::default(), &lease)
                .await
                .map(|_| ())
                .map_err(KubeletError::Lease)
        }
        Err(e) => Err(KubeletError::Lease(e)),
    }
}

/// Registers the node and heartbeats until `cancel` flips.
pub(crate) async fn run(shared: Arc<Shared>, mut cancel: watch::Receiver<bool>) {
    let period = shared.config.timings.heartbeat;
    let mut node_uid: Option<String> = None;
    let mut ready_since: Option<DateTime<Utc>> = None;
    let Some(client) = shared.config.kube.clone() else {
        return;
    };
    loop {
        if *cancel.borrow() {
            return;
        }
        let heartbeat = async {
            if node_uid.is_none() {
                let node = register(&shared, client.clone()).await?;
                node_uid.clone_from(&node.metadata.uid);
                tracing::info!(machine.id = %shared.uuid, k8s.node = %shared.hostname, "node registered");
            }
            let since = *ready_since.get_or_insert_with(Utc::now);
            patch_status(&shared, true, "kubelet is posting ready status", since).await?;
            renew_lease(&shared, node_uid.as_deref()).await
        };
        // A machine going down stops its kubelet at once: a Ready status
        // still in flight must not land after the NotReady one the machine
        // posts on its way down (the node would look up with its old boot id).
        let result = tokio::select! {
            result = heartbeat => result,
            _ = cancel.wait_for(|stop| *stop) => return,
        };
        if let Err(e) = result {
            tracing::warn!(machine.id = %shared.uuid, error = %e, "kubelet heartbeat failed");
            if matches!(e, KubeletError::Status(_)) {
                // The node may have been deleted: register again.
                node_uid = None;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = cancel.changed() => {}
        }
    }
}

/// Marks the node NotReady (the kubelet's last status before going down).
pub(crate) async fn set_not_ready(shared: &Shared, message: &str) {
    if shared.config.kube.is_none() {
        return;
    }
    if let Err(e) = patch_status(shared, false, message, Utc::now()).await {
        tracing::warn!(machine.id = %shared.uuid, error = %e, "marking node NotReady failed");
    }
}
