//! Pure rendering: one app's desired state to the Kubernetes objects that
//! run it. No I/O; deterministic output (maps are ordered), so applying the
//! same desired state twice sends the same bodies.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, LimitRange,
    LimitRangeItem, LimitRangeSpec, Namespace, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe, ResourceQuota,
    ResourceQuotaSpec, ResourceRequirements, Secret, SecretKeySelector, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use satusky_core::apps::{DesiredApp, parse_quantity};
use satusky_core::selector::{Op, Selector};
use satusky_types::apps::{Port, Strategy};
use serde_json::{Value, json};

use crate::config::ReconcilerConfig;
use crate::error::Error;
use crate::kinds::Kind;
use crate::labels;

/// The single container's name in every app pod.
pub const CONTAINER: &str = "app";
pub const QUOTA_NAME: &str = "satusky-quota";
pub const LIMITS_NAME: &str = "satusky-limits";
pub const NETWORK_POLICY_NAME: &str = "satusky-default-deny";

/// One object to server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub kind: Kind,
    pub name: String,
    /// The full apply body (with `apiVersion` and `kind`).
    pub body: Value,
}

/// Everything to apply for one app.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Organization-wide objects: the namespace, its quota, limit range and
    /// network policy. Shared by the org's apps; never deleted with an app.
    pub org: Vec<Child>,
    /// The app's own objects, labelled with its id, in apply order.
    pub app: Vec<Child>,
}

pub fn secret_name(d: &DesiredApp) -> String {
    format!("{}-secrets", d.app_name)
}

pub fn volume_claim_name(d: &DesiredApp, volume: &str) -> String {
    format!("{}-{volume}", d.app_name)
}

fn child<T: serde::Serialize>(
    d: &DesiredApp,
    kind: Kind,
    name: String,
    obj: &T,
) -> Result<Child, Error> {
    let body = serde_json::to_value(obj).map_err(|source| Error::Serialize {
        kind: kind.as_str(),
        app_id: d.app_id.clone(),
        source,
    })?;
    Ok(Child { kind, name, body })
}

fn meta(d: &DesiredApp, name: &str, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(d.namespace.clone()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn q(s: &str) -> Quantity {
    Quantity(s.to_owned())
}

/// Renders every object of an app.
pub fn render(d: &DesiredApp, cfg: &ReconcilerConfig) -> Result<Rendered, Error> {
    let org = vec![
        child(d, Kind::Namespace, d.namespace.clone(), &namespace(d))?,
        child(
            d,
            Kind::ResourceQuota,
            QUOTA_NAME.to_owned(),
            &quota(d, cfg),
        )?,
        child(
            d,
            Kind::LimitRange,
            LIMITS_NAME.to_owned(),
            &limit_range(d, cfg),
        )?,
        child(
            d,
            Kind::NetworkPolicy,
            NETWORK_POLICY_NAME.to_owned(),
            &network_policy(d, cfg),
        )?,
    ];
    let mut app = Vec::new();
    if let Some(s) = secret(d) {
        app.push(child(d, Kind::Secret, secret_name(d), &s)?);
    }
    for pvc in volume_claims(d) {
        let name = pvc.metadata.name.clone().unwrap_or_default();
        app.push(child(d, Kind::PersistentVolumeClaim, name, &pvc)?);
    }
    app.push(child(
        d,
        Kind::Deployment,
        d.app_name.clone(),
        &deployment(d, cfg)?,
    )?);
    if let Some(s) = service(d) {
        app.push(child(d, Kind::Service, d.app_name.clone(), &s)?);
    }
    if let Some(r) = http_route(d, cfg) {
        app.push(Child {
            kind: Kind::HttpRoute,
            name: d.app_name.clone(),
            body: r,
        });
    }
    if let Some(p) = disruption_budget(d) {
        app.push(child(d, Kind::PodDisruptionBudget, d.app_name.clone(), &p)?);
    }
    if let Some(h) = autoscaler(d) {
        app.push(child(
            d,
            Kind::HorizontalPodAutoscaler,
            d.app_name.clone(),
            &h,
        )?);
    }
    Ok(Rendered { org, app })
}

pub fn namespace(d: &DesiredApp) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(d.namespace.clone()),
            labels: Some(labels::org(d)),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

pub fn quota(d: &DesiredApp, cfg: &ReconcilerConfig) -> ResourceQuota {
    let p = &cfg.quota;
    ResourceQuota {
        metadata: meta(d, QUOTA_NAME, labels::org(d)),
        spec: Some(ResourceQuotaSpec {
            hard: Some(BTreeMap::from([
                ("requests.cpu".to_owned(), q(&p.cpu)),
                ("limits.cpu".to_owned(), q(&p.cpu)),
                ("requests.memory".to_owned(), q(&p.memory)),
                ("limits.memory".to_owned(), q(&p.memory)),
                ("pods".to_owned(), Quantity(p.pods.to_string())),
            ])),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    }
}

pub fn limit_range(d: &DesiredApp, cfg: &ReconcilerConfig) -> LimitRange {
    let p = &cfg.quota;
    LimitRange {
        metadata: meta(d, LIMITS_NAME, labels::org(d)),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".to_owned(),
                default: Some(BTreeMap::from([
                    ("cpu".to_owned(), q(&p.default_cpu_limit)),
                    ("memory".to_owned(), q(&p.default_memory_limit)),
                ])),
                default_request: Some(BTreeMap::from([
                    ("cpu".to_owned(), q(&p.default_cpu_request)),
                    ("memory".to_owned(), q(&p.default_memory_request)),
                ])),
                ..LimitRangeItem::default()
            }],
        }),
    }
}

