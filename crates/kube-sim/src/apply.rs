//! Server-side apply and `managedFields` bookkeeping.
//!
//! A field set is a set of paths; each path is a list of `fieldsV1` segments (`f:spec`,
//! `k:{"name":"app"}`, `v:"x"`, `.`). Lists with a merge key (see [`crate::patch::merge_key`])
//! are associative, `finalizers` is a set, every other list is atomic.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::patch::merge_key;

pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

/// Metadata fields never tracked as owned.
const UNTRACKED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "generateName",
];

/// The leaf paths of an object, as `fieldsV1` segments.
pub fn fields_of(obj: &Value, skip_status: bool) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            if k == "apiVersion" || k == "kind" || (skip_status && k == "status") {
                continue;
            }
            if k == "metadata" {
                if let Value::Object(meta) = v {
                    for (mk, mv) in meta {
                        if UNTRACKED_META.contains(&mk.as_str()) {
                            continue;
                        }
                        walk(
                            mv,
                            mk,
                            &mut vec!["f:metadata".to_owned(), format!("f:{mk}")],
                            &mut out,
                        );
                    }
                }
                continue;
            }
            walk(v, k, &mut vec![format!("f:{k}")], &mut out);
        }
    }
    out
}

fn walk(v: &Value, field: &str, path: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(format!("f:{k}"));
                walk(child, k, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            if field == "finalizers" {
                for i in items {
                    path.push(format!("v:{i}"));
                    out.insert(path.clone());
                    path.pop();
                }
                return;
            }
            match merge_key(field, items.first()) {
                Some(key) if items.iter().all(|i| i.get(key).is_some()) => {
                    for item in items {
                        path.push(key_segment(key, item));
                        let mut dot = path.clone();
                        dot.push(".".to_owned());
                        out.insert(dot);
                        if let Value::Object(m) = item {
                            for (k, child) in m {
                                path.push(format!("f:{k}"));
                                walk(child, k, path, out);
                                path.pop();
                            }
                        }
                        path.pop();
                    }
                }
                _ => {
                    out.insert(path.clone());
                }
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

fn key_segment(key: &str, item: &Value) -> String {
    let mut m = Map::new();
    m.insert(key.to_owned(), item[key].clone());
    if key == "containerPort"
        && let Some(p) = item.get("protocol")
    {
        m.insert("protocol".to_owned(), p.clone());
    }
    format!("k:{}", Value::Object(m))
}

/// The value at a path, if present.
pub fn get_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path {
        if seg == "." {
            return Some(cur);
        }
        cur = step(cur, seg)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, seg: &str) -> Option<&'a Value> {
    if let Some(f) = seg.strip_prefix("f:") {
        cur.get(f)
    } else if let Some(k) = seg.strip_prefix("k:") {
        let keys: Value = serde_json::from_str(k).ok()?;
        let keys = keys.as_object()?;
        cur.as_array()?
            .iter()
            .find(|e| keys.iter().all(|(kk, kv)| e.get(kk) == Some(kv)))
    } else if let Some(v) = seg.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).ok()?;
        cur.as_array()?.iter().find(|e| **e == v)
    } else {
        None
    }
}

/// Removes the field at `path` (an element for `k:`/`v:` paths ending the path).
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let path: Vec<&String> = path.iter().filter(|s| *s != ".").collect();
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parents {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = seg.strip_prefix("k:") {
            let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(k) else {
                return;
            };
            cur.as_array_mut().and_then(|a| {
                a.iter_mut()
                    .find(|e| keys.iter().all(|(kk, kv)| e.get(kk) == Some(kv)))
            })
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        if let (Ok(Value::Object(keys)), Some(a)) =
            (serde_json::from_str::<Value>(k), cur.as_array_mut())
        {
            a.retain(|e| !keys.iter().all(|(kk, kv)| e.get(kk) == Some(kv)));
        }
    } else if let Some(v) = last.strip_prefix("v:")
        && let (Ok(v), Some(a)) = (serde_json::from_str::<Value>(v), cur.as_array_mut())
    {
        a.retain(|e| *e != v);
    }
}

