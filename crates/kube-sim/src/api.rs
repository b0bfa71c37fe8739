//! The API operations (create, update, patch, delete, eviction, scale) over the store,
//! independent of HTTP.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::apply::{self, ApplyRequest};
use crate::defaults;
use crate::error::{ApiError, group_resource};
use crate::patch;
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::state::State;
use crate::store::{now, string_set, strip_nulls};

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub force: bool,
    /// Record no `managedFields` entry (a server-side apply that creates records its own).
    pub skip_managed_fields: bool,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOpts {
    /// Reads a `DeleteOptions` body (or the `deleteOptions`/`delete_options` of an Eviction).
    pub fn from_body(v: &Value) -> Self {
        Self {
            grace: v["gracePeriodSeconds"].as_i64(),
            propagation: v["propagationPolicy"].as_str().map(str::to_owned),
            uid: v["preconditions"]["uid"].as_str().map(str::to_owned),
            resource_version: v["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_owned),
            dry_run: v["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "All")),
        }
    }
}

/// The outcome of a delete.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// Removed; the last state.
    Gone(Arc<Value>),
    /// Still present with a deletionTimestamp (finalizers or graceful pod deletion).
    Pending(Arc<Value>),
}

/// Patch types by content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or_default().trim();
        match ct {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

fn rand_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

fn default_manager(opts: &WriteOpts, user_agent: &str) -> String {
    opts.field_manager.clone().unwrap_or_else(|| {
        user_agent
            .split('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_owned()
    })
}

/// Checks the namespace exists and is not terminating.
fn check_namespace(state: &State, rt: &ResourceType, ns: &str) -> Result<(), ApiError> {
    if !rt.namespaced {
        return Ok(());
    }
    let nsrt = state.rt("", "v1", "namespaces")?;
    let Some(n) = state.store.get(&nsrt, "", ns) else {
        return Err(ApiError::not_found(&nsrt, ns));
    };
    if !n["metadata"]["deletionTimestamp"].is_null() {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                group_resource(rt)
            ),
        )
        .with_details(json!({"group": rt.group, "kind": rt.plural,
            "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]})));
    }
    Ok(())
}

/// Creates an object.
pub fn create(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    mut obj: Value,
    opts: &WriteOpts,
    user_agent: &str,
) -> Result<Arc<Value>, ApiError> {
    if rt.read_only {
        return Err(ApiError::method_not_allowed());
    }
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be an object"));
    }
    if let Some(k) = obj["kind"].as_str()
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            obj["apiVersion"].as_str().unwrap_or_default(),
            rt.api_version()
        )));
    }
    obj["kind"] = json!(rt.kind);
    obj["apiVersion"] = json!(rt.api_version());
    strip_nulls(&mut obj);
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    if rt.namespaced {
        match obj["metadata"]["namespace"].as_str() {
            Some(n) if !n.is_empty() && n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => obj["metadata"]["namespace"] = json!(ns),
        }
        check_namespace(state, rt, ns)?;
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        match obj["metadata"]["generateName"].as_str() {
            Some(g) if !g.is_empty() => {
                obj["metadata"]["name"] = json!(format!("{g}{}", rand_suffix()));
            }
            _ => {
                return Err(ApiError::invalid(
                    rt,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
        }
    }
    let name = name_of(&obj).to_owned();
    if !defaults::valid_name(&name) {
        return Err(ApiError::invalid(
            rt,
            &name,
            "metadata.name",
            &format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    if rt.has_sub("status")
        && !matches!(rt.kind.as_str(), "Node" | "PersistentVolume")
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    let meta = &mut obj["metadata"];
    if let Some(m) = meta.as_object_mut() {
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
        ] {
            m.remove(k);
        }
    }
    meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
    meta["creationTimestamp"] = json!(now());
    if !(rt.group.is_empty() && rt.kind == "Pod") {
        meta["generation"] = json!(1);
    }
    let seq = state.seq.fetch_add(1, Ordering::Relaxed);
    defaults::on_create(rt, &mut obj, seq)?;
    if rt.kind == "CustomResourceDefinition" {
        obj["status"] = json!({"conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": now(), "message": "no conflicts found"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "lastTransitionTime": now(), "message": "the initial names have been accepted"}],
            "acceptedNames": obj["spec"]["names"].clone(), "storedVersions": []});
    }
    if !opts.skip_managed_fields {
        let manager = default_manager(opts, user_agent);
        apply::record_update(
            None,
            &mut obj,
            &manager,
            "",
            &rt.api_version(),
            &now(),
            rt.has_sub("status"),
        );
    }
    if opts.dry_run {
        return Ok(Arc::new(obj));
    }
    let stored = state.store.insert(rt, obj)?;
    if rt.kind == "CustomResourceDefinition" {
        state.store.registry.register_crd(&stored);
    }
    Ok(stored)
}

#[expect(clippy::too_many_arguments)]
/// Replaces an object (`PUT`), or its status with `sub = Some("status")`.
pub fn update(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    body: Value,
    sub: Option<&str>,
    opts: &WriteOpts,
    user_agent: &str,
) -> Result<Arc<Value>, ApiError> {
    if rt.read_only {
        return Err(ApiError::method_not_allowed());
    }
    if let Some(n) = body["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let manager = default_manager(opts, user_agent);
    write(state, rt, ns, name, sub, opts, |old| {
        if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(rt, name));
        }
        let mut new = body.clone();
        new["kind"] = json!(rt.kind);
        new["apiVersion"] = json!(rt.api_version());
        if new["metadata"]["managedFields"].is_null() {
            new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
        }
        apply::record_update(
            Some(old),
            &mut new,
            &manager,
            sub.unwrap_or_default(),
            &rt.api_version(),
            &now(),
            rt.has_sub("status"),
        );
        Ok(new)
    })
}

/// Runs a write through the status-subresource rules and the store.
fn write<F>(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    opts: &WriteOpts,
    f: F,
) -> Result<Arc<Value>, ApiError>
where
    F: FnOnce(&Value) -> Result<Value, ApiError>,
{
    let mut dry: Option<Arc<Value>> = None;
    let res = state.store.modify(rt, ns, name, |old| {
        let mut new = f(old)?;
        strip_nulls(&mut new);
        // clients cannot set or change deletionTimestamp
        for k in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
            new["metadata"][k] = old["metadata"][k].clone();
        }
        match sub {
            Some("status") => {
                let mut merged = old.clone();
                merged["status"] = new["status"].take();
                merged["metadata"]["managedFields"] = new["metadata"]["managedFields"].take();
                new = merged;
            }
            _ if rt.has_sub("status") => {
                new["status"] = old["status"].clone();
                if new["status"].is_null()
                    && let Some(m) = new.as_object_mut()
                {
                    m.remove("status");
                }
            }
            _ => {}
        }
        if rt.kind == "Namespace" {
            // spec.finalizers only change through /finalize
            if sub != Some("finalize") {
                new["spec"] = old["spec"].clone();
            }
        }
        strip_nulls(&mut new);
        validate_update(rt, old, &new)?;
        if opts.dry_run {
            dry = Some(Arc::new(new));
            return Ok(None);
        }
        Ok(Some(new))
    })?;
    Ok(dry.unwrap_or(res))
}

