//! `satusky dev`: the whole platform on one machine, for a newcomer.
//!
//! Starts the API over SQLite in a data directory, makes sure a dev admin,
//! an organization and a personal token exist (kept between runs), and
//! prints how to log in.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use rand::RngCore as _;
use satusky_core::{Ctx, Services};
use tokio::net::TcpListener;

use crate::config::{ApiArgs, DevArgs, StoreArgs};
use crate::serve;

pub const DEV_EMAIL: &str = "admin@satusky.dev";
pub const DEV_ORG: &str = "dev";

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let DevArgs {
        port,
        data_dir,
        machines,
        session_purge_minutes,
    } = args;
    let store_args = StoreArgs {
        data_dir,
        database_url: None,
    };
    let dir = store_args.data_dir("dev")?;
    let url = format!("sqlite://{}", dir.join("satusky.db").display());
    let key_file = dir.join("secret.key");
    if !key_file.exists() {
        write_private(
            &key_file,
            satusky_core::crypto::SecretBox::generate_key().as_bytes(),
        )?;
    }
    let api = ApiArgs {
        session_purge_minutes,
        ..ApiArgs::for_dev(key_file)
    };
    let workload = crate::platform::KubeWorkload::default();

    // The workload plane: an embedded simulated Kubernetes cluster, reached
    // only through kube-rs and a kubeconfig, as a real cluster would be. Its
    // nodes are the simulated Talos machines (plus simulator nodes when
    // `--machines 0`).
    let sim = kube_sim::KubeSim::builder()
        .nodes(if machines == 0 { 3 } else { 0 })
        .start()
        .await
        .context("starting the embedded kube-sim")?;
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)
        .context("writing the kubeconfig")?;
    let client = crate::platform::client_for(Some(&sim.kubeconfig())).await?;

    // The infrastructure plane: SideroLink provisioning, the event sink and
    // the node/Talos ports, served on loopback.
    let provision_port = free_port()?;
    let ports = satusky_fleet::FleetPorts::new(client.clone(), None);
    let services = serve::services_with(&url, &api, workload.clone(), |cfg| {
        ports.install(cfg);
        cfg.siderolink_url = format!("grpc://127.0.0.1:{provision_port}");
    })
    .await?;
    let creds = ensure_admin(&services, &dir).await?;
    services
        .resume_machine_operations()
        .await
        .map_err(|e| anyhow::anyhow!("resuming machine operations: {}", e.message))?;
    spawn_machine_sampler(&services, DEV_SAMPLE_INTERVAL);
    if let Some(every) = api.session_purge_every() {
        serve::spawn_session_purge(&services, every);
    }
    let ctx = satusky_core::Ctx {
        principal: services
            .authenticate(&creds.token)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?,
        request_id: "satusky-dev".to_owned(),
    };
    let endpoints =
        satusky_fleet::provision::StaticEndpoints::new(std::time::Duration::from_secs(5));
    let fleet = satusky_fleet::FleetRuntime::start(satusky_fleet::FleetConfig {
        services: services.clone(),
        kube: client.clone(),
        talos: ports.talos_ops.clone(),
        provision_listen: ([127, 0, 0, 1], provision_port).into(),
        event_sink_listen: ([127, 0, 0, 1], 0).into(),
        siderolink: satusky_fleet::SiderolinkSettings::default(),
        endpoints: endpoints.clone(),
        timings: satusky_fleet::FleetTimings::default(),
    })
    .await
    .context("starting the machine fleet runtime")?;
    let sim_machines = if machines > 0 {
        let started = satusky_fleet::dev::start_sim_machines(satusky_fleet::dev::SimMachines {
            services: &services,
            ctx: &ctx,
            org: DEV_ORG,
            handle: &fleet,
            endpoints: &endpoints,
            talos: &ports.talos_ops,
            kube: client.clone(),
            count: usize::try_from(machines).unwrap_or(3),
            timings: satusky_fleet::dev::SimTimings::default(),
        })
        .await
        .context("starting the simulated machines")?;
        claim_discovered(&services, &ctx, machines, &fleet).await;
        Some(started)
    } else {
        None
    };
    ensure_gateway(&client).await?;
    ensure_local_cluster(&services).await?;

    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("cannot listen on 127.0.0.1:{port}; pass --port to choose another")
        })?;
    let api_url = format!("http://{}", listener.local_addr()?);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let reconcilers = tokio::spawn(crate::platform::run_reconcilers(
        services.clone(),
        dev_reconciler_config(),
        std::collections::HashMap::from([(LOCAL_CLUSTER.to_owned(), client)]),
        workload,
        stopped,
    ));

    let mut out = std::io::stdout().lock();
    writeln!(out, "Satusky dev platform is running.")?;
    writeln!(out, "  API:        {api_url}")?;
    writeln!(
        out,
        "  Log in:     1ctl auth login --api-url {api_url} --token {}",
        creds.token
    )?;
    writeln!(
        out,
        "  Kubeconfig: {}   (kubectl --kubeconfig {} get nodes)",
        kubeconfig.display(),
        kubeconfig.display()
    )?;
    writeln!(
        out,
        "  Cluster:    {LOCAL_CLUSTER} (kube-sim at {}; nodes are {machines} simulated Talos machines)",
        sim.url()
    )?;
    writeln!(out, "  SideroLink: {}", fleet.siderolink_url())?;
    writeln!(
        out,
        "  Admin:      {} (password in {})",
        creds.email,
        dir.join("dev-admin.json").display()
    )?;
    writeln!(out, "  Data:       {}", dir.display())?;
    writeln!(out, "Press Ctrl-C to stop; state is kept for the next run.")?;
    out.flush()?;
    drop(out);
    let served = serve::serve(listener, services, &api).await;
    let _ = stop.send(true);
    let _ = reconcilers.await;
    if let Some(m) = sim_machines {
        m.stop().await;
    }
    fleet.shutdown().await;
    served
}