/// Merges an applied configuration into an object (structured merge).
pub fn merge_applied(target: &mut Value, applied: &Value, field: &str) {
    match (target, applied) {
        (t @ Value::Object(_), Value::Object(a)) => {
            let Some(t) = t.as_object_mut() else {
                return;
            };
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(existing) => merge_applied(existing, v, k),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(a)) => {
            if field == "finalizers" {
                for i in a {
                    if !t.contains(i) {
                        t.push(i.clone());
                    }
                }
                return;
            }
            match merge_key(field, a.first()) {
                Some(key) if a.iter().all(|i| i.get(key).is_some()) => {
                    for item in a {
                        if let Some(e) = t.iter_mut().find(|e| e.get(key) == item.get(key)) {
                            merge_applied(e, item, "");
                        } else {
                            t.push(item.clone());
                        }
                    }
                }
                _ => t.clone_from(a),
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// Converts a field set to the `fieldsV1` tree.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Value::Object(Map::new());
    for path in set {
        let mut cur = &mut root;
        for seg in path {
            let Some(m) = cur.as_object_mut() else {
                break;
            };
            cur = m.entry(seg.clone()).or_insert_with(|| json!({}));
        }
    }
    root
}

/// Converts a `fieldsV1` tree to a field set.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    fn rec(v: &Value, path: &mut Path, out: &mut FieldSet) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    path.push(k.clone());
                    rec(child, path, out);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    rec(v, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub subresource: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

pub fn read_entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().to_owned(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_owned(),
                    subresource: e["subresource"].as_str().unwrap_or_default().to_owned(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_owned(),
                    time: e["time"].as_str().unwrap_or_default().to_owned(),
                    fields: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".to_owned(), Value::Array(list));
        }
    }
}

/// A field owned by another manager with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `"alice"` for an Apply manager, `"kubectl" using apps/v1` for an Update manager.
    pub manager: String,
    pub field: String,
}

/// Renders a path as `.spec.replicas` or `.spec.containers[name="app"].image`.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for seg in path {
        if let Some(f) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:") {
            let keys: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            let inner: Vec<String> = keys
                .as_object()
                .map(|m| m.iter().map(|(a, b)| format!("{a}={b}")).collect())
                .unwrap_or_default();
            s.push('[');
            s.push_str(&inner.join(","));
            s.push(']');
        } else if let Some(v) = seg.strip_prefix("v:") {
            s.push_str("[=");
            s.push_str(v);
            s.push(']');
        }
    }
    s
}

/// Parameters of one apply.
pub struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub subresource: &'a str,
    pub api_version: &'a str,
    pub now: &'a str,
    pub skip_status: bool,
}