fn validate_update(rt: &ResourceType, old: &Value, new: &Value) -> Result<(), ApiError> {
    let name = name_of(old);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
            if old["spec"]["selector"] != new["spec"]["selector"] =>
        {
            return Err(ApiError::invalid(
                rt,
                name,
                "spec.selector",
                "Invalid value: field is immutable",
            ));
        }
        ("", "Pod") => {
            let node_old = &old["spec"]["nodeName"];
            if !node_old.is_null() && node_old != &new["spec"]["nodeName"] {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    "spec",
                    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

#[expect(clippy::too_many_arguments)]
/// Patches an object (or its status/scale subresource; scale is handled by the caller).
pub fn patch(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    ptype: PatchType,
    body: &[u8],
    sub: Option<&str>,
    opts: &WriteOpts,
    user_agent: &str,
) -> Result<(Arc<Value>, bool), ApiError> {
    if rt.read_only {
        return Err(ApiError::method_not_allowed());
    }
    if opts.force && ptype != PatchType::Apply {
        return Err(ApiError::new(
            422,
            "Invalid",
            "force: Forbidden: may not be specified for non-apply patch",
        ));
    }
    if ptype == PatchType::Strategic && rt.custom {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    let parsed: Value = match ptype {
        PatchType::Json => Value::Null,
        PatchType::Apply => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    if ptype == PatchType::Apply {
        let manager = opts.field_manager.clone().ok_or_else(|| {
            ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            )
        })?;
        if state.store.get(rt, ns, name).is_none() && sub.is_none() {
            let mut obj = parsed.clone();
            obj["metadata"]["name"] = json!(name);
            let created = create(
                state,
                rt,
                ns,
                obj,
                &WriteOpts {
                    field_manager: Some(manager.clone()),
                    skip_managed_fields: true,
                    ..opts.clone()
                },
                user_agent,
            )?;
            // re-apply to record the Apply ownership instead of Update
            let applied = apply_existing(state, rt, ns, name, &parsed, &manager, sub, opts)?;
            let _ = created;
            return Ok((applied, true));
        }
        let applied = apply_existing(state, rt, ns, name, &parsed, &manager, sub, opts)?;
        return Ok((applied, false));
    }
    let manager = default_manager(opts, user_agent);
    let res = write(state, rt, ns, name, sub, opts, |old| {
        let mut new = old.clone();
        match ptype {
            PatchType::Json => patch::json_patch(&mut new, body)?,
            PatchType::Merge => patch::merge_patch(&mut new, &parsed),
            PatchType::Strategic => patch::strategic_merge(&mut new, &parsed),
            PatchType::Apply => {}
        }
        if let Some(rv) = parsed["metadata"]["resourceVersion"].as_str()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(rt, name));
        }
        apply::record_update(
            Some(old),
            &mut new,
            &manager,
            sub.unwrap_or_default(),
            &rt.api_version(),
            &now(),
            rt.has_sub("status"),
        );
        Ok(new)
    })?;
    Ok((res, false))
}

#[expect(clippy::too_many_arguments)]
fn apply_existing(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    applied: &Value,
    manager: &str,
    sub: Option<&str>,
    opts: &WriteOpts,
) -> Result<Arc<Value>, ApiError> {
    write(state, rt, ns, name, sub, opts, |old| {
        let t = now();
        let req = ApplyRequest {
            manager,
            force: opts.force,
            subresource: sub.unwrap_or_default(),
            api_version: &rt.api_version(),
            now: &t,
            skip_status: rt.has_sub("status") && sub.is_none(),
        };
        apply::apply(old, applied, &req).map_err(|conflicts| {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.field}))
                .collect();
            let msg = if conflicts.len() == 1 {
                format!("Apply failed with 1 conflict: conflict with {}: {}", conflicts[0].manager, conflicts[0].field)
            } else {
                format!(
                    "Apply failed with {} conflicts: {}",
                    conflicts.len(),
                    conflicts.iter().map(|c| format!("conflict with {}: {}", c.manager, c.field)).collect::<Vec<_>>().join("\n")
                )
            };
            ApiError::new(409, "Conflict", msg).with_details(json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": causes}))
        })
    })
}

