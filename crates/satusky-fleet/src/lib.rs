//! Adapters that connect Satusky's machine domain (`satusky-core`) to real
//! protocols:
//!
//! - [`KubeNodeOps`]: `NodeOps` over kube-rs: labels, cordon, a `kubectl
//!   drain`-faithful drain, node status, node deletion.
//! - [`TalosClientOps`]: `TalosOps` over the satusky-machines Talos client.
//! - [`FleetRuntime`]: serves SideroLink provisioning (admission through core
//!   join tokens), the SideroLink WireGuard endpoint and the event sink,
//!   watches nodes and links (WireGuard handshakes), and feeds what it sees
//!   into core. Machines' peers are persisted and restored when it starts.
//!   [`Links`] ([`FleetHandle::links`]) removes a machine's peer.
//!
//! Wiring (see the README): build [`FleetPorts`], put them into
//! `ServicesConfig`, build `Services`, then [`FleetRuntime::start`].

pub mod capacity;
mod index;
pub mod links;
pub mod node_ops;
pub mod provision;
mod sink;
pub mod talos_ops;
mod talos_streams;
mod watch;

#[cfg(feature = "dev")]
pub mod dev;

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use satusky_core::machines::is_live;
use satusky_core::services::{Services, ServicesConfig};
use satusky_machines::{
    AddressAllocator, EventSinkServer, OverlayPrefix, ProvisionServer, ProvisionServerConfig,
    WireguardEndpoint, WireguardError, WireguardSettings,
};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch as tokio_watch};
use tokio::task::JoinHandle;

pub use links::Links;
pub use node_ops::{CORDONED_ANNOTATION, KubeNodeOps, NodeOpsSettings};
pub use provision::{CorePolicy, EndpointResolver, OverlayEndpoints, StaticEndpoints};
pub use satusky_machines::{LinkState, WireguardKey};
pub use talos_ops::{TalosClientOps, TalosIdentity, TalosOpsSettings};

/// Failure to start the fleet runtime.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("could not listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not read the machines from the store")]
    Store(#[source] satusky_core::Error),
    #[error("could not start the SideroLink WireGuard endpoint")]
    Wireguard(#[source] WireguardError),
}

/// The two ports core's machine operations call, ready for `ServicesConfig`.
#[derive(Debug, Clone)]
pub struct FleetPorts {
    pub node_ops: Arc<KubeNodeOps>,
    pub talos_ops: Arc<TalosClientOps>,
    pub capacity: Arc<capacity::KubeCapacity>,
}

impl FleetPorts {
    /// Ports with default timings. Without a Talos identity, Talos calls fail
    /// until [`TalosClientOps::set_identity`].
    pub fn new(kube: kube::Client, talos_identity: Option<TalosIdentity>) -> Self {
        Self::with_settings(
            kube,
            talos_identity,
            NodeOpsSettings::default(),
            TalosOpsSettings::default(),
        )
    }

    pub fn with_settings(
        kube: kube::Client,
        talos_identity: Option<TalosIdentity>,
        node: NodeOpsSettings,
        talos: TalosOpsSettings,
    ) -> Self {
        Self {
            capacity: Arc::new(capacity::KubeCapacity::new(kube.clone())),
            node_ops: Arc::new(KubeNodeOps::with_settings(kube, node)),
            talos_ops: Arc::new(TalosClientOps::new(talos_identity, talos)),
        }
    }

    /// Puts the ports (node, Talos, machine logs, capacity) into the services' configuration.
    pub fn install(&self, config: &mut ServicesConfig) {
        config.node_ops = Some(self.node_ops.clone());
        config.talos_ops = Some(self.talos_ops.clone());
        config.machine_logs = Some(self.talos_ops.clone());
        config.capacity = Some(self.capacity.clone());
    }
}

/// The SideroLink server's WireGuard side.
#[derive(Debug, Clone)]
pub struct SiderolinkSettings {
    /// Installation id the overlay /64 is derived from.
    pub installation_id: String,
    /// UDP address of the WireGuard endpoint (port 0 picks one).
    pub wireguard_listen: SocketAddr,
    /// The server's static WireGuard key; `None` makes an ephemeral one (dev
    /// and tests: machines then need to provision again after a restart).
    pub wireguard_key: Option<WireguardKey>,
    /// WireGuard `host:port` endpoints machines are told, most preferred
    /// first; empty: the bound address.
    pub wireguard_endpoints: Vec<String>,
}

impl Default for SiderolinkSettings {
    fn default() -> Self {
        Self {
            installation_id: String::new(),
            wireguard_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            wireguard_key: None,
            wireguard_endpoints: Vec::new(),
        }
    }
}

/// How often the runtime looks.
#[derive(Debug, Clone)]
pub struct FleetTimings {
    /// Matching nodes to machines (also run on every node appearing or
    /// flipping Ready).
    pub resync: Duration,
    /// Judging every machine's link from its WireGuard peer (and probing the
    /// Talos API of the machines whose link is up).
    pub link_poll: Duration,
    /// The server's persistent keepalive towards machines (SideroLink: 25 s).
    pub wireguard_keepalive: Duration,
    /// A link is down once no authenticated WireGuard packet (keepalives
    /// included) arrived for this long: 3 × the machines' 25 s keepalive + 15 s.
    pub link_down_after: Duration,
    /// A link is down once its latest WireGuard handshake is older than this
    /// (a keepalive-only session re-keys every 180 s at the latest).
    pub link_handshake_max_age: Duration,
    /// How long admission waits for a new machine's Talos API to report its
    /// hostname and hardware (later, the link pass learns them).
    pub facts_timeout: Duration,
}

impl Default for FleetTimings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(5),
            link_poll: Duration::from_secs(10),
            facts_timeout: Duration::from_secs(5),
            wireguard_keepalive: Duration::from_secs(25),
            link_down_after: Duration::from_secs(90),
            link_handshake_max_age: Duration::from_secs(275),
        }
    }
}

