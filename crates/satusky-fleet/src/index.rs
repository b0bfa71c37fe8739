//! What the runtime's tasks share: the machines as last read from the store
//! (by link address, for the event sink), and recording machine events.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use satusky_core::machines::{MachineEventRecord, MachineRecord, is_live};
use satusky_core::pagination::PageRequest;
use satusky_core::services::Services;

/// Every machine record, oldest first.
pub(crate) async fn all_machines(services: &Services) -> satusky_core::Result<Vec<MachineRecord>> {
    const BATCH: u32 = 500;
    let mut page = PageRequest::first(BATCH);
    let mut out = Vec::new();
    loop {
        let rows = services.store().list_all_machines(&page).await?;
        let more = rows.len() > BATCH as usize;
        out.extend(rows.into_iter().take(BATCH as usize));
        match (more, out.last()) {
            (true, Some(last)) => page.after = Some(last.id.clone()),
            _ => return Ok(out),
        }
    }
}

/// Appends an event to a machine's history. Core has no public method for
/// events observed outside its operations, so this goes through its store
/// port; a failure is logged.
pub(crate) async fn record(services: &Services, machine_id: &str, kind: &str, message: String) {
    let rec = MachineEventRecord {
        machine_id: machine_id.to_owned(),
        seq: 0,
        kind: kind.to_owned(),
        message,
        at: services.clock().now(),
    };
    if let Err(e) = services.store().append_machine_event(&rec).await {
        tracing::error!(machine.id = %machine_id, error = &e as &dyn std::error::Error, "failed to record machine event");
    }
}

/// The IP a machine's in-tunnel traffic (event sink, logs) comes from: the
/// host of its Talos endpoint (its overlay address in production).
pub(crate) fn link_ip(m: &MachineRecord) -> Option<IpAddr> {
    m.talos_endpoint
        .parse::<SocketAddr>()
        .ok()
        .map(|a| a.ip())
        .or_else(|| m.overlay_address.parse::<IpAddr>().ok())
}

#[derive(Debug, Default)]
struct Inner {
    by_ip: HashMap<IpAddr, String>,
    connected: HashMap<String, bool>,
    refreshed: Option<Instant>,
}

/// Live machines by link IP, refreshed from the store on demand.
#[derive(Debug, Default)]
pub(crate) struct MachineIndex {
    inner: Mutex<Inner>,
}

impl MachineIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn update(&self, machines: &[MachineRecord]) {
        let mut by_ip = HashMap::new();
        let mut connected = HashMap::new();
        for m in machines.iter().filter(|m| is_live(m.state)) {
            if let Some(ip) = link_ip(m) {
                by_ip.insert(ip, m.id.clone());
            }
            if let Ok(ip) = m.overlay_address.parse::<IpAddr>() {
                by_ip.entry(ip).or_insert_with(|| m.id.clone());
            }
            connected.insert(m.id.clone(), m.connected);
        }
        let mut g = self.lock();
        g.by_ip = by_ip;
        g.connected = connected;
        g.refreshed = Some(Instant::now());
    }

    /// The live machine with this link IP; refreshes from the store (at most
    /// once a second) when it is not known.
    pub(crate) async fn by_ip(&self, services: &Services, ip: IpAddr) -> Option<String> {
        let (hit, stale) = {
            let g = self.lock();
            (
                g.by_ip.get(&ip).cloned(),
                g.refreshed
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1)),
            )
        };
        if hit.is_some() || !stale {
            return hit;
        }
        if let Ok(all) = all_machines(services).await {
            self.update(&all);
        }
        self.lock().by_ip.get(&ip).cloned()
    }

    pub(crate) fn connected(&self, id: &str) -> Option<bool> {
        self.lock().connected.get(id).copied()
    }

    pub(crate) fn set_connected(&self, id: &str, connected: bool) {
        self.lock().connected.insert(id.to_owned(), connected);
    }
}
