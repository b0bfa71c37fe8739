//! One simulated machine: its identity, state, and the driver task that boots it,
//! provisions it, serves its API, publishes its events and runs its kubelet.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use satusky_proto::machine as pb;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::events::EventLog;
use crate::hardware::Hardware;
use crate::logs::LogStore;
use crate::metrics::Metrics;
use crate::pki::Identity;
use crate::{kubelet, siderolink, sink};

use pb::machine_status_event::MachineStage as PbStage;
use pb::phase_event::Action as PhaseAction;
use pb::sequence_event::Action as SeqAction;
use pb::service_state_event::Action as SvcAction;

/// Where a machine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Powered off.
    Off,
    /// Booting.
    Booting,
    /// Running without a machine config, waiting to be claimed.
    Maintenance,
    /// Installing Talos (after [`Machine::install`]).
    Installing,
    /// Running with a config; the kubelet is up.
    Running,
    /// Rebooting.
    Rebooting,
    /// Shutting down.
    ShuttingDown,
    /// Resetting (wiping).
    Resetting,
}

/// Outcome of the last SideroLink `Provision` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisionStatus {
    /// No SideroLink endpoint configured.
    NotConfigured,
    /// Not tried yet in this boot.
    Pending,
    /// Admitted.
    Provisioned(ProvisionInfo),
    /// The server answered with an error status.
    Refused {
        /// gRPC code.
        code: tonic::Code,
        /// Status message.
        message: String,
    },
    /// The server could not be reached.
    Unreachable {
        /// Why.
        message: String,
    },
}

/// What the provisioning server handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionInfo {
    /// Node overlay address with prefix length.
    pub node_address_prefix: String,
    /// Server overlay address.
    pub server_address: String,
    /// WireGuard endpoints as sent on the wire.
    pub server_endpoints: Vec<String>,
    /// Server WireGuard public key.
    pub server_public_key: String,
}

/// Faults the machine can be told to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Its API accepts calls and never answers.
    NeverAnswers,
}

#[derive(Debug)]
pub(crate) enum Command {
    Reboot { actor_id: String },
    Shutdown { actor_id: String },
    Reset { reboot: bool, actor_id: String },
    Install,
    PowerOn,
    DropLink(Duration),
    Stop,
}

#[derive(Debug, Clone)]
pub(crate) struct ServiceRecord {
    pub id: String,
    pub state: String,
    pub healthy: Option<bool>,
    pub events: Vec<(String, String, chrono::DateTime<chrono::Utc>)>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub stage: Stage,
    pub installed: bool,
    pub provision: ProvisionStatus,
    pub metrics: Metrics,
    pub services: Vec<ServiceRecord>,
    pub boot_id: String,
    pub boots: u64,
    pub link_up: bool,
}

/// Everything the tasks of one machine share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub index: usize,
    pub uuid: String,
    pub hostname: String,
    pub hardware: Hardware,
    pub api_addr: SocketAddr,
    /// Source address of outgoing connections (per-machine loopback), if any.
    pub source_ip: Option<std::net::IpAddr>,
    pub server_identity: Identity,
    /// Served in maintenance mode: signed by the machine's own maintenance root.
    pub maintenance_identity: Identity,
    pub maintenance_ca_pem: String,
    pub unique_token: String,
    pub ca_pem: String,
    pub config: Arc<SimConfig>,
    pub seed: u64,
    pub state: Mutex<State>,
    pub stage_tx: watch::Sender<Stage>,
    pub provision_tx: watch::Sender<ProvisionStatus>,
    pub never_answers: watch::Sender<bool>,
    /// Bumped whenever the API goes down; open streams end when it changes.
    pub api_gen: watch::Sender<u64>,
    pub events: EventLog,
    pub logs: LogStore,
    pub commands: mpsc::UnboundedSender<Command>,
    /// The SideroLink WireGuard peer's key and counters.
    pub wireguard: crate::wireguard::LinkStats,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn stage(&self) -> Stage {
        self.lock().stage
    }

    fn set_stage(&self, stage: Stage) {
        self.lock().stage = stage;
        self.stage_tx.send_replace(stage);
    }

    pub fn set_provision(&self, status: ProvisionStatus) {
        self.lock().provision = status.clone();
        self.provision_tx.send_replace(status);
    }

    fn set_services(&self, installed: bool, state: &str, healthy: Option<bool>) {
        let ids: &[&str] = if installed {
            &[
                "apid",
                "containerd",
                "cri",
                "kubelet",
                "machined",
                "syslogd",
                "trustd",
                "udevd",
            ]
        } else {
            &["apid", "machined", "syslogd", "udevd"]
        };
        let now = chrono::Utc::now();
        let mut st = self.lock();
        st.services = ids
            .iter()
            .map(|id| ServiceRecord {
                id: (*id).to_owned(),
                state: state.to_owned(),
                healthy,
                events: vec![(format!("Service {state}"), state.to_owned(), now)],
            })
            .collect();
    }
}