/// Default deny for ingress, admitting the gateway's namespace and the
/// namespace itself.
pub fn network_policy(d: &DesiredApp, cfg: &ReconcilerConfig) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta(d, NETWORK_POLICY_NAME, labels::org(d)),
        spec: Some(NetworkPolicySpec {
            pod_selector: LabelSelector::default(),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![
                    NetworkPolicyPeer {
                        namespace_selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                "kubernetes.io/metadata.name".to_owned(),
                                cfg.gateway_namespace.clone(),
                            )])),
                            ..LabelSelector::default()
                        }),
                        ..NetworkPolicyPeer::default()
                    },
                    NetworkPolicyPeer {
                        pod_selector: Some(LabelSelector::default()),
                        ..NetworkPolicyPeer::default()
                    },
                ]),
                ..NetworkPolicyIngressRule::default()
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

pub fn secret(d: &DesiredApp) -> Option<Secret> {
    if d.secrets.is_empty() {
        return None;
    }
    Some(Secret {
        metadata: meta(d, &secret_name(d), labels::ownership(d)),
        type_: Some("Opaque".to_owned()),
        data: Some(
            d.secrets
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    })
}

pub fn volume_claims(d: &DesiredApp) -> Vec<PersistentVolumeClaim> {
    d.spec
        .volumes
        .iter()
        .map(|v| PersistentVolumeClaim {
            metadata: meta(d, &volume_claim_name(d, &v.name), labels::ownership(d)),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_owned(), q(&v.size))])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        })
        .collect()
}

fn port_name(p: &Port) -> String {
    format!("{}-{}", p.protocol.to_lowercase(), p.container_port)
}

fn int_or_percent(v: &str) -> IntOrString {
    match v.parse::<i32>() {
        Ok(n) => IntOrString::Int(n),
        Err(_) => IntOrString::String(v.to_owned()),
    }
}

/// Required node affinity from the machine selector (over node label keys)
/// and the zone.
pub fn affinity(d: &DesiredApp) -> Result<Option<Affinity>, Error> {
    let mut exprs = Vec::new();
    if let Some(s) = &d.spec.machine_selector {
        let sel = Selector::parse(s)
            .map_err(|source| Error::InvalidSelector {
                app_id: d.app_id.clone(),
                source,
            })?
            .for_nodes();
        for r in sel.requirements {
            let (operator, values) = match r.op {
                Op::Eq | Op::In => ("In", Some(r.values)),
                Op::NotEq | Op::NotIn => ("NotIn", Some(r.values)),
                Op::Exists => ("Exists", None),
                Op::DoesNotExist => ("DoesNotExist", None),
            };
            exprs.push(NodeSelectorRequirement {
                key: r.key,
                operator: operator.to_owned(),
                values,
            });
        }
    }
    if let Some(z) = &d.spec.zone {
        exprs.push(NodeSelectorRequirement {
            key: "topology.kubernetes.io/zone".to_owned(),
            operator: "In".to_owned(),
            values: Some(vec![z.clone()]),
        });
    }
    if exprs.is_empty() {
        return Ok(None);
    }
    Ok(Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(exprs),
                    ..NodeSelectorTerm::default()
                }],
            }),
            ..NodeAffinity::default()
        }),
        ..Affinity::default()
    }))
}

