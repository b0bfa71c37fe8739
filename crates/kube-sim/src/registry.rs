//! The table of served kinds. Every kind, built-in or CRD-defined, is one [`ResourceType`].

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

/// Fields every kind supports in a field selector.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// One served resource (a REST collection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Plural resource name, e.g. `pods`.
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// `status`, `scale`, `log`, `eviction`, `binding`, `finalize`.
    pub subresources: Vec<String>,
    /// Field-selector fields beyond `metadata.name`/`metadata.namespace`.
    pub field_selectors: Vec<String>,
    /// Read-only aggregated API (metrics): get and list only.
    pub read_only: bool,
    /// Served from a CRD (no strategic merge patch).
    pub custom: bool,
    pub categories: Vec<String>,
}

impl ResourceType {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Key used by the store: `plural.group`.
    pub fn key(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether `field` may be used in a field selector.
    pub fn supports_field(&self, field: &str) -> bool {
        COMMON_FIELDS.contains(&field) || self.field_selectors.iter().any(|f| f == field)
    }

    pub fn has_sub(&self, sub: &str) -> bool {
        self.subresources.iter().any(|s| s == sub)
    }

    /// Verbs for discovery.
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.read_only {
            vec!["get", "list"]
        } else {
            vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }

    /// The path of the collection in `ns` (or cluster-wide).
    pub fn collection_path(&self, ns: Option<&str>) -> String {
        let prefix = if self.group.is_empty() {
            "/api/v1".to_owned()
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match ns {
            Some(ns) if self.namespaced => format!("{prefix}/namespaces/{ns}/{}", self.plural),
            _ => format!("{prefix}/{}", self.plural),
        }
    }
}

struct Def<'a> {
    gv: &'a str,
    kind: &'a str,
    plural: &'a str,
    namespaced: bool,
    short: &'a [&'a str],
    subs: &'a [&'a str],
    fields: &'a [&'a str],
}

const NS: bool = true;
const CLUSTER: bool = false;

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

