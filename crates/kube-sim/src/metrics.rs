//! `metrics.k8s.io/v1beta1`: NodeMetrics and PodMetrics computed from pod requests and a
//! simulated load, consistent between nodes and pods (a node's usage is the sum of its pods'
//! plus a fixed system overhead).

use std::collections::HashMap;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::state::{State, Verb};
use crate::store::now;

/// System overhead of every node.
const NODE_BASE_CPU_MILLIS: u64 = 100;
const NODE_BASE_MEM_BYTES: u64 = 512 << 20;

/// CPU quantity in millicores (`100m`, `0.5`, `2`).
pub fn cpu_millis(q: &Value) -> u64 {
    match q {
        Value::Number(n) => (n.as_f64().unwrap_or(0.0) * 1000.0) as u64,
        Value::String(s) => {
            if let Some(m) = s.strip_suffix('m') {
                m.parse().unwrap_or(0)
            } else {
                (s.parse::<f64>().unwrap_or(0.0) * 1000.0) as u64
            }
        }
        _ => 0,
    }
}

/// Memory quantity in bytes (`128Mi`, `1Gi`, `500M`, `1024`).
pub fn mem_bytes(q: &Value) -> u64 {
    let s = match q {
        Value::Number(n) => return n.as_u64().unwrap_or(0),
        Value::String(s) => s.as_str(),
        _ => return 0,
    };
    let units: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("k", 1e3),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, mult) in units {
        if let Some(n) = s.strip_suffix(suffix) {
            return (n.parse::<f64>().unwrap_or(0.0) * mult) as u64;
        }
    }
    s.parse::<f64>().map_or(0, |v| v as u64)
}

/// Sum of the containers' requests of a pod: (cpu millis, memory bytes).
pub fn pod_requests(pod: &Value) -> (u64, u64) {
    pod["spec"]["containers"].as_array().map_or((0, 0), |cs| {
        cs.iter().fold((0, 0), |(c, m), ct| {
            let r = &ct["resources"]["requests"];
            (c + cpu_millis(&r["cpu"]), m + mem_bytes(&r["memory"]))
        })
    })
}

/// One container's usage: its request (or a small default) scaled by the simulated load.
fn container_usage(st: &State, pod: &Value, c: &Value, n_containers: u64) -> (u64, u64) {
    let r = &c["resources"]["requests"];
    let cpu = cpu_millis(&r["cpu"]).max(10) / 2;
    let mem = mem_bytes(&r["memory"]).max(32 << 20) * 3 / 4;
    let key = (
        pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    let extra = st
        .load
        .lock()
        .ok()
        .and_then(|l| l.get(&key).copied())
        .unwrap_or(0);
    (cpu + extra / n_containers.max(1), mem)
}

/// A running pod's usage: (cpu millicores, memory bytes), as PodMetrics reports it.
pub fn pod_usage(st: &State, pod: &Value) -> (u64, u64) {
    let cs = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    cs.iter().fold((0, 0), |(c, m), ct| {
        let (uc, um) = container_usage(st, pod, ct, cs.len() as u64);
        (c + uc, m + um)
    })
}

fn running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running" && pod["metadata"]["deletionTimestamp"].is_null()
}

fn quantity_cpu(millis: u64) -> String {
    format!("{}n", millis * 1_000_000)
}

fn quantity_mem(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

fn pod_metrics(st: &State, pod: &Value) -> Value {
    let cs = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let n = cs.len() as u64;
    let containers: Vec<Value> = cs
        .iter()
        .map(|c| {
            let (cpu, mem) = container_usage(st, pod, c, n);
            json!({"name": c["name"], "usage": {"cpu": quantity_cpu(cpu), "memory": quantity_mem(mem)}})
        })
        .collect();
    json!({
        "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"],
            "labels": pod["metadata"]["labels"], "creationTimestamp": now()},
        "timestamp": now(), "window": "10.0s", "containers": containers,
    })
}

fn node_metrics(node: &Value, usage: (u64, u64)) -> Value {
    json!({
        "kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": node["metadata"]["name"], "labels": node["metadata"]["labels"], "creationTimestamp": now()},
        "timestamp": now(), "window": "10.0s",
        "usage": {"cpu": quantity_cpu(usage.0), "memory": quantity_mem(usage.1)},
    })
}

/// Serves get and list of NodeMetrics and PodMetrics (no watch).
pub fn serve(
    st: &Arc<State>,
    rt: &ResourceType,
    ns: Option<&str>,
    name: Option<&str>,
    verb: Verb,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    if !matches!(verb, Verb::Get | Verb::List) {
        return Err(ApiError::method_not_allowed());
    }
    let sel = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
    let pods_rt = st.rt("", "v1", "pods")?;
    let items: Vec<Value> = if rt.kind == "PodMetrics" {
        st.store
            .list(&pods_rt, ns)
            .items
            .iter()
            .filter(|p| running(p))
            .filter(|p| name.is_none_or(|n| p["metadata"]["name"] == n))
            .filter(|p| sel.matches(&p["metadata"]["labels"]))
            .map(|p| pod_metrics(st, p))
            .collect()
    } else {
        let nodes_rt = st.rt("", "v1", "nodes")?;
        let mut usage: HashMap<String, (u64, u64)> = HashMap::new();
        for p in st
            .store
            .list(&pods_rt, None)
            .items
            .iter()
            .filter(|p| running(p))
        {
            let node = p["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let cs = p["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let e = usage
                .entry(node)
                .or_insert((NODE_BASE_CPU_MILLIS, NODE_BASE_MEM_BYTES));
            for c in &cs {
                let (cpu, mem) = container_usage(st, p, c, cs.len() as u64);
                e.0 += cpu;
                e.1 += mem;
            }
        }
        st.store
            .list(&nodes_rt, None)
            .items
            .iter()
            .filter(|n| name.is_none_or(|x| n["metadata"]["name"] == x))
            .filter(|n| sel.matches(&n["metadata"]["labels"]))
            .map(|n| {
                let u = usage
                    .get(n["metadata"]["name"].as_str().unwrap_or_default())
                    .copied()
                    .unwrap_or((NODE_BASE_CPU_MILLIS, NODE_BASE_MEM_BYTES));
                node_metrics(n, u)
            })
            .collect()
    };
    if let Some(n) = name {
        return items
            .into_iter()
            .next()
            .map(|i| axum::Json(i).into_response())
            .ok_or_else(|| ApiError::not_found(rt, n));
    }
    Ok(axum::Json(json!({
        "kind": format!("{}List", rt.kind), "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"resourceVersion": st.store.revision().to_string()}, "items": items,
    }))
    .into_response())
}