/// Plain variables, then one `secretKeyRef` per secret key (a secret wins
/// over a plain variable of the same name).
pub fn env(d: &DesiredApp) -> Vec<EnvVar> {
    let secret = secret_name(d);
    let plain = d
        .spec
        .env
        .iter()
        .filter(|(k, _)| !d.secrets.contains_key(*k))
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            value_from: None,
        });
    let secret = d.secrets.keys().map(|k| EnvVar {
        name: k.clone(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.clone(),
                key: k.clone(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    });
    plain.chain(secret).collect()
}

/// A limit for a request the user gave without one: the namespace's
/// LimitRange would default the limit below the request and the pod would be
/// refused, so a request above the default limit becomes its own limit.
fn implied_limit(
    request: Option<&String>,
    limit: Option<&String>,
    default_limit: &str,
) -> Option<String> {
    if let Some(l) = limit {
        return Some(l.clone());
    }
    let r = request?;
    let above = match (
        parse_quantity("request", r),
        parse_quantity("limit", default_limit),
    ) {
        (Ok(r), Ok(d)) => r > d,
        _ => false,
    };
    above.then(|| r.clone())
}

fn resources(d: &DesiredApp, cfg: &ReconcilerConfig) -> Option<ResourceRequirements> {
    let r = &d.spec.resources;
    let cpu_limit = implied_limit(
        r.cpu_request.as_ref(),
        r.cpu_limit.as_ref(),
        &cfg.quota.default_cpu_limit,
    );
    let memory_limit = implied_limit(
        r.memory_request.as_ref(),
        r.memory_limit.as_ref(),
        &cfg.quota.default_memory_limit,
    );
    let pair = |cpu: &Option<String>, mem: &Option<String>| {
        let m: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", mem)]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k.to_owned(), q(v))))
            .collect();
        (!m.is_empty()).then_some(m)
    };
    let requests = pair(&r.cpu_request, &r.memory_request);
    let limits = pair(&cpu_limit, &memory_limit);
    if requests.is_none() && limits.is_none() {
        return None;
    }
    Some(ResourceRequirements {
        requests,
        limits,
        ..ResourceRequirements::default()
    })
}

/// Readiness and liveness probes from the health check.
pub fn probes(d: &DesiredApp) -> (Option<Probe>, Option<Probe>) {
    let Some(h) = &d.spec.health else {
        return (None, None);
    };
    let Some(port) = h
        .port
        .or_else(|| d.spec.ports.first().map(|p| p.container_port))
    else {
        return (None, None);
    };
    let get = HTTPGetAction {
        path: Some(h.path.clone()),
        port: IntOrString::Int(i32::from(port)),
        ..HTTPGetAction::default()
    };
    let delay = h.initial_delay_seconds as i32;
    let readiness = Probe {
        http_get: Some(get.clone()),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    };
    let liveness = Probe {
        http_get: Some(get),
        initial_delay_seconds: Some(delay + 10),
        period_seconds: Some(10),
        failure_threshold: Some(6),
        ..Probe::default()
    };
    (Some(readiness), Some(liveness))
}

pub fn strategy(d: &DesiredApp) -> DeploymentStrategy {
    match &d.spec.strategy {
        Strategy::Rolling {
            max_surge,
            max_unavailable,
        } => DeploymentStrategy {
            type_: Some("RollingUpdate".to_owned()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(int_or_percent(max_surge)),
                max_unavailable: Some(int_or_percent(max_unavailable)),
            }),
        },
        Strategy::Recreate => DeploymentStrategy {
            type_: Some("Recreate".to_owned()),
            rolling_update: None,
        },
    }
}