#[rustfmt::skip]
const BUILTINS: &[Def<'static>] = &[
    Def { gv: "v1", kind: "Namespace", plural: "namespaces", namespaced: CLUSTER, short: &["ns"], subs: &["status", "finalize"], fields: &["status.phase"] },
    Def { gv: "v1", kind: "Node", plural: "nodes", namespaced: CLUSTER, short: &["no"], subs: &["status"], fields: &["spec.unschedulable"] },
    Def { gv: "v1", kind: "Pod", plural: "pods", namespaced: NS, short: &["po"], subs: &["status", "eviction", "log", "binding"], fields: POD_FIELDS },
    Def { gv: "v1", kind: "Service", plural: "services", namespaced: NS, short: &["svc"], subs: &["status"], fields: &[] },
    Def { gv: "v1", kind: "Endpoints", plural: "endpoints", namespaced: NS, short: &["ep"], subs: &[], fields: &[] },
    Def { gv: "v1", kind: "Secret", plural: "secrets", namespaced: NS, short: &[], subs: &[], fields: &["type"] },
    Def { gv: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: NS, short: &["cm"], subs: &[], fields: &[] },
    Def { gv: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: NS, short: &["sa"], subs: &[], fields: &[] },
    Def { gv: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims", namespaced: NS, short: &["pvc"], subs: &["status"], fields: &[] },
    Def { gv: "v1", kind: "PersistentVolume", plural: "persistentvolumes", namespaced: CLUSTER, short: &["pv"], subs: &["status"], fields: &[] },
    Def { gv: "v1", kind: "Event", plural: "events", namespaced: NS, short: &["ev"], subs: &[], fields: EVENT_FIELDS },
    Def { gv: "v1", kind: "ResourceQuota", plural: "resourcequotas", namespaced: NS, short: &["quota"], subs: &["status"], fields: &[] },
    Def { gv: "v1", kind: "LimitRange", plural: "limitranges", namespaced: NS, short: &["limits"], subs: &[], fields: &[] },
    Def { gv: "apps/v1", kind: "Deployment", plural: "deployments", namespaced: NS, short: &["deploy"], subs: &["status", "scale"], fields: &[] },
    Def { gv: "apps/v1", kind: "ReplicaSet", plural: "replicasets", namespaced: NS, short: &["rs"], subs: &["status", "scale"], fields: &["status.replicas"] },
    Def { gv: "apps/v1", kind: "DaemonSet", plural: "daemonsets", namespaced: NS, short: &["ds"], subs: &["status"], fields: &[] },
    Def { gv: "apps/v1", kind: "StatefulSet", plural: "statefulsets", namespaced: NS, short: &["sts"], subs: &["status", "scale"], fields: &[] },
    Def { gv: "apps/v1", kind: "ControllerRevision", plural: "controllerrevisions", namespaced: NS, short: &[], subs: &[], fields: &[] },
    Def { gv: "batch/v1", kind: "Job", plural: "jobs", namespaced: NS, short: &[], subs: &["status"], fields: &[] },
    Def { gv: "batch/v1", kind: "CronJob", plural: "cronjobs", namespaced: NS, short: &["cj"], subs: &["status"], fields: &[] },
    Def { gv: "policy/v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets", namespaced: NS, short: &["pdb"], subs: &["status"], fields: &[] },
    Def { gv: "autoscaling/v2", kind: "HorizontalPodAutoscaler", plural: "horizontalpodautoscalers", namespaced: NS, short: &["hpa"], subs: &["status"], fields: &[] },
    // served as a converting view over autoscaling/v2 (see view.rs)
    Def { gv: "autoscaling/v1", kind: "HorizontalPodAutoscaler", plural: "horizontalpodautoscalers", namespaced: NS, short: &["hpa"], subs: &["status"], fields: &[] },
    Def { gv: "networking.k8s.io/v1", kind: "Ingress", plural: "ingresses", namespaced: NS, short: &["ing"], subs: &["status"], fields: &[] },
    Def { gv: "networking.k8s.io/v1", kind: "IngressClass", plural: "ingressclasses", namespaced: CLUSTER, short: &[], subs: &[], fields: &[] },
    Def { gv: "networking.k8s.io/v1", kind: "NetworkPolicy", plural: "networkpolicies", namespaced: NS, short: &["netpol"], subs: &[], fields: &[] },
    Def { gv: "discovery.k8s.io/v1", kind: "EndpointSlice", plural: "endpointslices", namespaced: NS, short: &[], subs: &[], fields: &[] },
    Def { gv: "storage.k8s.io/v1", kind: "StorageClass", plural: "storageclasses", namespaced: CLUSTER, short: &["sc"], subs: &[], fields: &[] },
    Def { gv: "coordination.k8s.io/v1", kind: "Lease", plural: "leases", namespaced: NS, short: &[], subs: &[], fields: &[] },
    Def { gv: "events.k8s.io/v1", kind: "Event", plural: "events", namespaced: NS, short: &["ev"], subs: &[], fields: &[] },
    Def { gv: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions", namespaced: CLUSTER, short: &["crd", "crds"], subs: &["status"], fields: &[] },
    Def { gv: "gateway.networking.k8s.io/v1", kind: "GatewayClass", plural: "gatewayclasses", namespaced: CLUSTER, short: &["gc"], subs: &["status"], fields: &[] },
    Def { gv: "gateway.networking.k8s.io/v1", kind: "Gateway", plural: "gateways", namespaced: NS, short: &["gtw"], subs: &["status"], fields: &[] },
    Def { gv: "gateway.networking.k8s.io/v1", kind: "HTTPRoute", plural: "httproutes", namespaced: NS, short: &[], subs: &["status"], fields: &[] },
    Def { gv: "cert-manager.io/v1", kind: "Certificate", plural: "certificates", namespaced: NS, short: &["cert", "certs"], subs: &["status"], fields: &["spec.issuerRef.group", "spec.issuerRef.kind"] },
    Def { gv: "cert-manager.io/v1", kind: "Issuer", plural: "issuers", namespaced: NS, short: &[], subs: &["status"], fields: &[] },
    Def { gv: "cert-manager.io/v1", kind: "ClusterIssuer", plural: "clusterissuers", namespaced: CLUSTER, short: &[], subs: &["status"], fields: &[] },
    Def { gv: "externaldns.k8s.io/v1alpha1", kind: "DNSEndpoint", plural: "dnsendpoints", namespaced: NS, short: &[], subs: &["status"], fields: &[] },
    Def { gv: "metrics.k8s.io/v1beta1", kind: "NodeMetrics", plural: "nodes", namespaced: CLUSTER, short: &[], subs: &[], fields: &[] },
    Def { gv: "metrics.k8s.io/v1beta1", kind: "PodMetrics", plural: "pods", namespaced: NS, short: &[], subs: &[], fields: &[] },
];

/// Kinds in kubectl's `all` category.
const ALL_CATEGORY: &[&str] = &[
    "pods",
    "jobs",
    "cronjobs",
    "services",
    "deployments",
    "replicasets",
    "daemonsets",
    "statefulsets",
    "horizontalpodautoscalers",
];

/// Groups served as custom resources (no strategic merge patch).
const CUSTOM_GROUPS: &[&str] = &[
    "gateway.networking.k8s.io",
    "cert-manager.io",
    "externaldns.k8s.io",
];

/// The set of served resources. CRDs add entries at run time.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Vec<Arc<ResourceType>>>>,
}

impl Registry {
    /// The built-in kinds.
    pub fn builtin() -> Self {
        let types = BUILTINS
            .iter()
            .map(|d| {
                let (group, version) = d.gv.split_once('/').unwrap_or(("", d.gv));
                Arc::new(ResourceType {
                    group: group.to_owned(),
                    version: version.to_owned(),
                    kind: d.kind.to_owned(),
                    plural: d.plural.to_owned(),
                    singular: d.kind.to_lowercase(),
                    namespaced: d.namespaced,
                    short_names: d.short.iter().map(|s| (*s).to_owned()).collect(),
                    subresources: d.subs.iter().map(|s| (*s).to_owned()).collect(),
                    field_selectors: d.fields.iter().map(|s| (*s).to_owned()).collect(),
                    read_only: group == "metrics.k8s.io",
                    custom: CUSTOM_GROUPS.contains(&group),
                    categories: if ALL_CATEGORY.contains(&d.plural)
                        && matches!(group, "" | "apps" | "autoscaling" | "batch")
                        && d.plural != "events"
                    {
                        vec!["all".to_owned()]
                    } else {
                        vec![]
                    },
                })
            })
            .collect();
        Self {
            inner: Arc::new(RwLock::new(types)),
        }
    }

    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        self.inner.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// Finds the resource by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.inner.read().ok().and_then(|v| {
            v.iter()
                .find(|r| r.group == group && r.version == version && r.plural == plural)
                .cloned()
        })
    }

    /// Finds a resource by its store key (`plural.group`).
    pub fn by_key(&self, key: &str) -> Option<Arc<ResourceType>> {
        self.inner
            .read()
            .ok()
            .and_then(|v| v.iter().find(|r| r.key() == key).cloned())
    }

    /// Finds a resource by apiVersion and kind.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.inner.read().ok().and_then(|v| {
            v.iter()
                .find(|r| r.api_version() == api_version && r.kind == kind)
                .cloned()
        })
    }

    /// Groups with their versions, in registration order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in self.all() {
            if r.group.is_empty() {
                continue;
            }
            if let Some((_, versions)) = out.iter_mut().find(|(g, _)| *g == r.group) {
                if !versions.contains(&r.version) {
                    versions.push(r.version.clone());
                }
            } else {
                out.push((r.group.clone(), vec![r.version.clone()]));
            }
        }
        out
    }

    /// Registers (or replaces) the kinds a CRD defines. Returns the resource types added.
    pub fn register_crd(&self, crd: &Value) -> Vec<Arc<ResourceType>> {
        let spec = &crd["spec"];
        let group = spec["group"].as_str().unwrap_or_default().to_owned();
        let names = &spec["names"];
        let plural = names["plural"].as_str().unwrap_or_default().to_owned();
        let kind = names["kind"].as_str().unwrap_or_default().to_owned();
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let mut added = Vec::new();
        let Some(versions) = spec["versions"].as_array() else {
            return added;
        };
        let Ok(mut all) = self.inner.write() else {
            return added;
        };
        for v in versions {
            if v["served"].as_bool() == Some(false) {
                continue;
            }
            let version = v["name"].as_str().unwrap_or_default().to_owned();
            let mut subresources = Vec::new();
            if v["subresources"]["status"].is_object() {
                subresources.push("status".to_owned());
            }
            if v["subresources"]["scale"].is_object() {
                subresources.push("scale".to_owned());
            }
            let field_selectors = v["selectableFields"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["jsonPath"].as_str())
                        .map(|p| p.trim_start_matches('.').to_owned())
                        .collect()
                })
                .unwrap_or_default();
            let rt = Arc::new(ResourceType {
                group: group.clone(),
                version: version.clone(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: names["singular"]
                    .as_str()
                    .map_or_else(|| kind.to_lowercase(), str::to_owned),
                namespaced,
                short_names: string_list(&names["shortNames"]),
                subresources,
                field_selectors,
                read_only: false,
                custom: true,
                categories: string_list(&names["categories"]),
            });
            all.retain(|r| !(r.group == group && r.version == version && r.plural == plural));
            all.push(rt.clone());
            added.push(rt);
        }
        added
    }

    /// Removes the kinds a CRD defined.
    pub fn unregister_crd(&self, crd: &Value) {
        let group = crd["spec"]["group"].as_str().unwrap_or_default();
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
        if let Ok(mut all) = self.inner.write() {
            all.retain(|r| !(r.group == group && r.plural == plural && r.custom));
        }
    }
}

