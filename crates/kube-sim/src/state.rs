//! Shared state of one simulated cluster: store, configuration, faults, logs.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use crate::error::ApiError;
use crate::registry::{Registry, ResourceType};
use crate::store::Store;

/// Timings and sizes of the simulated cluster.
#[derive(Debug, Clone)]
pub struct Config {
    /// Nodes created at start-up (`node-0` …).
    pub nodes: usize,
    /// Zones the nodes are spread over (`zone-a` …).
    pub zones: usize,
    /// How often controllers re-run at most.
    pub tick: Duration,
    /// Delay from scheduling to `Running`.
    pub pod_start_delay: Duration,
    /// Delay from running to `Ready` (readiness).
    pub pod_ready_delay: Duration,
    /// How long a graceful pod deletion takes (instead of the grace period).
    pub pod_stop_delay: Duration,
    /// Lease renewal interval of the nodes kube-sim runs.
    pub heartbeat: Duration,
    /// A node without heartbeat for this long turns `Ready=Unknown`.
    pub node_monitor_grace: Duration,
    /// Scale of `tolerationSeconds` (1.0 = real seconds; tests use less).
    pub toleration_scale: f64,
    /// Watch events kept per resource for watches from an old resourceVersion.
    pub history: usize,
    /// Bearer token required from clients, if any.
    pub token: Option<String>,
    /// CPU (millicores), memory (MiB) and pods of each node.
    pub node_cpu_millis: u64,
    pub node_memory_mib: u64,
    pub node_pods: u64,
    /// Run the controllers (scheduler, kubelet, …).
    pub controllers: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            nodes: 3,
            zones: 3,
            tick: Duration::from_millis(50),
            pod_start_delay: Duration::from_millis(200),
            pod_ready_delay: Duration::from_millis(100),
            pod_stop_delay: Duration::from_millis(100),
            heartbeat: Duration::from_secs(10),
            node_monitor_grace: Duration::from_secs(40),
            toleration_scale: 1.0,
            history: 2_000,
            token: None,
            node_cpu_millis: 4000,
            node_memory_mib: 16_384,
            node_pods: 110,
            controllers: true,
        }
    }
}

/// An API verb, for fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this HTTP code and a matching `Status`.
    Error(u16),
    /// Delay the answer.
    Latency(Duration),
}

/// One fault rule: which requests, what happens, how often.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub verb: Option<Verb>,
    /// Plural resource name (`pods`), or any.
    pub resource: Option<String>,
    pub action: FaultAction,
    /// How many requests it hits; `None` = until cleared.
    pub times: Option<u32>,
}

impl Fault {
    /// Every matching request fails with `code` (409, 429, 500, 503 …).
    pub fn error(code: u16) -> Self {
        Self {
            verb: None,
            resource: None,
            action: FaultAction::Error(code),
            times: None,
        }
    }

    /// Every matching request is delayed.
    pub fn latency(d: Duration) -> Self {
        Self {
            verb: None,
            resource: None,
            action: FaultAction::Latency(d),
            times: None,
        }
    }

    pub fn verb(mut self, v: Verb) -> Self {
        self.verb = Some(v);
        self
    }

    pub fn resource(mut self, plural: &str) -> Self {
        self.resource = Some(plural.to_owned());
        self
    }

    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
}

/// What watches are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchSignal {
    /// Close the stream without a word.
    Drop,
    /// Send an `ERROR` 410 Expired event, then close.
    Expire,
}

/// Fault injection on a running simulator.
#[derive(Clone)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Fault>>>,
    pub(crate) watch_tx: broadcast::Sender<WatchSignal>,
    state: std::sync::Weak<State>,
}

impl Faults {
    /// Adds a fault rule.
    pub fn inject(&self, fault: Fault) {
        if let Ok(mut r) = self.rules.lock() {
            r.push(fault);
        }
    }

    /// Removes every fault rule.
    pub fn clear(&self) {
        if let Ok(mut r) = self.rules.lock() {
            r.clear();
        }
    }