/// Everything [`FleetRuntime::start`] needs.
#[derive(Clone)]
pub struct FleetConfig {
    /// Core services, built with [`FleetPorts::install`]ed ports.
    pub services: Services,
    pub kube: kube::Client,
    /// The same Talos ops the services use (for admission facts and link probes).
    pub talos: Arc<TalosClientOps>,
    /// `sidero.link.ProvisionService` (public; port 0 picks one).
    pub provision_listen: SocketAddr,
    /// `events.EventSinkService` (the overlay address in production).
    pub event_sink_listen: SocketAddr,
    pub siderolink: SiderolinkSettings,
    /// Where machines' Talos APIs answer ([`OverlayEndpoints`] in production).
    pub endpoints: Arc<dyn EndpointResolver>,
    pub timings: FleetTimings,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetConfig")
            .field("provision_listen", &self.provision_listen)
            .field("event_sink_listen", &self.event_sink_listen)
            .field("siderolink", &self.siderolink)
            .field("endpoints", &self.endpoints)
            .field("timings", &self.timings)
            .finish_non_exhaustive()
    }
}

/// The running runtime; stop it with [`FleetHandle::shutdown`].
#[derive(Debug)]
pub struct FleetHandle {
    provision_addr: SocketAddr,
    event_sink_addr: SocketAddr,
    links: Links,
    pass: Arc<Notify>,
    stop: tokio_watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl FleetHandle {
    /// Where the provisioning server listens.
    pub fn provision_addr(&self) -> SocketAddr {
        self.provision_addr
    }

    /// Where the event sink listens.
    pub fn event_sink_addr(&self) -> SocketAddr {
        self.event_sink_addr
    }

    /// Where the SideroLink WireGuard endpoint listens (UDP).
    pub fn wireguard_addr(&self) -> SocketAddr {
        self.links.local_addr()
    }

    /// The machines' WireGuard links (state, and removing a machine's peer).
    pub fn links(&self) -> Links {
        self.links.clone()
    }

    /// The `siderolink.api` URL of a plaintext provisioning server on
    /// `provision_addr` (for dev and tests; production puts TLS in front).
    pub fn siderolink_url(&self) -> String {
        format!("grpc://{}", self.provision_addr)
    }

    /// Runs the node pass now instead of at the next `resync` (e.g. right
    /// after machines were claimed, so that their registered nodes join).
    pub fn resync(&self) {
        self.pass.notify_one();
    }

    /// Stops serving and watching, and waits (at most 10 s) for the tasks
    /// and for the stored peers [`Links::remove`] forgot.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        self.links.endpoint().shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.links.settle()).await;
        let tasks: Vec<_> = self.tasks.drain(..).collect();
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(tasks))
            .await
            .is_err()
        {
            for a in aborts {
                a.abort();
            }
        }
    }

    /// Runs until `signal` resolves, then shuts down.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

impl Drop for FleetHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        let wg = self.links.endpoint().clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { wg.shutdown().await });
        }
    }
}

/// Starts the fleet side of the control plane.
#[derive(Debug)]
pub struct FleetRuntime;

async fn bind(addr: SocketAddr) -> Result<TcpListener, FleetError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| FleetError::Bind { addr, source })
}

