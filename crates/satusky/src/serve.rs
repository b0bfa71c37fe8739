//! `satusky serve`.

use std::sync::Arc;

use anyhow::Context as _;
use satusky_api::{ApiConfig, AppState};
use satusky_core::clock::SystemClock;
use satusky_core::{Services, ServicesConfig};
use tokio::net::TcpListener;

use crate::config::{ApiArgs, ServeArgs};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs {
        listen,
        store,
        api,
        machines,
    } = args;
    let url = store.database_url()?;
    let workload = crate::platform::KubeWorkload::default();
    let mut services =
        services_with(&url, &api, workload.clone(), |cfg| machines.apply(cfg)).await?;
    let fleet = match machines.siderolink_listen {
        Some(addr) => {
            let key_file = match &machines.siderolink_wireguard_key_file {
                Some(p) => p.clone(),
                None => store.data_dir("server")?.join("siderolink-wireguard.key"),
            };
            let (with_ports, fleet) = start_fleet(&services, &machines, addr, &key_file).await?;
            services = with_ports;
            Some(fleet)
        }
        None => None,
    };
    if let Some(every) = api.session_purge_every() {
        spawn_session_purge(&services, every);
    }
    if services.store().count_users().await? == 0 {
        tracing::info!("the store has no accounts yet; create the first with `1ctl auth signup`");
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let reconcilers = tokio::spawn(crate::platform::run_reconcilers(
        services.clone(),
        satusky_reconciler::ReconcilerConfig::default(),
        std::collections::HashMap::new(),
        workload,
        stopped,
    ));
    let served = serve(listener, services, &api).await;
    let _ = stop.send(true);
    let _ = reconcilers.await;
    if let Some(f) = fleet {
        f.shutdown().await;
    }
    served
}

/// Connects (and migrates) the store and builds the services.
/// Like [`services`], reading live app state through `workload`.
pub async fn services_with(
    url: &str,
    api: &ApiArgs,
    workload: crate::platform::KubeWorkload,
    extend: impl FnOnce(&mut ServicesConfig),
) -> anyhow::Result<Services> {
    let store = satusky_store::connect(url)
        .await
        .with_context(|| format!("cannot open the store at {}", redact(url)))?;
    let secret_box = api.secret_box()?;
    if secret_box.is_none() {
        tracing::warn!(
            "no secret key configured (--secret-key or --secret-key-file): app secrets and clusters are unavailable"
        );
    }
    let bus: std::sync::Arc<dyn satusky_core::bus::Bus> = match &api.nats_url {
        Some(url) => crate::bus::NatsBus::connect(url, "satusky.notices").await?,
        None => satusky_core::bus::LocalBus::new(),
    };
    // Join tokens are signed with a key derived from the secret key.
    let join_token_key = api.secret_key_material()?.map(|k| {
        satusky_core::fleet::jointoken::SigningKey::derive(k.trim().as_bytes(), "join-tokens")
    });
    let config = ServicesConfig {
        join_token_key,
        workload: Some(std::sync::Arc::new(workload)),
        bus,
        signup_enabled: api.signup_enabled,
        session_ttl: chrono::Duration::hours(i64::from(api.session_ttl_hours)),
        apps_domain: api.apps_domain.clone(),
        secret_box,
        ..ServicesConfig::default()
    };
    let mut config = config;
    extend(&mut config);
    Ok(Services::new(store, Arc::new(SystemClock), config))
}

/// Sweeps expired sessions every `every`, for the life of the process.
pub(crate) fn spawn_session_purge(services: &Services, every: std::time::Duration) {
    let services = services.clone();
    tokio::spawn(async move {
        services
            .run_session_purge(every, std::future::pending())
            .await;
    });
}

