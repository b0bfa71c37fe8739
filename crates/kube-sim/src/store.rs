//! The in-memory object store: one global resourceVersion, objects as JSON, a bounded event
//! history per resource for watches.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use crate::error::ApiError;
use crate::registry::{Registry, ResourceType};

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change to one object.
#[derive(Debug, Clone)]
pub struct Event {
    /// Store key of the resource (`plural.group`).
    pub resource: String,
    pub kind: EventType,
    pub object: Arc<Value>,
    /// The state before this change (for selector transitions).
    pub prev: Option<Arc<Value>>,
    pub rv: u64,
    /// The object serialized once, shared by every watcher.
    pub json: std::sync::OnceLock<String>,
}

type ObjKey = (String, String);

#[derive(Default)]
struct Inner {
    rv: u64,
    objects: HashMap<String, BTreeMap<ObjKey, Arc<Value>>>,
    history: HashMap<String, VecDeque<Arc<Event>>>,
    /// Per resource: events at or below this revision are gone.
    compacted: HashMap<String, u64>,
    /// Every watch older than this is expired (forced compaction).
    global_compacted: u64,
    /// Live events, one channel per resource so a busy kind cannot lag watchers of another.
    channels: HashMap<String, broadcast::Sender<Arc<Event>>>,
    /// Every stored object's uid (owner lookups for the garbage collector).
    uids: std::collections::HashSet<String>,
    /// Revision of the last write per resource.
    revisions: HashMap<String, u64>,
    /// Removals and deletion requests so far (the garbage collector's trigger).
    deletions: u64,
}

impl Inner {
    /// Watches and continue tokens older than this revision of `resource` get 410.
    fn floor(&self, resource: &str) -> u64 {
        self.compacted
            .get(resource)
            .copied()
            .unwrap_or(0)
            .max(self.global_compacted)
    }

    fn channel(&mut self, resource: &str) -> &broadcast::Sender<Arc<Event>> {
        self.channels
            .entry(resource.to_owned())
            .or_insert_with(|| broadcast::channel(1 << 14).0)
    }
}

/// Now as RFC 3339 with seconds.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The shared object store.
pub struct Store {
    inner: Mutex<Inner>,
    /// Woken on every write; controllers wait on it.
    pub changed: Notify,
    pub registry: Registry,
    history_limit: usize,
}

/// Retained events, the live receiver and the current revision.
pub type WatchStart = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>, u64);

/// Objects the garbage collector acts on, as `(resource key, object)`.
#[derive(Default)]
pub struct GcSnapshot {
    /// Objects with owner references.
    pub owned: Vec<(String, Arc<Value>)>,
    /// Objects being deleted with a `foregroundDeletion` or `orphan` finalizer.
    pub finalizing: Vec<(String, Arc<Value>)>,
    /// Objects none of whose owners exist any more.
    pub orphans: Vec<(String, Arc<Value>)>,
}

/// Result of a list.
pub struct Listed {
    pub items: Vec<Arc<Value>>,
    pub rv: u64,
}

