//! The `Bus` port: change notifications between the services, the
//! reconciler and streaming handlers, within a replica (in-process) or
//! across replicas (NATS). Messages are hints to look again, never the
//! state itself: the store stays the source of truth, so a lost message
//! costs latency (periodic resync catches up), never correctness.

use std::sync::Arc;

use tokio::sync::broadcast;

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// An app's desired state changed (new release, restart, deletion).
    AppChanged { app_id: String },
    /// An app's event stream grew.
    AppEvent { app_id: String, seq: u64 },
    /// A machine's metrics history grew.
    MachineSampled { machine_id: String },
    /// An organization was deleted: its namespaces are to go from every
    /// cluster.
    OrgDeleted { org_id: String },
}

pub trait Bus: Send + Sync + std::fmt::Debug + 'static {
    fn publish(&self, notice: Notice);
    fn subscribe(&self) -> broadcast::Receiver<Notice>;
}

/// The default bus: a broadcast channel inside this process.
#[derive(Debug, Clone)]
pub struct LocalBus {
    tx: broadcast::Sender<Notice>,
}

impl LocalBus {
    pub fn new() -> Arc<Self> {
        let (tx, _) = broadcast::channel(4096);
        Arc::new(Self { tx })
    }
}

impl Bus for LocalBus {
    fn publish(&self, notice: Notice) {
        // No subscriber is fine: nobody needs to look again.
        let _ = self.tx.send(notice);
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }
}
