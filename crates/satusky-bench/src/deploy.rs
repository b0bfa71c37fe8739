//! Scenarios `deploy` and `resync`: the platform against kube-sim, through
//! the same reconciler `satusky serve` runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use satusky_api::{ApiConfig, AppState};
use satusky_core::clock::SystemClock;
use satusky_core::crypto::SecretBox;
use satusky_core::{Ctx, Services, ServicesConfig};
use satusky_reconciler::{Reconciler, ReconcilerConfig};
use satusky_types::apps::{AppPhase, DeployRequest, Port};

use crate::stats::{Summary, measure};

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// Apps deployed one after another (one replica each).
    #[arg(long, default_value_t = 30)]
    pub apps: usize,
    /// kube-sim's delay from scheduling to Running, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub pod_start_ms: u64,
    /// kube-sim's delay from Running to Ready, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub pod_ready_ms: u64,
}

#[derive(Debug, clap::Args)]
pub struct ResyncArgs {
    /// Apps the restarted control plane must resync.
    #[arg(long, default_value_t = 10_000)]
    pub apps: usize,
    /// Organizations (namespaces) the apps are spread over, as on a shared platform.
    #[arg(long, default_value_t = 100)]
    pub orgs: usize,
}

#[derive(Debug, clap::Args)]
pub struct ResyncChildArgs {
    #[arg(long)]
    pub database_url: String,
    #[arg(long)]
    pub kubeconfig: String,
    #[arg(long)]
    pub apps: u64,
}

fn services(store: Arc<dyn satusky_core::store::Store>) -> Services {
    Services::new(
        store,
        Arc::new(SystemClock),
        ServicesConfig {
            secret_box: Some(SecretBox::new(&[9u8; 32])),
            ..ServicesConfig::default()
        },
    )
}

async fn admin(services: &Services) -> anyhow::Result<(Ctx, String)> {
    let a = crate::fixture::admin(services).await?;
    Ok((a.ctx, a.token))
}

fn request(image: &str) -> DeployRequest {
    DeployRequest {
        image: image.to_owned(),
        replicas: Some(1),
        ports: Some(vec![Port {
            container_port: 80,
            protocol: "TCP".into(),
            public: true,
        }]),
        create: true,
        ..DeployRequest::default()
    }
}

fn fast_reconciler() -> ReconcilerConfig {
    let mut cfg = ReconcilerConfig {
        progress_requeue: Duration::from_millis(100),
        concurrency: 8,
        ..ReconcilerConfig::default()
    };
    cfg.lease.duration = Duration::from_secs(5);
    cfg.lease.renew_interval = Duration::from_secs(1);
    cfg.lease.retry_interval = Duration::from_millis(200);
    cfg
}