impl Store {
    pub fn new(registry: Registry, history_limit: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                ..Inner::default()
            }),
            changed: Notify::new(),
            registry,
            history_limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current global revision.
    pub fn revision(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let key = (ns_of(rt, ns), name.to_owned());
        self.lock()
            .objects
            .get(&rt.key())
            .and_then(|m| m.get(&key))
            .cloned()
    }

    /// All objects of a resource (optionally in one namespace) whose key is after `after`.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>) -> Listed {
        let inner = self.lock();
        let items = inner
            .objects
            .get(&rt.key())
            .map(|m| match ns {
                Some(ns) if rt.namespaced => m
                    .range((ns.to_owned(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, v)| v.clone())
                    .collect(),
                _ => m.values().cloned().collect(),
            })
            .unwrap_or_default();
        Listed {
            items,
            rv: inner.rv,
        }
    }

    /// Counts objects of a resource.
    pub fn count(&self, rt: &ResourceType) -> usize {
        self.lock().objects.get(&rt.key()).map_or(0, BTreeMap::len)
    }

    /// Subscribes to live events and returns the retained events after `rv` for `resource`.
    /// Fails with 410 when `rv` is older than the retained history.
    pub fn watch_from(&self, resource: &str, rv: Option<u64>) -> Result<WatchStart, ApiError> {
        let mut inner = self.lock();
        let rx = inner.channel(resource).subscribe();
        let Some(rv) = rv else {
            return Ok((Vec::new(), rx, inner.rv));
        };
        let floor = inner.floor(resource);
        if rv < floor {
            return Err(too_old(rv, floor));
        }
        let past = inner
            .history
            .get(resource)
            .map(|h| h.iter().filter(|e| e.rv > rv).cloned().collect())
            .unwrap_or_default();
        Ok((past, rx, inner.rv))
    }

    /// Whether `rv` is still within the retained history of `resource`.
    pub fn check_fresh(&self, resource: &str, rv: u64) -> Result<(), ApiError> {
        let inner = self.lock();
        let floor = inner.floor(resource);
        if rv < floor {
            return Err(too_old(rv, floor));
        }
        Ok(())
    }

    /// Forgets all history: every watch or continue token before now gets 410.
    pub fn compact(&self) -> u64 {
        let mut inner = self.lock();
        inner.global_compacted = inner.rv;
        inner.history.clear();
        inner.rv
    }

    /// Stores `obj` as a new object. The caller has set metadata.
    pub fn insert(&self, rt: &ResourceType, mut obj: Value) -> Result<Arc<Value>, ApiError> {
        strip_nulls(&mut obj);
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut inner = self.lock();
        let key = (ns_of(rt, &ns), name.clone());
        if inner
            .objects
            .get(&rt.key())
            .is_some_and(|m| m.contains_key(&key))
        {
            return Err(ApiError::already_exists(rt, &name));
        }
        let arc = self.commit(&mut inner, rt, key, obj, None, EventType::Added);
        drop(inner);
        self.changed.notify_waiters();
        Ok(arc)
    }

    /// Atomically reads, modifies and writes one object. `f` gets the current object and
    /// returns the new one (or `None` to leave it). Handles no-op detection, generation and
    /// final removal when a deleting object has no finalizers left.
    pub fn modify<F>(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        f: F,
    ) -> Result<Arc<Value>, ApiError>
    where
        F: FnOnce(&Value) -> Result<Option<Value>, ApiError>,
    {
        let mut inner = self.lock();
        let key = (ns_of(rt, ns), name.to_owned());
        let Some(old) = inner
            .objects
            .get(&rt.key())
            .and_then(|m| m.get(&key))
            .cloned()
        else {
            return Err(ApiError::not_found(rt, name));
        };
        let Some(mut new) = f(&old)? else {
            return Ok(old);
        };
        // server-owned metadata
        for k in ["uid", "creationTimestamp", "namespace", "name"] {
            new["metadata"][k] = old["metadata"][k].clone();
        }
        if !old["metadata"]["deletionTimestamp"].is_null() {
            new["metadata"]["deletionTimestamp"] = old["metadata"]["deletionTimestamp"].clone();
            // the grace period may only shrink
            let old_grace = old["metadata"]["deletionGracePeriodSeconds"].as_i64();
            let new_grace = new["metadata"]["deletionGracePeriodSeconds"].as_i64();
            if new_grace.is_none() || new_grace > old_grace {
                new["metadata"]["deletionGracePeriodSeconds"] =
                    old["metadata"]["deletionGracePeriodSeconds"].clone();
            }
            let old_f = string_set(&old["metadata"]["finalizers"]);
            if string_set(&new["metadata"]["finalizers"])
                .iter()
                .any(|f| !old_f.contains(f))
            {
                return Err(ApiError::invalid(
                    rt,
                    name,
                    "metadata.finalizers",
                    "Forbidden: no new finalizers can be added if the object is being deleted",
                ));
            }
        }
        strip_nulls(&mut new);
        strip_nulls_meta(&mut new);
        new["metadata"]["generation"] = old["metadata"]["generation"].clone();
        if new["metadata"]["generation"].is_null()
            && let Some(m) = new["metadata"].as_object_mut()
        {
            m.remove("generation");
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if same_ignoring_times(&old, &new) {
            return Ok(old);
        }
        if spec_changed(&old, &new) && !old["metadata"]["generation"].is_null() {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
            new["metadata"]["generation"] = json!(g + 1);
        }
        let deleting = !new["metadata"]["deletionTimestamp"].is_null();
        if deleting && old["metadata"]["deletionTimestamp"].is_null() {
            inner.deletions += 1;
        }
        let no_finalizers = string_set(&new["metadata"]["finalizers"]).is_empty();
        let pod_pending_grace = rt.kind == "Pod"
            && rt.group.is_empty()
            && new["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .is_some_and(|g| g > 0);
        let arc = if deleting && no_finalizers && !pod_pending_grace && rt.kind != "Namespace" {
            self.remove_locked(&mut inner, rt, key, new)
        } else {
            self.commit(&mut inner, rt, key, new, Some(old), EventType::Modified)
        };
        drop(inner);
        self.changed.notify_waiters();
        Ok(arc)
    }

    /// Removes an object now. Returns its last state.
    pub fn remove(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let mut inner = self.lock();
        let key = (ns_of(rt, ns), name.to_owned());
        let old = inner.objects.get(&rt.key()).and_then(|m| m.get(&key))?;
        let last = (**old).clone();
        let arc = self.remove_locked(&mut inner, rt, key, last);
        drop(inner);
        self.changed.notify_waiters();
        Some(arc)
    }

    fn remove_locked(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        key: ObjKey,
        mut last: Value,
    ) -> Arc<Value> {
        inner.rv += 1;
        let rv = inner.rv;
        last["metadata"]["resourceVersion"] = json!(rv.to_string());
        let prev = inner
            .objects
            .get_mut(&rt.key())
            .and_then(|m| m.remove(&key));
        if let Some(u) = last["metadata"]["uid"].as_str() {
            inner.uids.remove(u);
        }
        inner.deletions += 1;
        let arc = Arc::new(last);
        self.record(inner, rt, EventType::Deleted, arc.clone(), prev, rv);
        arc
    }

    fn commit(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        key: ObjKey,
        mut obj: Value,
        prev: Option<Arc<Value>>,
        kind: EventType,
    ) -> Arc<Value> {
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if kind == EventType::Added
            && let Some(u) = obj["metadata"]["uid"].as_str()
        {
            inner.uids.insert(u.to_owned());
        }
        let arc = Arc::new(obj);
        inner
            .objects
            .entry(rt.key())
            .or_default()
            .insert(key, arc.clone());
        self.record(inner, rt, kind, arc.clone(), prev, rv);
        arc
    }

    fn record(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        kind: EventType,
        object: Arc<Value>,
        prev: Option<Arc<Value>>,
        rv: u64,
    ) {
        let ev = Arc::new(Event {
            resource: rt.key(),
            kind,
            object,
            prev,
            rv,
            json: std::sync::OnceLock::new(),
        });
        inner.revisions.insert(rt.key(), rv);
        let hist = inner.history.entry(rt.key()).or_default();
        hist.push_back(ev.clone());
        let mut dropped = None;
        while hist.len() > self.history_limit {
            dropped = hist.pop_front().map(|e| e.rv);
        }
        if let Some(d) = dropped {
            inner.compacted.insert(rt.key(), d);
        }
        let _ = inner.channel(&rt.key()).send(ev);
    }

    /// Namespaces currently holding objects of any namespaced kind: `(resource key, count)`.
    pub fn contents_of_namespace(&self, ns: &str) -> Vec<(String, Vec<String>)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (res, m) in &inner.objects {
            let names: Vec<String> = m
                .range((ns.to_owned(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|((_, name), _)| name.clone())
                .collect();
            if !names.is_empty() {
                out.push((res.clone(), names));
            }
        }
        out
    }

    /// The current state of every object of `rt` written after `rev` (deleted ones left out),
    /// or `None` when the history no longer reaches back to `rev`.
    pub fn changed_since(&self, rt: &ResourceType, rev: u64) -> Option<Vec<Arc<Value>>> {
        let inner = self.lock();
        let key = rt.key();
        let floor = inner.floor(&key);
        if rev < floor || rev == 0 {
            return None;
        }
        let objects = inner.objects.get(&key);
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for ev in inner.history.get(&key)?.iter().rev() {
            if ev.rv <= rev {
                break;
            }
            let k = (
                ev.object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                ev.object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            if seen.insert(k.clone())
                && let Some(o) = objects.and_then(|m| m.get(&k))
            {
                out.push(o.clone());
            }
        }
        Some(out)
    }

    /// How many removals and deletion requests happened so far.
    pub fn deletions(&self) -> u64 {
        self.lock().deletions
    }

    /// The latest write revision among `resources` (store keys), 0 if none was written.
    pub fn max_revision(&self, resources: &[&str]) -> u64 {
        let inner = self.lock();
        resources
            .iter()
            .filter_map(|r| inner.revisions.get(*r))
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// What the garbage collector needs, in one scan.
    pub fn gc_snapshot(&self) -> GcSnapshot {
        let inner = self.lock();
        let mut snap = GcSnapshot::default();
        for (res, m) in &inner.objects {
            for v in m.values() {
                let meta = &v["metadata"];
                if !meta["deletionTimestamp"].is_null()
                    && string_set(&meta["finalizers"])
                        .iter()
                        .any(|f| f == "foregroundDeletion" || f == "orphan")
                {
                    snap.finalizing.push((res.clone(), v.clone()));
                }
                let Some(refs) = meta["ownerReferences"].as_array().filter(|r| !r.is_empty())
                else {
                    continue;
                };
                snap.owned.push((res.clone(), v.clone()));
                let alive = refs
                    .iter()
                    .any(|r| r["uid"].as_str().is_some_and(|u| inner.uids.contains(u)));
                if !alive && meta["deletionTimestamp"].is_null() {
                    snap.orphans.push((res.clone(), v.clone()));
                }
            }
        }
        snap
    }
}

fn too_old(rv: u64, floor: u64) -> ApiError {
    ApiError::expired(format!("too old resource version: {rv} ({floor})"))
}

fn ns_of(rt: &ResourceType, ns: &str) -> String {
    if rt.namespaced {
        ns.to_owned()
    } else {
        String::new()
    }
}

pub fn string_set(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Drops `null` members recursively, as decoding into typed objects does (and as
/// `serde_json`'s `IndexMut` leaves behind).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn strip_nulls_meta(v: &mut Value) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|_, v| !v.is_null());
        if meta
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            meta.remove("finalizers");
        }
    }
}

fn without_times(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(mf) = v["metadata"]["managedFields"].as_array_mut() {
        for e in mf {
            if let Some(m) = e.as_object_mut() {
                m.remove("time");
            }
        }
    }
    v
}

fn same_ignoring_times(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    without_times(a) == without_times(b)
}

/// Whether anything outside `metadata` and `status` changed.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|m| {
                m.keys()
                    .filter(|k| {
                        !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut all = keys(old);
    all.extend(keys(new));
    all.iter().any(|k| old.get(k) != new.get(k))
}
