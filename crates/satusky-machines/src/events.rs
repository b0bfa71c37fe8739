//! Talos runtime events as plain Rust, decoded from `google.protobuf.Any` payloads of
//! the event sink and of `MachineService/Events`.

use prost::Message;
use satusky_proto::{event_message_name, event_names, machine as pb};

/// One Talos runtime event.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineEvent {
    /// Event id (an xid; ordered by time).
    pub id: String,
    /// The actor (API call) that caused it, if any.
    pub actor_id: String,
    /// What happened.
    pub payload: EventPayload,
}

/// The machine stage of a `MachineStatusEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineStage {
    /// `UNKNOWN`.
    Unknown,
    /// `BOOTING`.
    Booting,
    /// `INSTALLING`.
    Installing,
    /// `MAINTENANCE`.
    Maintenance,
    /// `RUNNING`.
    Running,
    /// `REBOOTING`.
    Rebooting,
    /// `SHUTTING_DOWN`.
    ShuttingDown,
    /// `RESETTING`.
    Resetting,
    /// `UPGRADING`.
    Upgrading,
}

impl MachineStage {
    fn from_wire(v: i32) -> Self {
        use pb::machine_status_event::MachineStage as S;
        match S::try_from(v).unwrap_or(S::Unknown) {
            S::Unknown => Self::Unknown,
            S::Booting => Self::Booting,
            S::Installing => Self::Installing,
            S::Maintenance => Self::Maintenance,
            S::Running => Self::Running,
            S::Rebooting => Self::Rebooting,
            S::ShuttingDown => Self::ShuttingDown,
            S::Resetting => Self::Resetting,
            S::Upgrading => Self::Upgrading,
        }
    }
}

/// Start/stop of a sequence, phase or task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `NOOP` (sequences only).
    Noop,
    /// `START`.
    Start,
    /// `STOP`.
    Stop,
}

/// An event payload.
#[derive(Debug, Clone, PartialEq)]
pub enum EventPayload {
    /// `machine.SequenceEvent`: boot, reboot, shutdown, reset, install, … sequences.
    Sequence {
        /// Sequence name, e.g. `reboot`.
        sequence: String,
        /// Start or stop.
        action: Action,
        /// The error message, when the sequence failed.
        error: Option<String>,
    },
    /// `machine.PhaseEvent`.
    Phase {
        /// Phase name.
        phase: String,
        /// Start or stop.
        action: Action,
    },
    /// `machine.TaskEvent`.
    Task {
        /// Task name.
        task: String,
        /// Start or stop.
        action: Action,
    },
    /// `machine.ServiceStateEvent`.
    ServiceState {
        /// Service id, e.g. `kubelet`.
        service: String,
        /// State name, e.g. `Running` (the `Action` enum, capitalised as talosctl shows it).
        state: String,
        /// Message.
        message: String,
        /// Health, when known.
        healthy: Option<bool>,
    },
    /// `machine.RestartEvent`.
    Restart {
        /// The reboot command.
        cmd: i64,
    },
    /// `machine.ConfigLoadErrorEvent`.
    ConfigLoadError(String),
    /// `machine.ConfigValidationErrorEvent`.
    ConfigValidationError(String),
    /// `machine.AddressEvent`.
    Address {
        /// Hostname.
        hostname: String,
        /// Addresses.
        addresses: Vec<String>,
    },
    /// `machine.MachineStatusEvent`: the best single machine-state signal.
    MachineStatus {
        /// Stage.
        stage: MachineStage,
        /// Whether the machine is ready.
        ready: bool,
        /// Unmet conditions as `(name, reason)`.
        unmet_conditions: Vec<(String, String)>,
    },
    /// A payload this crate does not decode.
    Unknown {
        /// Its type URL.
        type_url: String,
    },
}

fn action3(v: i32) -> Action {
    match v {
        1 => Action::Start,
        2 => Action::Stop,
        _ => Action::Noop,
    }
}

fn action2(v: i32) -> Action {
    if v == 1 { Action::Stop } else { Action::Start }
}

/// Decodes an event payload. Undecodable payloads become [`EventPayload::Unknown`].
pub(crate) fn decode_payload(any: Option<&prost_types::Any>) -> EventPayload {
    let Some(any) = any else {
        return EventPayload::Unknown {
            type_url: String::new(),
        };
    };
    let unknown = || EventPayload::Unknown {
        type_url: any.type_url.clone(),
    };
    let bytes = any.value.as_slice();
    match event_message_name(&any.type_url) {
        event_names::SEQUENCE => pb::SequenceEvent::decode(bytes).map_or_else(
            |_| unknown(),
            |e| EventPayload::Sequence {
                sequence: e.sequence,
                action: action3(e.action),
                error: e.error.map(|x| x.message),
            },
        ),
        event_names::PHASE => pb::PhaseEvent::decode(bytes).map_or_else(
            |_| unknown(),
            |e| EventPayload::Phase {
                phase: e.phase,
                action: action2(e.action),
            },
        ),
        event_names::TASK => pb::TaskEvent::decode(bytes).map_or_else(
            |_| unknown(),
            |e| EventPayload::Task {
                task: e.task,
                action: action2(e.action),
            },
        ),
        event_names::SERVICE_STATE => pb::ServiceStateEvent::decode(bytes).map_or_else(
            |_| unknown(),
            |e| {
                let state = pb::service_state_event::Action::try_from(e.action)
                    .map_or_else(|_| e.action.to_string(), |a| title(a.as_str_name()));
                EventPayload::ServiceState {
                    service: e.service,
                    state,
                    message: e.message,
                    healthy: e.health.and_then(|h| (!h.unknown).then_some(h.healthy)),
                }
            },
        ),
        event_names::RESTART => pb::RestartEvent::decode(bytes)
            .map_or_else(|_| unknown(), |e| EventPayload::Restart { cmd: e.cmd }),
        event_names::CONFIG_LOAD_ERROR => pb::ConfigLoadErrorEvent::decode(bytes)
            .map_or_else(|_| unknown(), |e| EventPayload::ConfigLoadError(e.error)),
        event_names::CONFIG_VALIDATION_ERROR => pb::ConfigValidationErrorEvent::decode(bytes)
            .map_or_else(
                |_| unknown(),
                |e| EventPayload::ConfigValidationError(e.error),
            ),
        event_names::ADDRESS => pb::AddressEvent::decode(bytes).map_or_else(
            |_| unknown(),
            |e| EventPayload::Address {
                hostname: e.hostname,
                addresses: e.addresses,
            },
        ),
        event_names::MACHINE_STATUS => pb::MachineStatusEvent::decode(bytes).map_or_else(
            |_| unknown(),
            |e| {
                let status = e.status.unwrap_or_default();
                EventPayload::MachineStatus {
                    stage: MachineStage::from_wire(e.stage),
                    ready: status.ready,
                    unmet_conditions: status
                        .unmet_conditions
                        .into_iter()
                        .map(|c| (c.name, c.reason))
                        .collect(),
                }
            },
        ),
        _ => unknown(),
    }
}

fn title(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut c = lower.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}