/// A handle on one simulated machine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Machine {
    pub(crate) shared: Arc<Shared>,
}

/// Failure waiting for a machine.
#[derive(Debug, thiserror::Error)]
#[error("machine {machine} did not reach {wanted} within {timeout:?}")]
pub struct WaitTimeout {
    machine: String,
    wanted: String,
    timeout: Duration,
}

impl Machine {
    /// Index in the fleet.
    pub fn index(&self) -> usize {
        self.shared.index
    }

    /// SMBIOS UUID sent in `Provision`.
    pub fn uuid(&self) -> &str {
        &self.shared.uuid
    }

    /// Hostname, also the Kubernetes node name.
    pub fn hostname(&self) -> &str {
        &self.shared.hostname
    }

    /// Hardware.
    pub fn hardware(&self) -> &Hardware {
        &self.shared.hardware
    }

    /// Address of its Talos API (mTLS), reachable while the machine is up and its
    /// SideroLink is connected.
    pub fn api_addr(&self) -> SocketAddr {
        self.shared.api_addr
    }

    /// The machine's own address: its API listens there and, with per-machine
    /// loopback addresses, its event sink and provisioning calls come from it. The
    /// stand-in for its SideroLink overlay address.
    pub fn management_ip(&self) -> std::net::IpAddr {
        self.shared.api_addr.ip()
    }

    /// The overlay address handed out by the last successful `Provision`, if any.
    pub fn overlay_address(&self) -> Option<String> {
        match &self.shared.lock().provision {
            ProvisionStatus::Provisioned(info) => Some(
                info.node_address_prefix
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// The per-node unique token sent in `Provision` (`node_unique_token`): JSON
    /// `{"Fingerprint": sha256 of the sorted NIC MACs, "Token": random}`, kept across
    /// reboots and resets like Talos's META key `UniqueMachineToken`.
    pub fn unique_token(&self) -> &str {
        &self.shared.unique_token
    }

    /// PEM root of the certificate its API presents in maintenance mode (its own
    /// maintenance root, not the fleet CA, as on Talos).
    pub fn maintenance_ca_pem(&self) -> &str {
        &self.shared.maintenance_ca_pem
    }

    /// PEM certificate of its API server (signed by the fleet CA).
    pub fn server_cert_pem(&self) -> &str {
        &self.shared.server_identity.cert_pem
    }

    /// The labels its kubelet puts on the Kubernetes Node.
    pub fn node_labels(&self) -> std::collections::BTreeMap<String, String> {
        kubelet::node_labels(&self.shared)
    }

    /// Current stage.
    pub fn stage(&self) -> Stage {
        self.shared.stage()
    }

    /// Outcome of the last `Provision` call.
    pub fn provision_status(&self) -> ProvisionStatus {
        self.shared.lock().provision.clone()
    }

    /// Number of completed boots.
    pub fn boots(&self) -> u64 {
        self.shared.lock().boots
    }

    /// Waits until the machine is in `stage`.
    pub async fn wait_for_stage(&self, stage: Stage, timeout: Duration) -> Result<(), WaitTimeout> {
        let mut rx = self.shared.stage_tx.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s == stage))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|_| ())
            .ok_or_else(|| WaitTimeout {
                machine: self.shared.hostname.clone(),
                wanted: format!("{stage:?}"),
                timeout,
            })
    }

    /// Waits until `pred` holds for the provisioning status, and returns it.
    pub async fn wait_for_provision(
        &self,
        pred: impl Fn(&ProvisionStatus) -> bool,
        timeout: Duration,
    ) -> Result<ProvisionStatus, WaitTimeout> {
        let mut rx = self.shared.provision_tx.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| pred(s)))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|s| s.clone())
            .ok_or_else(|| WaitTimeout {
                machine: self.shared.hostname.clone(),
                wanted: "provisioning status".into(),
                timeout,
            })
    }

    fn send(&self, c: Command) {
        let _ = self.shared.commands.send(c);
    }

    /// Reboots, as `MachineService/Reboot` would.
    pub fn reboot(&self) {
        self.send(Command::Reboot {
            actor_id: String::new(),
        });
    }

    /// Powers off, as `MachineService/Shutdown` would.
    pub fn shutdown(&self) {
        self.send(Command::Shutdown {
            actor_id: String::new(),
        });
    }

    /// Wipes the machine back to maintenance mode and reboots it.
    pub fn reset(&self) {
        self.send(Command::Reset {
            reboot: true,
            actor_id: String::new(),
        });
    }

    /// Powers a machine that is off back on.
    pub fn power_on(&self) {
        self.send(Command::PowerOn);
    }

    /// Claims a machine in maintenance mode: installs Talos, reboots, and comes back
    /// running (joining Kubernetes). Stands in for `ApplyConfiguration`.
    pub fn install(&self) {
        self.send(Command::Install);
    }

    /// Fault: the SideroLink drops for `duration`: no WireGuard traffic, API
    /// unreachable, events held back. Then the link comes back by itself (the
    /// WireGuard peer returns from a new source port and handshakes again),
    /// without provisioning again.
    pub fn drop_link(&self, duration: Duration) {
        self.send(Command::DropLink(duration));
    }

    /// Fault: turns a fault on or off.
    pub fn set_fault(&self, fault: Fault, on: bool) {
        match fault {
            Fault::NeverAnswers => {
                self.shared.never_answers.send_replace(on);
            }
        }
    }
}

