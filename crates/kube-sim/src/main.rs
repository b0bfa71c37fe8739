//! `kube-sim`: run a simulated Kubernetes API server and write a kubeconfig for it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// A simulated Kubernetes API server with cluster behaviour.
#[derive(Debug, Parser)]
#[command(name = "kube-sim", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Number of nodes whose kubelet kube-sim simulates (`node-0` …); nodes clients register
    /// belong to their own kubelet.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Write a kubeconfig for kubectl and kube-rs here.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Require this bearer token from clients.
    #[arg(long)]
    token: Option<String>,
    /// Serve HTTPS with a generated CA (written into the kubeconfig).
    #[arg(long)]
    tls: bool,
    /// Delay from scheduling to Running, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pod_start_delay_ms: u64,
    /// Lease renewal interval of the nodes kube-sim runs, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    heartbeat_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let Args {
        listen,
        nodes,
        kubeconfig,
        token,
        tls,
        pod_start_delay_ms,
        heartbeat_ms,
    } = Args::parse();
    let mut builder = kube_sim::KubeSim::builder()
        .listen(listen)
        .nodes(nodes)
        .pod_start_delay(Duration::from_millis(pod_start_delay_ms))
        .heartbeat(Duration::from_millis(heartbeat_ms))
        .tls(tls);
    if let Some(t) = token {
        builder = builder.token(t);
    }
    let sim = builder.start().await.context("starting kube-sim")?;
    if let Some(path) = &kubeconfig {
        sim.write_kubeconfig(path)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("kube-sim: wrote kubeconfig to {}", path.display());
    }
    println!("{}", sim.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    sim.shutdown().await;
    Ok(())
}
