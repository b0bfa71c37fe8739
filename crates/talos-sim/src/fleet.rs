//! A fleet of simulated machines sharing one CA and one configuration.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use self::machine_id::hash3;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::SimError;
use crate::config::{SiderolinkApi, SimConfig, Timings};
use crate::events::EventLog;
use crate::hardware::Hardware;
use crate::logs::LogStore;
use crate::machine::{Command, Machine, ProvisionStatus, Shared, Stage, drive, initial_state};
use crate::pki::{Identity, Pki, Role};

mod machine_id {
    /// Three bytes identifying a machine in its event ids.
    pub fn hash3(s: &str) -> [u8; 3] {
        let h = s
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
            .to_be_bytes();
        [h[0], h[1], h[2]]
    }
}

/// Overrides for one machine.
#[derive(Debug, Clone, Default)]
pub struct MachineSpec {
    /// SMBIOS UUID (default: random v4).
    pub uuid: Option<String>,
    /// Hostname (default: `talos-xxx-yyy`).
    pub hostname: Option<String>,
    /// Hardware (default: generated from the seed).
    pub hardware: Option<Hardware>,
}

/// Builds a [`Fleet`].
pub struct FleetBuilder {
    count: usize,
    specs: Vec<MachineSpec>,
    siderolink: Option<SiderolinkApi>,
    join_token: Option<String>,
    event_sink: Option<String>,
    kernel_log: Option<String>,
    kube: Option<kube::Client>,
    talos_version: String,
    kubelet_version: String,
    timings: Timings,
    seed: u64,
    maintenance: bool,
    duplicate_uuids: Vec<(usize, usize)>,
    bind_ip: Option<IpAddr>,
    per_machine_loopback: bool,
}

impl std::fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("count", &self.count)
            .field("siderolink", &self.siderolink.as_ref().map(|s| &s.endpoint))
            .field("event_sink", &self.event_sink)
            .field("kube", &self.kube.is_some())
            .field("seed", &self.seed)
            .field("maintenance", &self.maintenance)
            .finish_non_exhaustive()
    }
}

impl Default for FleetBuilder {
    fn default() -> Self {
        Self {
            count: 1,
            specs: Vec::new(),
            siderolink: None,
            join_token: None,
            event_sink: None,
            kernel_log: None,
            kube: None,
            talos_version: "v1.13.0".into(),
            kubelet_version: "v1.34.1".into(),
            timings: Timings::default(),
            seed: 0x7a10_5eed,
            maintenance: false,
            duplicate_uuids: Vec::new(),
            bind_ip: None,
            per_machine_loopback: cfg!(target_os = "linux"),
        }
    }
}

impl FleetBuilder {
    /// Number of machines (default 1).
    pub fn machines(mut self, n: usize) -> Self {
        self.count = n;
        self
    }

    /// Overrides for machine `index`.
    pub fn machine_spec(mut self, index: usize, spec: MachineSpec) -> Self {
        if self.specs.len() <= index {
            self.specs.resize(index + 1, MachineSpec::default());
        }
        self.specs[index] = spec;
        self
    }

    /// The `siderolink.api` URL, e.g. `grpc://127.0.0.1:8090?jointoken=…` or
    /// `http://127.0.0.1:8090`.
    pub fn siderolink_endpoint(mut self, url: impl AsRef<str>) -> Self {
        self.siderolink = Some(SiderolinkApi::parse(url.as_ref()));
        self
    }

    /// The join token (overrides the URL's `jointoken=`).
    pub fn join_token(mut self, token: impl Into<String>) -> Self {
        self.join_token = Some(token.into());
        self
    }

    /// The event sink `host:port`.
    pub fn event_sink(mut self, addr: impl Into<String>) -> Self {
        self.event_sink = Some(addr.into());
        self
    }

    /// The kernel-log receiver, `tcp://host:port` (as `talos.logging.kernel`; UDP is
    /// not simulated).
    pub fn kernel_log(mut self, url: impl AsRef<str>) -> Self {
        let url = url.as_ref();
        self.kernel_log = Some(
            url.strip_prefix("tcp://")
                .unwrap_or(url)
                .trim_end_matches('/')
                .to_owned(),
        );
        self
    }

    /// The Kubernetes API the kubelets register with.
    pub fn kube_client(mut self, client: kube::Client) -> Self {
        self.kube = Some(client);
        self
    }

    /// Talos version (default `v1.13.0`).
    pub fn talos_version(mut self, v: impl Into<String>) -> Self {
        self.talos_version = v.into();
        self
    }

    /// Timings (default: [`Timings::default`]).
    pub fn timings(mut self, t: Timings) -> Self {
        self.timings = t;
        self
    }