fn string_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Group, version, kind and verbs of a subresource: some answer another kind than their parent.
fn sub_kind<'a>(r: &'a ResourceType, sub: &str) -> (&'a str, &'a str, &'a str, Vec<&'static str>) {
    match sub {
        "eviction" => ("policy", "v1", "Eviction", vec!["create"]),
        "scale" => ("autoscaling", "v1", "Scale", vec!["get", "patch", "update"]),
        "log" => ("", "v1", "Pod", vec!["get"]),
        "binding" => ("", "v1", "Binding", vec!["create"]),
        "finalize" => ("", "v1", "Namespace", vec!["update"]),
        _ => (
            &r.group,
            &r.version,
            &r.kind,
            vec!["get", "patch", "update"],
        ),
    }
}

/// The `APIResourceList` for one group version.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Value {
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    let mut resources = Vec::new();
    for r in reg.all() {
        if r.group != group || r.version != version {
            continue;
        }
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
            "shortNames": r.short_names,
            "categories": r.categories,
        }));
        for sub in &r.subresources {
            let (g, v, k, verbs) = sub_kind(&r, sub);
            resources.push(json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "group": g,
                "version": v,
                "kind": k,
                "verbs": verbs,
            }));
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// The `APIGroupList` at `/apis`.
pub fn group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .into_iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": vs, "preferredVersion": vs[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The aggregated discovery document (`apidiscovery.k8s.io/v2`), for `/api` (core) or `/apis`.
pub fn aggregated(reg: &Registry, core: bool) -> Value {
    let mut groups: BTreeMap<String, Vec<(String, Vec<Value>)>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for r in reg.all() {
        if r.group.is_empty() != core {
            continue;
        }
        if !order.contains(&r.group) {
            order.push(r.group.clone());
        }
        let versions = groups.entry(r.group.clone()).or_default();
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|sub| {
                let (g, v, k, verbs) = sub_kind(&r, sub);
                json!({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": k}, "verbs": verbs})
            })
            .collect();
        let res = json!({
            "resource": r.plural,
            "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
            "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": r.singular,
            "verbs": r.verbs(),
            "shortNames": r.short_names,
            "categories": r.categories,
            "subresources": subs,
        });
        if let Some((_, list)) = versions.iter_mut().find(|(v, _)| *v == r.version) {
            list.push(res);
        } else {
            versions.push((r.version.clone(), vec![res]));
        }
    }
    let items: Vec<Value> = order
        .iter()
        .map(|g| {
            let versions: Vec<Value> = groups
                .remove(g)
                .unwrap_or_default()
                .into_iter()
                .map(|(v, resources)| json!({"version": v, "resources": resources, "freshness": "Current"}))
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}
