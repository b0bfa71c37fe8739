//! Minimal OpenAPI v3 documents: enough for kubectl to see that the server validates fields
//! (`fieldValidation`) and for `kubectl explain` to find each kind. Schemas are shallow.

use serde_json::{Map, Value, json};

use crate::registry::Registry;

/// `/openapi/v3`: the index of group-version documents.
pub fn index(reg: &Registry) -> Value {
    let mut paths = Map::new();
    paths.insert(
        "api/v1".to_owned(),
        json!({"serverRelativeURL": "/openapi/v3/api/v1?hash=sim"}),
    );
    for (g, versions) in reg.groups() {
        for v in versions {
            paths.insert(
                format!("apis/{g}/{v}"),
                json!({"serverRelativeURL": format!("/openapi/v3/apis/{g}/{v}?hash=sim")}),
            );
        }
    }
    json!({"paths": paths})
}

fn schema_name(group: &str, version: &str, kind: &str) -> String {
    let g = if group.is_empty() { "core" } else { group };
    let rev: Vec<&str> = g.split('.').rev().collect();
    format!("io.k8s.sim.{}.{version}.{kind}", rev.join("."))
}

/// The document of one group version, or `None` when it is not served.
pub fn group_version(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = reg
        .all()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let params = json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        {"name": "force", "in": "query", "schema": {"type": "boolean"}},
    ]);
    for r in &types {
        let gvk = json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
        let item = format!(
            "{}/{{name}}",
            r.collection_path(if r.namespaced {
                Some("{namespace}")
            } else {
                None
            })
        );
        let sname = schema_name(&r.group, &r.version, &r.kind);
        let reference = json!({"$ref": format!("#/components/schemas/{sname}")});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        paths.insert(
            item,
            json!({
                "get": {"operationId": format!("read{}", r.kind), "responses": ok, "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk[0]},
                "patch": {"operationId": format!("patch{}", r.kind), "parameters": params, "responses": ok, "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk[0]},
            }),
        );
        let desc = format!(
            "{} is served by kube-sim (a simulated API server); this schema is shallow.",
            r.kind
        );
        schemas.insert(
            sname,
            json!({
                "description": desc,
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
                    "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
                    "metadata": {"type": "object", "description": "Standard object's metadata.", "x-kubernetes-preserve-unknown-fields": true},
                    "spec": {"type": "object", "description": "Desired state.", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "description": "Observed state.", "x-kubernetes-preserve-unknown-fields": true},
                },
                "x-kubernetes-group-version-kind": gvk,
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
