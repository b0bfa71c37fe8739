//! How machines, join tokens, bulk results, clusters, zones and log lines
//! look in a table. JSON and YAML print the wire types as they are.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use satusky_types::clusters::{Cluster, Zone};
use satusky_types::machines::{
    BulkItem, DrainReport, JoinToken, Machine, MachineEvent, MachineMetrics, MachineOperation,
};
use serde::Serialize;

use crate::output::{Fields, Row, opt, opt_time, time};

/// `16.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `pool=gpu,ssd=true`, or `-`.
pub fn labels(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "-".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// `drain 2/3 (drain_node), running`.
pub fn operation_line(op: &MachineOperation) -> String {
    let total = op.plan.len();
    let step = usize::try_from(op.step).unwrap_or(total).min(total);
    let mut text = format!("{} {step}/{total}", op.kind);
    if let Some(next) = op.plan.get(step) {
        let _ = write!(text, " ({next})");
    }
    let _ = write!(text, ", {}", op.phase);
    if op.cancel_requested && op.phase == "running" {
        text.push_str(", cancel requested");
    }
    if let Some(d) = &op.drain {
        let _ = write!(text, ", {}", drain_line(d));
    }
    if let Some(m) = &op.message {
        let _ = write!(text, ": {m}");
    }
    text
}

/// `drain running: 4 evicted, 1 remaining`.
pub fn drain_line(d: &DrainReport) -> String {
    format!(
        "drain {}: {} evicted, {} remaining",
        d.phase, d.evicted, d.remaining
    )
}

/// What keeps pods on a node: `default/web-1: Cannot evict pod … (PodDisruptionBudget web)`.
pub fn blockers(d: &DrainReport) -> Vec<String> {
    d.blockers
        .iter()
        .map(|b| format!("{}/{}: {}", b.namespace, b.pod, b.reason))
        .collect()
}

impl Row for Machine {
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "STATE",
        "ZONE",
        "CPU",
        "MEMORY",
        "LABELS",
        "VISIBILITY",
        "OPERABLE",
        "ID",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.state.as_str().to_owned(),
            self.zone.clone(),
            self.hardware.cpu_cores.to_string(),
            bytes(self.hardware.memory_bytes),
            labels(&self.labels),
            self.visibility.as_str().to_owned(),
            yes(self.operable),
            self.id.clone(),
        ]
    }
}

impl Fields for Machine {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("Name", self.name.clone()),
            ("ID", self.id.clone()),
            ("State", self.state.as_str().to_owned()),
            ("Org", self.org.clone()),
            ("Visibility", self.visibility.as_str().to_owned()),
            ("Operable", yes(self.operable)),
            ("Zone", self.zone.clone()),
            ("Node", opt(self.node_name.as_deref())),
            (
                "Hardware",
                format!(
                    "{} CPU, {}, {}{}",
                    self.hardware.cpu_cores,
                    bytes(self.hardware.memory_bytes),
                    self.hardware.arch,
                    if self.hardware.gpus > 0 {
                        format!(", {} GPU", self.hardware.gpus)
                    } else {
                        String::new()
                    }
                ),
            ),
            ("Labels", labels(&self.labels)),
            (
                "Link",
                format!(
                    "{} ({})",
                    if self.link.connected {
                        "connected"
                    } else {
                        "disconnected"
                    },
                    self.link.address
                ),
            ),
        ];
        if let Some(op) = &self.operation {
            f.push(("Operation", operation_line(op)));
        }
        if let Some(note) = &self.note {
            f.push(("Note", note.clone()));
        }
        f.push(("Created", time(&self.created_at)));
        f
    }
}

/// Every detail of a machine, for `machine inspect`: the record (ownership,
/// labels, hardware, link, operation) merged with its live health (Talos
/// services, node conditions); `health` is `Err` with why when it could not
/// be read.
pub struct Inspect<'a> {
    pub machine: &'a Machine,
    pub health: Result<satusky_types::machines::MachineHealth, String>,
}

impl Fields for Inspect<'_> {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let m = self.machine;
        let mut f = m.fields();
        f.insert(2, ("UUID", m.uuid.clone()));
        f.push(("System labels", labels(&m.system_labels)));
        f.push((
            "Disks",
            if m.hardware.disks.is_empty() {
                "-".to_owned()
            } else {
                m.hardware.disks.join(", ")
            },
        ));
        f.push(("Last seen", opt_time(m.link.last_seen_at.as_ref())));
        if let Some(op) = &m.operation {
            f.push(("Operation plan", op.plan.join(" → ")));
            f.push(("Operation started", time(&op.started_at)));
            f.push(("Operation finished", opt_time(op.finished_at.as_ref())));
            if let Some(d) = &op.drain {
                for b in blockers(d) {
                    f.push(("Blocked by", b));
                }
            }
        }
        match &self.health {
            Ok(h) => {
                f.push(("Health", h.verdict.clone()));
                f.extend(condition_fields(&h.conditions));
                if let Some(s) = services_line(&h.services) {
                    f.push(("Services", s));
                }
            }
            Err(why) => f.push(("Health", format!("unavailable: {why}"))),
        }
        f.push(("Updated", time(&m.updated_at)));
        f
    }
}

