//! Scale bench: 5,000 nodes and 50,000 pods in memory; list latency with a label selector,
//! watch fan-out to 100 watchers and memory, each with a floor measured in the same run.
//!
//! `cargo run -p kube-sim --example bench [-- --nodes N --pods N --watchers N]`

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pod(i: usize, nodes: usize, ns: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": format!("pod-{i}"), "namespace": ns,
            "labels": {"app": format!("app-{}", i % 500), "tier": if i.is_multiple_of(2) { "web" } else { "worker" }}},
        "spec": {"nodeName": format!("node-{}", i % nodes.max(1)), "containers": [{"name": "main", "image": "registry.example/app:1",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

async fn list_latency(
    api: &Api<Pod>,
    selector: &str,
    runs: usize,
) -> anyhow::Result<(Duration, usize)> {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let l = api.list(&ListParams::default().labels(selector)).await?;
        times.push(start.elapsed());
        n = l.items.len();
    }
    Ok((median(times), n))
}

/// Opens `watchers` watches on pods in `ns`, creates `events` pods, and returns the
/// delivery latencies (write → every watcher received it).
async fn fanout(
    sim: &kube_sim::Sim,
    ns: &str,
    watchers: usize,
    events: usize,
) -> anyhow::Result<Vec<Duration>> {
    let client = sim.client()?;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let rv = api
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let api = api.clone();
        let tx = tx.clone();
        let rv = rv.clone();
        let stream = api
            .watch(&WatchParams::default().timeout(290), &rv)
            .await?
            .boxed();
        tasks.push(tokio::spawn(async move {
            let mut stream = stream;
            while let Ok(Some(ev)) = stream.try_next().await {
                if let WatchEvent::Added(p) = ev {
                    let _ = tx.send((p.metadata.name.unwrap_or_default(), Instant::now()));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::new();
    for i in 0..events {
        let name = format!("fan-{i}");
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}))?;
        let start = Instant::now();
        api.create(&PostParams::default(), &p).await?;
        let mut got = 0;
        let mut last = start;
        while got < watchers {
            let (n, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .context("watch event within 30 s")?
                .context("watchers alive")?;
            if n == name {
                got += 1;
                last = at;
            }
        }
        latencies.push(last - start);
    }
    for t in tasks {
        t.abort();
    }
    Ok(latencies)
}

/// Creates a 10-replica Deployment in `default` and waits until it is available.
async fn rollout(sim: &kube_sim::Sim, name: &str) -> anyhow::Result<Duration> {
    use k8s_openapi::api::apps::v1::Deployment;
    let api: Api<Deployment> = Api::default_namespaced(sim.client()?);
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"replicas": 10, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}))?;
    let start = Instant::now();
    api.create(&PostParams::default(), &d).await?;
    loop {
        let d = api.get(name).await?;
        if d.status.and_then(|s| s.available_replicas) == Some(10) {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_mins(5),
            "rollout of {name} took over 300 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let nodes = arg("--nodes", 5_000);
    let pods = arg("--pods", 50_000);
    let watchers = arg("--watchers", 100);
    let events = arg("--events", 50);
    println!(
        "kube-sim bench: {nodes} nodes, {pods} pods, {watchers} watchers (debug builds are several times slower than release)"
    );

    let controllers = std::env::args().any(|a| a == "--controllers");
    let rollout_floor = if controllers {
        let small = kube_sim::KubeSim::builder()
            .nodes(3)
            .tick(Duration::from_millis(50))
            .start()
            .await?;
        let t = rollout(&small, "floor-rollout").await?;
        small.shutdown().await;
        Some(t)
    } else {
        None
    };
    let rss_start = rss_bytes();
    let sim = kube_sim::KubeSim::builder()
        .nodes(0)
        .controllers(controllers)
        .tick(Duration::from_millis(50))
        .history(1000)
        .start()
        .await?;
    let state = sim.state().clone();
    let ns_rt = state
        .rt("", "v1", "namespaces")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let pods_rt = state
        .rt("", "v1", "pods")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for ns in ["bench", "floor", "fan", "fan1"] {
        kube_sim::api::create(
            &state,
            &ns_rt,
            "",
            json!({"metadata": {"name": ns}}),
            &kube_sim::api::WriteOpts::default(),
            "bench",
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let rss_empty = rss_bytes();

    let load_start = Instant::now();
    for i in 0..nodes {
        sim.add_node(&format!("node-{i}"), std::collections::BTreeMap::new())?;
    }
    let mut json_bytes = 0usize;
    for i in 0..pods {
        let p = kube_sim::api::create(
            &state,
            &pods_rt,
            "bench",
            pod(i, nodes, "bench"),
            &kube_sim::api::WriteOpts::default(),
            "bench",
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        json_bytes += serde_json::to_vec(&*p)?.len();
    }
    let load = load_start.elapsed();
    let rss_full = rss_bytes();
    // floor for lists: the same 100 matching pods alone in a namespace
    for i in 0..100 {
        let mut p = pod(i * 500, nodes, "floor");
        p["metadata"]["labels"]["app"] = json!("floor");
        kube_sim::api::create(
            &state,
            &pods_rt,
            "floor",
            p,
            &kube_sim::api::WriteOpts::default(),
            "bench",
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    println!("loaded {nodes} nodes and {pods} pods in {load:.2?}");

    let client = sim.client()?;
    let all: Api<Pod> = Api::all(client.clone());
    let floor_api: Api<Pod> = Api::namespaced(client.clone(), "floor");
    if let Some(floor) = rollout_floor {
        let start = Instant::now();
        let pods_api: Api<Pod> = Api::namespaced(client.clone(), "bench");
        loop {
            let running = pods_api
                .list(
                    &ListParams::default()
                        .fields("status.phase=Running")
                        .limit(1),
                )
                .await?;
            let remaining =
                running.metadata.remaining_item_count.unwrap_or(0) + running.items.len() as i64;
            if remaining as usize >= pods {
                break;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_mins(10),
                "pods not running after 600 s ({remaining})"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!(
            "controllers: the kubelet brought {pods} pods to Running in {:.2?}",
            start.elapsed()
        );
        let at_scale = rollout(&sim, "scale-rollout").await?;
        println!(
            "controllers: a 10-replica Deployment becomes available in {at_scale:.2?} among {pods} pods; floor (3-node empty cluster) {floor:.2?}; ratio {:.1}x",
            at_scale.as_secs_f64() / floor.as_secs_f64()
        );
    }
    let (floor_t, floor_n) = list_latency(&floor_api, "app=floor", 20).await?;
    let (list_t, list_n) = list_latency(&all, "app=app-0", 20).await?;
    println!(
        "list with labelSelector app=app-0: {list_n} of {} pods in {list_t:.2?} (median of 20); floor: {floor_n} pods alone in a namespace: {floor_t:.2?}; ratio {:.1}x",
        pods + 100,
        list_t.as_secs_f64() / floor_t.as_secs_f64()
    );
    let (set_t, set_n) = list_latency(&all, "app in (app-1,app-2),tier=worker", 10).await?;
    println!(
        "list with labelSelector 'app in (app-1,app-2),tier=worker': {set_n} pods in {set_t:.2?}; ratio {:.1}x",
        set_t.as_secs_f64() / floor_t.as_secs_f64()
    );

    let one = fanout(&sim, "fan1", 1, events).await?;
    let many = fanout(&sim, "fan", watchers, events).await?;
    println!(
        "watch fan-out: {events} creates to {watchers} watchers: median {:.2?}, p99 {:.2?}; floor (1 watcher) median {:.2?}; ratio {:.1}x",
        median(many.clone()),
        p99(many.clone()),
        median(one.clone()),
        median(many).as_secs_f64() / median(one).as_secs_f64()
    );

    let grown = rss_full.saturating_sub(rss_empty);
    println!(
        "memory: RSS {:.0} MiB at start, {:.0} MiB empty sim, {:.0} MiB loaded; growth {:.0} MiB for {} objects = {:.1} KiB/pod; floor (the objects' JSON) {:.0} MiB; ratio {:.1}x",
        rss_start as f64 / 1_048_576.0,
        rss_empty as f64 / 1_048_576.0,
        rss_full as f64 / 1_048_576.0,
        grown as f64 / 1_048_576.0,
        nodes * 2 + pods,
        grown as f64 / 1024.0 / pods.max(1) as f64,
        json_bytes as f64 / 1_048_576.0,
        grown as f64 / json_bytes.max(1) as f64
    );
    sim.shutdown().await;
    Ok(())
}
