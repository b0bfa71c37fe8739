//! KWOK-style controllers over the store: deployment, replicaset, daemonset, statefulset,
//! scheduler, kubelet, node lifecycle, garbage collector, namespace, disruption, PVC binder,
//! gateway, cert-manager, external-dns and ingress stand-ins.
//!
//! All controllers run in one loop, woken by store changes and at least every `tick`. They
//! are level-triggered: each pass reads the store and writes what differs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::{self, DeleteOpts, WriteOpts};
use crate::error::ApiError;
use crate::metrics::{cpu_millis, mem_bytes, pod_requests};
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::state::State;
use crate::store::{now, string_set};

/// Annotation naming a simulated container fault (`crashloop`, `unready`, `pullfail`,
/// `complete`), as an alternative to the image-name convention.
pub const FAULT_ANNOTATION: &str = "kube-sim.satusky.dev/fault";
/// Annotation: emit a log line every N milliseconds while running.
pub const LOG_EVERY_ANNOTATION: &str = "kube-sim.satusky.dev/log-every-ms";

const MANAGER: &str = "kube-controller-manager";

/// Whether a pod has condition `Ready=True`.
pub fn pod_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

fn condition<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == ty))
}

/// Sets a status condition; `lastTransitionTime` moves only when the status changes.
pub fn set_condition(obj: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let Some(conds) = obj["status"]["conditions"].as_array_mut() else {
        return;
    };
    let mut c = json!({"type": ty, "status": status, "lastTransitionTime": now()});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    if ty == "PodScheduled" || ty == "Ready" || ty == "ContainersReady" || ty == "Initialized" {
        c["lastProbeTime"] = Value::Null;
    }
    if let Some(existing) = conds.iter_mut().find(|x| x["type"] == ty) {
        if existing["status"] == status {
            c["lastTransitionTime"] = existing["lastTransitionTime"].clone();
        }
        if existing["lastUpdateTime"].is_string() {
            c["lastUpdateTime"] =
                if existing["status"] == status && existing["reason"] == c["reason"] {
                    existing["lastUpdateTime"].clone()
                } else {
                    json!(now())
                };
        }
        *existing = c;
    } else {
        conds.push(c);
    }
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or_default()
}

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or_default()
}

fn deleting(o: &Value) -> bool {
    !o["metadata"]["deletionTimestamp"].is_null()
}

/// The controller owner reference's uid.
fn controller_uid(o: &Value) -> Option<&str> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
}

fn owner_ref(owner: &Value, rt: &ResourceType) -> Value {
    json!([{"apiVersion": rt.api_version(), "kind": rt.kind, "name": name(owner),
        "uid": uid(owner), "controller": true, "blockOwnerDeletion": true}])
}

fn i64_at(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Resolves an int-or-percent against `total`.
fn int_or_percent(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            if let Some(p) = s.strip_suffix('%') {
                let p: i64 = p.parse().unwrap_or(0);
                if round_up {
                    (total * p + 99) / 100
                } else {
                    total * p / 100
                }
            } else {
                s.parse().unwrap_or(0)
            }
        }
        _ => 0,
    }
}

/// A short stable hash of a pod template (the `pod-template-hash` label).
fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(l) = t["metadata"]["labels"].as_object_mut() {
        l.remove("pod-template-hash");
    }
    let s = normalize(&t).to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHA[((h >> (i * 6)) % ALPHA.len() as u64) as usize] as char)
        .collect()
}

/// Drops nulls and empty maps and lists, so semantically equal templates compare equal.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .filter(|(_, v)| !is_empty_value(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Per-object timers the controllers keep in memory.
#[derive(Default)]
struct Timers {
    /// pod uid → when the kubelet first saw it bound.
    bound: HashMap<String, Instant>,
    /// pod uid → when it started running.
    running: HashMap<String, Instant>,
    /// pod uid → when its graceful deletion was first seen.
    stopping: HashMap<String, Instant>,
    /// pod uid → last crash.
    crashed: HashMap<String, Instant>,
    /// pod uid → last periodic log line.
    logged: HashMap<String, Instant>,
    /// pod uid → when a NoExecute taint started to apply to it.
    tainted: HashMap<String, Instant>,
    /// node name → last Lease renewal by kube-sim's kubelet (managed nodes).
    heartbeat: HashMap<String, Instant>,
    /// node name → the node lifecycle controller's last view of its heartbeats, and when
    /// that view last changed.
    probe: HashMap<String, (HeartbeatSeen, Instant)>,
    /// HPA uid → last time it scaled.
    hpa_scaled: HashMap<String, Instant>,
    /// Revision of each controller's inputs at its last run.
    seen_rev: HashMap<&'static str, u64>,
    /// When each controller last ran.
    last_run: HashMap<&'static str, Instant>,
    /// The kubelet saw pods in transition (timers running) on its last pass.
    kubelet_busy: bool,
    /// Pods revision the kubelet last processed.
    kubelet_rev: u64,
    /// Pods in transition, re-examined on every kubelet pass.
    kubelet_active: HashSet<(String, String)>,
    /// Last full kubelet scan.
    kubelet_full: Option<Instant>,
    /// Some node had a NoExecute taint on the last node pass.
    noexecute: bool,
    /// Where the scheduler's next node search starts.
    sched_offset: usize,
    /// Deletion count at the last garbage collection.
    gc_deletions: u64,
    /// Last garbage collection.
    last_gc: Option<Instant>,
    /// pod uid: events already emitted (reason).
    events: HashSet<(String, &'static str)>,
}

/// Runs every controller until shutdown.
pub async fn run(st: Arc<State>) {
    let mut timers = Timers::default();
    let mut shutdown = st.shutdown.subscribe();
    loop {
        let notified = st.store.changed.notified();
        if let Err(e) = pass(&st, &mut timers) {
            tracing::debug!(error = %e, "controller pass failed");
        }
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(st.cfg.tick) => {}
            _ = shutdown.changed() => return,
        }
        // coalesce bursts of writes
        tokio::time::sleep(st.cfg.tick / 4).await;
    }
}

/// Whether controller `name` must run: one of its input resources changed since its last run,
/// or its periodic resync is due.
fn due(st: &State, t: &mut Timers, name: &'static str, inputs: &[&str], every: Duration) -> bool {
    let rev = st.store.max_revision(inputs);
    let changed = t.seen_rev.get(name) != Some(&rev);
    let resync = t.last_run.get(name).is_none_or(|l| l.elapsed() >= every);
    if changed || resync {
        t.seen_rev.insert(name, rev);
        t.last_run.insert(name, Instant::now());
    }
    changed || resync
}

const PODS: &str = "pods";
const NODES: &str = "nodes";

fn pass(st: &State, t: &mut Timers) -> Result<(), ApiError> {
    let resync = (st.cfg.tick * 20).max(Duration::from_millis(200));
    let node_every = (st.cfg.heartbeat.min(st.cfg.node_monitor_grace) / 4).max(st.cfg.tick);
    if due(
        st,
        t,
        "nodes",
        &[NODES, "leases.coordination.k8s.io"],
        node_every,
    ) || t.noexecute
    {
        nodes(st, t)?;
    }
    if due(st, t, "scheduler", &[PODS, NODES], resync) {
        scheduler(st, t)?;
    }
    if due(st, t, "kubelet", &[PODS, NODES], resync) || t.kubelet_busy {
        kubelet(st, t)?;
    }
    if due(
        st,
        t,
        "deployments",
        &["deployments.apps", "replicasets.apps"],
        resync,
    ) {
        deployments(st)?;
    }
    if due(st, t, "replicasets", &["replicasets.apps", PODS], resync) {
        replicasets(st)?;
    }
    if due(
        st,
        t,
        "daemonsets",
        &["daemonsets.apps", PODS, NODES],
        resync,
    ) {
        daemonsets(st)?;
    }
    if due(st, t, "statefulsets", &["statefulsets.apps", PODS], resync) {
        statefulsets(st)?;
    }
    if due(
        st,
        t,
        "disruption",
        &["poddisruptionbudgets.policy", PODS],
        resync,
    ) {
        disruption(st)?;
    }
    // the collector scans everything: run it after deletions, and rarely otherwise
    let deletions = st.store.deletions();
    let gc_resync = t.last_gc.is_none_or(|l| l.elapsed() >= resync * 5);
    if deletions != t.gc_deletions || gc_resync {
        t.gc_deletions = deletions;
        t.last_gc = Some(Instant::now());
        gc(st);
    }
    namespaces(st)?;
    if due(
        st,
        t,
        "pvcs",
        &["persistentvolumeclaims", "storageclasses.storage.k8s.io"],
        resync,
    ) {
        pvcs(st)?;
    }
    let gw = [
        "gatewayclasses.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
        "services",
    ];
    if due(st, t, "gateways", &gw, resync) {
        gateways(st)?;
    }
    let certs = [
        "certificates.cert-manager.io",
        "issuers.cert-manager.io",
        "clusterissuers.cert-manager.io",
        "secrets",
    ];
    if due(st, t, "certificates", &certs, resync) {
        certificates(st)?;
    }
    let misc = [
        "dnsendpoints.externaldns.k8s.io",
        "ingresses.networking.k8s.io",
        "services",
    ];
    if due(st, t, "misc", &misc, resync) {
        misc_status(st)?;
    }
    if due(st, t, "endpoints", &["services", PODS], resync) {
        endpoints(st)?;
    }
    hpas(st, t)?;
    if due(st, t, "jobs", &["jobs.batch", PODS], resync) {
        jobs(st)?;
    }
    Ok(())
}

fn rt(st: &State, gvr: &str) -> Result<Arc<ResourceType>, ApiError> {
    let mut parts = gvr.rsplitn(3, '/');
    let plural = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    let group = parts.next().unwrap_or_default();
    st.rt(group, version, plural)
}

fn opts() -> WriteOpts {
    WriteOpts {
        field_manager: Some(MANAGER.to_owned()),
        ..WriteOpts::default()
    }
}