impl Serialize for Inspect<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut v = serde_json::to_value(self.machine).map_err(S::Error::custom)?;
        if let (serde_json::Value::Object(o), Ok(h)) = (&mut v, &self.health) {
            o.insert(
                "health".to_owned(),
                serde_json::to_value(h).map_err(S::Error::custom)?,
            );
        }
        v.serialize(s)
    }
}

/// One `Condition` field per condition: `NodeReady=True (KubeletReady): …`.
fn condition_fields(conditions: &[satusky_types::apps::Condition]) -> Vec<(&'static str, String)> {
    conditions
        .iter()
        .map(|c| {
            let mut line = c.type_.clone() + "=" + &c.status;
            if let Some(r) = &c.reason {
                line = format!("{line} ({r})");
            }
            if let Some(m) = &c.message {
                line = format!("{line}: {m}");
            }
            ("Condition", line)
        })
        .collect()
}

/// `apid Running, etcd Failed (unhealthy)`, or `None` without services.
fn services_line(services: &[satusky_types::machines::MachineService]) -> Option<String> {
    (!services.is_empty()).then(|| {
        services
            .iter()
            .map(|s| {
                if s.healthy {
                    format!("{} {}", s.id, s.state)
                } else {
                    format!("{} {} (unhealthy)", s.id, s.state)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// `machine status`: where a machine is, in JSON too.
#[derive(Debug, Serialize)]
pub struct MachineStatus {
    pub id: String,
    pub name: String,
    pub state: satusky_types::machines::MachineState,
    pub connected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<MachineOperation>,
    /// `healthy`, `degraded`, `unhealthy` or `unknown`.
    pub verdict: String,
    pub conditions: Vec<satusky_types::apps::Condition>,
    pub services: Vec<satusky_types::machines::MachineService>,
}

impl MachineStatus {
    pub fn new(m: &Machine, h: satusky_types::machines::MachineHealth) -> Self {
        Self {
            id: m.id.clone(),
            name: m.name.clone(),
            state: m.state,
            connected: m.link.connected,
            last_seen_at: m.link.last_seen_at,
            node_name: m.node_name.clone(),
            operation: m.operation.clone(),
            verdict: h.verdict,
            conditions: h.conditions,
            services: h.services,
        }
    }
}

impl Fields for MachineStatus {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("Name", self.name.clone()),
            ("State", self.state.as_str().to_owned()),
            ("Health", self.verdict.clone()),
            ("Link", yes(self.connected)),
            ("Last seen", opt_time(self.last_seen_at.as_ref())),
            ("Node", opt(self.node_name.as_deref())),
            (
                "Operation",
                self.operation
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), operation_line),
            ),
        ];
        if let Some(d) = self.operation.as_ref().and_then(|o| o.drain.as_ref()) {
            for b in blockers(d) {
                f.push(("Blocked by", b));
            }
        }
        f.extend(condition_fields(&self.conditions));
        if let Some(s) = services_line(&self.services) {
            f.push(("Services", s));
        }
        f
    }
}

/// One label of `machine labels list`.
#[derive(Debug, Serialize)]
pub struct LabelView {
    pub key: String,
    pub value: String,
    /// `user` (settable) or `system` (read-only).
    pub kind: &'static str,
}

impl Row for LabelView {
    const HEADERS: &'static [&'static str] = &["KEY", "VALUE", "KIND"];
    fn cells(&self) -> Vec<String> {
        vec![self.key.clone(), self.value.clone(), self.kind.to_owned()]
    }
}

impl Row for satusky_types::machines::MachineRoom {
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "NODE",
        "SCHEDULABLE",
        "CPU FREE",
        "MEMORY FREE",
        "PODS",
        "FITS",
    ];
    fn cells(&self) -> Vec<String> {
        let cpu_free = self
            .cpu_allocatable_millis
            .saturating_sub(self.cpu_requested_millis);
        vec![
            self.name.clone(),
            opt(self.node_name.as_deref()),
            if self.schedulable {
                "yes".to_owned()
            } else {
                format!("no ({})", self.reason.as_deref().unwrap_or("unknown"))
            },
            format!("{cpu_free}m/{}m", self.cpu_allocatable_millis),
            format!(
                "{}/{}",
                bytes(
                    self.memory_allocatable_bytes
                        .saturating_sub(self.memory_requested_bytes)
                ),
                bytes(self.memory_allocatable_bytes)
            ),
            format!("{}/{}", self.pods, self.pods_allocatable),
            self.fits.to_string(),
        ]
    }
}