pub fn deployment(d: &DesiredApp, cfg: &ReconcilerConfig) -> Result<Deployment, Error> {
    let spec = &d.spec;
    let (readiness, liveness) = probes(d);
    let mut annotations = BTreeMap::new();
    if let Some(at) = d.restarted_at {
        annotations.insert(
            labels::RESTARTED_AT.to_owned(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
    }
    if spec.secret_version > 0 {
        annotations.insert(
            labels::SECRET_VERSION.to_owned(),
            spec.secret_version.to_string(),
        );
    }
    let ports: Vec<ContainerPort> = spec
        .ports
        .iter()
        .map(|p| ContainerPort {
            name: Some(port_name(p)),
            container_port: i32::from(p.container_port),
            protocol: Some(p.protocol.clone()),
            ..ContainerPort::default()
        })
        .collect();
    let env = env(d);
    let container = Container {
        name: CONTAINER.to_owned(),
        image: Some(spec.image.clone()),
        env: (!env.is_empty()).then_some(env),
        ports: (!ports.is_empty()).then_some(ports),
        resources: resources(d, cfg),
        readiness_probe: readiness,
        liveness_probe: liveness,
        volume_mounts: (!spec.volumes.is_empty()).then(|| {
            spec.volumes
                .iter()
                .map(|v| VolumeMount {
                    name: v.name.clone(),
                    mount_path: v.mount_path.clone(),
                    ..VolumeMount::default()
                })
                .collect()
        }),
        ..Container::default()
    };
    let volumes: Vec<Volume> = spec
        .volumes
        .iter()
        .map(|v| Volume {
            name: v.name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: volume_claim_name(d, &v.name),
                read_only: None,
            }),
            ..Volume::default()
        })
        .collect();
    let mut dep_labels = labels::ownership(d);
    dep_labels.insert(labels::RELEASE.to_owned(), d.release.to_string());
    let mut dep_meta = meta(d, &d.app_name, dep_labels);
    dep_meta.annotations = Some(BTreeMap::from([(
        labels::GENERATION.to_owned(),
        d.generation.to_string(),
    )]));
    Ok(Deployment {
        metadata: dep_meta,
        spec: Some(DeploymentSpec {
            replicas: spec.autoscaling.is_none().then_some(spec.replicas as i32),
            selector: LabelSelector {
                match_labels: Some(labels::pod_selector(d)),
                ..LabelSelector::default()
            },
            strategy: Some(strategy(d)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels::ownership(d)),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    affinity: affinity(d)?,
                    volumes: (!volumes.is_empty()).then_some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    })
}

/// Pod template fields a release may stop setting, and container fields of
/// the app's container likewise.
const REMOVABLE_POD_FIELDS: [&str; 1] = ["affinity"];
const REMOVABLE_CONTAINER_FIELDS: [&str; 2] = ["readinessProbe", "livenessProbe"];

/// A strategic merge patch (`null`s) taking out of the live Deployment the
/// optional fields the applied one no longer sets (node affinity, probes)
/// but which are still there: set by another field manager, or left behind
/// as an empty object by an API server that removed only their leaves. An
/// apply alone leaves such a field be, and a removed health check or machine
/// selector would keep acting. `None` when nothing is left over, so a second
/// pass sends nothing.
pub fn deployment_leftovers(applied: &Value, live: &Value) -> Option<Value> {
    let pod = |v: &Value| v.pointer("/spec/template/spec").cloned();
    let (want, have) = (pod(applied)?, pod(live)?);
    let container = |pod: &Value| {
        pod.get("containers")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["name"] == CONTAINER).cloned())
    };
    let gone = |want: Option<&Value>, have: Option<&Value>, field: &str| {
        want.is_none_or(|w| w.get(field).is_none()) && have.is_some_and(|h| h.get(field).is_some())
    };
    let mut pod_patch = serde_json::Map::new();
    for f in REMOVABLE_POD_FIELDS {
        if gone(Some(&want), Some(&have), f) {
            pod_patch.insert(f.to_owned(), Value::Null);
        }
    }
    let (want_c, have_c) = (container(&want), container(&have));
    let mut container_patch = serde_json::Map::new();
    for f in REMOVABLE_CONTAINER_FIELDS {
        if gone(want_c.as_ref(), have_c.as_ref(), f) {
            container_patch.insert(f.to_owned(), Value::Null);
        }
    }
    if !container_patch.is_empty() {
        container_patch.insert("name".to_owned(), json!(CONTAINER));
        pod_patch.insert(
            "containers".to_owned(),
            json!([Value::Object(container_patch)]),
        );
    }
    (!pod_patch.is_empty()).then(|| json!({"spec": {"template": {"spec": pod_patch}}}))
}

