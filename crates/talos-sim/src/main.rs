//! `talos-sim`: run a fleet of simulated Talos machines until interrupted.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

/// Simulated Talos machines: SideroLink provisioning, the Talos API over mTLS,
/// events, logs, metrics, and Kubernetes node registration.
#[derive(Debug, Parser)]
#[command(name = "talos-sim", version)]
struct Args {
    /// Number of machines.
    #[arg(long, env = "TALOS_SIM_MACHINES", default_value_t = 3)]
    machines: usize,
    /// SideroLink API URL (`grpc://host:port?jointoken=…`); empty: no SideroLink.
    #[arg(long, env = "TALOS_SIM_SIDEROLINK_API", default_value = "")]
    siderolink_api: String,
    /// Join token (overrides the URL's `jointoken=`); empty: none.
    #[arg(
        long,
        env = "TALOS_SIM_JOIN_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    join_token: String,
    /// Event sink `host:port`; empty: no sink.
    #[arg(long, env = "TALOS_SIM_EVENT_SINK", default_value = "")]
    event_sink: String,
    /// Kernel-log receiver `tcp://host:port`; empty: none.
    #[arg(long, env = "TALOS_SIM_KERNEL_LOG", default_value = "")]
    kernel_log: String,
    /// Register nodes with the Kubernetes API from the default kubeconfig.
    #[arg(long, env = "TALOS_SIM_KUBE", default_value_t = false)]
    kube: bool,
    /// Boot machines in maintenance mode.
    #[arg(long, env = "TALOS_SIM_MAINTENANCE", default_value_t = false)]
    maintenance: bool,
    /// Seed for hardware and metrics.
    #[arg(long, env = "TALOS_SIM_SEED", default_value_t = 1)]
    seed: u64,
    /// Directory to write `ca.crt`, `admin.crt`, `admin.key` and `machines.txt` into.
    #[arg(long, env = "TALOS_SIM_OUT_DIR", default_value = "talos-sim-out")]
    out_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let Args {
        machines,
        siderolink_api,
        join_token,
        event_sink,
        kernel_log,
        kube,
        maintenance,
        seed,
        out_dir,
    } = Args::parse();

    let mut b = talos_sim::Fleet::builder()
        .machines(machines)
        .seed(seed)
        .maintenance_mode(maintenance);
    if !siderolink_api.is_empty() {
        b = b.siderolink_endpoint(&siderolink_api);
    }
    if !join_token.is_empty() {
        b = b.join_token(join_token);
    }
    if !event_sink.is_empty() {
        b = b.event_sink(event_sink);
    }
    if !kernel_log.is_empty() {
        b = b.kernel_log(kernel_log);
    }
    if kube {
        let client = kube::Client::try_default()
            .await
            .context("loading the Kubernetes client configuration")?;
        b = b.kube_client(client);
    }
    let fleet = b.start().await.context("starting the fleet")?;

    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    std::fs::write(out_dir.join("ca.crt"), fleet.ca_pem())?;
    std::fs::write(out_dir.join("admin.crt"), &fleet.admin_identity().cert_pem)?;
    std::fs::write(out_dir.join("admin.key"), &fleet.admin_identity().key_pem)?;
    let mut listing = String::new();
    for m in fleet.machines() {
        let hw = m.hardware();
        let _ = writeln!(
            listing,
            "{}\t{}\t{}\t{}\t{}cpu\t{}MiB\t{}",
            m.uuid(),
            m.hostname(),
            m.api_addr(),
            hw.arch.as_str(),
            hw.cpu.logical_cpus(),
            hw.memory_mib,
            hw.zone
        );
    }
    std::fs::write(out_dir.join("machines.txt"), &listing)?;
    print!("{listing}");
    eprintln!(
        "talos-sim: {machines} machines up; credentials in {}; Ctrl-C to stop",
        out_dir.display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tokio::time::timeout(Duration::from_secs(5), fleet.stop())
        .await
        .ok();
    Ok(())
}