    /// Seed for generated hardware and metrics.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Boot machines in maintenance mode (not installed) instead of running.
    pub fn maintenance_mode(mut self, on: bool) -> Self {
        self.maintenance = on;
        self
    }

    /// Fault: machine `index` reports the UUID of machine `of`.
    pub fn duplicate_uuid(mut self, index: usize, of: usize) -> Self {
        self.duplicate_uuids.push((index, of));
        self
    }

    /// One IP for every machine API (overrides per-machine loopback addresses).
    pub fn bind_ip(mut self, ip: IpAddr) -> Self {
        self.bind_ip = Some(ip);
        self
    }

    /// Give machine `i` its own loopback address `127.10.x.y` for its API and its
    /// outgoing connections (default on Linux, where all of 127.0.0.0/8 is local);
    /// otherwise every machine uses `127.0.0.1`.
    pub fn per_machine_loopback(mut self, on: bool) -> Self {
        self.per_machine_loopback = on;
        self
    }

    fn machine_ip(&self, i: usize) -> (IpAddr, Option<IpAddr>) {
        if let Some(ip) = self.bind_ip {
            return (ip, None);
        }
        if self.per_machine_loopback && i < 250 * 250 {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 10, (i / 250) as u8, (i % 250 + 2) as u8));
            return (ip, Some(ip));
        }
        (IpAddr::V4(Ipv4Addr::LOCALHOST), None)
    }

    /// Creates the machines and powers them on.
    #[expect(
        clippy::unused_async,
        reason = "async so that starting can wait for machines without an API change"
    )]
    pub async fn start(self) -> Result<Fleet, SimError> {
        let pki = Pki::generate()?;
        let ca_pem = pki.ca_pem();
        let ips: Vec<(IpAddr, Option<IpAddr>)> =
            (0..self.count).map(|i| self.machine_ip(i)).collect();
        let mut siderolink = self.siderolink;
        if let (Some(s), Some(t)) = (siderolink.as_mut(), self.join_token) {
            s.join_token = Some(t);
        }
        let config = Arc::new(SimConfig {
            siderolink,
            event_sink: self.event_sink,
            kernel_log: self.kernel_log,
            kube: self.kube,
            talos_version: self.talos_version,
            kubelet_version: self.kubelet_version,
            timings: self.timings,
        });
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut uuids: Vec<String> = Vec::with_capacity(self.count);
        let mut plans = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let spec = self.specs.get(i).cloned().unwrap_or_default();
            let hw = spec
                .hardware
                .unwrap_or_else(|| Hardware::generate(&mut rng, i));
            let uuid = spec.uuid.unwrap_or_else(|| {
                uuid::Builder::from_random_bytes(rng.r#gen())
                    .into_uuid()
                    .to_string()
            });
            let hostname = spec.hostname.unwrap_or_else(|| {
                let a: u16 = rng.r#gen();
                let b: u16 = rng.r#gen();
                format!("talos-{:03x}-{:03x}", a & 0xfff, b & 0xfff)
            });
            uuids.push(uuid);
            plans.push((hw, hostname, rng.r#gen::<u64>()));
        }
        for (index, of) in &self.duplicate_uuids {
            if let Some(u) = uuids.get(*of).cloned()
                && let Some(slot) = uuids.get_mut(*index)
            {
                *slot = u;
            }
        }

        let mut machines = Vec::with_capacity(self.count);
        let mut drivers = Vec::new();
        let mut chatters = Vec::new();
        for (i, ((hw, hostname, seed), uuid)) in plans.into_iter().zip(uuids).enumerate() {
            let (ip, source_ip) = ips[i];
            let any_port = SocketAddr::new(ip, 0);
            let probe = std::net::TcpListener::bind(any_port).map_err(|source| SimError::Bind {
                addr: any_port,
                source,
            })?;
            let api_addr = probe.local_addr().map_err(|source| SimError::Bind {
                addr: any_port,
                source,
            })?;
            drop(probe);
            let server_identity =
                pki.issue_server(&hostname, &[ip, IpAddr::V4(Ipv4Addr::LOCALHOST)])?;
            let maintenance_root = Pki::generate()?;
            let maintenance_identity =
                maintenance_root.issue_server(&hostname, &[ip, IpAddr::V4(Ipv4Addr::LOCALHOST)])?;
            let unique_token = crate::machine::unique_token(&hw, rand::random());
            let (tx, rx) = mpsc::unbounded_channel();
            let shared = Arc::new(Shared {
                index: i,
                events: EventLog::new(hash3(&format!("{uuid}/{i}"))),
                state: Mutex::new(initial_state(&hw, seed, !self.maintenance)),
                uuid,
                hostname,
                hardware: hw,
                api_addr,
                source_ip,
                server_identity,
                maintenance_identity,
                maintenance_ca_pem: maintenance_root.ca_pem(),
                unique_token,
                ca_pem: ca_pem.clone(),
                config: config.clone(),
                seed,
                stage_tx: watch::channel(Stage::Off).0,
                provision_tx: watch::channel(ProvisionStatus::Pending).0,
                never_answers: watch::channel(false).0,
                api_gen: watch::channel(0).0,
                logs: LogStore::new(),
                commands: tx,
                wireguard: crate::wireguard::LinkStats::default(),
            });
            drivers.push(tokio::spawn(drive(shared.clone(), rx)));
            chatters.push(tokio::spawn(chatter(shared.clone())));
            machines.push(Machine { shared });
        }
        Ok(Fleet {
            admin: pki.issue_client(Role::Admin)?,
            operator: pki.issue_client(Role::Operator)?,
            reader: pki.issue_client(Role::Reader)?,
            ca_pem,
            pki,
            machines,
            drivers,
            chatters,
        })
    }
}

/// Background log lines while a machine is up.
async fn chatter(shared: Arc<Shared>) {
    let mut n: u64 = 0;
    loop {
        tokio::time::sleep(shared.config.timings.log_interval).await;
        n += 1;
        match shared.stage() {
            Stage::Running => {
                shared
                    .logs
                    .service("kubelet", &format!("I1121 kubelet_node_status.go:75] \"Successfully updated node status\" node=\"{}\" seq={n}", shared.hostname));
                shared.logs.service(
                    "machined",
                    &format!("[talos] task healthCheck ok (seq {n})"),
                );
            }
            Stage::Maintenance => {
                shared.logs.service(
                    "machined",
                    "[talos] waiting for machine configuration (maintenance mode)",
                );
            }
            _ => {}
        }
    }
}

/// A running fleet of simulated machines.
#[derive(Debug)]
pub struct Fleet {
    machines: Vec<Machine>,
    ca_pem: String,
    admin: Identity,
    operator: Identity,
    reader: Identity,
    pki: Pki,
    drivers: Vec<JoinHandle<()>>,
    chatters: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// A builder with defaults: one machine, no SideroLink, no sink, no Kubernetes.
    pub fn builder() -> FleetBuilder {
        FleetBuilder::default()
    }

    /// All machines.
    pub fn machines(&self) -> &[Machine] {
        &self.machines
    }

    /// Machine `i`.
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn machine(&self, i: usize) -> &Machine {
        &self.machines[i]
    }

    /// The machine with this hostname (Kubernetes node name).
    pub fn by_hostname(&self, hostname: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.hostname() == hostname)
    }

    /// The machines reporting this UUID (more than one with the duplicate-UUID fault).
    pub fn by_uuid<'a>(&'a self, uuid: &'a str) -> impl Iterator<Item = &'a Machine> + 'a {
        self.machines.iter().filter(move |m| m.uuid() == uuid)
    }

    /// The CA that signed every machine's API certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A client certificate with role `os:admin`.
    pub fn admin_identity(&self) -> &Identity {
        &self.admin
    }

    /// A client certificate with role `os:operator`.
    pub fn operator_identity(&self) -> &Identity {
        &self.operator
    }

    /// A client certificate with role `os:reader`.
    pub fn reader_identity(&self) -> &Identity {
        &self.reader
    }

    /// Issues another client certificate.
    pub fn issue_client(&self, role: Role) -> Result<Identity, SimError> {
        self.pki.issue_client(role)
    }

    /// Waits until every machine is in `stage`.
    pub async fn wait_for_stage(
        &self,
        stage: Stage,
        timeout: Duration,
    ) -> Result<(), crate::WaitTimeout> {
        for m in &self.machines {
            m.wait_for_stage(stage, timeout).await?;
        }
        Ok(())
    }

    /// Stops every machine (no events, no NotReady): their APIs, sink publishers and
    /// kubelets end, and this waits for them (at most 10 s).
    pub async fn stop(mut self) {
        for m in &self.machines {
            let _ = m.shared.commands.send(Command::Stop);
        }
        for t in self.chatters.drain(..) {
            t.abort();
        }
        let drivers: Vec<_> = self.drivers.drain(..).collect();
        let aborts: Vec<_> = drivers.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(drivers))
            .await
            .is_err()
        {
            for a in aborts {
                a.abort();
            }
        }
    }
}

impl Drop for Fleet {
    /// Tells every machine to stop; they wind down in the background.
    fn drop(&mut self) {
        for m in &self.machines {
            let _ = m.shared.commands.send(Command::Stop);
        }
        for t in &self.chatters {
            t.abort();
        }
    }
}
