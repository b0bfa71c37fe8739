//! Node lifecycle: nodes kube-sim runs itself, and nodes an external kubelet registers.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::{TestSim, eventually, fast};

const NODE: &str = "ext-0";
const READY_STATUS: &str = r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#;

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

/// `(status, reason, message)` of a node condition.
fn condition(node: &Node, ty: &str) -> Option<(String, String, String)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

/// `key:effect` of each taint, sorted.
fn taints(node: &Node) -> Vec<String> {
    let mut t: Vec<String> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .iter()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect();
    t.sort();
    t
}

/// What a kubelet posts as its node's status: capacity and the four conditions, with Ready as
/// given, heartbeat now.
async fn post_status(nodes: &Api<Node>, ready: bool) {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let c = |ty: &str, status: &str, reason: &str| {
        json!({"type": ty, "status": status, "reason": reason, "message": reason,
            "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let (status, reason) = if ready {
        ("True", "KubeletReady")
    } else {
        ("False", "KubeletNotReady")
    };
    let cap = json!({"cpu": "2", "memory": "4Gi", "pods": "110"});
    let body = json!({"status": {
        "capacity": cap, "allocatable": cap,
        "addresses": [{"type": "Hostname", "address": NODE}],
        "conditions": [
            c("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            c("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            c("PIDPressure", "False", "KubeletHasSufficientPID"),
            c("Ready", status, reason),
        ],
    }});
    nodes
        .patch_status(NODE, &PatchParams::default(), &Patch::Merge(body))
        .await
        .expect("the kubelet posts its node status");
}

/// The kubelet's Lease renewals, every 100 ms until aborted.
fn heartbeat(leases: Api<Lease>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
            leases
                .patch(
                    NODE,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"renewTime": now}})),
                )
                .await
                .expect("the kubelet renews its Lease");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

async fn node(nodes: &Api<Node>) -> Node {
    nodes.get(NODE).await.expect("the node exists")
}