/// Applies `applied` over `current` (already without server-set fields). Returns the new
/// object or the conflicts.
pub fn apply(
    current: &Value,
    applied: &Value,
    req: &ApplyRequest<'_>,
) -> Result<Value, Vec<Conflict>> {
    let mut entries = read_entries(current);
    let new_set = fields_of(applied, req.skip_status);
    let mut conflicts = Vec::new();
    for e in &mut entries {
        if e.manager == req.manager && e.operation == "Apply" {
            continue;
        }
        let clashing: Vec<Path> = e
            .fields
            .iter()
            .filter(|p| new_set.contains(*p))
            .filter(|p| p.last().is_some_and(|s| s != "."))
            .filter(|p| get_at(current, p) != get_at(applied, p))
            .cloned()
            .collect();
        if clashing.is_empty() {
            continue;
        }
        if req.force {
            for p in &clashing {
                e.fields.remove(p);
            }
        } else {
            let who = if e.operation == "Update" {
                format!("\"{}\" using {}", e.manager, e.api_version)
            } else {
                format!("\"{}\"", e.manager)
            };
            conflicts.extend(clashing.iter().map(|p| Conflict {
                manager: who.clone(),
                field: path_string(p),
            }));
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let prev: FieldSet = entries
        .iter()
        .find(|e| {
            e.manager == req.manager && e.operation == "Apply" && e.subresource == req.subresource
        })
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    // Every field still owned after this apply: other managers' (any operation, and this
    // manager's entries for other subresources) and what this apply claims.
    let owned: Vec<&[String]> = entries
        .iter()
        .filter(|e| {
            !(e.manager == req.manager
                && e.operation == "Apply"
                && e.subresource == req.subresource)
        })
        .flat_map(|e| e.fields.iter())
        .chain(new_set.iter())
        .map(|p| object_path(p))
        .collect();
    let mut obj = current.clone();
    prune(&mut obj, &prev, &owned);
    let mut body = applied.clone();
    if let Some(m) = body.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        if req.skip_status {
            m.remove("status");
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in UNTRACKED_META {
                meta.remove(*k);
            }
        }
    }
    merge_applied(&mut obj, &body, "");
    prune_empty_meta(&mut obj);
    entries.retain(|e| {
        !(e.manager == req.manager && e.operation == "Apply" && e.subresource == req.subresource)
    });
    entries.push(Entry {
        manager: req.manager.to_owned(),
        operation: "Apply".to_owned(),
        subresource: req.subresource.to_owned(),
        api_version: req.api_version.to_owned(),
        time: req.now.to_owned(),
        fields: new_set,
    });
    write_entries(&mut obj, &entries);
    Ok(obj)
}

/// A path without its trailing `.` (the object or list item it marks as owned).
fn object_path(path: &[String]) -> &[String] {
    match path.split_last() {
        Some((last, parent)) if last == "." => parent,
        _ => path,
    }
}

/// Removes what the applier owned before (`prev`) and nobody owns now, as structured merge
/// does: every field, object and list item on the way to a previously owned field counts as
/// the applier's, and it goes as a whole unless it still holds a field in `owned` (or is
/// itself owned through a `.` entry). A parent kept that way keeps the other managers'
/// fields and loses only the applier's. Under `status` and `metadata` see below.
fn prune(obj: &mut Value, prev: &FieldSet, owned: &[&[String]]) {
    let covered = |q: &[String]| owned.iter().any(|o| o.starts_with(q));
    let mut gone: BTreeSet<&[String]> = BTreeSet::new();
    let mut unowned_parents: Vec<&[String]> = Vec::new();
    for p in prev {
        let p = object_path(p);
        if p.first()
            .is_some_and(|s| s == "f:status" || s == "f:metadata")
        {
            if !covered(p) {
                unowned_parents.push(p);
            }
            continue;
        }
        for len in 1..=p.len() {
            let q = &p[..len];
            if gone.iter().any(|g| q.starts_with(g)) {
                break;
            }
            if !covered(q) {
                gone.insert(q);
                break;
            }
        }
    }
    // Deepest first, so that removing an item never shifts a path still to remove.
    let mut gone: Vec<&[String]> = gone.into_iter().collect();
    gone.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for q in gone {
        remove_at(obj, q);
    }
    // kube-sim's controllers write status, labels and annotations without a `managedFields`
    // entry, so an unowned object there may hold their fields: only the applier's own fields
    // go, and the objects and lists this leaves empty (never `status` or `metadata` itself).
    // An item goes before its fields: they hold its key.
    unowned_parents.sort_by_key(|p| p.len());
    for (i, p) in unowned_parents.iter().enumerate() {
        if !unowned_parents[..i].iter().any(|q| p.starts_with(q)) {
            remove_at(obj, p);
        }
        for len in (2..p.len()).rev() {
            let q = &p[..len];
            let empty = match get_at(obj, q) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if !empty || covered(q) {
                break;
            }
            remove_at(obj, q);
        }
    }
}

fn prune_empty_meta(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["labels", "annotations"] {
            if meta
                .get(k)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                meta.remove(k);
            }
        }
    }
}