/// Serves the API until Ctrl-C or SIGTERM.
pub async fn serve(listener: TcpListener, services: Services, api: &ApiArgs) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let app = satusky_api::router(AppState {
        services,
        config: ApiConfig {
            max_body_bytes: api.max_body_bytes,
        },
    });
    tracing::info!(%addr, "API listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Starts SideroLink, the event sink and the machine ports against the
/// cluster machines join; returns services with the ports installed.
async fn start_fleet(
    services: &Services,
    m: &crate::config::MachineArgs,
    listen: std::net::SocketAddr,
    wireguard_key_file: &std::path::Path,
) -> anyhow::Result<(Services, satusky_fleet::FleetHandle)> {
    let clusters = services
        .cluster_credentials()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let (cluster, kubeconfig) = match &m.machines_cluster {
        Some(name) => clusters.into_iter().find(|(c, _)| &c.name == name),
        None => clusters.into_iter().find(|(c, _)| c.default),
    }
    .context("machines need a registered cluster to join: register one (POST /v1/clusters) or pass --machines-cluster")?;
    let kube = crate::platform::client_for(kubeconfig.as_deref()).await?;
    let read = |p: &Option<std::path::PathBuf>, what: &str| -> anyhow::Result<String> {
        let p = p
            .as_ref()
            .with_context(|| format!("--talos-{what} is required with --siderolink-listen"))?;
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let identity = satusky_fleet::TalosIdentity {
        ca_pem: read(&m.talos_ca, "ca")?,
        cert_pem: read(&m.talos_cert, "cert")?,
        key_pem: read(&m.talos_key, "key")?,
        server_name: None,
    };
    let ports = satusky_fleet::FleetPorts::new(kube.clone(), Some(identity));
    let mut config = services.config().clone();
    ports.install(&mut config);
    config.siderolink_url = m
        .siderolink_url
        .clone()
        .unwrap_or_else(|| format!("grpc://{listen}"));
    let siderolink = satusky_fleet::SiderolinkSettings {
        wireguard_listen: m.siderolink_wireguard_listen,
        wireguard_key: Some(wireguard_key(wireguard_key_file)?),
        wireguard_endpoints: wireguard_endpoints(m, &config.siderolink_url),
        ..satusky_fleet::SiderolinkSettings::default()
    };
    if siderolink.wireguard_endpoints.is_empty() {
        tracing::warn!(
            "no WireGuard endpoint machines can reach: pass --siderolink-wireguard-endpoint"
        );
    }
    config.machine_sample_retention =
        std::time::Duration::from_mins(u64::from(m.machine_history_minutes));
    let services = Services::new(services.store().clone(), services.clock().clone(), config);
    services
        .resume_machine_operations()
        .await
        .map_err(|e| anyhow::anyhow!("resuming machine operations: {}", e.message))?;
    if m.machine_sample_seconds > 0 {
        crate::dev::spawn_machine_sampler(
            &services,
            std::time::Duration::from_secs(u64::from(m.machine_sample_seconds)),
        );
    }
    let fleet = satusky_fleet::FleetRuntime::start(satusky_fleet::FleetConfig {
        services: services.clone(),
        kube,
        talos: ports.talos_ops.clone(),
        provision_listen: listen,
        event_sink_listen: m.machine_events_listen,
        siderolink,
        endpoints: std::sync::Arc::new(satusky_fleet::OverlayEndpoints::default()),
        timings: satusky_fleet::FleetTimings::default(),
    })
    .await
    .context("starting the machine fleet runtime")?;
    tracing::info!(cluster = %cluster.name, siderolink = %listen, wireguard = %fleet.wireguard_addr(), "machines: SideroLink serving");
    Ok((services, fleet))
}

/// The server's WireGuard key from `path`, created there on first start (a
/// new key would make every machine provision again).
fn wireguard_key(path: &std::path::Path) -> anyhow::Result<satusky_fleet::WireguardKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => satusky_fleet::WireguardKey::from_base64(text.trim())
            .with_context(|| format!("{} holds no WireGuard key", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = satusky_fleet::WireguardKey::generate();
            write_key(path, &key.to_base64())?;
            tracing::info!(path = %path.display(), "created the SideroLink WireGuard key");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes `text` to a new file readable by its owner only.
fn write_key(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// What machines are told to dial: the explicit endpoints, else the listen
/// address when it is a specific one, else the SideroLink URL's host.
fn wireguard_endpoints(m: &crate::config::MachineArgs, siderolink_url: &str) -> Vec<String> {
    if !m.siderolink_wireguard_endpoint.is_empty() {
        return m.siderolink_wireguard_endpoint.clone();
    }
    let listen = m.siderolink_wireguard_listen;
    if !listen.ip().is_unspecified() {
        return vec![listen.to_string()];
    }
    let rest = siderolink_url
        .split_once("://")
        .map_or(siderolink_url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let unspecified = host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if host.is_empty() || unspecified {
        return Vec::new();
    }
    vec![format!("{host}:{}", listen.port())]
}