/// Deletes an object.
pub fn delete(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> Result<Deleted, ApiError> {
    if rt.read_only {
        return Err(ApiError::method_not_allowed());
    }
    let Some(current) = state.store.get(rt, ns, name) else {
        return Err(ApiError::not_found(rt, name));
    };
    if opts.dry_run {
        return Ok(Deleted::Gone(current));
    }
    let uid = current["metadata"]["uid"].clone();
    let res = state.store.modify(rt, ns, name, |old| {
        if let Some(u) = &opts.uid
            && old["metadata"]["uid"].as_str() != Some(u) {
                return Err(ApiError::conflict(rt, name).with_details(json!({"name": name, "kind": rt.plural, "causes": [{"reason": "FieldValueInvalid", "message": format!("Precondition failed: UID in precondition: {u}, UID in object meta: {}", old["metadata"]["uid"].as_str().unwrap_or_default())}]})));
            }
        if let Some(rv) = &opts.resource_version
            && old["metadata"]["resourceVersion"].as_str() != Some(rv) {
                return Err(ApiError::conflict(rt, name));
            }
        let is_pod = rt.kind == "Pod" && rt.group.is_empty();
        if !old["metadata"]["deletionTimestamp"].is_null() {
            // already deleting; a pod deletion may be shortened to grace 0
            if is_pod && opts.grace == Some(0) {
                let mut new = old.clone();
                new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                return Ok(Some(new));
            }
            return Ok(None);
        }
        let mut new = old.clone();
        let mut finalizers = string_set(&old["metadata"]["finalizers"]);
        match opts.propagation.as_deref() {
            Some("Foreground")
                if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                    finalizers.push("foregroundDeletion".to_owned());
                }
            Some("Orphan")
                if !finalizers.iter().any(|f| f == "orphan") => {
                    finalizers.push("orphan".to_owned());
                }
            _ => {}
        }
        new["metadata"]["finalizers"] = json!(finalizers);
        let mut grace = 0;
        if is_pod {
            let phase = old["status"]["phase"].as_str().unwrap_or_default();
            let bound = old["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
            if bound && phase != "Succeeded" && phase != "Failed" {
                grace = opts
                    .grace
                    .or_else(|| old["spec"]["terminationGracePeriodSeconds"].as_i64())
                    .unwrap_or(30)
                    .max(0);
            }
        }
        let ts = Utc::now() + ChronoDuration::seconds(grace);
        new["metadata"]["deletionTimestamp"] = json!(ts.to_rfc3339_opts(SecondsFormat::Secs, true));
        new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        if rt.kind == "Namespace" && rt.group.is_empty() {
            new["status"]["phase"] = json!("Terminating");
        }
        Ok(Some(new))
    });
    // modify refuses to set a deletionTimestamp that the old object lacked: do it here
    let res = res?;
    match state.store.get(rt, ns, name) {
        Some(v) if v["metadata"]["uid"] == uid => Ok(Deleted::Pending(v)),
        _ => {
            if rt.kind == "CustomResourceDefinition" {
                state.store.registry.unregister_crd(&res);
            }
            Ok(Deleted::Gone(res))
        }
    }
}

/// The `Status` body of a successful delete.
pub fn success_status(rt: &ResourceType, obj: &Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name_of(obj), "group": rt.group, "kind": rt.plural, "uid": obj["metadata"]["uid"]}})
}