pub async fn run_deploy(args: DeployArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = satusky_store::connect(&url).await?;
    let services = services(store);
    let (ctx, token) = admin(&services).await?;
    let sim = kube_sim::KubeSim::builder()
        .nodes(3)
        .pod_start_delay(Duration::from_millis(args.pod_start_ms))
        .pod_ready_delay(Duration::from_millis(args.pod_ready_ms))
        .start()
        .await?;
    let client = sim.client()?;
    let reconciler = Reconciler::new(services.clone(), client, fast_reconciler());
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(reconciler.run(async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));

    // Floor 1: the same deploy straight on the services (no HTTP).
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (s, c, n) = (services.clone(), ctx.clone(), counter.clone());
    let direct = measure(
        "floor: deploy on the services",
        args.apps,
        0,
        1,
        move || {
            let (s, c, n) = (s.clone(), c.clone(), n.clone());
            async move {
                let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                s.deploy(
                    &c,
                    "bench",
                    &format!("direct-{i}"),
                    &request("nginx:1"),
                    None,
                )
                .await?;
                Ok(())
            }
        },
    )
    .await?;

    // Floor 2: a no-op handler over loopback HTTP.
    let noop = axum::Router::new().route(
        "/noop",
        axum::routing::post(|| async { axum::Json(serde_json::json!({"ok": true})) }),
    );
    let noop_url = spawn(noop).await?;
    let http = reqwest::Client::new();
    let h = http.clone();
    let noop_floor = measure(
        "floor: no-op handler over HTTP",
        args.apps,
        5,
        1,
        move || {
            let h = h.clone();
            let url = format!("{noop_url}/noop");
            async move {
                h.post(url)
                    .json(&serde_json::json!({"image": "x"}))
                    .send()
                    .await?
                    .error_for_status()?;
                Ok(())
            }
        },
    )
    .await?;

    // The API: deploy accepted, then time until Available.
    let api_url = spawn(satusky_api::router(AppState {
        services: services.clone(),
        config: ApiConfig::default(),
    }))
    .await?;
    let mut accepted = Vec::new();
    let mut ready = Vec::new();
    let start_all = Instant::now();
    for i in 0..args.apps {
        let t0 = Instant::now();
        let res = http
            .post(format!("{api_url}/v1/orgs/bench/apps/web-{i}/deploy"))
            .bearer_auth(&token)
            .json(&request("nginx:1.27"))
            .send()
            .await?
            .error_for_status()?;
        accepted.push(t0.elapsed());
        let body: serde_json::Value = res.json().await?;
        let release = body["release"]["number"]
            .as_u64()
            .context("no release number")?;
        loop {
            let app = services.get_app(&ctx, "bench", &format!("web-{i}")).await?;
            if app.status.phase == AppPhase::Available
                && app.status.observed_release == Some(release)
            {
                break;
            }
            anyhow::ensure!(
                t0.elapsed() < Duration::from_mins(1),
                "web-{i} never became available: {:?}",
                app.status
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ready.push(t0.elapsed());
    }
    let api = Summary::from_samples("API: POST …/deploy accepted", accepted, start_all.elapsed());
    let to_ready = Summary::from_samples("deploy → Available", ready, start_all.elapsed());
    let pod_delay = (args.pod_start_ms + args.pod_ready_ms) as f64;
    println!(
        "\ndeploy: {} apps, kube-sim pod start {} ms + ready {} ms",
        args.apps, args.pod_start_ms, args.pod_ready_ms
    );
    println!(
        "{:<34} {:>10} {:>10} {:>12} {:>12}",
        "measurement", "p50 ms", "p99 ms", "p50/direct", "p50/no-op"
    );
    for r in [&direct, &noop_floor, &api] {
        println!(
            "{:<34} {:>10.3} {:>10.3} {:>11.2}x {:>11.2}x",
            r.name,
            r.p50_ms,
            r.p99_ms,
            r.p50_ms / direct.p50_ms,
            r.p50_ms / noop_floor.p50_ms
        );
    }
    println!(
        "{:<34} {:>10.1} {:>10.1}   p50 = {:.2}x the configured pod delay ({pod_delay} ms)",
        to_ready.name,
        to_ready.p50_ms,
        to_ready.p99_ms,
        to_ready.p50_ms / pod_delay
    );
    let _ = stop.send(true);
    let _ = task.await;
    Ok(())
}

async fn spawn(app: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// Peak and current resident memory of this process, in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

pub async fn run_resync(args: ResyncArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = satusky_store::connect(&url).await?;
    let services = services(store);
    let (ctx, _) = admin(&services).await?;
    let orgs = args.orgs.max(1);
    for o in 1..orgs {
        services
            .create_org(&ctx, &format!("bench-{o}"), None)
            .await?;
    }
    let org_of = |i: usize| {
        if i.is_multiple_of(orgs) {
            "bench".to_owned()
        } else {
            format!("bench-{}", i % orgs)
        }
    };
    eprintln!(
        "resync: creating {} apps in {orgs} organizations…",
        args.apps
    );
    let t = Instant::now();
    for i in 0..args.apps {
        let mut req = request("nginx:1");
        req.replicas = Some(0);
        services
            .deploy(&ctx, &org_of(i), &format!("a{i}"), &req, None)
            .await?;
    }
    eprintln!(
        "resync: {} apps in the store after {:.1}s",
        args.apps,
        t.elapsed().as_secs_f64()
    );
    let sim = kube_sim::KubeSim::builder().nodes(3).start().await?;
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)?;

    // First life: converge everything once.
    let first = Reconciler::new(services.clone(), sim.client()?, fast_reconciler());
    let stats = first.stats();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(first.run(async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    let t = Instant::now();
    while stats.snapshot().passes < args.apps as u64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let initial = t.elapsed();
    let _ = stop.send(true);
    let _ = task.await;

    // Floor: read every desired state from the store and list every Deployment once.
    let t = Instant::now();
    let mut page = satusky_core::pagination::PageRequest::first(1000);
    let mut n = 0usize;
    loop {
        let ids = services.app_ids(&page).await?;
        for id in &ids.items {
            services.desired_app(id).await?;
            n += 1;
        }
        match ids.next_cursor {
            Some(c) => page = satusky_core::pagination::PageRequest::parse(Some(1000), Some(&c))?,
            None => break,
        }
    }
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::all(sim.client()?);
    let listed = deployments
        .list(&kube::api::ListParams::default())
        .await?
        .items
        .len();
    let floor = t.elapsed();
    anyhow::ensure!(
        n == args.apps && listed >= args.apps,
        "floor saw {n} apps and {listed} deployments"
    );

    // Second life, in a fresh process: the restart.
    let exe = std::env::current_exe()?;
    let out = tokio::process::Command::new(exe)
        .args(["resync-child", "--database-url", &url, "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--apps", &args.apps.to_string()])
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "resync child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let resync_s = child["seconds"].as_f64().unwrap_or_default();
    println!("\nresync: {} apps in {orgs} organizations", args.apps);
    println!(
        "{:<44} {:>10.2} s",
        "first convergence (create every object)",
        initial.as_secs_f64()
    );
    println!(
        "{:<44} {:>10.2} s",
        "floor: read all desired state + list Deployments",
        floor.as_secs_f64()
    );
    println!(
        "{:<44} {:>10.2} s   {:.1}x the floor, {:.0} apps/s",
        "restarted control plane: every app reconciled",
        resync_s,
        resync_s / floor.as_secs_f64(),
        args.apps as f64 / resync_s
    );
    println!(
        "{:<44} {:>10.1} MiB peak RSS ({:.1} MiB at start, {:.1} KiB per app)",
        "restarted control plane memory",
        child["peak_mib"].as_f64().unwrap_or_default(),
        child["start_mib"].as_f64().unwrap_or_default(),
        (child["peak_mib"].as_f64().unwrap_or_default()
            - child["start_mib"].as_f64().unwrap_or_default())
            * 1024.0
            / args.apps as f64
    );
    println!(
        "{:<44} {:>10}",
        "writes by the restarted control plane", child["writes"]
    );
    Ok(())
}

pub async fn run_resync_child(args: ResyncChildArgs) -> anyhow::Result<()> {
    let (_, start_mib) = memory_mib();
    let store = satusky_store::connect(&args.database_url).await?;
    let services = services(store);
    let yaml = std::fs::read_to_string(&args.kubeconfig)?;
    let kc = kube::config::Kubeconfig::from_yaml(&yaml)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    let client = kube::Client::try_from(config)?;
    let reconciler = Reconciler::new(services, client, fast_reconciler());
    let stats = reconciler.stats();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let task = tokio::spawn(reconciler.run(async move {
        let _ = stopped.wait_for(|s| *s).await;
    }));
    while stats.snapshot().passes < args.apps {
        anyhow::ensure!(
            t.elapsed() < Duration::from_mins(30),
            "resync did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds = t.elapsed().as_secs_f64();
    let (peak_mib, _) = memory_mib();
    let writes = stats.snapshot().writes;
    let _ = stop.send(true);
    let _ = task.await;
    println!(
        "{}",
        serde_json::json!({"seconds": seconds, "peak_mib": peak_mib, "start_mib": start_mib, "writes": writes})
    );
    Ok(())
}
