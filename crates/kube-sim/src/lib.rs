//! kube-sim: a simulated Kubernetes API server with cluster behaviour.
//!
//! Real clients (kubectl, kube-rs) talk to it unchanged. Start one with
//! [`KubeSim::builder`]; see the crate README for what it reproduces and what it does not.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_sim::Error> {
//! let sim = kube_sim::KubeSim::builder().nodes(3).start().await?;
//! let client = sim.client()?;
//! sim.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod apply;
pub mod controllers;
mod defaults;
pub mod error;
mod logs;
pub mod metrics;
mod openapi;
pub mod patch;
mod proto;
pub mod registry;
pub mod selector;
mod server;
pub mod state;
pub mod store;
mod table;
pub mod tls;
mod view;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use error::ApiError;
pub use server::router;
pub use state::{Config, Fault, FaultAction, Faults, State, Verb};

/// Errors of starting and driving a simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding the listen address")]
    Bind(#[source] std::io::Error),
    #[error("creating the initial cluster objects")]
    Bootstrap(#[source] ApiError),
    #[error("writing the kubeconfig")]
    Kubeconfig(#[source] std::io::Error),
    #[error("building a kube client")]
    Client(#[source] kube::Error),
    #[error("setting up TLS")]
    Tls(#[source] tls::TlsError),
    #[error("parsing the server URL")]
    Url(#[source] http::uri::InvalidUri),
    #[error("changing the cluster")]
    Api(#[source] ApiError),
}

/// Entry point: `KubeSim::builder()`.
pub struct KubeSim;

impl KubeSim {
    pub fn builder() -> Builder {
        Builder::default()
    }
}

/// Configures a simulator before it starts.
#[derive(Debug, Clone)]
pub struct Builder {
    cfg: Config,
    listen: SocketAddr,
    tls: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            cfg: Config::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
        }
    }
}

impl Builder {
    /// Number of nodes created at start (`node-0` …).
    pub fn nodes(mut self, n: usize) -> Self {
        self.cfg.nodes = n;
        self
    }

    /// Number of zones nodes are spread over (`zone-a` …).
    pub fn zones(mut self, n: usize) -> Self {
        self.cfg.zones = n;
        self
    }

    /// Address to listen on (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Serve HTTPS with a generated CA (written into the kubeconfig) instead of plain HTTP.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// How often controllers run at most (default 50 ms).
    pub fn tick(mut self, d: Duration) -> Self {
        self.cfg.tick = d;
        self
    }

    /// Delay from scheduling to Running (default 200 ms).
    pub fn pod_start_delay(mut self, d: Duration) -> Self {
        self.cfg.pod_start_delay = d;
        self
    }

    /// Delay from Running to Ready (default 100 ms).
    pub fn pod_ready_delay(mut self, d: Duration) -> Self {
        self.cfg.pod_ready_delay = d;
        self
    }

    /// Time a graceful pod deletion takes (default 100 ms, whatever the grace period).
    pub fn pod_stop_delay(mut self, d: Duration) -> Self {
        self.cfg.pod_stop_delay = d;
        self
    }

    /// Lease renewal interval of the nodes kube-sim runs (default 10 s; at most half the
    /// grace period).
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.cfg.heartbeat = d;
        self
    }

    /// Time without heartbeat (Lease renewal or Ready `lastHeartbeatTime`) before the node
    /// lifecycle controller marks any node `Ready=Unknown` with the unreachable taints
    /// (default 40 s).
    pub fn node_monitor_grace(mut self, d: Duration) -> Self {
        self.cfg.node_monitor_grace = d;
        self
    }

    /// Multiplier for `tolerationSeconds` (default 1.0; 0.01 makes 300 s last 3 s).
    pub fn toleration_scale(mut self, s: f64) -> Self {
        self.cfg.toleration_scale = s;
        self
    }

    /// Watch events kept per resource (default 2 000; older watches get 410).
    pub fn history(mut self, n: usize) -> Self {
        self.cfg.history = n;
        self
    }

    /// Require this bearer token from clients.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.cfg.token = Some(token.into());
        self
    }

    /// Run the controllers (default true). Without them the sim is a plain API server.
    pub fn controllers(mut self, on: bool) -> Self {
        self.cfg.controllers = on;
        self
    }

    /// Allocatable CPU (millicores), memory (MiB) and pods of each node.
    pub fn node_capacity(mut self, cpu_millis: u64, memory_mib: u64, pods: u64) -> Self {
        self.cfg.node_cpu_millis = cpu_millis;
        self.cfg.node_memory_mib = memory_mib;
        self.cfg.node_pods = pods;
        self
    }

    /// Builds the cluster without serving HTTP: use [`Sim::router`] as a tower service.
    pub fn build(self) -> Result<Sim, Error> {
        let state = State::new(self.cfg);
        controllers::bootstrap(&state).map_err(Error::Bootstrap)?;
        if state.cfg.controllers {
            tokio::spawn(controllers::run(state.clone()));
        }
        Ok(Sim {
            state,
            addr: None,
            server: None,
            tls: None,
        })
    }

    /// Builds the cluster and serves it over HTTP.
    pub async fn start(self) -> Result<Sim, Error> {
        let listen = self.listen;
        let identity = if self.tls {
            Some(tls::identity().map_err(Error::Tls)?)
        } else {
            None
        };
        let mut sim = self.build()?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let app = router(sim.state.clone());
        let mut stop = sim.state.shutdown.subscribe();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let server = match &identity {
            Some(id) => {
                let listener = tls::TlsListener {
                    tcp: listener,
                    acceptor: tokio_rustls::TlsAcceptor::from(id.server.clone()),
                };
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app)
                        .with_graceful_shutdown(stopped)
                        .await
                    {
                        tracing::error!(error = %e, "kube-sim server failed");
                    }
                })
            }
            None => tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::error!(error = %e, "kube-sim server failed");
                }
            }),
        };
        sim.tls = identity;
        sim.addr = Some(addr);
        sim.server = Some(server);
        tracing::info!(url = %format!("http://{addr}"), "kube-sim listening");
        Ok(sim)
    }
}