/// A free loopback port (for servers configured before they bind).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Claims the dev organization's discovered machines, then waits until they
/// have joined as nodes, so the platform is ready when `dev` says so.
async fn claim_discovered(
    services: &Services,
    ctx: &satusky_core::Ctx,
    expected: u32,
    fleet: &satusky_fleet::FleetHandle,
) {
    use satusky_types::machines::MachineState;
    let expected = usize::try_from(expected).unwrap_or(usize::MAX);
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    let query = satusky_types::machines::MachineQuery {
        limit: Some(100),
        ..Default::default()
    };
    let mut joined = 0;
    while std::time::Instant::now() < deadline {
        if let Ok(page) = services.list_machines(ctx, DEV_ORG, &query).await {
            for m in page
                .items
                .iter()
                .filter(|m| m.state == MachineState::Discovered)
            {
                match services.claim_machine(ctx, DEV_ORG, &m.id).await {
                    // Look at the nodes now rather than at the next pass.
                    Ok(_) => fleet.resync(),
                    Err(e) => {
                        tracing::debug!(machine = %m.name, error = %e.message, "claim failed; retrying");
                    }
                }
            }
            joined = page
                .items
                .iter()
                .filter(|m| m.state == MachineState::Joined)
                .count();
            if joined >= expected {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tracing::warn!(
        joined,
        expected,
        "not every simulated machine joined in time"
    );
}

/// Name of the cluster `satusky dev` registers for its embedded kube-sim.
pub const LOCAL_CLUSTER: &str = "local";

/// Short loops for a responsive laptop experience.
fn dev_reconciler_config() -> satusky_reconciler::ReconcilerConfig {
    let mut cfg = satusky_reconciler::ReconcilerConfig {
        resync_period: std::time::Duration::from_secs(30),
        progress_requeue: std::time::Duration::from_millis(500),
        ..satusky_reconciler::ReconcilerConfig::default()
    };
    cfg.lease.duration = std::time::Duration::from_secs(5);
    cfg.lease.renew_interval = std::time::Duration::from_secs(1);
    cfg.lease.retry_interval = std::time::Duration::from_millis(500);
    cfg
}

/// Registers the embedded cluster once; it is reached through a client the
/// dev command holds, not through stored credentials.
async fn ensure_local_cluster(services: &Services) -> anyhow::Result<()> {
    let exists = services
        .cluster_credentials()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?
        .iter()
        .any(|(c, _)| c.name == LOCAL_CLUSTER);
    if !exists {
        services
            .insert_cluster(&satusky_types::clusters::RegisterClusterRequest {
                name: LOCAL_CLUSTER.to_owned(),
                region: "local".to_owned(),
                zone: "local".to_owned(),
                kubeconfig: None,
                default: true,
                priority: 0,
            })
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    }
    Ok(())
}

/// The shared GatewayClass and Gateway app routes attach to, as a platform
/// installation provides them.
async fn ensure_gateway(client: &kube::Client) -> anyhow::Result<()> {
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    use kube::discovery::ApiResource;
    let pp = PatchParams::apply("satusky-dev").force();
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns_obj = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "satusky-system"}});
    ns.patch("satusky-system", &pp, &Patch::Apply(&ns_obj))
        .await
        .context("creating namespace satusky-system")?;
    let gvk = |kind: &str, plural: &str| ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let classes: Api<DynamicObject> =
        Api::all_with(client.clone(), &gvk("GatewayClass", "gatewayclasses"));
    let class = serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "satusky"},
        "spec": {"controllerName": "satusky.com/gateway-controller"}
    });
    classes
        .patch("satusky", &pp, &Patch::Apply(&class))
        .await
        .context("creating the GatewayClass")?;
    let gateways: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "satusky-system",
        &gvk("Gateway", "gateways"),
    );
    let gw = serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "satusky-gateway", "namespace": "satusky-system"},
        "spec": {"gatewayClassName": "satusky", "listeners": [
            {"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "All"}}}
        ]}
    });
    gateways
        .patch("satusky-gateway", &pp, &Patch::Apply(&gw))
        .await
        .context("creating the Gateway")?;
    Ok(())
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct DevAdmin {
    email: String,
    password: String,
    token: String,
}