/// Tasks of one boot.
struct BootTasks {
    cancel: watch::Sender<bool>,
    link: JoinHandle<()>,
    sink: Option<JoinHandle<()>>,
    kubelet: Option<JoinHandle<()>>,
    kmsg: Option<JoinHandle<()>>,
    link_cmd: mpsc::UnboundedSender<Duration>,
}

impl BootTasks {
    async fn stop(self, shared: &Arc<Shared>, not_ready_message: Option<&str>) {
        self.cancel.send_replace(true);
        if let Some(k) = self.kubelet {
            let _ = tokio::time::timeout(Duration::from_secs(2), k).await;
        }
        if let Some(msg) = not_ready_message {
            kubelet::set_not_ready(shared, msg).await;
        }
        if let Some(s) = self.sink {
            // The sink publisher drains its backlog before it returns.
            let _ = tokio::time::timeout(Duration::from_secs(3), s).await;
        }
        if let Some(k) = self.kmsg {
            let _ = tokio::time::timeout(Duration::from_secs(1), k).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.link).await;
    }
}

fn start_boot(shared: &Arc<Shared>) -> BootTasks {
    let (cancel, cancel_rx) = watch::channel(false);
    let (link_cmd, link_rx) = mpsc::unbounded_channel();
    let link = tokio::spawn(siderolink::link_loop(
        shared.clone(),
        link_rx,
        cancel_rx.clone(),
    ));
    let sink = shared
        .config
        .event_sink
        .clone()
        .map(|addr| tokio::spawn(sink::publish_loop(shared.clone(), addr, cancel_rx.clone())));
    let kmsg = shared.config.kernel_log.clone().map(|addr| {
        tokio::spawn(crate::kmsg::stream_loop(
            shared.clone(),
            addr,
            cancel_rx.clone(),
        ))
    });
    let installed = shared.lock().installed;
    let kubelet = (installed && shared.config.kube.is_some())
        .then(|| tokio::spawn(kubelet::run(shared.clone(), cancel_rx)));
    BootTasks {
        cancel,
        link,
        sink,
        kubelet,
        kmsg,
        link_cmd,
    }
}

/// Boot sequence: fresh buffers and counters, events, then maintenance or running.
async fn boot(shared: &Arc<Shared>) -> BootTasks {
    shared.events.clear();
    shared.logs.clear();
    {
        let mut st = shared.lock();
        st.boots += 1;
        st.boot_id = uuid::Uuid::new_v4().to_string();
        st.metrics = Metrics::new(&shared.hardware, shared.seed.wrapping_add(st.boots));
        st.provision = if shared.config.siderolink.is_some() {
            ProvisionStatus::Pending
        } else {
            ProvisionStatus::NotConfigured
        };
    }
    shared.set_stage(Stage::Booting);
    let ev = &shared.events;
    ev.machine_status(PbStage::Booting, false, &[]);
    ev.sequence("boot", SeqAction::Start, "");
    ev.phase("initialize", PhaseAction::Start, "");
    let logs = &shared.logs;
    logs.kernel("kern", "info", "Linux version 6.12.40-talos (sim)");
    logs.kernel(
        "kern",
        "info",
        &format!(
            "Memory: {}K available",
            shared.hardware.memory_kib() - shared.hardware.memory_kib() * 3 / 100
        ),
    );
    logs.kernel(
        "user",
        "warning",
        &format!("[talos] talosctl version {}", shared.config.talos_version),
    );
    ev.phase("initialize", PhaseAction::Stop, "");
    tokio::time::sleep(shared.config.timings.boot).await;

    let installed = shared.lock().installed;
    shared.set_services(installed, "Running", Some(true));
    let services = shared.lock().services.clone();
    for svc in services {
        ev.service(
            &svc.id,
            SvcAction::Running,
            "Health check successful",
            Some(true),
        );
        logs.service(&svc.id, &format!("{} started", svc.id));
    }
    logs.kernel(
        "user",
        "warning",
        "[talos] siderolink connection configured",
    );
    let tasks = start_boot(shared);
    ev.sequence("boot", SeqAction::Stop, "");
    if installed {
        shared.set_stage(Stage::Running);
        ev.machine_status(PbStage::Running, true, &[]);
        logs.service("kubelet", "Successfully registered node");
    } else {
        shared.set_stage(Stage::Maintenance);
        ev.machine_status(PbStage::Maintenance, true, &[]);
        logs.kernel("user", "warning", "[talos] entering maintenance service");
    }
    tasks
}