/// A running simulator.
pub struct Sim {
    state: Arc<State>,
    addr: Option<SocketAddr>,
    server: Option<tokio::task::JoinHandle<()>>,
    tls: Option<tls::Identity>,
}

impl Sim {
    /// The base URL (`http://127.0.0.1:PORT`, or `https://` with TLS), when serving.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.addr
            .map(|a| format!("{scheme}://{a}"))
            .unwrap_or_default()
    }

    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The axum router serving the API, usable as a tower service in-process:
    /// `kube::Client::new(sim.router(), "default")`.
    pub fn router(&self) -> axum::Router {
        router(self.state.clone())
    }

    /// A kubeconfig pointing at this simulator.
    pub fn kubeconfig(&self) -> String {
        let user = match &self.state.cfg.token {
            Some(t) => format!("    token: {t}\n"),
            None => "    username: kube-sim\n".to_owned(),
        };
        let ca = self.tls.as_ref().map_or_else(String::new, |t| {
            use base64::Engine;
            format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(&t.ca_pem)
            )
        });
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n{ca}    server: {}\ncontexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\nusers:\n- name: kube-sim\n  user:\n{user}",
            self.url()
        )
    }

    /// Writes [`Sim::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), Error> {
        std::fs::write(path, self.kubeconfig()).map_err(Error::Kubeconfig)
    }

    /// A kube client for this simulator: over HTTP when serving, else in-process.
    pub fn client(&self) -> Result<kube::Client, Error> {
        if self.addr.is_none() {
            return Ok(kube::Client::new(self.router(), "default"));
        }
        // kube's rustls connector needs a process-wide crypto provider; one may already be set.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = self.url().parse().map_err(Error::Url)?;
        let mut cfg = kube::Config::new(url);
        "default".clone_into(&mut cfg.default_namespace);
        if let Some(t) = &self.state.cfg.token {
            cfg.auth_info.token = Some(t.clone().into());
        }
        if let Some(t) = &self.tls {
            cfg.root_cert = Some(vec![t.ca_der.clone()]);
        }
        kube::Client::try_from(cfg).map_err(Error::Client)
    }

    /// Fault injection.
    pub fn faults(&self) -> Faults {
        self.state.faults.clone()
    }

    /// The shared state (store, config), for advanced use.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Stops the kubelet of a node kube-sim runs: no more heartbeats, its pods stop moving; the
    /// node turns `Ready=Unknown` after the grace period.
    pub fn stop_node(&self, name: &str) {
        if let Ok(mut s) = self.state.stopped_nodes.lock() {
            s.insert(name.to_owned());
        }
    }

    /// Restarts a stopped node's kubelet.
    pub fn start_node(&self, name: &str) {
        if let Ok(mut s) = self.state.stopped_nodes.lock() {
            s.remove(name);
        }
    }

    /// Adds a Ready node with extra labels, run by kube-sim's simulated kubelet.
    pub fn add_node(&self, name: &str, labels: BTreeMap<String, String>) -> Result<(), Error> {
        controllers::add_node(&self.state, name, labels).map_err(Error::Api)
    }

    /// Sets a simulated CPU load (millicores) on a pod, reflected by metrics.k8s.io.
    pub fn set_load(&self, namespace: &str, pod: &str, cpu_millis: u64) {
        if let Ok(mut l) = self.state.load.lock() {
            l.insert((namespace.to_owned(), pod.to_owned()), cpu_millis);
        }
    }

    /// Appends a line to a container's log.
    pub fn append_log(&self, namespace: &str, pod: &str, container: &str, line: &str) {
        self.state.logs.append(namespace, pod, container, line);
    }

    /// Stops serving and the controllers.
    pub async fn shutdown(mut self) {
        let _ = self.state.shutdown.send(true);
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.state.shutdown.send(true);
    }
}
