//! Defaulting and validation on create, per kind (a small stand-in for the admission chain).

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry::ResourceType;

/// Whether `name` is a valid DNS subdomain (lower-case alphanumerics, `-` and `.`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

fn set_default(obj: &mut Value, path: &[&str], value: Value) {
    let mut cur = obj;
    for p in &path[..path.len() - 1] {
        if !cur[*p].is_object() {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    let last = path[path.len() - 1];
    if cur[last].is_null() {
        cur[last] = value;
    }
}

/// Fills defaults for a new object of kind `rt`. `seq` numbers cluster IPs.
pub fn on_create(rt: &ResourceType, obj: &mut Value, seq: u64) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => {
            obj["spec"]["finalizers"] = json!(["kubernetes"]);
            obj["status"] = json!({"phase": "Active"});
            let labels = &mut obj["metadata"]["labels"];
            if !labels.is_object() {
                *labels = json!({});
            }
            labels["kubernetes.io/metadata.name"] = json!(name);
        }
        ("", "Pod") => default_pod(rt, obj, &name)?,
        ("", "Service") => {
            set_default(obj, &["spec", "type"], json!("ClusterIP"));
            set_default(obj, &["spec", "sessionAffinity"], json!("None"));
            if obj["spec"]["clusterIP"].is_null() {
                let ip = format!("10.96.{}.{}", (seq / 250) % 250, seq % 250 + 1);
                obj["spec"]["clusterIP"] = json!(ip);
                obj["spec"]["clusterIPs"] = json!([ip]);
            }
            if let Some(ports) = obj["spec"]["ports"].as_array_mut() {
                for p in ports {
                    set_default(p, &["protocol"], json!("TCP"));
                    if p["targetPort"].is_null() {
                        p["targetPort"] = p["port"].clone();
                    }
                }
            }
            obj["status"] = json!({"loadBalancer": {}});
        }
        ("", "PersistentVolumeClaim") => {
            obj["status"] = json!({"phase": "Pending"});
            set_default(obj, &["spec", "volumeMode"], json!("Filesystem"));
        }
        ("", "Secret") => set_default(obj, &["type"], json!("Opaque")),
        ("apps", "Deployment") => {
            set_default(obj, &["spec", "replicas"], json!(1));
            set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            set_default(obj, &["spec", "progressDeadlineSeconds"], json!(600));
            if obj["spec"]["strategy"]["type"].is_null() {
                set_default(obj, &["spec", "strategy", "type"], json!("RollingUpdate"));
            }
            if obj["spec"]["strategy"]["type"] == "RollingUpdate" {
                set_default(
                    obj,
                    &["spec", "strategy", "rollingUpdate"],
                    json!({"maxSurge": "25%", "maxUnavailable": "25%"}),
                );
            }
            default_template(obj);
            check_selector(rt, obj, &name)?;
        }
        ("batch", "Job") => {
            let uid = obj["metadata"]["uid"].clone();
            set_default(obj, &["spec", "completions"], json!(1));
            set_default(obj, &["spec", "parallelism"], json!(1));
            set_default(obj, &["spec", "backoffLimit"], json!(6));
            set_default(obj, &["spec", "completionMode"], json!("NonIndexed"));
            set_default(obj, &["spec", "suspend"], json!(false));
            if obj["spec"]["selector"].is_null() {
                obj["spec"]["selector"] =
                    json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
                let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
                if !labels.is_object() {
                    *labels = json!({});
                }
                labels["batch.kubernetes.io/controller-uid"] = uid.clone();
                labels["controller-uid"] = uid;
                labels["batch.kubernetes.io/job-name"] = json!(name);
                labels["job-name"] = json!(name);
            }
            let policy = obj["spec"]["template"]["spec"]["restartPolicy"].clone();
            if policy != "Never" && policy != "OnFailure" {
                return Err(ApiError::invalid(
                    rt,
                    &name,
                    "spec.template.spec.restartPolicy",
                    &format!(
                        "Unsupported value: {policy}: supported values: \"OnFailure\", \"Never\""
                    ),
                ));
            }
            default_template(obj);
        }
        ("apps", "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            if rt.kind != "DaemonSet" {
                set_default(obj, &["spec", "replicas"], json!(1));
            }
            if rt.kind == "StatefulSet" {
                set_default(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
                set_default(
                    obj,
                    &["spec", "updateStrategy"],
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            }
            if rt.kind == "DaemonSet" {
                set_default(
                    obj,
                    &["spec", "updateStrategy"],
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                );
                set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            }
            default_template(obj);
            check_selector(rt, obj, &name)?;
        }
        _ => {}
    }
    Ok(())
}

fn check_selector(rt: &ResourceType, obj: &Value, name: &str) -> Result<(), ApiError> {
    let sel = &obj["spec"]["selector"];
    if sel.is_null() {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.selector",
            "Required value",
        ));
    }
    let matches = crate::selector::LabelSelector::from_object(sel, false)
        .map_err(|e| ApiError::invalid(rt, name, "spec.selector", &e))?
        .matches(&obj["spec"]["template"]["metadata"]["labels"]);
    if !matches {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.template.metadata.labels",
            "Invalid value: `selector` does not match template `labels`",
        ));
    }
    Ok(())
}