pub fn service(d: &DesiredApp) -> Option<Service> {
    if d.spec.ports.is_empty() {
        return None;
    }
    Some(Service {
        metadata: meta(d, &d.app_name, labels::ownership(d)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(labels::pod_selector(d)),
            ports: Some(
                d.spec
                    .ports
                    .iter()
                    .map(|p| ServicePort {
                        name: Some(port_name(p)),
                        port: i32::from(p.container_port),
                        target_port: Some(IntOrString::Int(i32::from(p.container_port))),
                        protocol: Some(p.protocol.clone()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// The port the route sends traffic to: the first public port, else the
/// first TCP port.
pub fn route_port(d: &DesiredApp) -> Option<u16> {
    let tcp = || d.spec.ports.iter().filter(|p| p.protocol == "TCP");
    tcp()
        .find(|p| p.public)
        .or_else(|| tcp().next())
        .map(|p| p.container_port)
}

/// `gateway.networking.k8s.io/v1` HTTPRoute for the app's domain, attached
/// to the shared Gateway; only when the app has a TCP port.
pub fn http_route(d: &DesiredApp, cfg: &ReconcilerConfig) -> Option<Value> {
    let port = route_port(d)?;
    Some(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": d.app_name,
            "namespace": d.namespace,
            "labels": labels::ownership(d),
        },
        "spec": {
            "parentRefs": [{
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": cfg.gateway_name,
                "namespace": cfg.gateway_namespace,
            }],
            "hostnames": [d.domain],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{
                    "group": "",
                    "kind": "Service",
                    "name": d.app_name,
                    "port": port,
                    "weight": 1,
                }],
            }],
        },
    }))
}

/// Replicas the budget protects: the autoscaler's minimum when it scales.
fn baseline_replicas(d: &DesiredApp) -> u32 {
    d.spec
        .autoscaling
        .as_ref()
        .map_or(d.spec.replicas, |a| a.min_replicas)
}

/// A PodDisruptionBudget when more than one replica runs. Default: one pod
/// down at a time (the same as `minAvailable: replicas - 1`, and stable
/// across scaling).
pub fn disruption_budget(d: &DesiredApp) -> Option<PodDisruptionBudget> {
    if baseline_replicas(d) <= 1 {
        return None;
    }
    let (min_available, max_unavailable) = match &d.spec.disruption_budget {
        Some(b) if b.min_available.is_some() || b.max_unavailable.is_some() => (
            b.min_available.as_deref().map(int_or_percent),
            b.max_unavailable.as_deref().map(int_or_percent),
        ),
        _ => (None, Some(IntOrString::Int(1))),
    };
    Some(PodDisruptionBudget {
        metadata: meta(d, &d.app_name, labels::ownership(d)),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(labels::pod_selector(d)),
                ..LabelSelector::default()
            }),
            min_available,
            max_unavailable,
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

/// An `autoscaling/v2` HPA on CPU utilisation when autoscaling is on.
pub fn autoscaler(d: &DesiredApp) -> Option<HorizontalPodAutoscaler> {
    let a = d.spec.autoscaling.as_ref()?;
    Some(HorizontalPodAutoscaler {
        metadata: meta(d, &d.app_name, labels::ownership(d)),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: d.app_name.clone(),
            },
            min_replicas: Some(a.min_replicas as i32),
            max_replicas: a.max_replicas as i32,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(a.cpu_percent as i32),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        }),
        ..HorizontalPodAutoscaler::default()
    })
}

#[cfg(test)]
mod tests {
    use satusky_types::apps::{AppSpec, Autoscaling, HealthCheck, Port, Resources, Strategy};

    use super::*;