/// Records a non-apply write by `manager`: the fields it changed become its own.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    api_version: &str,
    now: &str,
    skip_status: bool,
) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let new_fields = fields_of(new, skip_status && subresource.is_empty());
    let changed: FieldSet = match old {
        Some(old) => new_fields
            .iter()
            .filter(|p| get_at(old, p) != get_at(new, p))
            .cloned()
            .collect(),
        None => new_fields.clone(),
    };
    for e in &mut entries {
        e.fields.retain(|p| new_fields.contains(p));
        if !(e.manager == manager && e.operation == "Update") {
            for p in &changed {
                e.fields.remove(p);
            }
        }
    }
    if !changed.is_empty() {
        if let Some(e) = entries.iter_mut().find(|e| {
            e.manager == manager && e.operation == "Update" && e.subresource == subresource
        }) {
            e.fields.extend(changed);
            now.clone_into(&mut e.time);
        } else {
            entries.push(Entry {
                manager: manager.to_owned(),
                operation: "Update".to_owned(),
                subresource: subresource.to_owned(),
                api_version: api_version.to_owned(),
                time: now.to_owned(),
                fields: changed,
            });
        }
    }
    write_entries(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(manager: &str, force: bool) -> ApplyRequest<'_> {
        ApplyRequest {
            manager,
            force,
            subresource: "",
            api_version: "apps/v1",
            now: "2026-01-01T00:00:00Z",
            skip_status: true,
        }
    }

    #[test]
    fn apply_conflicts_on_a_field_another_manager_set_differently() {
        let a = json!({"metadata": {"name": "x"}, "spec": {"replicas": 1}});
        let obj = apply(&json!({"metadata": {"name": "x"}}), &a, &req("a", false)).unwrap();
        let b = json!({"metadata": {"name": "x"}, "spec": {"replicas": 2}});
        let err = apply(&obj, &b, &req("b", false)).unwrap_err();
        assert_eq!(
            err,
            vec![Conflict {
                manager: "\"a\"".into(),
                field: ".spec.replicas".into()
            }]
        );
        let forced = apply(&obj, &b, &req("b", true)).unwrap();
        assert_eq!(forced["spec"]["replicas"], 2);
        // the same value is shared without conflict
        assert!(apply(&obj, &a, &req("c", false)).is_ok());
    }

    #[test]
    fn apply_removes_fields_the_manager_stopped_applying() {
        let first = json!({"metadata": {"name": "x", "labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "c", "image": "i"}, {"name": "d", "image": "j"}]}});
        let obj = apply(
            &json!({"metadata": {"name": "x"}}),
            &first,
            &req("m", false),
        )
        .unwrap();
        let second = json!({"metadata": {"name": "x", "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let obj = apply(&obj, &second, &req("m", false)).unwrap();
        assert_eq!(obj["metadata"]["labels"], json!({"a": "1"}));
        assert_eq!(
            obj["spec"]["containers"],
            json!([{"name": "c", "image": "i"}])
        );
    }
    #[test]
    fn apply_removes_an_owned_parent_whole_but_keeps_one_another_manager_owns() {
        let first = json!({"metadata": {"name": "x"},
            "spec": {"probe": {"httpGet": {"path": "/", "port": 80}}, "keep": {"a": 1}}});
        let mut obj = apply(
            &json!({"metadata": {"name": "x"}}),
            &first,
            &req("m", false),
        )
        .unwrap();
        // a server default under the probe, owned by nobody, goes with it
        obj["spec"]["probe"]["timeoutSeconds"] = json!(1);
        // another manager owns the `keep` object itself (`.`) but none of its fields
        let mut entries = read_entries(&obj);
        entries.push(Entry {
            manager: "other".into(),
            operation: "Update".into(),
            subresource: String::new(),
            api_version: "v1".into(),
            time: "2026-01-01T00:00:00Z".into(),
            fields: [vec!["f:spec".into(), "f:keep".into(), ".".into()]].into(),
        });
        write_entries(&mut obj, &entries);
        let obj = apply(&obj, &json!({"metadata": {"name": "x"}}), &req("m", false)).unwrap();
        // `spec` stays: it holds `keep`, which the other manager owns
        assert_eq!(obj["spec"], json!({"keep": {}}));
        let mine = read_entries(&obj);
        assert!(mine.iter().all(|e| e.manager != "m"), "{mine:?}");
    }
    #[test]
    fn a_status_apply_removes_only_its_own_fields_and_what_they_leave_empty() {
        let status_req = ApplyRequest {
            subresource: "status",
            skip_status: false,
            ..req("m", false)
        };
        let first = json!({"metadata": {"name": "x"},
            "status": {"conditions": [{"type": "A", "status": "True"}], "extra": {"a": 1}}});
        let mut obj = apply(&json!({"metadata": {"name": "x"}}), &first, &status_req).unwrap();
        // written by a controller without a managedFields entry
        obj["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "B", "status": "False"}));
        obj["status"]["replicas"] = json!(3);
        let obj = apply(&obj, &json!({"metadata": {"name": "x"}}), &status_req).unwrap();
        assert_eq!(
            obj["status"],
            json!({"conditions": [{"type": "B", "status": "False"}], "replicas": 3})
        );
    }
    #[test]
    fn an_annotation_a_controller_wrote_survives_the_applier_dropping_its_own() {
        let first = json!({"metadata": {"name": "x", "annotations": {"a": "1"}}});
        let mut obj = apply(
            &json!({"metadata": {"name": "x"}}),
            &first,
            &req("m", false),
        )
        .unwrap();
        obj["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
        let obj = apply(&obj, &json!({"metadata": {"name": "x"}}), &req("m", false)).unwrap();
        assert_eq!(
            obj["metadata"]["annotations"],
            json!({"deployment.kubernetes.io/revision": "1"})
        );
        let obj = apply(&obj, &first, &req("m", false)).unwrap();
        let mut bare = obj.clone();
        bare["metadata"]["annotations"] = json!({"a": "1"});
        let bare = apply(&bare, &json!({"metadata": {"name": "x"}}), &req("m", false)).unwrap();
        assert!(bare["metadata"].get("annotations").is_none(), "{bare}");
    }
}