fn local(l: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, FleetError> {
    l.local_addr()
        .map_err(|source| FleetError::Bind { addr, source })
}

impl FleetRuntime {
    /// Binds both gRPC servers and the WireGuard endpoint, seeds overlay addresses from the store (so
    /// known machines keep theirs), restores the stored WireGuard peers of live
    /// machines (so their links come back at their next handshake, without
    /// provisioning again), and spawns the servers, the admission worker, the
    /// sink consumer, the node watcher and the periodic passes.
    #[tracing::instrument(skip_all)]
    pub async fn start(config: FleetConfig) -> Result<FleetHandle, FleetError> {
        let FleetConfig {
            services,
            kube,
            talos,
            provision_listen,
            event_sink_listen,
            siderolink,
            endpoints,
            timings,
        } = config;
        let provision_listener = bind(provision_listen).await?;
        let sink_listener = bind(event_sink_listen).await?;
        let provision_addr = local(&provision_listener, provision_listen)?;
        let event_sink_addr = local(&sink_listener, event_sink_listen)?;
        let wg = WireguardEndpoint::bind(
            siderolink.wireguard_listen,
            siderolink
                .wireguard_key
                .clone()
                .unwrap_or_else(WireguardKey::generate),
            WireguardSettings {
                keepalive: timings.wireguard_keepalive,
                down_after: timings.link_down_after,
                handshake_max_age: timings.link_handshake_max_age,
                tick: (timings.wireguard_keepalive / 4)
                    .clamp(Duration::from_millis(20), Duration::from_millis(250)),
            },
        )
        .await
        .map_err(FleetError::Wireguard)?;
        let links = Links::new(wg.clone(), services.clone());
        talos.set_links(links.clone());
        // The endpoint's peer table starts empty: restore the peers of live
        // machines before serving, so that their next handshake is answered
        // (and the server initiates one towards each last endpoint) instead
        // of every machine provisioning again.
        let stored = services
            .live_machine_links()
            .await
            .map_err(FleetError::Store)?;
        let restored = links.restore(&stored);

        let machines = index::all_machines(&services)
            .await
            .map_err(FleetError::Store)?;
        let prefix = OverlayPrefix::for_installation(&siderolink.installation_id);
        let existing = machines
            .iter()
            .filter(|m| is_live(m.state))
            .filter_map(|m| {
                m.overlay_address
                    .parse::<Ipv6Addr>()
                    .ok()
                    .filter(|a| prefix.contains(*a))
                    .map(|a| (m.uuid.clone(), a))
            });
        let allocator = AddressAllocator::new(prefix).with_existing(existing);
        let idx = Arc::new(index::MachineIndex::default());
        idx.update(&machines);

        let (stop, stop_rx) = tokio_watch::channel(false);
        let shutdown = |mut rx: tokio_watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();

        let (prov_tx, mut prov_rx) = mpsc::channel(256);
        let server = ProvisionServer::new(
            provision::CorePolicy::new(services.clone()),
            ProvisionServerConfig {
                installation_id: siderolink.installation_id.clone(),
                server_public_key: wg.public_key().to_base64(),
                wireguard_endpoints: siderolink.wireguard_endpoints.clone(),
            },
        )
        .with_wireguard(wg)
        .with_allocator(allocator)
        .with_notifications(prov_tx);
        let rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server.serve(provision_listener, shutdown(rx)).await {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "SideroLink provisioning server failed"
                );
            }
        }));

        let (sink_tx, sink_rx) = mpsc::channel(1024);
        let rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = EventSinkServer::new(sink_tx)
                .serve(sink_listener, shutdown(rx))
                .await
            {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "event sink server failed"
                );
            }
        }));
        tasks.push(tokio::spawn(sink::run(
            services.clone(),
            idx.clone(),
            sink_rx,
        )));

        {
            let services = services.clone();
            let talos = talos.clone();
            let facts_timeout = timings.facts_timeout;
            let links = links.clone();
            let mut rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let p = tokio::select! {
                        p = prov_rx.recv() => p,
                        _ = rx.wait_for(|s| *s) => None,
                    };
                    let Some(p) = p else { return };
                    let (services, talos, endpoints, links) = (
                        services.clone(),
                        talos.clone(),
                        endpoints.clone(),
                        links.clone(),
                    );
                    tokio::spawn(async move {
                        provision::admit_provisioned(
                            &services,
                            &talos,
                            endpoints.as_ref(),
                            &links,
                            p,
                            facts_timeout,
                        )
                        .await;
                    });
                }
            }));
        }

        let nodes: watch::Nodes = Arc::default();
        let pass = Arc::new(Notify::new());
        tasks.push(tokio::spawn(watch::watch_nodes(
            services.clone(),
            kube,
            nodes.clone(),
            pass.clone(),
            stop_rx.clone(),
        )));
        let handle_pass = pass.clone();
        tasks.push(tokio::spawn(watch::run_passes(
            watch::Passes {
                services,
                talos,
                links: links.clone(),
                index: idx,
                nodes,
                pass,
                resync: timings.resync,
                link_poll: timings.link_poll,
            },
            stop_rx,
        )));
        let wireguard_addr = links.local_addr();
        tracing::info!(%provision_addr, %event_sink_addr, %wireguard_addr, peers = restored, "fleet runtime started");
        Ok(FleetHandle {
            provision_addr,
            event_sink_addr,
            links,
            pass: handle_pass,
            stop,
            tasks,
        })
    }
}
