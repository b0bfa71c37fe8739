//! Counters of one reconciler, for metrics and tests.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Stats {
    passes: AtomicU64,
    writes: AtomicU64,
    retries: AtomicU64,
    namespaces_deleted: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    lease_acquisitions: AtomicU64,
    leader: AtomicBool,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Passes finished (with or without error): of apps, and of namespace
    /// sweeps.
    pub passes: u64,
    /// Write requests sent to Kubernetes (apply, delete, event).
    pub writes: u64,
    /// Kubernetes calls repeated after a 409/429/5xx or a timeout.
    pub retries: u64,
    /// Namespaces of deleted organizations this replica deleted.
    pub namespaces_deleted: u64,
    /// Failed passes per [`crate::Error::category`].
    pub errors: BTreeMap<&'static str, u64>,
    /// Times this replica became leader.
    pub lease_acquisitions: u64,
    /// Whether this replica holds the lease now.
    pub leader: bool,
}

impl Stats {
    pub(crate) fn pass(&self) {
        self.passes.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn namespace_deleted(&self) {
        self.namespaces_deleted.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn acquired(&self) {
        self.lease_acquisitions.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn set_leader(&self, on: bool) {
        self.leader.store(on, Ordering::Relaxed);
    }
    pub(crate) fn error(&self, category: &'static str) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(category).or_insert(0) += 1;
        }
    }

    /// Whether this replica holds the leader lease (for readiness and metrics).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            passes: self.passes.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            namespaces_deleted: self.namespaces_deleted.load(Ordering::Relaxed),
            errors: self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            lease_acquisitions: self.lease_acquisitions.load(Ordering::Relaxed),
            leader: self.leader.load(Ordering::Relaxed),
        }
    }
}
