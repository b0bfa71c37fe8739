//! JSON patch, merge patch and strategic merge patch.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The merge key of a list field for strategic merge and server-side apply, if it has one.
/// `sample` is an element of the list, used to tell container ports from service ports.
pub fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "containerStatuses"
        | "initContainerStatuses"
        | "listeners" => Some("name"),
        "volumeMounts" | "volumeDevices" => Some("mountPath"),
        "ports" => {
            if sample.is_some_and(|s| s.get("containerPort").is_some()) {
                Some("containerPort")
            } else {
                Some("port")
            }
        }
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        _ => None,
    }
}

/// Primitive lists merged as sets by strategic merge.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// RFC 6902 JSON patch. A failed `test` is 422, anything else malformed is 400.
pub fn json_patch(target: &mut Value, body: &[u8]) -> Result<(), ApiError> {
    let patch: json_patch::Patch = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &patch).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })
}

/// RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Strategic merge patch for built-in kinds.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = p.clone();
        clean.remove("$patch");
        *target = Value::Object(clean);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return;
    };
    for (k, v) in p {
        if k == "$patch" || k.starts_with("$setElementOrder/") || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (t.get_mut(field), v.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => strategic_merge(existing, v),
            (Some(Value::Array(existing)), Value::Array(items)) => {
                merge_list(k, existing, items);
            }
            _ => {
                let mut fresh = Value::Null;
                strategic_merge_fresh(&mut fresh, v);
                t.insert(k.clone(), fresh);
            }
        }
    }
}

/// Inserts a patch value, dropping directives.
fn strategic_merge_fresh(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(_) => strategic_merge(target, patch),
        Value::Array(items) => {
            *target = Value::Array(
                items
                    .iter()
                    .filter(|i| i.get("$patch").is_none())
                    .map(|i| {
                        let mut out = Value::Null;
                        strategic_merge_fresh(&mut out, i);
                        out
                    })
                    .collect(),
            );
        }
        other => *target = other.clone(),
    }
}

fn merge_list(field: &str, existing: &mut Vec<Value>, items: &[Value]) {
    if is_set_list(field) {
        for i in items {
            if !existing.contains(i) {
                existing.push(i.clone());
            }
        }
        return;
    }
    let Some(key) = merge_key(field, items.first().or(existing.first())) else {
        let mut fresh = Value::Null;
        strategic_merge_fresh(&mut fresh, &Value::Array(items.to_vec()));
        if let Value::Array(a) = fresh {
            *existing = a;
        }
        return;
    };
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        existing.clear();
    }
    for item in items {
        let directive = item.get("$patch").and_then(Value::as_str);
        if directive == Some("replace") && item.get(key).is_none() {
            continue;
        }
        let id = item.get(key);
        let pos = existing
            .iter()
            .position(|e| e.get(key) == id && id.is_some());
        match (directive, pos) {
            (Some("delete"), Some(p)) => {
                existing.remove(p);
            }
            (Some("delete"), None) => {}
            (_, Some(p)) => strategic_merge(&mut existing[p], item),
            (_, None) => {
                let mut fresh = Value::Null;
                strategic_merge_fresh(&mut fresh, item);
                existing.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}});
        strategic_merge(
            &mut pod,
            &json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b", "image": "b:2"}, {"name": "a", "$patch": "delete"}]}}),
        );
        assert_eq!(
            pod,
            json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}})
        );
    }

    #[test]
    fn strategic_merge_unions_finalizers_and_replaces_plain_lists() {
        let mut obj = json!({"metadata": {"finalizers": ["a"]}, "spec": {"args": ["x"]}});
        strategic_merge(
            &mut obj,
            &json!({"metadata": {"finalizers": ["b"]}, "spec": {"args": ["y"]}}),
        );
        assert_eq!(
            obj,
            json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"args": ["y"]}})
        );
    }
}