/// Creates (or reuses) the dev admin, its organization and a token.
async fn ensure_admin(services: &Services, dir: &Path) -> anyhow::Result<DevAdmin> {
    let file = dir.join("dev-admin.json");
    let saved: Option<DevAdmin> = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let password = saved
        .as_ref()
        .map_or_else(random_password, |s| s.password.clone());
    if let Some(saved) = &saved
        && services.authenticate(&saved.token).await.is_ok()
    {
        return Ok(DevAdmin {
            email: saved.email.clone(),
            password,
            token: saved.token.clone(),
        });
    }
    if services
        .store()
        .get_user_by_email(DEV_EMAIL)
        .await?
        .is_none()
    {
        services
            .create_user(DEV_EMAIL, &password, Some("Dev Admin"))
            .await?;
    }
    services.grant_platform_admin(DEV_EMAIL, true).await?;
    let session = services
        .login(DEV_EMAIL, &password, "satusky-dev")
        .await
        .context("the dev admin exists but its saved password does not match; remove the data directory to start over")?;
    let principal = services.authenticate(&session.token).await?;
    let ctx = Ctx {
        principal,
        request_id: "satusky-dev".to_owned(),
    };
    if services.get_org(&ctx, DEV_ORG).await.is_err() {
        services.create_org(&ctx, DEV_ORG, Some("Dev")).await?;
    }
    let name = format!("dev-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let created = services.create_token(&ctx, &name, None, None).await?;
    let admin = DevAdmin {
        email: DEV_EMAIL.to_owned(),
        password,
        token: created.secret,
    };
    write_private(&file, &serde_json::to_vec_pretty(&admin)?)?;
    Ok(admin)
}

fn random_password() -> String {
    let mut b = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Writes a file readable by its owner only.
fn write_private(path: &PathBuf, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// How often `dev` samples its machines' metrics.
const DEV_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Samples every joined machine's metrics into the store every `every`
/// (while this replica holds the sampler lease), for the process's life.
pub(crate) fn spawn_machine_sampler(services: &satusky_core::Services, every: std::time::Duration) {
    let services = services.clone();
    tokio::spawn(async move {
        services
            .run_machine_sampler(every, std::future::pending())
            .await;
    });
}