    /// Closes every open watch stream (clients see a dropped connection).
    pub fn drop_watches(&self) {
        let _ = self.watch_tx.send(WatchSignal::Drop);
    }

    /// Forgets the watch history (as an etcd compaction would) and ends every open watch
    /// with a 410 `Expired` error: clients must re-list.
    pub fn expire_watches(&self) {
        if let Some(s) = self.state.upgrade() {
            s.store.compact();
        }
        let _ = self.watch_tx.send(WatchSignal::Expire);
    }

    /// The first matching rule's action (consuming one of its `times`).
    pub(crate) fn check(&self, verb: Verb, resource: &str) -> Vec<FaultAction> {
        let Ok(mut rules) = self.rules.lock() else {
            return vec![];
        };
        let mut out = Vec::new();
        for r in rules.iter_mut() {
            if r.verb.is_some_and(|v| v != verb) {
                continue;
            }
            if r.resource.as_deref().is_some_and(|x| x != resource) {
                continue;
            }
            if r.times == Some(0) {
                continue;
            }
            if let Some(t) = r.times.as_mut() {
                *t -= 1;
            }
            out.push(r.action.clone());
        }
        rules.retain(|r| r.times != Some(0));
        out
    }
}

/// `(namespace, pod, container)`.
type LogKey = (String, String, String);

/// Container log lines, per `(namespace, pod, container)`.
#[derive(Default)]
pub struct Logs {
    lines: Mutex<HashMap<LogKey, Vec<(String, String)>>>,
    pub appended: Notify,
}

impl Logs {
    /// Appends a line with the current time.
    pub fn append(&self, ns: &str, pod: &str, container: &str, line: &str) {
        if let Ok(mut l) = self.lines.lock() {
            l.entry((ns.to_owned(), pod.to_owned(), container.to_owned()))
                .or_default()
                .push((
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    line.to_owned(),
                ));
        }
        self.appended.notify_waiters();
    }

    /// Lines of one container, `(timestamp, line)`.
    pub fn get(&self, ns: &str, pod: &str, container: &str) -> Vec<(String, String)> {
        self.lines
            .lock()
            .ok()
            .and_then(|l| {
                l.get(&(ns.to_owned(), pod.to_owned(), container.to_owned()))
                    .cloned()
            })
            .unwrap_or_default()
    }

    /// Forgets a pod's logs.
    pub fn forget(&self, ns: &str, pod: &str) {
        if let Ok(mut l) = self.lines.lock() {
            l.retain(|(n, p, _), _| !(n == ns && p == pod));
        }
    }
}

/// One simulated cluster.
pub struct State {
    pub store: Store,
    pub cfg: Config,
    pub faults: Faults,
    pub logs: Logs,
    pub seq: AtomicU64,
    /// Simulated extra CPU load (millicores) per pod name, set by tests.
    pub load: Mutex<HashMap<(String, String), u64>>,
    /// Nodes whose kubelet has stopped heartbeating.
    pub stopped_nodes: Mutex<std::collections::HashSet<String>>,
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

impl State {
    pub fn new(cfg: Config) -> Arc<Self> {
        let (shutdown, _) = tokio::sync::watch::channel(false);
        Arc::new_cyclic(|weak| Self {
            store: Store::new(Registry::builtin(), cfg.history),
            faults: Faults {
                rules: Arc::default(),
                watch_tx: broadcast::channel(16).0,
                state: weak.clone(),
            },
            cfg,
            logs: Logs::default(),
            seq: AtomicU64::new(0),
            load: Mutex::default(),
            stopped_nodes: Mutex::default(),
            shutdown,
        })
    }

    /// Looks up a served resource or answers 404.
    pub fn rt(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<Arc<ResourceType>, ApiError> {
        self.store
            .registry
            .find(group, version, plural)
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    format!("the server could not find the requested resource ({plural})"),
                )
            })
    }
}
