//! Feeds Talos runtime events from the event sink into machine histories.
//!
//! The sink names the machine by the source IP of `Publish` (its overlay
//! address). Recorded: machine stage changes (`talos.stage`), sequences
//! (`talos.sequence`), configuration errors (`talos.config_error`) and failed
//! services (`talos.service`); phases, tasks and healthy service transitions
//! are too chatty for a machine's history. Any event from a machine whose link
//! was down marks it up again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use satusky_core::services::Services;
use satusky_machines::events::Action;
use satusky_machines::{EventPayload, MachineStage, SinkEvent};
use tokio::sync::mpsc;

use crate::index::{MachineIndex, record};

fn stage_name(s: MachineStage) -> &'static str {
    match s {
        MachineStage::Unknown => "unknown",
        MachineStage::Booting => "booting",
        MachineStage::Installing => "installing",
        MachineStage::Maintenance => "maintenance",
        MachineStage::Running => "running",
        MachineStage::Rebooting => "rebooting",
        MachineStage::ShuttingDown => "shutting down",
        MachineStage::Resetting => "resetting",
        MachineStage::Upgrading => "upgrading",
    }
}

/// What to record for one event, if anything.
fn describe(
    payload: &EventPayload,
    last_stage: Option<&(MachineStage, bool)>,
) -> Option<(&'static str, String)> {
    match payload {
        EventPayload::MachineStatus {
            stage,
            ready,
            unmet_conditions,
        } => {
            if last_stage == Some(&(*stage, *ready)) {
                return None;
            }
            let mut msg = format!("Talos stage {}", stage_name(*stage));
            if *ready {
                msg.push_str(" (ready)");
            } else if !unmet_conditions.is_empty() {
                let unmet: Vec<String> = unmet_conditions
                    .iter()
                    .map(|(n, r)| {
                        if r.is_empty() {
                            n.clone()
                        } else {
                            format!("{n}: {r}")
                        }
                    })
                    .collect();
                msg = format!("{msg} (not ready: {})", unmet.join(", "));
            }
            Some(("talos.stage", msg))
        }
        EventPayload::Sequence {
            sequence,
            action,
            error,
        } => {
            let msg = match (action, error) {
                (_, Some(e)) if !e.is_empty() => format!("{sequence} sequence failed: {e}"),
                (Action::Start, _) => format!("{sequence} sequence started"),
                (Action::Stop, _) => format!("{sequence} sequence finished"),
                (Action::Noop, _) => return None,
            };
            Some(("talos.sequence", msg))
        }
        EventPayload::ConfigLoadError(e) => Some((
            "talos.config_error",
            format!("configuration failed to load: {e}"),
        )),
        EventPayload::ConfigValidationError(e) => Some((
            "talos.config_error",
            format!("configuration is invalid: {e}"),
        )),
        EventPayload::ServiceState {
            service,
            state,
            message,
            ..
        } if state == "Failed" => Some((
            "talos.service",
            format!("service {service} failed: {message}"),
        )),
        _ => None,
    }
}

/// Events from a peer not yet known as a machine (Talos replays its backlog
/// as soon as the link is up, possibly before admission finished) wait here.
const PENDING_MAX: usize = 512;
const PENDING_AGE: Duration = Duration::from_mins(1);

struct Consumer {
    services: Services,
    index: Arc<MachineIndex>,
    stages: HashMap<String, (MachineStage, bool)>,
    pending: HashMap<IpAddr, Vec<(Instant, EventPayload)>>,
}

impl Consumer {
    async fn handle(&mut self, id: &str, payload: EventPayload) {
        if let Some((kind, message)) = describe(&payload, self.stages.get(id)) {
            record(&self.services, id, kind, message).await;
        }
        if let EventPayload::MachineStatus { stage, ready, .. } = payload {
            self.stages.insert(id.to_owned(), (stage, ready));
        }
    }

    async fn machine(&mut self, ip: IpAddr) -> Option<String> {
        let id = self.index.by_ip(&self.services, ip).await?;
        if self.index.connected(&id) == Some(false) {
            self.index.set_connected(&id, true);
            if let Err(e) = self.services.machine_link_changed(&id, true).await {
                tracing::warn!(machine.id = %id, error = %e, "could not mark the link up");
            }
        }
        Some(id)
    }

    async fn event(&mut self, ev: SinkEvent) {
        let Some(peer) = ev.peer else { return };
        let ip = peer.ip();
        if let Some(id) = self.machine(ip).await {
            self.flush(ip, &id).await;
            self.handle(&id, ev.event.payload).await;
        } else {
            let q = self.pending.entry(ip).or_default();
            if q.len() < PENDING_MAX {
                q.push((Instant::now(), ev.event.payload));
            }
        }
    }

    async fn flush(&mut self, ip: IpAddr, id: &str) {
        for (_, payload) in self.pending.remove(&ip).unwrap_or_default() {
            self.handle(id, payload).await;
        }
    }

    /// Retries the waiting peers; forgets events older than a minute.
    async fn retry(&mut self) {
        self.pending.retain(|_, q| {
            q.retain(|(at, _)| at.elapsed() < PENDING_AGE);
            !q.is_empty()
        });
        let ips: Vec<IpAddr> = self.pending.keys().copied().collect();
        for ip in ips {
            if let Some(id) = self.machine(ip).await {
                self.flush(ip, &id).await;
            }
        }
    }
}

/// Consumes the sink's channel until it closes.
pub(crate) async fn run(
    services: Services,
    index: Arc<MachineIndex>,
    mut rx: mpsc::Receiver<SinkEvent>,
) {
    let mut c = Consumer {
        services,
        index,
        stages: HashMap::new(),
        pending: HashMap::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => c.event(ev).await,
                None => return,
            },
            _ = tick.tick(), if !c.pending.is_empty() => c.retry().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_stages_are_recorded_once() {
        let p = EventPayload::MachineStatus {
            stage: MachineStage::Rebooting,
            ready: false,
            unmet_conditions: vec![("sequence".into(), "reboot".into())],
        };
        let (kind, msg) = describe(&p, None).unwrap_or_default();
        assert_eq!(kind, "talos.stage");
        assert_eq!(msg, "Talos stage rebooting (not ready: sequence: reboot)");
        assert!(describe(&p, Some(&(MachineStage::Rebooting, false))).is_none());
    }
}