/// Records a core Event about `obj`.
fn event(
    st: &State,
    obj: &Value,
    kind: &str,
    ty: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let Ok(ev) = rt(st, "v1/events") else { return };
    let ns = if namespace(obj).is_empty() {
        "default"
    } else {
        namespace(obj)
    };
    let body = json!({
        "metadata": {"generateName": format!("{}.", name(obj)), "namespace": ns},
        "involvedObject": {"kind": kind, "name": name(obj), "namespace": namespace(obj), "uid": uid(obj),
            "apiVersion": obj["apiVersion"], "resourceVersion": obj["metadata"]["resourceVersion"]},
        "reason": reason, "message": message, "type": ty,
        "source": {"component": component}, "count": 1,
        "firstTimestamp": now(), "lastTimestamp": now(), "reportingComponent": component,
    });
    let _ = api::create(st, &ev, ns, body, &opts(), MANAGER);
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// Creates the initial nodes, namespaces and the default StorageClass.
pub fn bootstrap(st: &State) -> Result<(), ApiError> {
    let ns = rt(st, "v1/namespaces")?;
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        api::create(
            st,
            &ns,
            "",
            json!({"metadata": {"name": n}}),
            &opts(),
            MANAGER,
        )?;
    }
    let sc = rt(st, "storage.k8s.io/v1/storageclasses")?;
    api::create(
        st,
        &sc,
        "",
        json!({"metadata": {"name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kube-sim.satusky.dev/hostpath", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
        &opts(),
        MANAGER,
    )?;
    let svc = rt(st, "v1/services")?;
    api::create(
        st,
        &svc,
        "default",
        json!({"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}),
        &opts(),
        MANAGER,
    )?;
    for i in 0..st.cfg.nodes {
        add_node(st, &format!("node-{i}"), BTreeMap::new())?;
    }
    Ok(())
}

/// Creates one Ready node with its Lease, marked as run by kube-sim's simulated kubelet.
pub fn add_node(
    st: &State,
    node_name: &str,
    labels: BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let nodes = rt(st, "v1/nodes")?;
    let idx = st.store.count(&nodes);
    let zone = format!(
        "zone-{}",
        (b'a' + (idx % st.cfg.zones.max(1)) as u8) as char
    );
    let mut l = json!({
        "kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "sim",
        "node.kubernetes.io/instance-type": "kube-sim",
    });
    for (k, v) in labels {
        l[k] = json!(v);
    }
    let cfg = &st.cfg;
    let cap = json!({"cpu": format!("{}m", cfg.node_cpu_millis), "memory": format!("{}Mi", cfg.node_memory_mib),
        "pods": cfg.node_pods.to_string(), "ephemeral-storage": "100Gi"});
    let ip = format!("10.0.{}.{}", idx / 250, idx % 250 + 10);
    let heartbeat = now();
    let conditions: Vec<Value> = KUBELET_CONDITIONS
        .iter()
        .map(|(ty, status, reason, message)| {
            json!({"type": ty, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": heartbeat, "lastTransitionTime": heartbeat})
        })
        .collect();
    let node = json!({
        "metadata": {"name": node_name, "labels": l,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", MANAGED_NODE_ANNOTATION: MANAGED_NODE_VALUE}},
        "spec": {"podCIDR": format!("10.244.{}.0/24", idx % 250)},
        "status": {
            "capacity": cap, "allocatable": cap,
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": node_name}],
            "conditions": conditions,
            "nodeInfo": {"kubeletVersion": "v1.32.0-kube-sim", "kubeProxyVersion": "v1.32.0-kube-sim", "containerRuntimeVersion": "kube-sim://1.0",
                "operatingSystem": "linux", "architecture": "amd64", "osImage": "kube-sim", "kernelVersion": "6.0.0",
                "machineID": node_name, "systemUUID": node_name, "bootID": node_name},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    });
    api::create(st, &nodes, "", node, &opts(), "kubelet")?;
    let leases = rt(st, "coordination.k8s.io/v1/leases")?;
    api::create(
        st,
        &leases,
        NODE_LEASE_NAMESPACE,
        node_lease(node_name),
        &opts(),
        "kubelet",
    )?;
    Ok(())
}

/// A kubelet's node Lease, just renewed.
fn node_lease(node_name: &str) -> Value {
    json!({"metadata": {"name": node_name, "namespace": NODE_LEASE_NAMESPACE},
        "spec": {"holderIdentity": node_name, "leaseDurationSeconds": 40, "renewTime": micro_now()}})
}

fn micro_now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn taint_key(t: &Value) -> (&str, &str) {
    (
        t["key"].as_str().unwrap_or_default(),
        t["effect"].as_str().unwrap_or_default(),
    )
}

/// Annotation marking the nodes whose kubelet kube-sim simulates, as KWOK marks its fake nodes:
/// the nodes kube-sim creates itself (`--nodes`, [`add_node`]) carry it, and so may nodes a
/// client creates for kube-sim to run. Every other node belongs to an external kubelet, which
/// alone posts its conditions and renews its Lease.
pub const MANAGED_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";
/// Value of [`MANAGED_NODE_ANNOTATION`] on the nodes kube-sim runs.
pub const MANAGED_NODE_VALUE: &str = "fake";

/// Whether kube-sim's simulated kubelet runs this node.
pub fn managed_node(node: &Value) -> bool {
    node["metadata"]["annotations"][MANAGED_NODE_ANNOTATION] == MANAGED_NODE_VALUE
}

/// The conditions a kubelet posts: type, healthy status, reason, message.
const KUBELET_CONDITIONS: [(&str, &str, &str, &str); 4] = [
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    (
        "DiskPressure",
        "False",
        "KubeletHasNoDiskPressure",
        "kubelet has no disk pressure",
    ),
    (
        "PIDPressure",
        "False",
        "KubeletHasSufficientPID",
        "kubelet has sufficient PID available",
    ),
    (
        "Ready",
        "True",
        "KubeletReady",
        "kubelet is posting ready status",
    ),
];

const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Sets a node condition in place: `lastTransitionTime` moves only when the status changes,
/// `lastHeartbeatTime` only when `heartbeat` is given (the node lifecycle controller keeps it).
fn set_node_condition(
    node: &mut Value,
    ty: &str,
    (status, reason, message): (&str, &str, &str),
    heartbeat: Option<&str>,
) {
    if !node["status"]["conditions"].is_array() {
        node["status"]["conditions"] = json!([]);
    }
    let Some(conds) = node["status"]["conditions"].as_array_mut() else {
        return;
    };
    let idx = if let Some(i) = conds.iter().position(|c| c["type"] == ty) {
        i
    } else {
        conds.push(json!({"type": ty}));
        conds.len() - 1
    };
    let c = &mut conds[idx];
    if c["status"] != status || c["lastTransitionTime"].is_null() {
        c["lastTransitionTime"] = json!(now());
    }
    c["status"] = json!(status);
    c["reason"] = json!(reason);
    c["message"] = json!(message);
    if let Some(h) = heartbeat {
        c["lastHeartbeatTime"] = json!(h);
    }
}

/// kube-sim's kubelet for one node it runs: renews the node's Lease every heartbeat (creating
/// it when missing) and posts the healthy conditions whenever they are not (at registration,
/// after a stop).
fn kubelet_heartbeat(
    st: &State,
    t: &mut Timers,
    nodes_rt: &ResourceType,
    leases: &ResourceType,
    node: &Value,
) -> Result<(), ApiError> {
    let n = name(node).to_owned();
    // keep a configured heartbeat longer than the grace period from flapping the node
    let every = st.cfg.heartbeat.min(st.cfg.node_monitor_grace / 2);
    if t.heartbeat.get(&n).is_none_or(|h| h.elapsed() >= every) {
        t.heartbeat.insert(n.clone(), Instant::now());
        let renewed = st.store.modify(leases, NODE_LEASE_NAMESPACE, &n, |old| {
            let mut new = old.clone();
            new["spec"]["renewTime"] = json!(micro_now());
            Ok(Some(new))
        });
        if renewed.is_err()
            && let Err(e) = api::create(
                st,
                leases,
                NODE_LEASE_NAMESPACE,
                node_lease(&n),
                &opts(),
                "kubelet",
            )
        {
            tracing::debug!(k8s.node = %n, error = %e, "kube-sim's kubelet could not create its Lease");
        }
    }
    let healthy = KUBELET_CONDITIONS
        .iter()
        .all(|(ty, status, ..)| condition(node, ty).is_some_and(|c| c["status"] == *status));
    if !healthy {
        st.store.modify(nodes_rt, "", &n, |old| {
            let mut new = old.clone();
            let heartbeat = now();
            for (ty, status, reason, message) in KUBELET_CONDITIONS {
                set_node_condition(&mut new, ty, (status, reason, message), Some(&heartbeat));
            }
            Ok(Some(new))
        })?;
    }
    Ok(())
}

/// What the node lifecycle controller last saw of a node's heartbeats: its Lease's
/// `renewTime`, and whether it had a Ready condition and with which `lastHeartbeatTime`.
type HeartbeatSeen = (Option<String>, bool, Option<String>);

fn heartbeat_seen(node: &Value, lease: Option<&Value>) -> HeartbeatSeen {
    let ready = condition(node, "Ready");
    (
        lease.and_then(|l| l["spec"]["renewTime"].as_str().map(str::to_owned)),
        ready.is_some(),
        ready.and_then(|c| c["lastHeartbeatTime"].as_str().map(str::to_owned)),
    )
}

/// The lifecycle taints a node must have (`key`, `effect`, wanted), from its Ready condition
/// and `spec.unschedulable`.
fn lifecycle_taints(node: &Value) -> [(&'static str, &'static str, bool); 5] {
    let ready = condition(node, "Ready")
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default();
    [
        (
            "node.kubernetes.io/unschedulable",
            "NoSchedule",
            node["spec"]["unschedulable"] == true,
        ),
        (
            "node.kubernetes.io/not-ready",
            "NoSchedule",
            ready == "False",
        ),
        (
            "node.kubernetes.io/not-ready",
            "NoExecute",
            ready == "False",
        ),
        (
            "node.kubernetes.io/unreachable",
            "NoSchedule",
            ready == "Unknown",
        ),
        (
            "node.kubernetes.io/unreachable",
            "NoExecute",
            ready == "Unknown",
        ),
    ]
}

/// Whether [`node_lifecycle`] would change the node, without copying it.
fn node_lifecycle_due(node: &Value, silent: bool) -> bool {
    if silent
        && KUBELET_CONDITIONS
            .iter()
            .any(|(ty, ..)| condition(node, ty).is_none_or(|c| c["status"] != "Unknown"))
    {
        return true;
    }
    let taints = node["spec"]["taints"].as_array();
    lifecycle_taints(node).iter().any(|(key, effect, on)| {
        *on != taints.is_some_and(|ts| ts.iter().any(|x| taint_key(x) == (*key, *effect)))
    })
}

/// The node lifecycle controller's pass over one node (kube-controller-manager's
/// `tryUpdateNodeHealth` and taint passes): when `silent` (no heartbeat for the grace period)
/// every kubelet condition turns `Unknown`; the lifecycle taints then follow the Ready
/// condition and `spec.unschedulable`.
fn node_lifecycle(node: &Value, silent: bool) -> Value {
    let mut new = node.clone();
    if silent {
        for (ty, ..) in KUBELET_CONDITIONS {
            match condition(&new, ty).map(|c| c["status"] == "Unknown") {
                None => {
                    set_node_condition(
                        &mut new,
                        ty,
                        (
                            "Unknown",
                            "NodeStatusNeverUpdated",
                            "Kubelet never posted node status.",
                        ),
                        node["metadata"]["creationTimestamp"].as_str(),
                    );
                }
                Some(false) => {
                    set_node_condition(
                        &mut new,
                        ty,
                        (
                            "Unknown",
                            "NodeStatusUnknown",
                            "Kubelet stopped posting node status.",
                        ),
                        None,
                    );
                }
                Some(true) => {}
            }
        }
    }
    let mut taints: Vec<Value> = new["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let want = lifecycle_taints(&new);
    let mut changed = false;
    for (key, effect, on) in want {
        let has = taints.iter().any(|x| taint_key(x) == (key, effect));
        if on && !has {
            taints.push(json!({"key": key, "effect": effect, "timeAdded": now()}));
            changed = true;
        } else if !on && has {
            taints.retain(|x| taint_key(x) != (key, effect));
            changed = true;
        }
    }
    if changed {
        if taints.is_empty() {
            if let Some(s) = new["spec"].as_object_mut() {
                s.remove("taints");
            }
        } else {
            new["spec"]["taints"] = Value::Array(taints);
        }
    }
    new
}

fn nodes(st: &State, t: &mut Timers) -> Result<(), ApiError> {
    let nodes_rt = rt(st, "v1/nodes")?;
    let leases = rt(st, "coordination.k8s.io/v1/leases")?;
    let stopped = st
        .stopped_nodes
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    let mut present = HashSet::new();
    for node in st.store.list(&nodes_rt, None).items {
        let n = name(&node).to_owned();
        let mut node = node;
        if managed_node(&node) && !stopped.contains(&n) {
            kubelet_heartbeat(st, t, &nodes_rt, &leases, &node)?;
            let Some(latest) = st.store.get(&nodes_rt, "", &n) else {
                continue;
            };
            node = latest;
        }
        // The node lifecycle controller, alike for every node: a heartbeat is a change of the
        // Lease's renewTime or of the Ready condition's lastHeartbeatTime, timed when seen.
        let lease = st.store.get(&leases, NODE_LEASE_NAMESPACE, &n);
        let seen = heartbeat_seen(&node, lease.as_deref());
        let since = match t.probe.get(&n) {
            Some((s, at)) if *s == seen => *at,
            _ => {
                let at = Instant::now();
                t.probe.insert(n.clone(), (seen.clone(), at));
                at
            }
        };
        let silent = since.elapsed() >= st.cfg.node_monitor_grace;
        if node_lifecycle_due(&node, silent) {
            st.store.modify(&nodes_rt, "", &n, |old| {
                // a status the kubelet posted since is a heartbeat: look again next pass
                if silent && heartbeat_seen(old, lease.as_deref()) != seen {
                    return Ok(None);
                }
                Ok(Some(node_lifecycle(old, silent)))
            })?;
        }
        present.insert(n);
    }
    t.probe.retain(|n, _| present.contains(n));
    t.heartbeat.retain(|n, _| present.contains(n));
    // NoExecute taint eviction
    let pods_rt = rt(st, "v1/pods")?;
    let nodes_by_name: HashMap<String, Arc<Value>> = st
        .store
        .list(&nodes_rt, None)
        .items
        .into_iter()
        .map(|n| (name(&n).to_owned(), n))
        .collect();
    if !nodes_by_name.values().any(|n| {
        n["spec"]["taints"]
            .as_array()
            .is_some_and(|ts| ts.iter().any(|x| x["effect"] == "NoExecute"))
    }) {
        t.tainted.clear();
        t.noexecute = false;
        return Ok(());
    }
    t.noexecute = true;
    for pod in st.store.list(&pods_rt, None).items {
        let Some(node) = pod["spec"]["nodeName"]
            .as_str()
            .and_then(|n| nodes_by_name.get(n))
        else {
            continue;
        };
        if deleting(&pod) {
            continue;
        }
        let taints: Vec<&Value> = node["spec"]["taints"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["effect"] == "NoExecute").collect())
            .unwrap_or_default();
        let tols = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut limit: Option<f64> = None;
        let mut evict_now = false;
        for taint in taints {
            match tols.iter().find(|tol| tolerates(tol, taint)) {
                None => evict_now = true,
                Some(tol) => {
                    if let Some(s) = tol["tolerationSeconds"].as_f64() {
                        let s = s * st.cfg.toleration_scale;
                        limit = Some(limit.map_or(s, |l: f64| l.min(s)));
                    }
                }
            }
        }
        let pid = uid(&pod).to_owned();
        if !evict_now {
            match limit {
                None => {
                    t.tainted.remove(&pid);
                    continue;
                }
                Some(secs) => {
                    let since = *t.tainted.entry(pid.clone()).or_insert_with(Instant::now);
                    if since.elapsed().as_secs_f64() < secs {
                        continue;
                    }
                }
            }
        }
        t.tainted.remove(&pid);
        event(
            st,
            &pod,
            "Pod",
            "Normal",
            "TaintManagerEviction",
            "Marking for deletion Pod",
            "taint-eviction-controller",
        );
        let _ = st
            .store
            .modify(&pods_rt, namespace(&pod), name(&pod), |old| {
                let mut new = old.clone();
                set_condition(
                    &mut new,
                    "DisruptionTarget",
                    "True",
                    "DeletionByTaintManager",
                    "Taint manager: deleting due to NoExecute taint",
                );
                Ok(Some(new))
            });
        let _ = api::delete(
            st,
            &pods_rt,
            namespace(&pod),
            name(&pod),
            &DeleteOpts::default(),
        );
    }
    Ok(())
}

/// Whether a toleration matches a taint.
pub fn tolerates(tol: &Value, taint: &Value) -> bool {
    let key = tol["key"].as_str().unwrap_or_default();
    let op = tol["operator"].as_str().unwrap_or("Equal");
    let effect = tol["effect"].as_str().unwrap_or_default();
    if !effect.is_empty() && effect != taint["effect"].as_str().unwrap_or_default() {
        return false;
    }
    if key.is_empty() {
        return op == "Exists";
    }
    if key != taint["key"].as_str().unwrap_or_default() {
        return false;
    }
    op == "Exists"
        || tol["value"].as_str().unwrap_or_default() == taint["value"].as_str().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Scheduler

fn node_selector_term_matches(term: &Value, labels: &Value) -> bool {
    term["matchExpressions"].as_array().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let key = e["key"].as_str().unwrap_or_default();
            let val = labels.get(key).and_then(Value::as_str);
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => val.is_some_and(|v| values.contains(&v)),
                "NotIn" => val.is_none_or(|v| !values.contains(&v)),
                "Exists" => val.is_some(),
                "DoesNotExist" => val.is_none(),
                "Gt" => val
                    .and_then(|v| v.parse::<i64>().ok())
                    .zip(values.first().and_then(|x| x.parse::<i64>().ok()))
                    .is_some_and(|(a, b)| a > b),
                "Lt" => val
                    .and_then(|v| v.parse::<i64>().ok())
                    .zip(values.first().and_then(|x| x.parse::<i64>().ok()))
                    .is_some_and(|(a, b)| a < b),
                _ => false,
            }
        })
    })
}

struct NodeInfo {
    node: Arc<Value>,
    cpu: u64,
    mem: u64,
    pods: u64,
    /// labels of pods on it, with namespace
    pod_labels: Vec<(String, Value)>,
}

fn node_ready(n: &Value) -> bool {
    condition(n, "Ready").is_some_and(|c| c["status"] == "True")
}

fn scheduler(st: &State, t: &mut Timers) -> Result<(), ApiError> {
    let pods_rt = rt(st, "v1/pods")?;
    let all = st.store.list(&pods_rt, None).items;
    let pending: Vec<&Arc<Value>> = all
        .iter()
        .filter(|p| p["spec"]["nodeName"].as_str().is_none_or(str::is_empty) && !deleting(p))
        .filter(|p| {
            p["spec"]["schedulerName"]
                .as_str()
                .is_none_or(|s| s == "default-scheduler")
        })
        .filter(|p| p["status"]["phase"] == "Pending")
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let nodes_rt = rt(st, "v1/nodes")?;
    let mut infos: BTreeMap<String, NodeInfo> = st
        .store
        .list(&nodes_rt, None)
        .items
        .into_iter()
        .map(|n| {
            (
                name(&n).to_owned(),
                NodeInfo {
                    node: n,
                    cpu: 0,
                    mem: 0,
                    pods: 0,
                    pod_labels: vec![],
                },
            )
        })
        .collect();
    for p in &all {
        let Some(info) = p["spec"]["nodeName"]
            .as_str()
            .and_then(|n| infos.get_mut(n))
        else {
            continue;
        };
        if matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
            continue;
        }
        let (c, m) = pod_requests(p);
        info.cpu += c;
        info.mem += m;
        info.pods += 1;
        info.pod_labels
            .push((namespace(p).to_owned(), p["metadata"]["labels"].clone()));
    }
    let names: Vec<String> = infos.keys().cloned().collect();
    let total = names.len();
    // like kube-scheduler's percentageOfNodesToScore: stop after enough feasible nodes
    let to_find = if total <= 100 {
        total
    } else {
        let pct = (50 - total as i64 / 125).max(5) as usize;
        (total * pct / 100).max(100)
    };
    for pod in pending {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(i64, String)> = None;
        let mut feasible = 0;
        let start = t.sched_offset % total.max(1);
        let mut evaluated = 0;
        for i in 0..total {
            if feasible >= to_find {
                break;
            }
            evaluated += 1;
            let n = &names[(start + i) % total];
            let Some(info) = infos.get(n) else { continue };
            if let Err(r) = fits(pod, info, &infos) {
                *reasons.entry(r).or_default() += 1;
            } else {
                feasible += 1;
                let s = score(pod, info, &infos);
                if best
                    .as_ref()
                    .is_none_or(|(b, bn)| s > *b || (s == *b && n < bn))
                {
                    best = Some((s, n.clone()));
                }
            }
        }
        t.sched_offset = (start + evaluated) % total.max(1);
        let (pns, pname) = (namespace(pod).to_owned(), name(pod).to_owned());
        if let Some((_, node)) = best {
            st.store.modify(&pods_rt, &pns, &pname, |old| {
                if old["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty())
                {
                    return Ok(None);
                }
                let mut new = old.clone();
                new["spec"]["nodeName"] = json!(node);
                set_condition(&mut new, "PodScheduled", "True", "", "");
                Ok(Some(new))
            })?;
            if let Some(info) = infos.get_mut(&node) {
                let (c, m) = pod_requests(pod);
                info.cpu += c;
                info.mem += m;
                info.pods += 1;
                info.pod_labels
                    .push((pns.clone(), pod["metadata"]["labels"].clone()));
            }
            event(
                st,
                pod,
                "Pod",
                "Normal",
                "Scheduled",
                &format!("Successfully assigned {pns}/{pname} to {node}"),
                "default-scheduler",
            );
        } else {
            let detail: Vec<String> = reasons.iter().map(|(r, c)| format!("{c} {r}")).collect();
            let msg = format!(
                "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling.",
                detail.join(", ")
            );
            let changed = st.store.modify(&pods_rt, &pns, &pname, |old| {
                let mut new = old.clone();
                set_condition(&mut new, "PodScheduled", "False", "Unschedulable", &msg);
                Ok(Some(new))
            })?;
            let key = (uid(&changed).to_owned(), "FailedScheduling");
            if !t.events.contains(&key) {
                t.events.insert(key);
                event(
                    st,
                    pod,
                    "Pod",
                    "Warning",
                    "FailedScheduling",
                    &msg,
                    "default-scheduler",
                );
            }
        }
    }
    Ok(())
}

fn fits(pod: &Value, info: &NodeInfo, all: &BTreeMap<String, NodeInfo>) -> Result<(), String> {
    let node = &info.node;
    let labels = &node["metadata"]["labels"];
    let tols = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if node["spec"]["unschedulable"] == true {
        let t = json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"});
        if !tols.iter().any(|x| tolerates(x, &t)) {
            return Err("node(s) were unschedulable".to_owned());
        }
    }
    if let Some(taints) = node["spec"]["taints"].as_array() {
        for taint in taints {
            if taint["effect"] == "PreferNoSchedule" {
                continue;
            }
            if !tols.iter().any(|x| tolerates(x, taint)) {
                return Err(format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    taint["key"].as_str().unwrap_or_default(),
                    taint["value"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    if !node_ready(node) {
        return Err("node(s) were not ready".to_owned());
    }
    if let Some(sel) = pod["spec"]["nodeSelector"].as_object()
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return Err("node(s) didn't match Pod's node affinity/selector".to_owned());
    }
    let req = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    if let Some(terms) = req.as_array()
        && !terms
            .iter()
            .any(|term| node_selector_term_matches(term, labels))
    {
        return Err("node(s) didn't match Pod's node affinity/selector".to_owned());
    }
    let alloc = &node["status"]["allocatable"];
    let (c, m) = pod_requests(pod);
    if info.pods + 1
        > alloc["pods"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .unwrap_or(110)
    {
        return Err("Too many pods".to_owned());
    }
    if info.cpu + c > cpu_millis(&alloc["cpu"]) {
        return Err("Insufficient cpu".to_owned());
    }
    if info.mem + m > mem_bytes(&alloc["memory"]) {
        return Err("Insufficient memory".to_owned());
    }
    let anti = &pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    for term in anti.as_array().cloned().unwrap_or_default() {
        let key = term["topologyKey"]
            .as_str()
            .unwrap_or("kubernetes.io/hostname");
        let Ok(sel) = LabelSelector::from_object(&term["labelSelector"], true) else {
            continue;
        };
        let domain = labels.get(key);
        let clash = all
            .values()
            .filter(|o| o.node["metadata"]["labels"].get(key) == domain && domain.is_some())
            .any(|o| {
                o.pod_labels
                    .iter()
                    .any(|(ns, l)| ns == namespace(pod) && sel.matches(l))
            });
        if clash {
            return Err("node(s) didn't match pod anti-affinity rules".to_owned());
        }
    }
    for c in pod["spec"]["topologySpreadConstraints"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if c["whenUnsatisfiable"] != "DoNotSchedule" {
            continue;
        }
        let key = c["topologyKey"].as_str().unwrap_or_default();
        let max_skew = c["maxSkew"].as_i64().unwrap_or(1);
        let Ok(sel) = LabelSelector::from_object(&c["labelSelector"], true) else {
            continue;
        };
        let Some(domain) = labels.get(key) else {
            return Err(
                "node(s) didn't match pod topology spread constraints (missing required label)"
                    .to_owned(),
            );
        };
        let mut counts: HashMap<String, i64> = HashMap::new();
        for o in all.values() {
            if let Some(d) = o.node["metadata"]["labels"].get(key) {
                let n = o
                    .pod_labels
                    .iter()
                    .filter(|(ns, l)| ns == namespace(pod) && sel.matches(l))
                    .count() as i64;
                *counts.entry(d.to_string()).or_default() += n;
            }
        }
        let min = counts.values().copied().min().unwrap_or(0);
        let here = counts.get(&domain.to_string()).copied().unwrap_or(0);
        if here + 1 - min > max_skew {
            return Err("node(s) didn't match pod topology spread constraints".to_owned());
        }
    }
    Ok(())
}

fn score(pod: &Value, info: &NodeInfo, all: &BTreeMap<String, NodeInfo>) -> i64 {
    let labels = &info.node["metadata"]["labels"];
    let mut s = 0i64;
    let pref =
        &pod["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    for p in pref.as_array().cloned().unwrap_or_default() {
        if node_selector_term_matches(&p["preference"], labels) {
            s += p["weight"].as_i64().unwrap_or(1) * 100;
        }
    }
    let tols = pod["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for taint in info.node["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if taint["effect"] == "PreferNoSchedule" && !tols.iter().any(|x| tolerates(x, &taint)) {
            s -= 1000;
        }
    }
    let pref_anti = &pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    for p in pref_anti.as_array().cloned().unwrap_or_default() {
        let term = &p["podAffinityTerm"];
        let key = term["topologyKey"]
            .as_str()
            .unwrap_or("kubernetes.io/hostname");
        let Ok(sel) = LabelSelector::from_object(&term["labelSelector"], true) else {
            continue;
        };
        let domain = labels.get(key);
        let n = all
            .values()
            .filter(|o| domain.is_some() && o.node["metadata"]["labels"].get(key) == domain)
            .map(|o| {
                o.pod_labels
                    .iter()
                    .filter(|(ns, l)| ns == namespace(pod) && sel.matches(l))
                    .count() as i64
            })
            .sum::<i64>();
        s -= n * p["weight"].as_i64().unwrap_or(1) * 10;
    }
    for c in pod["spec"]["topologySpreadConstraints"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let key = c["topologyKey"].as_str().unwrap_or_default();
        let Ok(sel) = LabelSelector::from_object(&c["labelSelector"], true) else {
            continue;
        };
        let domain = labels.get(key);
        let n = all
            .values()
            .filter(|o| domain.is_some() && o.node["metadata"]["labels"].get(key) == domain)
            .map(|o| {
                o.pod_labels
                    .iter()
                    .filter(|(ns, l)| ns == namespace(pod) && sel.matches(l))
                    .count() as i64
            })
            .sum::<i64>();
        s -= n * 50;
    }
    // least allocated: spread by pod count
    s -= info.pods as i64 * 5;
    s
}

// ---------------------------------------------------------------------------------------------
// Kubelet

/// The simulated behaviour of a container, from its image name or the pod's fault annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Normal,
    CrashLoop,
    Unready,
    PullFail,
    Complete,
    Fail,
}

/// The kind of a pod's controller.
fn controller_kind(o: &Value) -> Option<&str> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["kind"].as_str())
}

fn behaviour(pod: &Value, container: &Value) -> Behaviour {
    let image = container["image"].as_str().unwrap_or_default();
    let fault = pod["metadata"]["annotations"][FAULT_ANNOTATION]
        .as_str()
        .unwrap_or_default();
    let has = |word: &str| fault == word || image.contains(&format!("kube-sim/{word}"));
    if has("crashloop") {
        Behaviour::CrashLoop
    } else if has("unready") {
        Behaviour::Unready
    } else if has("pullfail") {
        Behaviour::PullFail
    } else if has("fail") {
        if pod["spec"]["restartPolicy"] == "Never" {
            Behaviour::Fail
        } else {
            Behaviour::CrashLoop
        }
    } else if has("complete") || controller_kind(pod) == Some("Job") {
        Behaviour::Complete
    } else {
        Behaviour::Normal
    }
}

fn kubelet(st: &State, t: &mut Timers) -> Result<(), ApiError> {
    let pods_rt = rt(st, "v1/pods")?;
    let nodes_rt = rt(st, "v1/nodes")?;
    // No kubelet runs pods on a stopped node, nor on one its kubelet stopped posting for
    // (`Ready=Unknown`): their pods stay as they are, and graceful deletions wait.
    let mut stopped = st
        .stopped_nodes
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    stopped.extend(
        st.store
            .list(&nodes_rt, None)
            .items
            .iter()
            .filter(|n| condition(n, "Ready").is_some_and(|c| c["status"] == "Unknown"))
            .map(|n| name(n).to_owned()),
    );
    let mut seen: HashSet<String> = HashSet::new();
    t.kubelet_busy = false;
    let full = t
        .kubelet_full
        .is_none_or(|l| l.elapsed() >= (st.cfg.tick * 20).max(Duration::from_millis(200)));
    let rev = st.store.max_revision(&[PODS]);
    let candidates: Vec<Arc<Value>> = if let (false, Some(mut changed)) =
        (full, st.store.changed_since(&pods_rt, t.kubelet_rev))
    {
        for (ns, n) in std::mem::take(&mut t.kubelet_active) {
            if let Some(p) = st.store.get(&pods_rt, &ns, &n) {
                changed.push(p);
            }
        }
        changed
    } else {
        t.kubelet_full = Some(Instant::now());
        st.store.list(&pods_rt, None).items
    };
    t.kubelet_rev = rev;
    t.kubelet_active.clear();
    let mut any_busy = false;
    let mut done: HashSet<String> = HashSet::new();
    for pod in candidates {
        let pid = uid(&pod).to_owned();
        if !done.insert(pid.clone()) {
            continue;
        }
        seen.insert(pid);
        t.kubelet_busy = false;
        kubelet_pod(st, t, &pods_rt, &nodes_rt, &stopped, &pod)?;
        let parked = pod["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| stopped.contains(n));
        if t.kubelet_busy || parked {
            t.kubelet_active
                .insert((namespace(&pod).to_owned(), name(&pod).to_owned()));
            any_busy |= t.kubelet_busy;
        }
    }
    t.kubelet_busy = any_busy;
    if !full {
        return Ok(());
    }
    for m in [
        &mut t.bound,
        &mut t.running,
        &mut t.stopping,
        &mut t.crashed,
        &mut t.logged,
    ] {
        m.retain(|k, _| seen.contains(k));
    }
    Ok(())
}
/// One pod's kubelet step. Sets `t.kubelet_busy` when the pod is still in transition.
fn kubelet_pod(
    st: &State,
    t: &mut Timers,
    pods_rt: &ResourceType,
    nodes_rt: &ResourceType,
    stopped: &HashSet<String>,
    pod: &Value,
) -> Result<(), ApiError> {
    let Some(node_name) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    let pid = uid(pod).to_owned();
    if stopped.contains(node_name) {
        return Ok(());
    }
    let (ns, pname) = (namespace(pod).to_owned(), name(pod).to_owned());
    if deleting(pod) {
        t.kubelet_busy = true;
        let since = *t.stopping.entry(pid.clone()).or_insert_with(Instant::now);
        if since.elapsed() >= st.cfg.pod_stop_delay
            || pod["metadata"]["deletionGracePeriodSeconds"] == 0
        {
            st.store.modify(pods_rt, &ns, &pname, |old| {
                let mut new = old.clone();
                new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                Ok(Some(new))
            })?;
            st.logs.forget(&ns, &pname);
        }
        return Ok(());
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if matches!(phase, "Succeeded" | "Failed") {
        return Ok(());
    }
    let bound = *t.bound.entry(pid.clone()).or_insert_with(Instant::now);
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let behaviours: Vec<Behaviour> = containers.iter().map(|c| behaviour(pod, c)).collect();
    if phase == "Pending" {
        let pull_reported = pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
            == "ImagePullBackOff";
        if !pull_reported {
            t.kubelet_busy = true;
        }
        let host_ip = st
            .store
            .get(nodes_rt, "", node_name)
            .and_then(|n| {
                n["status"]["addresses"][0]["address"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        if pod["status"]["containerStatuses"].is_null() {
            // ContainerCreating
            st.store.modify(pods_rt, &ns, &pname, |old| {
                let mut new = old.clone();
                new["status"]["hostIP"] = json!(host_ip);
                new["status"]["hostIPs"] = json!([{"ip": host_ip}]);
                new["status"]["startTime"] = json!(now());
                set_condition(&mut new, "Initialized", "True", "", "");
                set_condition(&mut new, "Ready", "False", "ContainersNotReady", "containers with unready status");
                set_condition(&mut new, "ContainersReady", "False", "ContainersNotReady", "containers with unready status");
                new["status"]["containerStatuses"] = json!(containers.iter().map(|c| json!({
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": false, "restartCount": 0, "started": false,
                    "state": {"waiting": {"reason": "ContainerCreating"}}})).collect::<Vec<_>>());
                Ok(Some(new))
            })?;
            return Ok(());
        }
        if bound.elapsed() < st.cfg.pod_start_delay {
            return Ok(());
        }
        if behaviours.contains(&Behaviour::PullFail) {
            st.store.modify(pods_rt, &ns, &pname, |old| {
                let mut new = old.clone();
                new["status"]["containerStatuses"] = json!(containers.iter().zip(&behaviours).map(|(c, b)| {
                    let state = if *b == Behaviour::PullFail {
                        json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{}\"", c["image"].as_str().unwrap_or_default())}})
                    } else {
                        json!({"waiting": {"reason": "ContainerCreating"}})
                    };
                    json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false, "restartCount": 0, "started": false, "state": state})
                }).collect::<Vec<_>>());
                Ok(Some(new))
            })?;
            let key = (pid.clone(), "Failed");
            if !t.events.contains(&key) {
                t.events.insert(key);
                event(
                    st,
                    pod,
                    "Pod",
                    "Warning",
                    "Failed",
                    "Failed to pull image: kube-sim simulated pull failure",
                    "kubelet",
                );
            }
            return Ok(());
        }
        // start containers
        let idx = st.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pod_ip = format!("10.244.{}.{}", (idx / 250) % 250, idx % 250 + 2);
        let started = now();
        st.store.modify(pods_rt, &ns, &pname, |old| {
            let mut new = old.clone();
            let all_complete = behaviours
                .iter()
                .all(|b| matches!(b, Behaviour::Complete | Behaviour::Fail));
            let phase = if !all_complete {
                "Running"
            } else if behaviours.contains(&Behaviour::Fail) {
                "Failed"
            } else {
                "Succeeded"
            };
            new["status"]["phase"] = json!(phase);
            new["status"]["podIP"] = json!(pod_ip);
            new["status"]["podIPs"] = json!([{"ip": pod_ip}]);
            new["status"]["containerStatuses"] = json!(containers.iter().zip(&behaviours).map(|(c, b)| {
                let state = match b {
                    Behaviour::Complete => json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}}),
                    Behaviour::Fail => json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": started}}),
                    Behaviour::CrashLoop => json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}}),
                    _ => json!({"running": {"startedAt": started}}),
                };
                let last = if *b == Behaviour::CrashLoop {
                    json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": started}})
                } else { json!({}) };
                json!({"name": c["name"], "image": c["image"], "imageID": format!("sim://{}", c["image"].as_str().unwrap_or_default()),
                    "containerID": format!("sim://{}-{}", pid, c["name"].as_str().unwrap_or_default()),
                    "ready": false, "restartCount": i64::from(*b == Behaviour::CrashLoop), "started": *b != Behaviour::CrashLoop, "state": state, "lastState": last})
            }).collect::<Vec<_>>());
            if all_complete {
                set_condition(&mut new, "Ready", "False", "PodCompleted", "");
                set_condition(&mut new, "ContainersReady", "False", "PodCompleted", "");
            }
            Ok(Some(new))
        })?;
        t.running.insert(pid.clone(), Instant::now());
        for (c, b) in containers.iter().zip(&behaviours) {
            let cname = c["name"].as_str().unwrap_or_default();
            let image = c["image"].as_str().unwrap_or_default();
            st.logs.append(
                &ns,
                &pname,
                cname,
                &format!("kube-sim: started container {cname} (image {image})"),
            );
            if *b == Behaviour::CrashLoop {
                st.logs
                    .append(&ns, &pname, cname, "kube-sim: simulated crash, exit code 1");
            }
        }
        let key = (pid.clone(), "Started");
        if !t.events.contains(&key) {
            t.events.insert(key);
            for c in &containers {
                let cname = c["name"].as_str().unwrap_or_default();
                event(
                    st,
                    pod,
                    "Pod",
                    "Normal",
                    "Pulled",
                    &format!(
                        "Container image \"{}\" already present on machine",
                        c["image"].as_str().unwrap_or_default()
                    ),
                    "kubelet",
                );
                event(
                    st,
                    pod,
                    "Pod",
                    "Normal",
                    "Created",
                    &format!("Created container {cname}"),
                    "kubelet",
                );
                event(
                    st,
                    pod,
                    "Pod",
                    "Normal",
                    "Started",
                    &format!("Started container {cname}"),
                    "kubelet",
                );
            }
        }
        return Ok(());
    }
    // Running: readiness, crash loops, periodic logs
    let since = *t.running.entry(pid.clone()).or_insert_with(Instant::now);
    let all_ready = behaviours.iter().all(|b| *b == Behaviour::Normal);
    let want = if all_ready { "True" } else { "False" };
    let settled = ["Ready", "ContainersReady"]
        .iter()
        .all(|ty| condition(pod, ty).is_some_and(|c| c["status"] == want));
    if !settled {
        t.kubelet_busy = true;
    }
    if behaviours.contains(&Behaviour::CrashLoop)
        || pod["metadata"]["annotations"][LOG_EVERY_ANNOTATION].is_string()
    {
        t.kubelet_busy = true;
    }
    if !settled && since.elapsed() >= st.cfg.pod_ready_delay {
        st.store.modify(pods_rt, &ns, &pname, |old| {
            let mut new = old.clone();
            if let Some(cs) = new["status"]["containerStatuses"].as_array_mut() {
                for (c, b) in cs.iter_mut().zip(&behaviours) {
                    c["ready"] = json!(*b == Behaviour::Normal);
                    c["started"] = json!(*b != Behaviour::CrashLoop);
                }
            }
            let (s, r) = if all_ready {
                ("True", "")
            } else {
                ("False", "ContainersNotReady")
            };
            let m = if all_ready {
                ""
            } else {
                "containers with unready status"
            };
            set_condition(&mut new, "ContainersReady", s, r, m);
            set_condition(&mut new, "Ready", s, r, m);
            Ok(Some(new))
        })?;
    }
    if behaviours.contains(&Behaviour::CrashLoop) {
        let restarts = pod["status"]["containerStatuses"]
            .as_array()
            .map_or(0, |cs| {
                cs.iter()
                    .map(|c| i64_at(&c["restartCount"]))
                    .max()
                    .unwrap_or(0)
            });
        let backoff = st.cfg.pod_start_delay * 5 * 2u32.pow(restarts.clamp(0, 10) as u32);
        let last = *t.crashed.entry(pid.clone()).or_insert_with(Instant::now);
        if last.elapsed() >= backoff.min(Duration::from_mins(5)) {
            t.crashed.insert(pid.clone(), Instant::now());
            st.store.modify(pods_rt, &ns, &pname, |old| {
                let mut new = old.clone();
                if let Some(cs) = new["status"]["containerStatuses"].as_array_mut() {
                    for (c, b) in cs.iter_mut().zip(&behaviours) {
                        if *b == Behaviour::CrashLoop {
                            c["restartCount"] = json!(i64_at(&c["restartCount"]) + 1);
                        }
                    }
                }
                Ok(Some(new))
            })?;
            for (c, b) in containers.iter().zip(&behaviours) {
                if *b == Behaviour::CrashLoop {
                    st.logs.append(
                        &ns,
                        &pname,
                        c["name"].as_str().unwrap_or_default(),
                        "kube-sim: simulated crash, exit code 1",
                    );
                }
            }
        }
    }
    if let Some(ms) = pod["metadata"]["annotations"][LOG_EVERY_ANNOTATION]
        .as_str()
        .and_then(|m| m.parse::<u64>().ok())
    {
        let last = *t.logged.entry(pid.clone()).or_insert_with(Instant::now);
        if last.elapsed() >= Duration::from_millis(ms) {
            t.logged.insert(pid.clone(), Instant::now());
            for c in &containers {
                st.logs.append(
                    &ns,
                    &pname,
                    c["name"].as_str().unwrap_or_default(),
                    &format!("kube-sim: tick {}", now()),
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Workloads

fn active(p: &Value) -> bool {
    !deleting(p) && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

/// Pods by the uid of their controller.
fn pods_by_controller(all: &[Arc<Value>]) -> HashMap<String, Vec<Arc<Value>>> {
    let mut out: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    for p in all {
        if let Some(u) = controller_uid(p) {
            out.entry(u.to_owned()).or_default().push(p.clone());
        }
    }
    out
}

fn create_pod(
    st: &State,
    owner: &Value,
    owner_rt: &ResourceType,
    template: &Value,
    pod_name: Option<String>,
    node: Option<&str>,
    extra_labels: &Value,
) -> Result<(), ApiError> {
    let pods_rt = rt(st, "v1/pods")?;
    let mut pod =
        json!({"metadata": template["metadata"].clone(), "spec": template["spec"].clone()});
    if !pod["metadata"].is_object() {
        pod["metadata"] = json!({});
    }
    if let Some(m) = extra_labels.as_object() {
        for (k, v) in m {
            pod["metadata"]["labels"][k] = v.clone();
        }
    }
    match pod_name {
        Some(n) => pod["metadata"]["name"] = json!(n),
        None => pod["metadata"]["generateName"] = json!(format!("{}-", name(owner))),
    }
    pod["metadata"]["ownerReferences"] = owner_ref(owner, owner_rt);
    if let Some(n) = node {
        pod["spec"]["nodeName"] = json!(n);
    }
    match api::create(st, &pods_rt, namespace(owner), pod, &opts(), MANAGER) {
        Ok(p) => {
            event(
                st,
                owner,
                &owner_rt.kind,
                "Normal",
                "SuccessfulCreate",
                &format!("Created pod: {}", name(&p)),
                "replicaset-controller",
            );
            Ok(())
        }
        Err(e) if e.code == 403 || e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

fn replicasets(st: &State) -> Result<(), ApiError> {
    let rs_rt = rt(st, "apps/v1/replicasets")?;
    let pods_rt = rt(st, "v1/pods")?;
    let rss = st.store.list(&rs_rt, None).items;
    if rss.is_empty() {
        return Ok(());
    }
    let by_owner = pods_by_controller(&st.store.list(&pods_rt, None).items);
    for rs in rss {
        if deleting(&rs) {
            continue;
        }
        let pods = by_owner.get(uid(&rs)).cloned().unwrap_or_default();
        let mut live: Vec<&Arc<Value>> = pods.iter().filter(|p| active(p)).collect();
        let want = i64_at(&rs["spec"]["replicas"]);
        let have = live.len() as i64;
        if have < want {
            for _ in have..want {
                create_pod(
                    st,
                    &rs,
                    &rs_rt,
                    &rs["spec"]["template"],
                    None,
                    None,
                    &Value::Null,
                )?;
            }
        } else if have > want {
            // delete unscheduled, then not ready, then newest
            live.sort_by_key(|p| {
                (
                    p["spec"]["nodeName"].is_string(),
                    pod_ready(p),
                    std::cmp::Reverse(
                        p["metadata"]["creationTimestamp"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    ),
                )
            });
            for p in live.iter().take((have - want) as usize) {
                let _ = api::delete(st, &pods_rt, namespace(p), name(p), &DeleteOpts::default());
                event(
                    st,
                    &rs,
                    "ReplicaSet",
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", name(p)),
                    "replicaset-controller",
                );
            }
        }
        let live: Vec<&Arc<Value>> = pods.iter().filter(|p| active(p)).collect();
        let ready = live.iter().filter(|p| pod_ready(p)).count();
        let status = json!({"replicas": live.len(), "fullyLabeledReplicas": live.len(), "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]});
        write_status(st, &rs_rt, &rs, status)?;
    }
    Ok(())
}

/// Replaces `status` keeping conditions, if it differs.
fn write_status(
    st: &State,
    rt: &ResourceType,
    obj: &Value,
    mut status: Value,
) -> Result<(), ApiError> {
    if let Some(c) = obj["status"].get("conditions")
        && status.get("conditions").is_none()
    {
        status["conditions"] = c.clone();
    }
    if obj["status"] == status {
        return Ok(());
    }
    match st.store.modify(rt, namespace(obj), name(obj), |old| {
        let mut new = old.clone();
        new["status"] = status;
        Ok(Some(new))
    }) {
        Ok(_) | Err(ApiError { code: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn revision(o: &Value) -> i64 {
    o["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn deployments(st: &State) -> Result<(), ApiError> {
    let d_rt = rt(st, "apps/v1/deployments")?;
    let deps = st.store.list(&d_rt, None).items;
    if deps.is_empty() {
        return Ok(());
    }
    let rs_rt = rt(st, "apps/v1/replicasets")?;
    let all_rs = st.store.list(&rs_rt, None).items;
    for d in deps {
        if deleting(&d) {
            continue;
        }
        reconcile_deployment(st, &d_rt, &rs_rt, &d, &all_rs)?;
    }
    Ok(())
}

fn reconcile_deployment(
    st: &State,
    d_rt: &ResourceType,
    rs_rt: &ResourceType,
    d: &Value,
    all_rs: &[Arc<Value>],
) -> Result<(), ApiError> {
    let ns = namespace(d);
    let template = &d["spec"]["template"];
    let hash = template_hash(template);
    let owned: Vec<&Arc<Value>> = all_rs
        .iter()
        .filter(|r| controller_uid(r) == Some(uid(d)))
        .collect();
    let max_rev = owned.iter().map(|r| revision(r)).max().unwrap_or(0);
    let replicas = i64_at(&d["spec"]["replicas"]);
    let paused = d["spec"]["paused"] == true;
    let new_rs = owned
        .iter()
        .find(|r| r["metadata"]["labels"]["pod-template-hash"] == hash.as_str())
        .map(|r| Value::clone(r));
    let new_rs: Value = match new_rs {
        Some(r) => {
            if revision(&r) < max_rev {
                // rolled back to an older template: it becomes the newest revision
                let r = st.store.modify(rs_rt, ns, name(&r), |old| {
                    let mut new = old.clone();
                    new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                        json!((max_rev + 1).to_string());
                    Ok(Some(new))
                })?;
                (*r).clone()
            } else {
                r
            }
        }
        None if paused => return Ok(()),
        None => {
            let mut tpl = template.clone();
            tpl["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut sel = d["spec"]["selector"].clone();
            sel["matchLabels"]["pod-template-hash"] = json!(hash);
            let start = 0;
            let body = json!({
                "metadata": {"name": format!("{}-{hash}", name(d)), "namespace": ns,
                    "labels": tpl["metadata"]["labels"].clone(),
                    "annotations": {"deployment.kubernetes.io/revision": (max_rev + 1).to_string(),
                        "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                        "deployment.kubernetes.io/max-replicas": replicas.to_string()},
                    "ownerReferences": owner_ref(d, d_rt)},
                "spec": {"replicas": start, "selector": sel, "template": tpl, "minReadySeconds": d["spec"]["minReadySeconds"].clone()},
            });
            match api::create(st, rs_rt, ns, body, &opts(), MANAGER) {
                Ok(r) => {
                    event(
                        st,
                        d,
                        "Deployment",
                        "Normal",
                        "ScalingReplicaSet",
                        &format!("Scaled up replica set {} from 0 to {start}", name(&r)),
                        "deployment-controller",
                    );
                    (*r).clone()
                }
                Err(e) if e.code == 409 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    let new_name = name(&new_rs).to_owned();
    let olds: Vec<&Arc<Value>> = owned
        .iter()
        .filter(|r| name(r) != new_name)
        .copied()
        .collect();
    let scale = |r: &Value, n: i64| -> Result<(), ApiError> {
        if i64_at(&r["spec"]["replicas"]) == n {
            return Ok(());
        }
        let from = i64_at(&r["spec"]["replicas"]);
        st.store.modify(rs_rt, ns, name(r), |old| {
            let mut new = old.clone();
            new["spec"]["replicas"] = json!(n);
            new["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
                json!(replicas.to_string());
            Ok(Some(new))
        })?;
        let dir = if n > from { "up" } else { "down" };
        event(
            st,
            d,
            "Deployment",
            "Normal",
            "ScalingReplicaSet",
            &format!("Scaled {dir} replica set {} from {from} to {n}", name(r)),
            "deployment-controller",
        );
        Ok(())
    };
    let new_spec = i64_at(&new_rs["spec"]["replicas"]);
    let old_total: i64 = olds.iter().map(|r| i64_at(&r["spec"]["replicas"])).sum();
    let old_pods: i64 = olds.iter().map(|r| i64_at(&r["status"]["replicas"])).sum();
    if !paused {
        if d["spec"]["strategy"]["type"] == "Recreate" {
            for r in &olds {
                scale(r, 0)?;
            }
            if old_pods == 0 && old_total == 0 {
                scale(&new_rs, replicas)?;
            }
        } else {
            let ru = &d["spec"]["strategy"]["rollingUpdate"];
            let surge = int_or_percent(&ru["maxSurge"], replicas, true);
            let mut unavail = int_or_percent(&ru["maxUnavailable"], replicas, false);
            if surge == 0 && unavail == 0 {
                unavail = 1;
            }
            if olds.is_empty() || old_total == 0 {
                scale(&new_rs, replicas)?;
            } else {
                // scale up the new replica set within maxSurge
                let total = new_spec + old_total;
                let allowed = replicas + surge - total;
                if allowed > 0 && new_spec < replicas {
                    scale(&new_rs, (new_spec + allowed).min(replicas))?;
                } else if new_spec > replicas {
                    scale(&new_rs, replicas)?;
                }
                // scale down old replica sets within maxUnavailable
                let available: i64 = owned
                    .iter()
                    .map(|r| i64_at(&r["status"]["availableReplicas"]))
                    .sum();
                let min_available = replicas - unavail;
                let mut budget = (available - min_available).max(0);
                let mut olds_sorted = olds.clone();
                olds_sorted.sort_by_key(|r| revision(r));
                for r in olds_sorted {
                    let cur = i64_at(&r["spec"]["replicas"]);
                    if cur == 0 {
                        continue;
                    }
                    // unhealthy old pods can go without budget
                    let unhealthy = (cur - i64_at(&r["status"]["availableReplicas"])).max(0);
                    let down = (unhealthy + budget).min(cur);
                    if down > 0 {
                        budget -= (down - unhealthy.min(down)).max(0);
                        scale(r, cur - down)?;
                    }
                }
            }
        }
    }
    // history limit
    let limit = d["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
    let mut idle: Vec<&&Arc<Value>> = olds
        .iter()
        .filter(|r| i64_at(&r["spec"]["replicas"]) == 0 && i64_at(&r["status"]["replicas"]) == 0)
        .collect();
    if idle.len() as i64 > limit {
        idle.sort_by_key(|r| revision(r));
        for r in idle.iter().take(idle.len() - limit as usize) {
            let _ = api::delete(st, rs_rt, ns, name(r), &DeleteOpts::default());
        }
    }
    // status
    let current_rs: Vec<Arc<Value>> = st
        .store
        .list(rs_rt, Some(ns))
        .items
        .into_iter()
        .filter(|r| controller_uid(r) == Some(uid(d)))
        .collect();
    let sum = |f: &str| -> i64 { current_rs.iter().map(|r| i64_at(&r["status"][f])).sum() };
    let total = sum("replicas");
    let ready = sum("readyReplicas");
    let available = sum("availableReplicas");
    let new_now = current_rs.iter().find(|r| name(r) == new_name);
    let updated = new_now.map_or(0, |r| i64_at(&r["status"]["replicas"]));
    let new_available = new_now.map_or(0, |r| i64_at(&r["status"]["availableReplicas"]));
    let ru = &d["spec"]["strategy"]["rollingUpdate"];
    let unavail_allowed = if d["spec"]["strategy"]["type"] == "Recreate" {
        0
    } else {
        int_or_percent(&ru["maxUnavailable"], replicas, false)
    };
    let mut status = json!({
        "observedGeneration": d["metadata"]["generation"], "replicas": total, "updatedReplicas": updated,
        "readyReplicas": ready, "availableReplicas": available, "unavailableReplicas": (replicas - available).max(0),
        "conditions": d["status"]["conditions"].clone(),
    });
    if let Some(m) = status.as_object_mut() {
        m.retain(|k, v| {
            !(v == 0 && k != "observedGeneration" && k != "replicas") || k == "conditions"
        });
    }
    let mut holder = json!({"status": status});
    let (av, av_reason, av_msg) = if available >= replicas - unavail_allowed {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    set_condition_upd(&mut holder, "Available", av, av_reason, av_msg);
    let complete = updated >= replicas && total <= updated && new_available >= replicas;
    let rs_ref = format!("ReplicaSet \"{new_name}\"");
    if complete {
        set_condition_upd(
            &mut holder,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("{rs_ref} has successfully progressed."),
        );
    } else {
        let deadline = d["spec"]["progressDeadlineSeconds"].as_i64().unwrap_or(600);
        let last = condition(&holder, "Progressing")
            .filter(|c| c["status"] == "True" && c["reason"] != "NewReplicaSetAvailable")
            .and_then(|c| c["lastUpdateTime"].as_str())
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        let exceeded =
            last.is_some_and(|l| (Utc::now() - l.with_timezone(&Utc)).num_seconds() > deadline);
        if exceeded
            || condition(&holder, "Progressing")
                .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
        {
            set_condition_upd(
                &mut holder,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("{rs_ref} has timed out progressing."),
            );
        } else {
            set_condition_upd(
                &mut holder,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("{rs_ref} is progressing."),
            );
        }
    }
    let status = holder["status"].take();
    if d["status"] != status {
        st.store.modify(d_rt, ns, name(d), |old| {
            let mut new = old.clone();
            new["status"] = status;
            new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                new_rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone();
            Ok(Some(new))
        })?;
    } else if d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        != new_rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    {
        st.store.modify(d_rt, ns, name(d), |old| {
            let mut new = old.clone();
            new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                new_rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone();
            Ok(Some(new))
        })?;
    }
    Ok(())
}

/// Like [`set_condition`], with `lastUpdateTime` (Deployment conditions).
fn set_condition_upd(obj: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    let had = condition(obj, ty).is_some();
    set_condition(obj, ty, status, reason, message);
    if !had
        && let Some(c) = obj["status"]["conditions"]
            .as_array_mut()
            .and_then(|a| a.iter_mut().find(|c| c["type"] == ty))
    {
        c["lastUpdateTime"] = json!(now());
    }
}

fn daemon_tolerations(template: &Value) -> Value {
    let mut tols = template["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        tols.push(json!({"key": key, "operator": "Exists", "effect": effect}));
    }
    Value::Array(tols)
}

fn daemonsets(st: &State) -> Result<(), ApiError> {
    let ds_rt = rt(st, "apps/v1/daemonsets")?;
    let dss = st.store.list(&ds_rt, None).items;
    if dss.is_empty() {
        return Ok(());
    }
    let pods_rt = rt(st, "v1/pods")?;
    let nodes_rt = rt(st, "v1/nodes")?;
    let nodes = st.store.list(&nodes_rt, None).items;
    let by_owner = pods_by_controller(&st.store.list(&pods_rt, None).items);
    for ds in dss {
        if deleting(&ds) {
            continue;
        }
        let mut template = ds["spec"]["template"].clone();
        template["spec"]["tolerations"] = daemon_tolerations(&template);
        let pods = by_owner.get(uid(&ds)).cloned().unwrap_or_default();
        let mut desired = 0;
        let mut current = 0;
        let mut ready = 0;
        for node in &nodes {
            let labels = &node["metadata"]["labels"];
            let sel_ok = template["spec"]["nodeSelector"]
                .as_object()
                .is_none_or(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)));
            let tols = template["spec"]["tolerations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let taints_ok = node["spec"]["taints"].as_array().is_none_or(|ts| {
                ts.iter()
                    .filter(|t| t["effect"] != "PreferNoSchedule")
                    .all(|t| tols.iter().any(|x| tolerates(x, t)))
            });
            let on_node: Vec<&Arc<Value>> = pods
                .iter()
                .filter(|p| p["spec"]["nodeName"] == node["metadata"]["name"] && active(p))
                .collect();
            if !(sel_ok && taints_ok) {
                for p in on_node {
                    let _ =
                        api::delete(st, &pods_rt, namespace(p), name(p), &DeleteOpts::default());
                }
                continue;
            }
            desired += 1;
            if on_node.is_empty() {
                create_pod(
                    st,
                    &ds,
                    &ds_rt,
                    &template,
                    None,
                    Some(name(node)),
                    &json!({"controller-revision-hash": template_hash(&ds["spec"]["template"])}),
                )?;
            } else {
                current += 1;
                if on_node.iter().any(|p| pod_ready(p)) {
                    ready += 1;
                }
            }
        }
        let status = json!({"desiredNumberScheduled": desired, "currentNumberScheduled": current, "numberReady": ready,
            "numberAvailable": ready, "updatedNumberScheduled": current, "numberMisscheduled": 0,
            "numberUnavailable": desired - ready, "observedGeneration": ds["metadata"]["generation"]});
        write_status(st, &ds_rt, &ds, status)?;
    }
    Ok(())
}

fn statefulsets(st: &State) -> Result<(), ApiError> {
    let ss_rt = rt(st, "apps/v1/statefulsets")?;
    let sss = st.store.list(&ss_rt, None).items;
    if sss.is_empty() {
        return Ok(());
    }
    let pods_rt = rt(st, "v1/pods")?;
    for ss in sss {
        if deleting(&ss) {
            continue;
        }
        let ns = namespace(&ss);
        let replicas = i64_at(&ss["spec"]["replicas"]);
        let parallel = ss["spec"]["podManagementPolicy"] == "Parallel";
        let mut ready = 0;
        let mut count = 0;
        for i in 0..replicas {
            let pname = format!("{}-{i}", name(&ss));
            if let Some(p) = st.store.get(&pods_rt, ns, &pname) {
                count += 1;
                if pod_ready(&p) {
                    ready += 1;
                } else if !parallel {
                    break;
                }
            } else {
                let mut labels = json!({"statefulset.kubernetes.io/pod-name": pname, "apps.kubernetes.io/pod-index": i.to_string()});
                labels["controller-revision-hash"] = json!(format!(
                    "{}-{}",
                    name(&ss),
                    template_hash(&ss["spec"]["template"])
                ));
                let mut tpl = ss["spec"]["template"].clone();
                tpl["spec"]["hostname"] = json!(pname);
                if let Some(svc) = ss["spec"]["serviceName"].as_str() {
                    tpl["spec"]["subdomain"] = json!(svc);
                }
                create_pod(st, &ss, &ss_rt, &tpl, Some(pname), None, &labels)?;
                if !parallel {
                    break;
                }
            }
        }
        // scale down, highest ordinal first
        let prefix = format!("{}-", name(&ss));
        let mut extra: Vec<(i64, String)> = st
            .store
            .list(&pods_rt, Some(ns))
            .items
            .iter()
            .filter(|p| controller_uid(p) == Some(uid(&ss)) && active(p))
            .filter_map(|p| {
                name(p)
                    .strip_prefix(&prefix)
                    .and_then(|o| o.parse::<i64>().ok())
                    .map(|o| (o, name(p).to_owned()))
            })
            .filter(|(o, _)| *o >= replicas)
            .collect();
        extra.sort();
        if let Some((_, n)) = extra.last() {
            let _ = api::delete(st, &pods_rt, ns, n, &DeleteOpts::default());
        }
        let revision = format!("{}-{}", name(&ss), template_hash(&ss["spec"]["template"]));
        let status = json!({"replicas": count, "readyReplicas": ready, "currentReplicas": count, "updatedReplicas": count,
            "availableReplicas": ready, "observedGeneration": ss["metadata"]["generation"],
            "currentRevision": revision, "updateRevision": revision, "collisionCount": 0});
        write_status(st, &ss_rt, &ss, status)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Disruption controller

fn disruption(st: &State) -> Result<(), ApiError> {
    let pdb_rt = rt(st, "policy/v1/poddisruptionbudgets")?;
    let pdbs = st.store.list(&pdb_rt, None).items;
    if pdbs.is_empty() {
        return Ok(());
    }
    let pods_rt = rt(st, "v1/pods")?;
    let registry = &st.store.registry;
    for pdb in pdbs {
        let ns = namespace(&pdb);
        let Ok(sel) = LabelSelector::from_object(&pdb["spec"]["selector"], true) else {
            continue;
        };
        let pods: Vec<Arc<Value>> = st
            .store
            .list(&pods_rt, Some(ns))
            .items
            .into_iter()
            .filter(|p| sel.matches(&p["metadata"]["labels"]))
            .collect();
        let min_av = &pdb["spec"]["minAvailable"];
        let max_un = &pdb["spec"]["maxUnavailable"];
        let int_min = min_av.is_number();
        let expected: i64 = if int_min {
            pods.len() as i64
        } else {
            // sum of the controllers' scale
            let mut seen = HashSet::new();
            let mut sum = 0;
            for p in &pods {
                let Some(r) = p["metadata"]["ownerReferences"]
                    .as_array()
                    .and_then(|a| a.iter().find(|r| r["controller"] == true))
                else {
                    sum += 1;
                    continue;
                };
                let ruid = r["uid"].as_str().unwrap_or_default().to_owned();
                if !seen.insert(ruid.clone()) {
                    continue;
                }
                let owner_rt = registry.by_kind(
                    r["apiVersion"].as_str().unwrap_or_default(),
                    r["kind"].as_str().unwrap_or_default(),
                );
                let owner = owner_rt.and_then(|ort| {
                    st.store
                        .get(&ort, ns, r["name"].as_str().unwrap_or_default())
                });
                sum += owner.map_or(0, |o| i64_at(&o["spec"]["replicas"]));
            }
            sum
        };
        let desired = if int_min {
            i64_at(min_av)
        } else if min_av.is_string() {
            int_or_percent(min_av, expected, true)
        } else if !max_un.is_null() {
            (expected - int_or_percent(max_un, expected, true)).max(0)
        } else {
            0
        };
        let now_t = Utc::now();
        let mut disrupted = pdb["status"]["disruptedPods"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        disrupted.retain(|pname, ts| {
            let live = pods.iter().any(|p| name(p) == pname && !deleting(p));
            let fresh = ts
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .is_some_and(|t| (now_t - t.with_timezone(&Utc)).num_seconds() < 120);
            live && fresh
        });
        let healthy = pods
            .iter()
            .filter(|p| pod_ready(p) && !deleting(p) && !disrupted.contains_key(name(p)))
            .count() as i64;
        let allowed = if expected <= 0 {
            0
        } else {
            (healthy - desired).max(0)
        };
        let mut holder = json!({"status": {
            "observedGeneration": pdb["metadata"]["generation"], "disruptionsAllowed": allowed,
            "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
            "conditions": pdb["status"]["conditions"].clone(),
        }});
        if !disrupted.is_empty() {
            holder["status"]["disruptedPods"] = Value::Object(disrupted);
        }
        if allowed > 0 {
            set_condition(
                &mut holder,
                "DisruptionAllowed",
                "True",
                "SufficientPods",
                "",
            );
        } else {
            set_condition(
                &mut holder,
                "DisruptionAllowed",
                "False",
                "InsufficientPods",
                "",
            );
        }
        if let Some(c) = holder["status"]["conditions"].as_array_mut() {
            for c in c {
                c["observedGeneration"] = pdb["metadata"]["generation"].clone();
            }
        }
        let status = holder["status"].take();
        write_status(st, &pdb_rt, &pdb, status)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Garbage collector and namespaces

fn gc(st: &State) {
    let registry = &st.store.registry;
    let snap = st.store.gc_snapshot();
    let pending_owners: Vec<(Arc<ResourceType>, Arc<Value>)> = snap
        .finalizing
        .iter()
        .filter_map(|(key, o)| registry.by_key(key).map(|r| (r, o.clone())))
        .collect();
    let dependents_of = |owner_uid: &str| -> Vec<(String, Arc<Value>)> {
        snap.owned
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|r| r["uid"] == owner_uid))
            })
            .cloned()
            .collect()
    };
    for (ort, owner) in &pending_owners {
        let fs = string_set(&owner["metadata"]["finalizers"]);
        let deps = dependents_of(uid(owner));
        let finalizer = if fs.iter().any(|f| f == "orphan") {
            for (key, dep) in &deps {
                if let Some(drt) = registry.by_key(key) {
                    let ouid = uid(owner).to_owned();
                    let _ = st.store.modify(&drt, namespace(dep), name(dep), |old| {
                        let mut new = old.clone();
                        if let Some(refs) = new["metadata"]["ownerReferences"].as_array_mut() {
                            refs.retain(|r| r["uid"] != ouid.as_str());
                            if refs.is_empty()
                                && let Some(m) = new["metadata"].as_object_mut()
                            {
                                m.remove("ownerReferences");
                            }
                        }
                        Ok(Some(new))
                    });
                }
            }
            "orphan"
        } else {
            for (key, dep) in &deps {
                if let Some(drt) = registry.by_key(key)
                    && !deleting(dep)
                {
                    let _ = api::delete(
                        st,
                        &drt,
                        namespace(dep),
                        name(dep),
                        &DeleteOpts {
                            propagation: Some("Foreground".to_owned()),
                            ..DeleteOpts::default()
                        },
                    );
                }
            }
            let blocking = deps.iter().any(|(key, dep)| {
                registry
                    .by_key(key)
                    .and_then(|drt| st.store.get(&drt, namespace(dep), name(dep)))
                    .is_some()
            });
            if blocking {
                continue;
            }
            "foregroundDeletion"
        };
        let _ = st.store.modify(ort, namespace(owner), name(owner), |old| {
            let mut new = old.clone();
            let rest: Vec<String> = string_set(&old["metadata"]["finalizers"])
                .into_iter()
                .filter(|f| f != finalizer)
                .collect();
            new["metadata"]["finalizers"] = json!(rest);
            Ok(Some(new))
        });
    }
    // dependents whose owners are all gone
    for (key, obj) in &snap.orphans {
        if let Some(drt) = registry.by_key(key) {
            let _ = api::delete(
                st,
                &drt,
                namespace(obj),
                name(obj),
                &DeleteOpts {
                    propagation: Some("Background".to_owned()),
                    ..DeleteOpts::default()
                },
            );
        }
    }
}

fn namespaces(st: &State) -> Result<(), ApiError> {
    let ns_rt = rt(st, "v1/namespaces")?;
    for ns in st.store.list(&ns_rt, None).items {
        if !deleting(&ns) {
            continue;
        }
        let n = name(&ns).to_owned();
        let contents = st.store.contents_of_namespace(&n);
        let mut remaining = 0;
        for (key, names) in &contents {
            let Some(r) = st.store.registry.by_key(key) else {
                continue;
            };
            if !r.namespaced {
                continue;
            }
            for obj_name in names {
                remaining += 1;
                let _ = api::delete(
                    st,
                    &r,
                    &n,
                    obj_name,
                    &DeleteOpts {
                        grace: Some(0),
                        propagation: Some("Background".to_owned()),
                        ..DeleteOpts::default()
                    },
                );
            }
        }
        if remaining > 0 {
            let msg = format!(
                "Some resources are remaining: {}",
                contents
                    .iter()
                    .map(|(k, v)| format!("{k} has {} resource instances", v.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            st.store.modify(&ns_rt, "", &n, |old| {
                let mut new = old.clone();
                set_condition(
                    &mut new,
                    "NamespaceContentRemaining",
                    "True",
                    "SomeResourcesRemain",
                    &msg,
                );
                Ok(Some(new))
            })?;
            continue;
        }
        let fin = st.store.modify(&ns_rt, "", &n, |old| {
            let mut new = old.clone();
            new["spec"]["finalizers"] = json!([]);
            Ok(Some(new))
        })?;
        if string_set(&fin["metadata"]["finalizers"]).is_empty() {
            st.store.remove(&ns_rt, "", &n);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Storage, networking, certificates

fn pvcs(st: &State) -> Result<(), ApiError> {
    let pvc_rt = rt(st, "v1/persistentvolumeclaims")?;
    let claims = st.store.list(&pvc_rt, None).items;
    if claims.iter().all(|c| c["status"]["phase"] != "Pending") {
        return Ok(());
    }
    let pv_rt = rt(st, "v1/persistentvolumes")?;
    let sc_rt = rt(st, "storage.k8s.io/v1/storageclasses")?;
    let default_sc = st
        .store
        .list(&sc_rt, None)
        .items
        .into_iter()
        .find(|s| {
            s["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
        })
        .map(|s| name(&s).to_owned());
    for c in claims {
        if c["status"]["phase"] != "Pending" || deleting(&c) {
            continue;
        }
        let sc = c["spec"]["storageClassName"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| default_sc.clone());
        let Some(sc) = sc else { continue };
        let size = c["spec"]["resources"]["requests"]["storage"].clone();
        let pv_name = format!("pvc-{}", uid(&c));
        let pv = json!({"metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": "kube-sim.satusky.dev/hostpath"}},
            "spec": {"capacity": {"storage": size}, "accessModes": c["spec"]["accessModes"], "storageClassName": sc,
                "persistentVolumeReclaimPolicy": "Delete", "hostPath": {"path": format!("/tmp/kube-sim/{pv_name}")},
                "claimRef": {"kind": "PersistentVolumeClaim", "namespace": namespace(&c), "name": name(&c), "uid": uid(&c), "apiVersion": "v1"}},
            "status": {"phase": "Bound"}});
        match api::create(st, &pv_rt, "", pv, &opts(), MANAGER) {
            Ok(_) | Err(ApiError { code: 409, .. }) => {}
            Err(e) => return Err(e),
        }
        st.store.modify(&pvc_rt, namespace(&c), name(&c), |old| {
            let mut new = old.clone();
            new["spec"]["volumeName"] = json!(pv_name);
            new["spec"]["storageClassName"] = json!(sc);
            new["status"] = json!({"phase": "Bound", "accessModes": old["spec"]["accessModes"], "capacity": {"storage": size}});
            Ok(Some(new))
        })?;
    }
    Ok(())
}

fn set_status_with<F>(st: &State, r: &ResourceType, o: &Value, f: F) -> Result<(), ApiError>
where
    F: FnOnce(&mut Value),
{
    let mut new = (*o).clone();
    f(&mut new);
    if new == *o {
        return Ok(());
    }
    match st.store.modify(r, namespace(o), name(o), |_| Ok(Some(new))) {
        Ok(_) | Err(ApiError { code: 404, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn gateways(st: &State) -> Result<(), ApiError> {
    let gc_rt = rt(st, "gateway.networking.k8s.io/v1/gatewayclasses")?;
    let gw_rt = rt(st, "gateway.networking.k8s.io/v1/gateways")?;
    let hr_rt = rt(st, "gateway.networking.k8s.io/v1/httproutes")?;
    let svc_rt = rt(st, "v1/services")?;
    for c in st.store.list(&gc_rt, None).items {
        set_status_with(st, &gc_rt, &c, |n| {
            set_condition(n, "Accepted", "True", "Accepted", "Accepted by kube-sim");
            set_obs_gen(n);
        })?;
    }
    let gws = st.store.list(&gw_rt, None).items;
    for (i, g) in gws.iter().enumerate() {
        let class_ok = st
            .store
            .get(
                &gc_rt,
                "",
                g["spec"]["gatewayClassName"].as_str().unwrap_or_default(),
            )
            .is_some();
        set_status_with(st, &gw_rt, g, |n| {
            if class_ok {
                set_condition(n, "Accepted", "True", "Accepted", "");
                set_condition(n, "Programmed", "True", "Programmed", "");
                n["status"]["addresses"] =
                    json!([{"type": "IPAddress", "value": format!("172.18.0.{}", i + 10)}]);
            } else {
                set_condition(
                    n,
                    "Accepted",
                    "False",
                    "InvalidGatewayClass",
                    "GatewayClass not found",
                );
                set_condition(n, "Programmed", "False", "Invalid", "");
            }
            let listeners: Vec<Value> = g["spec"]["listeners"].as_array().cloned().unwrap_or_default().iter().map(|l| {
                let mut holder = json!({"status": {"conditions": g["status"]["listeners"].as_array().and_then(|a| a.iter().find(|x| x["name"] == l["name"])).map(|x| x["conditions"].clone()).unwrap_or(json!([]))}});
                set_condition(&mut holder, "Accepted", "True", "Accepted", "");
                set_condition(&mut holder, "Programmed", "True", "Programmed", "");
                set_condition(&mut holder, "ResolvedRefs", "True", "ResolvedRefs", "");
                json!({"name": l["name"], "attachedRoutes": 0, "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}], "conditions": holder["status"]["conditions"]})
            }).collect();
            n["status"]["listeners"] = json!(listeners);
            set_obs_gen(n);
        })?;
    }
    // routes: hostname conflicts resolved by creation time (oldest wins)
    let mut routes = st.store.list(&hr_rt, None).items;
    routes.sort_by_key(|r| {
        (
            r["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            namespace(r).to_owned(),
            name(r).to_owned(),
        )
    });
    let mut claimed: HashMap<(String, String, String), String> = HashMap::new();
    for r in routes {
        let hosts: Vec<String> = r["spec"]["hostnames"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let me = format!("{}/{}", namespace(&r), name(&r));
        let missing: Vec<String> = r["spec"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .flat_map(|rule| rule["backendRefs"].as_array().cloned().unwrap_or_default())
            .filter(|b| b["kind"].as_str().is_none_or(|k| k == "Service"))
            .filter_map(|b| {
                let bns = b["namespace"].as_str().unwrap_or(namespace(&r)).to_owned();
                let bn = b["name"].as_str().unwrap_or_default().to_owned();
                st.store.get(&svc_rt, &bns, &bn).is_none().then_some(bn)
            })
            .collect();
        let parents: Vec<Value> = r["spec"]["parentRefs"].as_array().cloned().unwrap_or_default().iter().map(|p| {
            let pns = p["namespace"].as_str().unwrap_or(namespace(&r)).to_owned();
            let pname = p["name"].as_str().unwrap_or_default().to_owned();
            let gw_exists = st.store.get(&gw_rt, &pns, &pname).is_some();
            let conflict = hosts.iter().find_map(|h| {
                let key = (pns.clone(), pname.clone(), h.clone());
                match claimed.get(&key) {
                    Some(owner) if *owner != me => Some(format!("hostname {h} is already used by HTTPRoute {owner}")),
                    _ => {
                        claimed.insert(key, me.clone());
                        None
                    }
                }
            });
            let old = r["status"]["parents"].as_array().and_then(|a| a.iter().find(|x| x["parentRef"]["name"] == pname.as_str()).cloned());
            let mut holder = json!({"status": {"conditions": old.map(|o| o["conditions"].clone()).unwrap_or(json!([]))}});
            match (gw_exists, &conflict) {
                (false, _) => set_condition(&mut holder, "Accepted", "False", "NoMatchingParent", "parent Gateway not found"),
                (true, Some(msg)) => set_condition(&mut holder, "Accepted", "False", "HostnameConflict", msg),
                (true, None) => set_condition(&mut holder, "Accepted", "True", "Accepted", "Accepted by kube-sim"),
            }
            if missing.is_empty() {
                set_condition(&mut holder, "ResolvedRefs", "True", "ResolvedRefs", "");
            } else {
                set_condition(&mut holder, "ResolvedRefs", "False", "BackendNotFound", &format!("backend service(s) not found: {}", missing.join(", ")));
            }
            if let Some(cs) = holder["status"]["conditions"].as_array_mut() {
                for c in cs {
                    c["observedGeneration"] = r["metadata"]["generation"].clone();
                }
            }
            json!({"parentRef": p, "controllerName": "kube-sim.satusky.dev/gateway-controller", "conditions": holder["status"]["conditions"]})
        }).collect();
        set_status_with(st, &hr_rt, &r, |n| n["status"]["parents"] = json!(parents))?;
    }
    Ok(())
}

fn set_obs_gen(n: &mut Value) {
    let g = n["metadata"]["generation"].clone();
    if let Some(cs) = n["status"]["conditions"].as_array_mut() {
        for c in cs {
            c["observedGeneration"] = g.clone();
        }
    }
}

fn fake_pem(kind: &str, subject: &str) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD
        .encode(format!("kube-sim simulated {kind} for {subject}"));
    format!("-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n")
}

fn certificates(st: &State) -> Result<(), ApiError> {
    use base64::Engine;
    let cert_rt = rt(st, "cert-manager.io/v1/certificates")?;
    let secret_rt = rt(st, "v1/secrets")?;
    for kind in [
        "cert-manager.io/v1/issuers",
        "cert-manager.io/v1/clusterissuers",
    ] {
        let r = rt(st, kind)?;
        for i in st.store.list(&r, None).items {
            set_status_with(st, &r, &i, |n| {
                set_condition(n, "Ready", "True", "KubeSimIssuer", "Signing CA verified");
                set_obs_gen(n);
            })?;
        }
    }
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for c in st.store.list(&cert_rt, None).items {
        if deleting(&c) {
            continue;
        }
        let ns = namespace(&c);
        let Some(secret) = c["spec"]["secretName"].as_str() else {
            continue;
        };
        let subject = c["spec"]["dnsNames"][0]
            .as_str()
            .or_else(|| c["spec"]["commonName"].as_str())
            .unwrap_or(name(&c))
            .to_owned();
        if st.store.get(&secret_rt, ns, secret).is_none() {
            let body = json!({"metadata": {"name": secret, "namespace": ns,
                "annotations": {"cert-manager.io/certificate-name": name(&c), "cert-manager.io/issuer-name": c["spec"]["issuerRef"]["name"], "cert-manager.io/common-name": subject}},
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": b64(&fake_pem("CERTIFICATE", &subject)), "tls.key": b64(&fake_pem("PRIVATE KEY", &subject)), "ca.crt": b64(&fake_pem("CERTIFICATE", "kube-sim CA"))}});
            match api::create(st, &secret_rt, ns, body, &opts(), "cert-manager") {
                Ok(_)
                | Err(ApiError {
                    code: 409 | 403, ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        let not_before = c["status"]["notBefore"]
            .as_str()
            .map_or_else(now, str::to_owned);
        let not_after = (Utc::now() + chrono::Duration::days(90))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        set_status_with(st, &cert_rt, &c, |n| {
            set_condition(
                n,
                "Ready",
                "True",
                "Ready",
                "Certificate is up to date and has not expired",
            );
            set_obs_gen(n);
            if n["status"]["notAfter"].is_null() {
                n["status"]["notAfter"] = json!(not_after);
                n["status"]["renewalTime"] = json!(not_after);
            }
            n["status"]["notBefore"] = json!(not_before);
            n["status"]["revision"] = json!(1);
        })?;
    }
    Ok(())
}

fn misc_status(st: &State) -> Result<(), ApiError> {
    let dns_rt = rt(st, "externaldns.k8s.io/v1alpha1/dnsendpoints")?;
    for d in st.store.list(&dns_rt, None).items {
        set_status_with(st, &dns_rt, &d, |n| {
            n["status"]["observedGeneration"] = n["metadata"]["generation"].clone();
        })?;
    }
    let ing_rt = rt(st, "networking.k8s.io/v1/ingresses")?;
    for i in st.store.list(&ing_rt, None).items {
        set_status_with(st, &ing_rt, &i, |n| {
            n["status"]["loadBalancer"] = json!({"ingress": [{"ip": "172.18.0.2"}]});
        })?;
    }
    let svc_rt = rt(st, "v1/services")?;
    for (idx, s) in st.store.list(&svc_rt, None).items.iter().enumerate() {
        if s["spec"]["type"] == "LoadBalancer" {
            set_status_with(
                st,
                &svc_rt,
                s,
                |n| n["status"]["loadBalancer"] = json!({"ingress": [{"ip": format!("172.18.1.{}", idx % 250 + 1), "ipMode": "VIP"}]}),
            )?;
        }
    }
    Ok(())
}

/// Jobs: pods up to `parallelism` until `completions` succeeded, or `Failed` past
/// `backoffLimit`. Job pods complete right after starting unless their image says otherwise.
fn jobs(st: &State) -> Result<(), ApiError> {
    let job_rt = rt(st, "batch/v1/jobs")?;
    let list = st.store.list(&job_rt, None).items;
    if list.is_empty() {
        return Ok(());
    }
    let pods_rt = rt(st, "v1/pods")?;
    let by_owner = pods_by_controller(&st.store.list(&pods_rt, None).items);
    for job in list {
        let finished = ["Complete", "Failed"]
            .iter()
            .any(|ty| condition(&job, ty).is_some_and(|c| c["status"] == "True"));
        if deleting(&job) || finished || job["spec"]["suspend"] == true {
            continue;
        }
        let pods = by_owner.get(uid(&job)).cloned().unwrap_or_default();
        let phase = |p: &Value, ph: &str| p["status"]["phase"] == ph;
        let active: Vec<&Arc<Value>> = pods.iter().filter(|p| active(p)).collect();
        let succeeded = pods.iter().filter(|p| phase(p, "Succeeded")).count() as i64;
        let failed = pods.iter().filter(|p| phase(p, "Failed")).count() as i64;
        let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
        let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1);
        let backoff = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
        let ready = active.iter().filter(|p| pod_ready(p)).count();
        let mut holder = json!({"status": job["status"].clone()});
        if !holder["status"].is_object() {
            holder["status"] = json!({});
        }
        if holder["status"]["startTime"].is_null() {
            holder["status"]["startTime"] = json!(now());
        }
        if failed > backoff {
            for p in &active {
                let _ = api::delete(st, &pods_rt, namespace(p), name(p), &DeleteOpts::default());
            }
            set_condition(
                &mut holder,
                "FailureTarget",
                "True",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            set_condition(
                &mut holder,
                "Failed",
                "True",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            event(
                st,
                &job,
                "Job",
                "Warning",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                "job-controller",
            );
        } else if succeeded >= completions {
            set_condition(
                &mut holder,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
            set_condition(
                &mut holder,
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
            holder["status"]["completionTime"] = json!(now());
            event(
                st,
                &job,
                "Job",
                "Normal",
                "Completed",
                "Job completed",
                "job-controller",
            );
        } else {
            let want = parallelism.min(completions - succeeded);
            for _ in (active.len() as i64)..want {
                create_pod(
                    st,
                    &job,
                    &job_rt,
                    &job["spec"]["template"],
                    None,
                    None,
                    &Value::Null,
                )?;
            }
        }
        let s = &mut holder["status"];
        s["active"] = json!(active.len());
        s["succeeded"] = json!(succeeded);
        s["failed"] = json!(failed);
        s["ready"] = json!(ready);
        s["terminating"] = json!(0);
        s["uncountedTerminatedPods"] = json!({});
        let status = holder["status"].take();
        write_status(st, &job_rt, &job, status)?;
    }
    Ok(())
}

/// HorizontalPodAutoscalers (`autoscaling/v2`): CPU utilization targets from the simulated
/// metrics, 10 % tolerance, at most one scale per 20 ticks.
fn hpas(st: &State, t: &mut Timers) -> Result<(), ApiError> {
    let hpa_rt = rt(st, "autoscaling/v2/horizontalpodautoscalers")?;
    let list = st.store.list(&hpa_rt, None).items;
    if list.is_empty() {
        return Ok(());
    }
    let pods_rt = rt(st, "v1/pods")?;
    for h in list {
        let ns = namespace(&h);
        let target = &h["spec"]["scaleTargetRef"];
        let trt = st.store.registry.by_kind(
            target["apiVersion"].as_str().unwrap_or_default(),
            target["kind"].as_str().unwrap_or_default(),
        );
        let obj = trt.as_ref().and_then(|r| {
            st.store
                .get(r, ns, target["name"].as_str().unwrap_or_default())
        });
        let (Some(trt), Some(obj)) = (trt, obj) else {
            set_status_with(st, &hpa_rt, &h, |n| {
                set_condition(
                    n,
                    "AbleToScale",
                    "False",
                    "FailedGetScale",
                    "the HPA controller was unable to get the target's current scale",
                );
            })?;
            continue;
        };
        let current = i64_at(&obj["spec"]["replicas"]);
        let Ok(sel) = LabelSelector::from_object(&obj["spec"]["selector"], true) else {
            continue;
        };
        let pods: Vec<Arc<Value>> = st
            .store
            .list(&pods_rt, Some(ns))
            .items
            .into_iter()
            .filter(|p| {
                sel.matches(&p["metadata"]["labels"])
                    && p["status"]["phase"] == "Running"
                    && !deleting(p)
            })
            .collect();
        let target_util = h["spec"]["metrics"]
            .as_array()
            .and_then(|ms| {
                ms.iter()
                    .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
            })
            .and_then(|m| m["resource"]["target"]["averageUtilization"].as_i64());
        let (usage, request) = pods.iter().fold((0u64, 0u64), |(u, r), p| {
            (
                u + crate::metrics::pod_usage(st, p).0,
                r + pod_requests(p).0,
            )
        });
        let min = h["spec"]["minReplicas"].as_i64().unwrap_or(1);
        let max = h["spec"]["maxReplicas"].as_i64().unwrap_or(current.max(1));
        let util = (usage * 100).checked_div(request).map(|u| u as i64);
        let mut desired = current;
        if let (Some(util), Some(target_util)) = (util, target_util) {
            let ratio = util as f64 / target_util.max(1) as f64;
            if (ratio - 1.0).abs() > 0.1 && !pods.is_empty() {
                desired = (pods.len() as f64 * ratio).ceil() as i64;
            }
        }
        let desired = desired.clamp(min, max.max(min));
        let uid_h = uid(&h).to_owned();
        let can_scale = t
            .hpa_scaled
            .get(&uid_h)
            .is_none_or(|l| l.elapsed() >= st.cfg.tick * 20);
        let mut scaled = false;
        if desired != current && can_scale {
            api::set_scale(st, &trt, ns, name(&obj), desired, None)?;
            t.hpa_scaled.insert(uid_h, Instant::now());
            scaled = true;
            event(
                st,
                &h,
                "HorizontalPodAutoscaler",
                "Normal",
                "SuccessfulRescale",
                &format!(
                    "New size: {desired}; reason: cpu resource utilization (percentage of request) above target"
                ),
                "horizontal-pod-autoscaler",
            );
        }
        set_status_with(st, &hpa_rt, &h, |n| {
            n["status"]["currentReplicas"] = json!(current);
            n["status"]["desiredReplicas"] = json!(desired);
            n["status"]["observedGeneration"] = h["metadata"]["generation"].clone();
            if scaled {
                n["status"]["lastScaleTime"] = json!(now());
            }
            if let Some(util) = util {
                let avg = if pods.is_empty() {
                    0
                } else {
                    usage / pods.len() as u64
                };
                n["status"]["currentMetrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": util, "averageValue": format!("{avg}m")}}}]);
            }
            set_condition(
                n,
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size",
            );
            if util.is_some() && target_util.is_some() {
                set_condition(
                    n,
                    "ScalingActive",
                    "True",
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
                );
            } else {
                set_condition(
                    n,
                    "ScalingActive",
                    "False",
                    "FailedGetResourceMetric",
                    "the HPA was unable to compute the replica count: missing request for cpu",
                );
            }
            let (limited, reason) = if desired >= max {
                ("True", "TooManyReplicas")
            } else if desired <= min {
                ("True", "TooFewReplicas")
            } else {
                ("False", "DesiredWithinRange")
            };
            set_condition(n, "ScalingLimited", limited, reason, "");
        })?;
    }
    Ok(())
}

/// Endpoints and EndpointSlices for services with a selector.
fn endpoints(st: &State) -> Result<(), ApiError> {
    let svc_rt = rt(st, "v1/services")?;
    let services = st.store.list(&svc_rt, None).items;
    if services.is_empty() {
        return Ok(());
    }
    let ep_rt = rt(st, "v1/endpoints")?;
    let slice_rt = rt(st, "discovery.k8s.io/v1/endpointslices")?;
    let pods_rt = rt(st, "v1/pods")?;
    for s in services {
        let Some(sel) = s["spec"]["selector"].as_object().filter(|m| !m.is_empty()) else {
            continue;
        };
        if deleting(&s) {
            continue;
        }
        let ns = namespace(&s);
        let sel = LabelSelector::from_map(&Value::Object(sel.clone()));
        let pods: Vec<Arc<Value>> = st
            .store
            .list(&pods_rt, Some(ns))
            .items
            .into_iter()
            .filter(|p| {
                sel.matches(&p["metadata"]["labels"])
                    && p["status"]["podIP"].is_string()
                    && !deleting(p)
            })
            .collect();
        let addr = |p: &Value| json!({"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"], "targetRef": {"kind": "Pod", "namespace": ns, "name": name(p), "uid": uid(p)}});
        let ready: Vec<Value> = pods
            .iter()
            .filter(|p| pod_ready(p))
            .map(|p| addr(p))
            .collect();
        let not_ready: Vec<Value> = pods
            .iter()
            .filter(|p| !pod_ready(p))
            .map(|p| addr(p))
            .collect();
        let ports: Vec<Value> = s["spec"]["ports"].as_array().cloned().unwrap_or_default().iter()
            .map(|p| json!({"name": p["name"], "port": p["targetPort"].as_i64().or_else(|| p["port"].as_i64()), "protocol": p["protocol"]})).collect();
        let mut subset = json!({"ports": ports});
        if !ready.is_empty() {
            subset["addresses"] = json!(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = json!(not_ready);
        }
        let subsets = if pods.is_empty() {
            json!([])
        } else {
            json!([subset])
        };
        let slice_endpoints: Vec<Value> = pods
            .iter()
            .map(|p| {
                let r = pod_ready(p);
                json!({"addresses": [p["status"]["podIP"]], "nodeName": p["spec"]["nodeName"],
                    "conditions": {"ready": r, "serving": r, "terminating": false},
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": name(p), "uid": uid(p)}})
            })
            .collect();
        let slice_name = format!("{}-sim", name(&s));
        let slice_ports = json!(ports);
        match st.store.get(&slice_rt, ns, &slice_name) {
            None => {
                let body = json!({"metadata": {"name": slice_name, "namespace": ns,
                    "labels": {"kubernetes.io/service-name": name(&s), "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                    "ownerReferences": owner_ref(&s, &svc_rt)},
                    "addressType": "IPv4", "endpoints": slice_endpoints, "ports": slice_ports});
                match api::create(st, &slice_rt, ns, body, &opts(), "endpointslice-controller") {
                    Ok(_)
                    | Err(ApiError {
                        code: 409 | 403 | 404,
                        ..
                    }) => {}
                    Err(e) => return Err(e),
                }
            }
            Some(es) => set_status_with(st, &slice_rt, &es, |n| {
                n["endpoints"] = json!(slice_endpoints);
                n["ports"] = slice_ports;
            })?,
        }
        match st.store.get(&ep_rt, ns, name(&s)) {
            None => {
                let body = json!({"metadata": {"name": name(&s), "namespace": ns, "labels": s["metadata"]["labels"]}, "subsets": subsets});
                match api::create(st, &ep_rt, ns, body, &opts(), "endpoint-controller") {
                    Ok(_)
                    | Err(ApiError {
                        code: 409 | 403 | 404,
                        ..
                    }) => {}
                    Err(e) => return Err(e),
                }
            }
            Some(ep) => set_status_with(st, &ep_rt, &ep, |n| n["subsets"] = subsets)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taints(node: &Value) -> Vec<String> {
        let mut t: Vec<String> = node["spec"]["taints"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                format!(
                    "{}:{}",
                    t["key"].as_str().unwrap(),
                    t["effect"].as_str().unwrap()
                )
            })
            .collect();
        t.sort();
        t
    }

    #[test]
    fn a_silent_node_that_never_posted_status_turns_unknown_with_unreachable_taints() {
        let node = json!({"metadata": {"name": "n", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"unschedulable": true}});
        // cordoned: only the unschedulable taint while heard from
        assert_eq!(
            taints(&node_lifecycle(&node, false)),
            ["node.kubernetes.io/unschedulable:NoSchedule"]
        );
        assert!(node_lifecycle_due(&node, true));
        let new = node_lifecycle(&node, true);
        for (ty, ..) in KUBELET_CONDITIONS {
            let c = condition(&new, ty).unwrap();
            assert_eq!(c["status"], "Unknown");
            assert_eq!(c["reason"], "NodeStatusNeverUpdated");
            assert_eq!(c["lastHeartbeatTime"], "2026-01-01T00:00:00Z");
        }
        assert_eq!(
            taints(&new),
            [
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule"
            ]
        );
        assert!(!node_lifecycle_due(&new, true));
    }

    #[test]
    fn the_controller_keeps_a_posted_status_and_its_heartbeat_time() {
        let posted = |status: &str| {
            json!({"metadata": {"name": "n"}, "spec": {}, "status": {"conditions": [
                {"type": "Ready", "status": status, "reason": "KubeletNotReady", "message": "m",
                 "lastHeartbeatTime": "2026-01-01T00:00:01Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
        };
        let not_ready = node_lifecycle(&posted("False"), false);
        assert_eq!(condition(&not_ready, "Ready").unwrap()["status"], "False");
        assert_eq!(
            taints(&not_ready),
            [
                "node.kubernetes.io/not-ready:NoExecute",
                "node.kubernetes.io/not-ready:NoSchedule"
            ]
        );
        let silent = node_lifecycle(&not_ready, true);
        let c = condition(&silent, "Ready").unwrap();
        assert_eq!(c["status"], "Unknown");
        assert_eq!(c["reason"], "NodeStatusUnknown");
        assert_eq!(c["lastHeartbeatTime"], "2026-01-01T00:00:01Z");
        assert_eq!(
            taints(&silent),
            [
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/unreachable:NoSchedule"
            ]
        );
        let mut back = silent.clone();
        back["status"] = posted("True")["status"].clone();
        let back = node_lifecycle(&back, false);
        assert!(taints(&back).is_empty());
        assert!(back["spec"].get("taints").is_none());
    }
}