/// The `autoscaling/v1` Scale of a Deployment, ReplicaSet or StatefulSet.
pub fn scale_of(obj: &Value) -> Value {
    let selector = LabelSelector::from_object(&obj["spec"]["selector"], false)
        .map(|s| s.to_query())
        .unwrap_or_default();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// Writes `spec.replicas` through the scale subresource.
pub fn set_scale(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    replicas: i64,
    rv: Option<&str>,
) -> Result<Arc<Value>, ApiError> {
    if replicas < 0 {
        return Err(ApiError::invalid(
            rt,
            name,
            "spec.replicas",
            "Invalid value: must be greater than or equal to 0",
        ));
    }
    state.store.modify(rt, ns, name, |old| {
        if let Some(rv) = rv.filter(|r| !r.is_empty())
            && old["metadata"]["resourceVersion"].as_str() != Some(rv)
        {
            return Err(ApiError::conflict(rt, name));
        }
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        Ok(Some(new))
    })
}

/// Creates a pod eviction (`POST pods/{name}/eviction`), per the eviction decision table.
pub fn evict(state: &State, ns: &str, name: &str, body: &Value) -> Result<Value, ApiError> {
    let pods = state.rt("", "v1", "pods")?;
    if let Some(n) = body["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let opts_body = if body["deleteOptions"].is_object() {
        &body["deleteOptions"]
    } else {
        &Value::Null
    };
    let mut opts = DeleteOpts::from_body(opts_body);
    let Some(pod) = state.store.get(&pods, ns, name) else {
        return Err(ApiError::not_found(&pods, name));
    };
    let success = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    let deleting = !pod["metadata"]["deletionTimestamp"].is_null();
    if matches!(phase, "Succeeded" | "Failed" | "Pending") || deleting {
        if !opts.dry_run {
            if !deleting && phase == "Pending" {
                opts.resource_version = pod["metadata"]["resourceVersion"]
                    .as_str()
                    .map(str::to_owned);
            }
            delete(state, &pods, ns, name, &opts)?;
        }
        return Ok(success);
    }
    let pdbrt = state.rt("policy", "v1", "poddisruptionbudgets")?;
    let labels = &pod["metadata"]["labels"];
    let pdbs: Vec<Arc<Value>> = state
        .store
        .list(&pdbrt, Some(ns))
        .items
        .into_iter()
        .filter(|p| {
            LabelSelector::from_object(&p["spec"]["selector"], true)
                .is_ok_and(|s| s.matches(labels))
        })
        .collect();
    if pdbs.len() > 1 {
        return Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    // Only the "still being processed" answer suggests a retry delay (as eviction.go does).
    let too_many = |msg: String| {
        let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": msg}]});
        if msg.contains("still being processed") {
            details["retryAfterSeconds"] = json!(10);
        }
        ApiError::new(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
        )
        .with_details(details)
    };
    let rv_precondition = pod["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    if let Some(pdb) = pdbs.first() {
        let pdb_name = name_of(pdb).to_owned();
        let ready = crate::controllers::pod_ready(&pod);
        let st = &pdb["status"];
        let current = st["currentHealthy"].as_i64().unwrap_or(0);
        let desired = st["desiredHealthy"].as_i64().unwrap_or(0);
        let skip_budget = !ready
            && (pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
                || (current >= desired && desired > 0));
        if !skip_budget {
            if st["observedGeneration"].as_i64().unwrap_or(0)
                < pdb["metadata"]["generation"].as_i64().unwrap_or(1)
            {
                return Err(too_many(format!(
                    "The disruption budget {pdb_name} is still being processed by the server."
                )));
            }
            let allowed = st["disruptionsAllowed"].as_i64().unwrap_or(0);
            if allowed < 0 {
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    "pdb disruptions allowed is negative",
                ));
            }
            if st["disruptedPods"]
                .as_object()
                .is_some_and(|m| m.len() > 2000)
            {
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
                ));
            }
            if allowed == 0 {
                return Err(too_many(format!(
                    "The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"
                )));
            }
            if !opts.dry_run {
                let r = state.store.modify(&pdbrt, ns, &pdb_name, |old| {
                    let mut new = old.clone();
                    let a = old["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
                    if a <= 0 {
                        return Err(too_many(format!("The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently")));
                    }
                    new["status"]["disruptionsAllowed"] = json!(a - 1);
                    if !new["status"]["disruptedPods"].is_object() {
                        new["status"]["disruptedPods"] = json!({});
                    }
                    new["status"]["disruptedPods"][name] = json!(now());
                    Ok(Some(new))
                });
                r?;
            }
        }
    }
    if opts.dry_run {
        return Ok(success);
    }
    // DisruptionTarget condition, then graceful delete
    let _ = state.store.modify(&pods, ns, name, |old| {
        let mut new = old.clone();
        crate::controllers::set_condition(
            &mut new,
            "DisruptionTarget",
            "True",
            "EvictionByEvictionAPI",
            "Eviction API: evicting",
        );
        Ok(Some(new))
    });
    let _ = rv_precondition;
    opts.resource_version = None;
    match delete(state, &pods, ns, name, &opts) {
        Ok(_) => Ok(success),
        Err(e) if e.code == 409 => Err(too_many(
            "The disruption budget is still being processed by the server.".to_string(),
        )),
        Err(e) => Err(e),
    }
}
