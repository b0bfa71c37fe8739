//! Server-side printing: `meta.k8s.io/v1` `Table` answers for `kubectl get`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::registry::ResourceType;

/// Human duration as kubectl prints it (`45s`, `3m2s`, `5h`, `2d`).
#[expect(clippy::many_single_char_names)]
pub fn human_age(ts: &Value) -> String {
    let Some(t) = ts
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    else {
        return "<unknown>".to_owned();
    };
    let secs = (Utc::now() - t.with_timezone(&Utc)).num_seconds().max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if d < 2 {
        format!("{h}h")
    } else if d < 8 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else {
        format!("{d}d")
    }
}

fn col(name: &str, ty: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": name, "priority": priority})
}

fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Pod status as `kubectl get pods` shows it.
pub fn pod_status(p: &Value) -> String {
    if !p["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating".to_owned();
    }
    let mut reason = p["status"]["reason"]
        .as_str()
        .or_else(|| p["status"]["phase"].as_str())
        .unwrap_or("Pending")
        .to_owned();
    if let Some(cs) = p["status"]["containerStatuses"].as_array() {
        for c in cs {
            if let Some(r) = c["state"]["waiting"]["reason"].as_str() {
                r.clone_into(&mut reason);
            } else if let Some(r) = c["state"]["terminated"]["reason"].as_str() {
                r.clone_into(&mut reason);
            }
        }
    }
    reason
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => vec![
            col("Name", "string", 0),
            col("Ready", "string", 0),
            col("Status", "string", 0),
            col("Restarts", "string", 0),
            col("Age", "string", 0),
            col("IP", "string", 1),
            col("Node", "string", 1),
        ],
        ("", "Node") => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Roles", "string", 0),
            col("Age", "string", 0),
            col("Version", "string", 0),
        ],
        ("", "Namespace") => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Age", "string", 0),
        ],
        ("", "Service") => vec![
            col("Name", "string", 0),
            col("Type", "string", 0),
            col("Cluster-IP", "string", 0),
            col("External-IP", "string", 0),
            col("Port(s)", "string", 0),
            col("Age", "string", 0),
        ],
        ("apps", "Deployment") => vec![
            col("Name", "string", 0),
            col("Ready", "string", 0),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
            col("Age", "string", 0),
        ],
        ("apps", "ReplicaSet" | "DaemonSet") => vec![
            col("Name", "string", 0),
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
            col("Age", "string", 0),
        ],
        ("policy", "PodDisruptionBudget") => vec![
            col("Name", "string", 0),
            col("Min Available", "string", 0),
            col("Max Unavailable", "string", 0),
            col("Allowed Disruptions", "integer", 0),
            col("Age", "string", 0),
        ],
        ("autoscaling", "HorizontalPodAutoscaler") => vec![
            col("Name", "string", 0),
            col("Reference", "string", 0),
            col("Targets", "string", 0),
            col("MinPods", "string", 0),
            col("MaxPods", "integer", 0),
            col("Replicas", "integer", 0),
            col("Age", "string", 0),
        ],
        ("", "Event") => vec![
            col("Last Seen", "string", 0),
            col("Type", "string", 0),
            col("Reason", "string", 0),
            col("Object", "string", 0),
            col("Message", "string", 0),
        ],
        ("", "PersistentVolumeClaim") => vec![
            col("Name", "string", 0),
            col("Status", "string", 0),
            col("Volume", "string", 0),
            col("Age", "string", 0),
        ],
        _ => vec![col("Name", "string", 0), col("Age", "string", 0)],
    }
}