fn stopping_events(shared: &Shared, sequence: &str, stage: PbStage, actor_id: &str) {
    let ev = &shared.events;
    ev.sequence(sequence, SeqAction::Start, actor_id);
    ev.machine_status(stage, false, &[("sequence", sequence)]);
    let services = shared.lock().services.clone();
    for svc in services.iter().rev() {
        ev.service(&svc.id, SvcAction::Stopping, "Service stopping", None);
        ev.service(
            &svc.id,
            SvcAction::Finished,
            "Service finished successfully",
            None,
        );
    }
    let installed = shared.lock().installed;
    shared.set_services(installed, "Finished", None);
    shared.logs.kernel(
        "user",
        "warning",
        &format!("[talos] {sequence} sequence started"),
    );
}

/// The driver task of one machine.
pub(crate) async fn drive(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut powered = true;
    loop {
        if !powered {
            shared.set_stage(Stage::Off);
            match commands.recv().await {
                Some(Command::PowerOn) => {}
                Some(Command::Stop) | None => return,
                Some(other) => {
                    tracing::debug!(machine.id = %shared.uuid, command = ?other, "ignored while off");
                    continue;
                }
            }
        }
        let tasks = boot(&shared).await;
        let next = loop {
            let Some(cmd) = commands.recv().await else {
                tasks.stop(&shared, None).await;
                return;
            };
            match cmd {
                Command::DropLink(d) => {
                    let _ = tasks.link_cmd.send(d);
                }
                Command::PowerOn => {}
                Command::Install => {
                    if !shared.lock().installed {
                        shared.set_stage(Stage::Installing);
                        shared
                            .events
                            .machine_status(PbStage::Installing, false, &[]);
                        shared.events.sequence("install", SeqAction::Start, "");
                        shared.lock().installed = true;
                        shared.events.sequence("install", SeqAction::Stop, "");
                        stopping_events(&shared, "reboot", PbStage::Rebooting, "");
                        shared.set_stage(Stage::Rebooting);
                        break (tasks, None, true);
                    }
                }
                Command::Reboot { actor_id } => {
                    shared.set_stage(Stage::Rebooting);
                    stopping_events(&shared, "reboot", PbStage::Rebooting, &actor_id);
                    break (tasks, Some("node is rebooting"), true);
                }
                Command::Shutdown { actor_id } => {
                    shared.set_stage(Stage::ShuttingDown);
                    stopping_events(&shared, "shutdown", PbStage::ShuttingDown, &actor_id);
                    break (tasks, Some("node is shutting down"), false);
                }
                Command::Reset { reboot, actor_id } => {
                    shared.set_stage(Stage::Resetting);
                    stopping_events(&shared, "reset", PbStage::Resetting, &actor_id);
                    let was_installed = shared.lock().installed;
                    shared.lock().installed = false;
                    let msg = was_installed.then_some("node was reset");
                    break (tasks, msg, reboot);
                }
                Command::Stop => {
                    tasks.stop(&shared, None).await;
                    return;
                }
            }
        };
        let (tasks, not_ready, reboot) = next;
        tasks.stop(&shared, not_ready).await;
        powered = reboot;
        if reboot {
            tokio::time::sleep(shared.config.timings.reboot).await;
        }
    }
}

/// Builds the initial state of a machine (powered, not yet booted).
pub(crate) fn initial_state(hw: &Hardware, seed: u64, installed: bool) -> State {
    State {
        stage: Stage::Off,
        installed,
        provision: ProvisionStatus::Pending,
        metrics: Metrics::new(hw, seed),
        services: Vec::new(),
        boot_id: String::new(),
        boots: 0,
        link_up: false,
    }
}

/// The unique machine token of §7.3 of the reference: a hardware fingerprint (SHA-256
/// over the sorted MAC addresses) and a random token.
pub(crate) fn unique_token(hw: &Hardware, random: [u8; 16]) -> String {
    use sha2::{Digest, Sha256};
    let mut macs: Vec<&str> = hw.nics.iter().map(|n| n.mac.as_str()).collect();
    macs.sort_unstable();
    let fingerprint = hex::encode(Sha256::digest(macs.join(",").as_bytes()));
    serde_json::json!({"Fingerprint": fingerprint, "Token": hex::encode(random)}).to_string()
}