fn default_template(obj: &mut Value) {
    let spec = &mut obj["spec"]["template"]["spec"];
    default_pod_spec(spec);
}

fn default_pod_spec(spec: &mut Value) {
    set_default(spec, &["restartPolicy"], json!("Always"));
    set_default(spec, &["terminationGracePeriodSeconds"], json!(30));
    set_default(spec, &["dnsPolicy"], json!("ClusterFirst"));
    set_default(spec, &["schedulerName"], json!("default-scheduler"));
    set_default(spec, &["securityContext"], json!({}));
    if let Some(cs) = spec["containers"].as_array_mut() {
        for c in cs {
            let latest = c["image"]
                .as_str()
                .is_some_and(|i| !i.contains(':') || i.ends_with(":latest"));
            set_default(
                c,
                &["imagePullPolicy"],
                json!(if latest { "Always" } else { "IfNotPresent" }),
            );
            set_default(
                c,
                &["terminationMessagePath"],
                json!("/dev/termination-log"),
            );
            set_default(c, &["terminationMessagePolicy"], json!("File"));
            set_default(c, &["resources"], json!({}));
            if let Some(ports) = c["ports"].as_array_mut() {
                for p in ports {
                    set_default(p, &["protocol"], json!("TCP"));
                }
            }
        }
    }
}

fn default_pod(rt: &ResourceType, obj: &mut Value, name: &str) -> Result<(), ApiError> {
    let containers = obj["spec"]["containers"].as_array();
    if containers.is_none_or(Vec::is_empty) {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.containers",
            "Required value",
        ));
    }
    let spec = &mut obj["spec"];
    default_pod_spec(spec);
    set_default(spec, &["serviceAccountName"], json!("default"));
    set_default(spec, &["enableServiceLinks"], json!(true));
    set_default(spec, &["priority"], json!(0));
    let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    let mut tolerations = tolerations;
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerations.iter().any(|t| t["key"] == key) {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    spec["tolerations"] = Value::Array(tolerations);
    obj["status"] = json!({"phase": "Pending", "qosClass": qos_class(&obj["spec"])});
    Ok(())
}

fn qos_class(spec: &Value) -> &'static str {
    let cs = spec["containers"].as_array().cloned().unwrap_or_default();
    let any = cs
        .iter()
        .any(|c| c["resources"]["requests"].is_object() || c["resources"]["limits"].is_object());
    if !any {
        return "BestEffort";
    }
    let guaranteed = cs.iter().all(|c| {
        let l = &c["resources"]["limits"];
        let r = &c["resources"]["requests"];
        !l["cpu"].is_null()
            && !l["memory"].is_null()
            && (r.is_null() || (r["cpu"] == l["cpu"] && r["memory"] == l["memory"]))
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}