impl Row for MachineMetrics {
    const HEADERS: &'static [&'static str] = &[
        "AT", "CPU", "MEMORY", "LOAD", "NET RX", "NET TX", "DISK R", "DISK W",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            time(&self.at),
            format!("{:.1}%", self.cpu_percent),
            format!(
                "{}/{}",
                bytes(self.memory_used_bytes),
                bytes(self.memory_total_bytes)
            ),
            format!("{:.2}", self.load1),
            format!("{}/s", rate(self.net_rx_bytes_per_sec)),
            format!("{}/s", rate(self.net_tx_bytes_per_sec)),
            format!("{}/s", rate(self.disk_read_bytes_per_sec)),
            format!("{}/s", rate(self.disk_write_bytes_per_sec)),
        ]
    }
}

impl Row for MachineEvent {
    const HEADERS: &'static [&'static str] = &["SEQ", "AT", "KIND", "MESSAGE"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.seq.to_string(),
            time(&self.at),
            self.kind.clone(),
            self.message.clone(),
        ]
    }
}

/// One line of `machine events --follow` in table mode.
pub fn machine_event_line(e: &MachineEvent) -> String {
    format!("{}  {}  {}  {}", e.seq, time(&e.at), e.kind, e.message)
}

impl Fields for MachineMetrics {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("At", time(&self.at)),
            ("CPU", format!("{:.1} %", self.cpu_percent)),
            (
                "Memory",
                format!(
                    "{} / {}",
                    bytes(self.memory_used_bytes),
                    bytes(self.memory_total_bytes)
                ),
            ),
            ("Load (1 min)", format!("{:.2}", self.load1)),
            (
                "Network",
                format!(
                    "rx {}/s, tx {}/s",
                    rate(self.net_rx_bytes_per_sec),
                    rate(self.net_tx_bytes_per_sec)
                ),
            ),
            (
                "Disk",
                format!(
                    "read {}/s, write {}/s",
                    rate(self.disk_read_bytes_per_sec),
                    rate(self.disk_write_bytes_per_sec)
                ),
            ),
        ]
    }
}

/// One line of `machine metrics --watch` in table mode.
pub fn metrics_line(m: &MachineMetrics) -> String {
    format!(
        "{}  cpu {:.1}%  mem {}/{}  load {:.2}  net rx {}/s tx {}/s  disk r {}/s w {}/s",
        time(&m.at),
        m.cpu_percent,
        bytes(m.memory_used_bytes),
        bytes(m.memory_total_bytes),
        m.load1,
        rate(m.net_rx_bytes_per_sec),
        rate(m.net_tx_bytes_per_sec),
        rate(m.disk_read_bytes_per_sec),
        rate(m.disk_write_bytes_per_sec),
    )
}

fn rate(v: f64) -> String {
    if v.is_finite() && v >= 0.0 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "display only; checked finite and non-negative"
        )]
        let n = v.round() as u64;
        bytes(n)
    } else {
        "-".to_owned()
    }
}

impl Row for BulkItem {
    const HEADERS: &'static [&'static str] = &["NAME", "RESULT", "STATE", "MESSAGE", "ID"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            if self.ok { "ok" } else { "failed" }.to_owned(),
            self.state
                .map_or_else(|| "-".to_owned(), |s| s.as_str().to_owned()),
            match (&self.code, &self.message) {
                (Some(c), Some(m)) => format!("{m} ({c})"),
                (Some(c), None) => c.to_string(),
                (None, Some(m)) => m.clone(),
                (None, None) => "-".to_owned(),
            },
            self.id.clone(),
        ]
    }
}

impl Row for JoinToken {
    const HEADERS: &'static [&'static str] = &["NAME", "EXPIRES", "REVOKED", "CREATED", "ID"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            time(&self.expires_at),
            yes(self.revoked),
            time(&self.created_at),
            self.id.clone(),
        ]
    }
}

impl Fields for JoinToken {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Name", self.name.clone()),
            ("ID", self.id.clone()),
            ("Org", self.org.clone()),
            ("Expires", time(&self.expires_at)),
            ("Revoked", yes(self.revoked)),
            ("Created", time(&self.created_at)),
        ]
    }
}

impl Row for Cluster {
    const HEADERS: &'static [&'static str] = &[
        "NAME", "REGION", "ZONE", "PRIORITY", "DEFAULT", "HEALTH", "ID",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.region.clone(),
            self.zone.clone(),
            self.priority.to_string(),
            yes(self.default),
            match &self.health_message {
                Some(m) => format!("{} ({m})", self.health),
                None => self.health.clone(),
            },
            self.id.clone(),
        ]
    }
}

impl Row for Zone {
    const HEADERS: &'static [&'static str] = &["ZONE", "REGION", "CLUSTERS", "HEALTHY"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.zone.clone(),
            self.region.clone(),
            self.clusters.to_string(),
            yes(self.healthy),
        ]
    }
}