fn cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let name = json!(o["metadata"]["name"]);
    let age = json!(human_age(&o["metadata"]["creationTimestamp"]));
    let s = &o["status"];
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            let cs = s["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = cs.iter().filter(|c| c["ready"] == true).count();
            let restarts: i64 = cs.iter().map(|c| i(&c["restartCount"])).sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts.to_string()),
                age,
                json!(s["podIP"].as_str().unwrap_or("<none>")),
                json!(o["spec"]["nodeName"].as_str().unwrap_or("<none>")),
            ]
        }
        ("", "Node") => {
            let ready = s["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .is_some_and(|c| c["status"] == "True");
            let mut status = if ready { "Ready" } else { "NotReady" }.to_owned();
            if o["spec"]["unschedulable"] == true {
                status.push_str(",SchedulingDisabled");
            }
            vec![
                name,
                json!(status),
                json!("<none>"),
                age,
                json!(s["nodeInfo"]["kubeletVersion"].as_str().unwrap_or("")),
            ]
        }
        ("", "Namespace") => vec![name, json!(s["phase"].as_str().unwrap_or("Active")), age],
        ("", "Service") => {
            let ports: Vec<String> = o["spec"]["ports"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                i(&p["port"]),
                                p["protocol"].as_str().unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let ext = s["loadBalancer"]["ingress"][0]["ip"]
                .as_str()
                .unwrap_or("<none>");
            vec![
                name,
                json!(o["spec"]["type"]),
                json!(o["spec"]["clusterIP"]),
                json!(ext),
                json!(if ports.is_empty() {
                    "<none>".to_owned()
                } else {
                    ports.join(",")
                }),
                age,
            ]
        }
        ("apps", "Deployment") => vec![
            name,
            json!(format!(
                "{}/{}",
                i(&s["readyReplicas"]),
                i(&o["spec"]["replicas"])
            )),
            json!(i(&s["updatedReplicas"])),
            json!(i(&s["availableReplicas"])),
            age,
        ],
        ("apps", "ReplicaSet") => vec![
            name,
            json!(i(&o["spec"]["replicas"])),
            json!(i(&s["replicas"])),
            json!(i(&s["readyReplicas"])),
            age,
        ],
        ("apps", "DaemonSet") => vec![
            name,
            json!(i(&s["desiredNumberScheduled"])),
            json!(i(&s["currentNumberScheduled"])),
            json!(i(&s["numberReady"])),
            age,
        ],
        ("policy", "PodDisruptionBudget") => vec![
            name,
            json!(
                o["spec"]["minAvailable"]
                    .as_i64()
                    .map(|v| v.to_string())
                    .or_else(|| o["spec"]["minAvailable"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "N/A".to_owned())
            ),
            json!(
                o["spec"]["maxUnavailable"]
                    .as_i64()
                    .map(|v| v.to_string())
                    .or_else(|| o["spec"]["maxUnavailable"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "N/A".to_owned())
            ),
            json!(i(&s["disruptionsAllowed"])),
            age,
        ],
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let target = &o["spec"]["scaleTargetRef"];
            let cur = o["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
                .as_i64()
                .map_or_else(|| "<unknown>".to_owned(), |v| format!("{v}%"));
            let want = o["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"]
                .as_i64()
                .map_or_else(|| "<unset>".to_owned(), |v| format!("{v}%"));
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    target["kind"].as_str().unwrap_or_default(),
                    target["name"].as_str().unwrap_or_default()
                )),
                json!(format!("cpu: {cur}/{want}")),
                json!(o["spec"]["minReplicas"].as_i64().unwrap_or(1).to_string()),
                json!(i(&o["spec"]["maxReplicas"])),
                json!(i(&s["currentReplicas"])),
                age,
            ]
        }
        ("", "Event") => {
            let io = &o["involvedObject"];
            vec![
                json!(human_age(&o["lastTimestamp"])),
                json!(o["type"]),
                json!(o["reason"]),
                json!(format!(
                    "{}/{}",
                    io["kind"].as_str().unwrap_or_default().to_lowercase(),
                    io["name"].as_str().unwrap_or_default()
                )),
                json!(o["message"]),
            ]
        }
        ("", "PersistentVolumeClaim") => vec![
            name,
            json!(s["phase"]),
            json!(o["spec"]["volumeName"].as_str().unwrap_or("")),
            age,
        ],
        _ => vec![name, age],
    }
}

fn row(rt: &ResourceType, o: &Value, include_object: bool) -> Value {
    let object = if include_object {
        o.clone()
    } else {
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
    };
    json!({"cells": cells(rt, o), "object": object})
}

/// A `Table` for `items`.
pub fn table(
    rt: &ResourceType,
    items: &[&Value],
    meta: Value,
    include_object: bool,
    with_columns: bool,
) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": if with_columns { columns(rt) } else { vec![] },
        "rows": items.iter().map(|o| row(rt, o, include_object)).collect::<Vec<_>>(),
    })
}
