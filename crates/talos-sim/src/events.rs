//! The machine's runtime event log: xid-ordered ids, a bounded backlog and live
//! subscribers (the `Events` API and the SideroLink sink publisher).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use prost::Message;
use satusky_proto::machine as pb;
use tokio::sync::{Notify, broadcast};

/// Backlog size kept per machine.
const BACKLOG: usize = 1000;
const XID_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuv";

static XID_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A new xid-shaped id: 4 bytes of Unix time, 3 of machine, 2 of process, 3 of
/// counter, base32hex (20 characters, sortable by time).
pub(crate) fn xid(machine: [u8; 3]) -> String {
    let secs = Utc::now().timestamp() as u32;
    let pid = std::process::id() as u16;
    let count = XID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut raw = [0u8; 12];
    raw[..4].copy_from_slice(&secs.to_be_bytes());
    raw[4..7].copy_from_slice(&machine);
    raw[7..9].copy_from_slice(&pid.to_be_bytes());
    raw[9..12].copy_from_slice(&count.to_be_bytes()[1..]);
    let bits = u128::from_be_bytes({
        let mut b = [0u8; 16];
        b[..12].copy_from_slice(&raw);
        b
    });
    (0..20)
        .map(|i| {
            let shift = 128 - 5 * (i + 1);
            char::from(XID_ALPHABET[((bits >> shift) & 0x1f) as usize])
        })
        .collect()
}

/// One stored event.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub id: String,
    pub actor_id: String,
    pub at: DateTime<Utc>,
    /// Full message name, e.g. `machine.MachineStatusEvent`.
    pub name: &'static str,
    pub value: Vec<u8>,
}

#[derive(Debug)]
struct Inner {
    backlog: VecDeque<StoredEvent>,
}

/// The event log of one machine.
#[derive(Debug)]
pub(crate) struct EventLog {
    machine: [u8; 3],
    inner: Mutex<Inner>,
    live: broadcast::Sender<StoredEvent>,
    /// Woken on every new event (the sink publisher waits on it).
    pub notify: Notify,
}

impl EventLog {
    pub fn new(machine: [u8; 3]) -> Self {
        Self {
            machine,
            inner: Mutex::new(Inner {
                backlog: VecDeque::new(),
            }),
            live: broadcast::channel(1024).0,
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an event and returns its id.
    pub fn emit(&self, name: &'static str, msg: &impl Message, actor_id: &str) -> String {
        let ev = StoredEvent {
            id: xid(self.machine),
            actor_id: actor_id.to_owned(),
            at: Utc::now(),
            name,
            value: msg.encode_to_vec(),
        };
        let id = ev.id.clone();
        {
            let mut inner = self.lock();
            inner.backlog.push_back(ev.clone());
            if inner.backlog.len() > BACKLOG {
                inner.backlog.pop_front();
            }
            let _ = self.live.send(ev);
        }
        self.notify.notify_waiters();
        id
    }

    /// Clears the backlog (a new boot: Talos keeps events in memory).
    pub fn clear(&self) {
        self.lock().backlog.clear();
    }

    /// A snapshot of the backlog and a subscription to later events, taken together.
    pub fn snapshot_and_subscribe(&self) -> (Vec<StoredEvent>, broadcast::Receiver<StoredEvent>) {
        let inner = self.lock();
        (
            inner.backlog.iter().cloned().collect(),
            self.live.subscribe(),
        )
    }

    /// Events after `id` (all events when `id` is `None` or no longer in the backlog).
    pub fn after(&self, id: Option<&str>) -> Vec<StoredEvent> {
        let inner = self.lock();
        let start = id
            .and_then(|id| inner.backlog.iter().position(|e| e.id == id))
            .map_or(0, |p| p + 1);
        inner.backlog.iter().skip(start).cloned().collect()
    }

    /// Emits a `MachineStatusEvent`.
    pub fn machine_status(
        &self,
        stage: pb::machine_status_event::MachineStage,
        ready: bool,
        unmet: &[(&str, &str)],
    ) {
        let msg = pb::MachineStatusEvent {
            stage: stage as i32,
            status: Some(pb::machine_status_event::MachineStatus {
                ready,
                unmet_conditions: unmet
                    .iter()
                    .map(
                        |(n, r)| pb::machine_status_event::machine_status::UnmetCondition {
                            name: (*n).to_owned(),
                            reason: (*r).to_owned(),
                        },
                    )
                    .collect(),
            }),
        };
        self.emit(satusky_proto::event_names::MACHINE_STATUS, &msg, "");
    }

    /// Emits a `SequenceEvent`.
    pub fn sequence(&self, sequence: &str, action: pb::sequence_event::Action, actor_id: &str) {
        let msg = pb::SequenceEvent {
            sequence: sequence.to_owned(),
            action: action as i32,
            error: None,
        };
        self.emit(satusky_proto::event_names::SEQUENCE, &msg, actor_id);
    }

    /// Emits a `PhaseEvent`.
    pub fn phase(&self, phase: &str, action: pb::phase_event::Action, actor_id: &str) {
        let msg = pb::PhaseEvent {
            phase: phase.to_owned(),
            action: action as i32,
        };
        self.emit(satusky_proto::event_names::PHASE, &msg, actor_id);
    }

    /// Emits a `ServiceStateEvent`.
    pub fn service(
        &self,
        service: &str,
        action: pb::service_state_event::Action,
        message: &str,
        healthy: Option<bool>,
    ) {
        let msg = pb::ServiceStateEvent {
            service: service.to_owned(),
            action: action as i32,
            message: message.to_owned(),
            health: Some(pb::ServiceHealth {
                unknown: healthy.is_none(),
                healthy: healthy.unwrap_or(false),
                last_message: String::new(),
                last_change: None,
            }),
        };
        self.emit(satusky_proto::event_names::SERVICE_STATE, &msg, "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xids_are_twenty_chars_and_sort_in_creation_order() {
        let a = xid([1, 2, 3]);
        let b = xid([1, 2, 3]);
        assert_eq!(a.len(), 20);
        assert!(a < b, "{a} < {b}");
    }
}