/// Waits until the node satisfies `f`.
async fn node_until(nodes: &Api<Node>, what: &str, f: fn(&Node) -> bool) {
    let n = nodes.clone();
    eventually(what, 10, move || {
        let n = n.clone();
        async move { n.get(NODE).await.is_ok_and(|node| f(&node)) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_kubelets_node_shows_what_it_posts_and_turns_unknown_when_it_falls_silent() {
    let grace = Duration::from_millis(600);
    let t = TestSim::with(fast().node_monitor_grace(grace)).await;
    let client = t.client();
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let pods: Api<Pod> = Api::default_namespaced(client);

    // Registered as a kubelet does: the Node, its status (NotReady), its Lease.
    nodes
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}}})),
        )
        .await
        .unwrap();
    post_status(&nodes, false).await;
    leases
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": NODE},
                "spec": {"holderIdentity": NODE, "leaseDurationSeconds": 40,
                    "renewTime": Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)}})),
        )
        .await
        .unwrap();
    let beat = heartbeat(leases.clone());
    pods.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "on-ext"},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": NODE},
                "containers": [{"name": "c", "image": "busybox:1"}]}})),
    )
    .await
    .unwrap();

    // NotReady as posted, over many ticks and twice the grace period: kube-sim is not its
    // kubelet. The node lifecycle controller taints it not-ready; nothing is scheduled there.
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = node(&nodes).await;
        let (status, reason, _) = condition(&n, "Ready").unwrap();
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "KubeletNotReady")
        );
    }
    assert_eq!(
        taints(&node(&nodes).await),
        [
            "node.kubernetes.io/not-ready:NoExecute",
            "node.kubernetes.io/not-ready:NoSchedule"
        ]
    );
    assert_eq!(
        t.ok(&["get", "node", NODE, "-o", READY_STATUS]).await,
        "False"
    );
    let p = pods.get("on-ext").await.unwrap();
    assert!(
        p.spec.unwrap().node_name.is_none(),
        "scheduled on a NotReady node"
    );

    // Ready when its kubelet says so: the taints go and the pod runs there.
    post_status(&nodes, true).await;
    node_until(&nodes, "Ready without taints", |n| {
        condition(n, "Ready").is_some_and(|c| c.0 == "True") && taints(n).is_empty()
    })
    .await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(condition(&node(&nodes).await, "Ready").unwrap().0, "True");
    }
    assert_eq!(
        t.ok(&["get", "node", NODE, "-o", READY_STATUS]).await,
        "True"
    );
    let p = pods.clone();
    eventually("the pod runs on the external node", 10, move || {
        let p = p.clone();
        async move {
            p.get("on-ext").await.is_ok_and(|p| {
                p.spec.and_then(|s| s.node_name).as_deref() == Some(NODE)
                    && p.status.and_then(|s| s.phase).as_deref() == Some("Running")
            })
        }
    })
    .await;

    // The kubelet falls silent: after the grace period, Unknown and unreachable.
    beat.abort();
    let silent = Instant::now();
    node_until(&nodes, "Ready=Unknown", |n| {
        condition(n, "Ready").is_some_and(|c| c.0 == "Unknown")
    })
    .await;
    // the grace period (600 ms) runs from the last renewal, up to 100 ms before the abort
    assert!(
        silent.elapsed() >= Duration::from_millis(400),
        "Unknown after {:?}, before the grace period",
        silent.elapsed()
    );
    let n = node(&nodes).await;
    for ty in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert_eq!(
            condition(&n, ty).unwrap(),
            (
                "Unknown".to_owned(),
                "NodeStatusUnknown".to_owned(),
                "Kubelet stopped posting node status.".to_owned()
            ),
            "{ty}"
        );
    }
    node_until(&nodes, "unreachable taints", |n| {
        taints(n)
            == [
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/unreachable:NoSchedule",
            ]
    })
    .await;
    assert_eq!(
        t.ok(&["get", "node", NODE, "-o", READY_STATUS]).await,
        "Unknown"
    );
    assert_eq!(
        t.ok(&[
            "get",
            "node",
            NODE,
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].reason}"#
        ])
        .await,
        "NodeStatusUnknown"
    );
    assert_eq!(
        t.ok(&["get", "node", NODE, "-o", "jsonpath={.spec.taints[*].key}"])
            .await,
        "node.kubernetes.io/unreachable node.kubernetes.io/unreachable"
    );
    // Its pod tolerates unreachable for the default 300 s: not evicted yet.
    let p = pods.get("on-ext").await.unwrap();
    assert!(p.metadata.deletion_timestamp.is_none());

    // Back: the kubelet posts Ready again and the controller removes the taints.
    post_status(&nodes, true).await;
    let beat = heartbeat(leases);
    node_until(&nodes, "Ready again without taints", |n| {
        condition(n, "Ready").is_some_and(|c| c.0 == "True") && taints(n).is_empty()
    })
    .await;
    assert_eq!(
        t.ok(&["get", "node", NODE, "-o", READY_STATUS]).await,
        "True"
    );
    assert_eq!(
        t.ok(&["get", "node", NODE, "-o", "jsonpath={.spec.taints}"])
            .await,
        ""
    );
    beat.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_sim_runs_the_kubelet_of_its_own_nodes_and_of_nodes_marked_like_kwoks() {
    let t = TestSim::start().await;
    assert_eq!(
        t.ok(&[
            "get",
            "node",
            "node-0",
            "-o",
            r"jsonpath={.metadata.annotations.kwok\.x-k8s\.io/node}"
        ])
        .await,
        "fake"
    );
    let nodes: Api<Node> = Api::all(t.client());
    nodes
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "kwok-0", "annotations": {"kwok.x-k8s.io/node": "fake"}}})),
        )
        .await
        .unwrap();
    let n = nodes.clone();
    eventually(
        "kube-sim posts Ready for a node marked fake",
        10,
        move || {
            let n = n.clone();
            async move {
                n.get("kwok-0")
                    .await
                    .is_ok_and(|n| condition(&n, "Ready").is_some_and(|c| c.0 == "True"))
            }
        },
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(t.client(), "kube-node-lease");
    assert!(
        leases.get("kwok-0").await.is_ok(),
        "kube-sim renews its Lease"
    );
}