    fn desired(f: impl FnOnce(&mut AppSpec)) -> DesiredApp {
        let mut spec = AppSpec {
            image: "ghcr.io/acme/web:1".into(),
            replicas: 3,
            ports: vec![Port {
                container_port: 8080,
                protocol: "TCP".into(),
                public: false,
            }],
            ..AppSpec::default()
        };
        f(&mut spec);
        DesiredApp {
            app_id: "app-1".into(),
            app_name: "web".into(),
            org_id: "org-1".into(),
            org_slug: "acme".into(),
            namespace: "org-acme".into(),
            generation: 4,
            release: 2,
            spec,
            secrets: BTreeMap::new(),
            restarted_at: None,
            domain: "web-acme.apps.satusky.test".into(),
            cluster_id: None,
            deleting: false,
            delete_volumes: false,
        }
    }

    fn pod_spec(d: &Deployment) -> &PodSpec {
        d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
    }

    #[test]
    fn machine_selector_becomes_required_node_affinity_over_node_labels() {
        let d = desired(|s| {
            s.machine_selector = Some("pool=gpu,zone in (a,b),!maintenance,tier!=free,arch".into());
            s.zone = Some("zone-a".into());
        });
        let dep = deployment(&d, &ReconcilerConfig::default()).unwrap();
        let terms = pod_spec(&dep)
            .affinity
            .as_ref()
            .unwrap()
            .node_affinity
            .as_ref()
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .unwrap()
            .node_selector_terms
            .clone();
        assert_eq!(terms.len(), 1);
        let got: Vec<(String, String, Option<Vec<String>>)> = terms[0]
            .match_expressions
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.operator, e.values))
            .collect();
        let v = |xs: &[&str]| Some(xs.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            got,
            vec![
                ("satusky.com/pool".into(), "In".into(), v(&["gpu"])),
                (
                    "topology.kubernetes.io/zone".into(),
                    "In".into(),
                    v(&["a", "b"])
                ),
                (
                    "satusky.com/maintenance".into(),
                    "DoesNotExist".into(),
                    None
                ),
                ("satusky.com/tier".into(), "NotIn".into(), v(&["free"])),
                ("kubernetes.io/arch".into(), "Exists".into(), None),
                (
                    "topology.kubernetes.io/zone".into(),
                    "In".into(),
                    v(&["zone-a"])
                ),
            ]
        );
        assert!(
            pod_spec(&deployment(&desired(|_| {}), &ReconcilerConfig::default()).unwrap())
                .affinity
                .is_none()
        );
    }

    #[test]
    fn strategy_maps_to_rolling_update_or_recreate() {
        let rolling = strategy(&desired(|s| {
            s.strategy = Strategy::Rolling {
                max_surge: "1".into(),
                max_unavailable: "25%".into(),
            };
        }));
        assert_eq!(rolling.type_.as_deref(), Some("RollingUpdate"));
        let ru = rolling.rolling_update.unwrap();
        assert_eq!(ru.max_surge, Some(IntOrString::Int(1)));
        assert_eq!(ru.max_unavailable, Some(IntOrString::String("25%".into())));
        let recreate = strategy(&desired(|s| s.strategy = Strategy::Recreate));
        assert_eq!(recreate.type_.as_deref(), Some("Recreate"));
        assert!(recreate.rolling_update.is_none());
    }

    #[test]
    fn health_check_gives_readiness_and_liveness_probes_on_the_first_port() {
        let d = desired(|s| {
            s.health = Some(HealthCheck {
                path: "/healthz".into(),
                port: None,
                initial_delay_seconds: 3,
            });
        });
        let (ready, live) = probes(&d);
        let ready = ready.unwrap();
        let get = ready.http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some("/healthz"));
        assert_eq!(get.port, IntOrString::Int(8080));
        assert_eq!(ready.initial_delay_seconds, Some(3));
        assert!(live.unwrap().initial_delay_seconds.unwrap() > 3);
        assert_eq!(probes(&desired(|_| {})), (None, None));
    }

    #[test]
    fn secrets_reach_the_container_through_secret_key_refs_never_in_plain_text() {
        let mut d = desired(|s| {
            s.env.insert("MODE".into(), "prod".into());
            s.env.insert("TOKEN".into(), "plain".into());
            s.secret_version = 3;
        });
        d.secrets.insert("TOKEN".into(), "s3cret".into());
        d.secrets.insert("DB_URL".into(), "postgres://x".into());
        let env = env(&d);
        let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["MODE", "DB_URL", "TOKEN"]);
        let token = env.iter().find(|e| e.name == "TOKEN").unwrap();
        assert!(token.value.is_none());
        let r = token
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!((r.name.as_str(), r.key.as_str()), ("web-secrets", "TOKEN"));
        let dep =
            serde_json::to_string(&deployment(&d, &ReconcilerConfig::default()).unwrap()).unwrap();
        assert!(!dep.contains("s3cret") && !dep.contains("postgres://"));
        assert!(dep.contains(r#""satusky.com/secret-version":"3""#));
        let s = secret(&d).unwrap();
        assert_eq!(s.data.unwrap()["TOKEN"].0, b"s3cret");
        assert!(secret(&desired(|_| {})).is_none());
    }

    #[test]
    fn every_object_carries_the_ownership_labels() {
        let mut d = desired(|s| {
            s.volumes = vec![satusky_types::apps::Volume {
                name: "data".into(),
                size: "1Gi".into(),
                mount_path: "/data".into(),
            }];
            s.autoscaling = Some(Autoscaling {
                min_replicas: 2,
                max_replicas: 5,
                cpu_percent: 70,
            });
        });
        d.secrets.insert("K".into(), "v".into());
        let r = render(&d, &ReconcilerConfig::default()).unwrap();
        let kinds: Vec<(Kind, &str)> = r.app.iter().map(|c| (c.kind, c.name.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::Secret, "web-secrets"),
                (Kind::PersistentVolumeClaim, "web-data"),
                (Kind::Deployment, "web"),
                (Kind::Service, "web"),
                (Kind::HttpRoute, "web"),
                (Kind::PodDisruptionBudget, "web"),
                (Kind::HorizontalPodAutoscaler, "web"),
            ]
        );
        for c in &r.app {
            let l = &c.body["metadata"]["labels"];
            assert_eq!(l[labels::MANAGED_BY], "satusky", "{:?}", c.kind);
            assert_eq!(l[labels::APP_ID], "app-1");
            assert_eq!(l[labels::ORG_ID], "org-1");
            assert_eq!(l[labels::NAME], "web");
            assert_eq!(c.body["metadata"]["namespace"], "org-acme");
            assert_eq!(c.body["kind"], c.kind.as_str());
        }
        for c in &r.org {
            let l = &c.body["metadata"]["labels"];
            assert_eq!(l[labels::MANAGED_BY], "satusky");
            assert!(
                l.get(labels::APP_ID).is_none(),
                "org objects belong to no app"
            );
        }
        // The autoscaler owns the replica count.
        let dep = &r.app[2].body;
        assert!(dep["spec"].get("replicas").is_none());
        assert_eq!(dep["metadata"]["labels"][labels::RELEASE], "2");
        assert_eq!(
            dep["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "web-data"
        );
    }

    #[test]
    fn route_service_budget_and_autoscaler_appear_only_when_needed() {
        let cfg = ReconcilerConfig::default();
        let kinds = |d: &DesiredApp| -> Vec<Kind> {
            render(d, &cfg)
                .unwrap()
                .app
                .iter()
                .map(|c| c.kind)
                .collect()
        };
        let single = desired(|s| {
            s.replicas = 1;
            s.ports.clear();
        });
        assert_eq!(kinds(&single), vec![Kind::Deployment]);
        let d = desired(|s| {
            s.ports = vec![
                Port {
                    container_port: 9000,
                    protocol: "UDP".into(),
                    public: false,
                },
                Port {
                    container_port: 8080,
                    protocol: "TCP".into(),
                    public: false,
                },
                Port {
                    container_port: 3000,
                    protocol: "TCP".into(),
                    public: true,
                },
            ];
        });
        assert_eq!(
            kinds(&d),
            vec![
                Kind::Deployment,
                Kind::Service,
                Kind::HttpRoute,
                Kind::PodDisruptionBudget
            ]
        );
        let route = http_route(&d, &cfg).unwrap();
        assert_eq!(route["spec"]["hostnames"][0], "web-acme.apps.satusky.test");
        assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["port"], 3000);
        assert_eq!(route["spec"]["parentRefs"][0]["name"], "satusky-gateway");
        assert_eq!(
            route["spec"]["parentRefs"][0]["namespace"],
            "satusky-system"
        );
        let svc = service(&d).unwrap().spec.unwrap();
        assert_eq!(svc.ports.unwrap().len(), 3);
        assert_eq!(svc.type_.as_deref(), Some("ClusterIP"));
    }

    #[test]
    fn restart_resources_and_quota_render_as_given() {
        let mut d = desired(|s| {
            s.resources = Resources {
                cpu_request: Some("250m".into()),
                cpu_limit: None,
                memory_request: Some("256Mi".into()),
                memory_limit: Some("512Mi".into()),
            };
        });
        d.restarted_at = chrono::DateTime::from_timestamp(1_700_000_000, 0);
        let dep =
            serde_json::to_value(deployment(&d, &ReconcilerConfig::default()).unwrap()).unwrap();
        let tpl = &dep["spec"]["template"];
        assert_eq!(
            tpl["metadata"]["annotations"][labels::RESTARTED_AT],
            "2023-11-14T22:13:20Z"
        );
        let res = &tpl["spec"]["containers"][0]["resources"];
        assert_eq!(res["requests"]["cpu"], "250m");
        assert_eq!(res["limits"]["memory"], "512Mi");
        assert!(
            res["limits"].get("cpu").is_none(),
            "the LimitRange default applies"
        );
        // A request above the default limit would be refused with that
        // default: it becomes its own limit.
        let big = desired(|s| s.resources.cpu_request = Some("1500m".into()));
        let dep =
            serde_json::to_value(deployment(&big, &ReconcilerConfig::default()).unwrap()).unwrap();
        let res = &dep["spec"]["template"]["spec"]["containers"][0]["resources"];
        assert_eq!(res["limits"]["cpu"], "1500m");
        let q = serde_json::to_value(quota(&d, &ReconcilerConfig::default())).unwrap();
        assert_eq!(q["spec"]["hard"]["requests.cpu"], "2");
        assert_eq!(q["spec"]["hard"]["limits.memory"], "4Gi");
        assert_eq!(q["spec"]["hard"]["pods"], "10");
        let np = serde_json::to_value(network_policy(&d, &ReconcilerConfig::default())).unwrap();
        assert_eq!(np["spec"]["podSelector"], serde_json::json!({}));
        assert_eq!(
            np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "satusky-system"
        );
    }

    #[test]
    fn rendering_is_deterministic() {
        let d = desired(|s| {
            for i in 0..20 {
                s.env.insert(format!("K{i}"), i.to_string());
            }
        });
        let cfg = ReconcilerConfig::default();
        assert_eq!(render(&d, &cfg).unwrap(), render(&d.clone(), &cfg).unwrap());
    }

    fn deployment_body(f: impl FnOnce(&mut AppSpec)) -> Value {
        let cfg = ReconcilerConfig::default();
        serde_json::to_value(deployment(&desired(f), &cfg).unwrap()).unwrap()
    }

    #[test]
    fn leftover_probes_and_affinity_are_patched_out_and_nothing_else() {
        let with = deployment_body(|s| {
            s.health = Some(HealthCheck {
                path: "/healthz".into(),
                port: None,
                initial_delay_seconds: 0,
            });
            s.machine_selector = Some("pool=gpu".into());
        });
        let without = deployment_body(|_| {});
        // Same fields: nothing to send.
        assert_eq!(deployment_leftovers(&with, &with), None);
        assert_eq!(deployment_leftovers(&without, &without), None);
        // A new field is the apply's business, not a leftover.
        assert_eq!(deployment_leftovers(&with, &without), None);
        assert_eq!(
            deployment_leftovers(&without, &with),
            Some(json!({"spec": {"template": {"spec": {
                "affinity": null,
                "containers": [{"name": "app", "readinessProbe": null, "livenessProbe": null}],
            }}}}))
        );
        // An empty object left behind counts too; the other container is not ours.
        let mut live = without.clone();
        live["spec"]["template"]["spec"]["affinity"] = json!({"nodeAffinity": {}});
        live["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "livenessProbe": {}}));
        assert_eq!(
            deployment_leftovers(&without, &live),
            Some(json!({"spec": {"template": {"spec": {"affinity": null}}}}))
        );
    }
}
