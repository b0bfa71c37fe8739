//! Scenario `machines`: many registered machines, a selector query through
//! the API beside the same query on the store, and how long a label takes
//! to reach the Kubernetes node beside a direct node patch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use satusky_api::{ApiConfig, AppState};
use satusky_core::clock::SystemClock;
use satusky_core::crypto::SecretBox;
use satusky_core::fleet::labels;
use satusky_core::pagination::PageRequest;
use satusky_core::services::AdmitRequest;
use satusky_core::{Services, ServicesConfig};
use satusky_types::machines::{CreateJoinTokenRequest, Hardware, LabelsChange};

use crate::stats::{Summary, measure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Registered machines.
    #[arg(long, default_value_t = 10_000)]
    pub machines: usize,
    /// Of which joined as kube-sim nodes (for the label sync measurement).
    #[arg(long, default_value_t = 20)]
    pub nodes: usize,
    /// Queries per measurement.
    #[arg(long, default_value_t = 50)]
    pub queries: usize,
    /// Run on a fresh database of this PostgreSQL server instead of SQLite.
    #[arg(long)]
    pub postgres: Option<String>,
}

const SELECTOR: &str = "pool=gpu,zone in (z-a,z-b),!maintenance";

#[expect(
    clippy::many_single_char_names,
    reason = "short-lived timers and clones"
)]
pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = match &args.postgres {
        Some(pg) => crate::api_list::fresh_pg_database(pg).await?,
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let store = satusky_store::connect(&url).await?;
    let sim = kube_sim::KubeSim::builder()
        .nodes(args.nodes)
        .start()
        .await?;
    let client = sim.client()?;
    let ports = satusky_fleet::FleetPorts::new(client.clone(), None);
    let mut config = ServicesConfig {
        secret_box: Some(SecretBox::new(&[9u8; 32])),
        join_token_key: Some(satusky_core::fleet::SigningKey::new([5u8; 32])),
        ..ServicesConfig::default()
    };
    ports.install(&mut config);
    let services = Services::new(store.clone(), Arc::new(SystemClock), config);
    let crate::fixture::Admin {
        ctx,
        org,
        token: api_token,
    } = crate::fixture::admin(&services).await?;
    let join = services
        .create_join_token(
            &ctx,
            "bench",
            &CreateJoinTokenRequest {
                name: "bench".into(),
                expires_in_hours: Some(24),
            },
        )
        .await?
        .token;

    eprintln!("machines: registering {}…", args.machines);
    let t = Instant::now();
    let zones = ["z-a", "z-b", "z-c"];
    let mut ids = Vec::with_capacity(args.machines);
    for i in 0..args.machines {
        let m = services
            .admit_machine(AdmitRequest {
                token: join.clone(),
                uuid: format!("00000000-0000-4000-8000-{i:012}"),
                fingerprint: format!("fp-{i}"),
                hostname: format!("m-{i}"),
                hardware: Hardware {
                    arch: "amd64".into(),
                    cpu_cores: 8,
                    memory_bytes: 16 << 30,
                    gpus: u32::from(i % 10 == 0),
                    disks: vec![],
                },
                zone: zones[i % 3].to_owned(),
                talos_endpoint: format!("127.0.0.1:{}", 50000 + i % 1000),
                overlay_address: format!("fdae:41e4:649b:9303::{:x}", i + 2),
                talos_version: Some("v1.9.0".into()),
            })
            .await?;
        ids.push(m.id);
    }
    // Every tenth machine is in the gpu pool; a few are in maintenance.
    for (i, id) in ids.iter().enumerate() {
        services.claim_machine(&ctx, "bench", id).await?;
        let mut change = LabelsChange::default();
        if i % 10 == 0 {
            change.set.insert("pool".into(), "gpu".into());
        }
        if i % 50 == 0 {
            change.set.insert("maintenance".into(), "true".into());
        }
        if !change.set.is_empty() {
            services
                .change_machine_labels(&ctx, "bench", id, &change)
                .await?;
        }
    }
    eprintln!(
        "machines: {} registered and labelled in {:.1}s",
        args.machines,
        t.elapsed().as_secs_f64()
    );

    // The expected answer, to check both paths return it.
    let selector =
        labels::machine_selector(SELECTOR).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let expected = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 == 0 && i % 50 != 0 && zones[i % 3] != "z-c")
        .count();

    // Floor: the same query straight on the store (the store evaluates the
    // selector), paged as the API pages.
    let s = store.clone();
    let org_id = org.id.clone();
    let sel = selector.clone();
    let floor = measure(
        "floor: same query on the store",
        args.queries,
        3,
        1,
        move || {
            let (s, org_id, sel) = (s.clone(), org_id.clone(), sel.clone());
            async move {
                let mut page = PageRequest::first(500);
                let mut n = 0;
                loop {
                    let rows = s.list_machines_selected(&org_id, true, &sel, &page).await?;
                    let more = rows.len() > 500;
                    n += rows.len().min(500);
                    if !more {
                        break;
                    }
                    page.after = rows.get(499).map(|m| m.id.clone());
                }
                anyhow::ensure!(n == expected, "store floor found {n}, expected {expected}");
                Ok(())
            }
        },
    )
    .await?;

    // For comparison: every machine read from the store and matched in
    // memory (how selector queries worked before the store evaluated them).
    let s = store.clone();
    let org_id = org.id.clone();
    let sel = selector.clone();
    let scan = measure(
        "reference: read all, match in memory",
        args.queries,
        3,
        1,
        move || {
            let (s, org_id, sel) = (s.clone(), org_id.clone(), sel.clone());
            async move {
                let mut page = PageRequest::first(500);
                let mut n = 0;
                loop {
                    let rows = s.list_machines(&org_id, true, &page).await?;
                    let more = rows.len() > 500;
                    n += rows
                        .iter()
                        .take(500)
                        .filter(|m| sel.matches(&labels::all_labels(&m.labels, &m.system_labels)))
                        .count();
                    if !more {
                        break;
                    }
                    page.after = rows.get(499).map(|m| m.id.clone());
                }
                anyhow::ensure!(n == expected, "scan found {n}, expected {expected}");
                Ok(())
            }
        },
    )
    .await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = satusky_api::router(AppState {
        services: services.clone(),
        config: ApiConfig::default(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let (h, b, tok) = (http.clone(), base.clone(), api_token.clone());
    let api = measure(
        "API: GET …/machines?selector=",
        args.queries,
        3,
        1,
        move || {
            let (h, b, tok) = (h.clone(), b.clone(), tok.clone());
            async move {
                let body: serde_json::Value = h
                    .get(format!("{b}/v1/orgs/bench/machines"))
                    .query(&[("selector", SELECTOR), ("limit", "1000")])
                    .bearer_auth(&tok)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let n = body["items"].as_array().map_or(0, Vec::len);
                anyhow::ensure!(n == expected, "API found {n}, expected {expected}");
                Ok(())
            }
        },
    )
    .await?;

    // Label-to-node sync: join the first machines to kube-sim's nodes.
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    let node_names: Vec<String> = nodes
        .list(&kube::api::ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    let joined: Vec<(String, String)> = ids
        .iter()
        .cloned()
        .zip(node_names.iter().cloned())
        .collect();
    for (id, node) in &joined {
        services.machine_node_joined(id, node).await?;
    }
    let wait_label = |node: String, key: String, value: String| {
        let nodes = nodes.clone();
        async move {
            let start = Instant::now();
            loop {
                let n = nodes.get(&node).await?;
                if n.metadata.labels.as_ref().and_then(|l| l.get(&key)) == Some(&value) {
                    return anyhow::Ok(());
                }
                anyhow::ensure!(
                    start.elapsed() < Duration::from_secs(10),
                    "label never reached {node}"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };
    let mut direct = Vec::new();
    let mut through = Vec::new();
    for (round, (id, node)) in joined.iter().enumerate() {
        // Floor: patch the node directly, then see it.
        let t = Instant::now();
        let patch =
            serde_json::json!({"metadata": {"labels": {"bench/direct": round.to_string()}}});
        nodes
            .patch(
                node,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await?;
        wait_label(node.clone(), "bench/direct".into(), round.to_string()).await?;
        direct.push(t.elapsed());
        // Through the API: set a machine label, then see it on the node.
        let t = Instant::now();
        http.patch(format!("{base}/v1/orgs/bench/machines/{id}/labels"))
            .bearer_auth(&api_token)
            .json(&serde_json::json!({"set": {"rack": format!("r{round}")}}))
            .send()
            .await?
            .error_for_status()?;
        wait_label(node.clone(), "satusky.com/rack".into(), format!("r{round}")).await?;
        through.push(t.elapsed());
    }
    let wall = Duration::from_secs(1);
    let direct = Summary::from_samples("floor: direct node patch → visible", direct, wall);
    let through = Summary::from_samples("API label set → on the node", through, wall);

    println!(
        "\nmachines on {}: {} registered, selector `{SELECTOR}` matches {expected}",
        if args.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        args.machines
    );
    println!(
        "{:<38} {:>10} {:>10} {:>12}",
        "measurement", "p50 ms", "p99 ms", "p50/floor"
    );
    println!(
        "{:<38} {:>10.2} {:>10.2} {:>11.2}x",
        floor.name, floor.p50_ms, floor.p99_ms, 1.0
    );
    println!(
        "{:<38} {:>10.2} {:>10.2} {:>11.2}x",
        api.name,
        api.p50_ms,
        api.p99_ms,
        api.p50_ms / floor.p50_ms
    );
    println!(
        "{:<38} {:>10.2} {:>10.2} {:>11.2}x",
        scan.name,
        scan.p50_ms,
        scan.p99_ms,
        scan.p50_ms / floor.p50_ms
    );
    println!(
        "{:<38} {:>10.2} {:>10.2} {:>11.2}x",
        direct.name, direct.p50_ms, direct.p99_ms, 1.0
    );
    println!(
        "{:<38} {:>10.2} {:>10.2} {:>11.2}x",
        through.name,
        through.p50_ms,
        through.p99_ms,
        through.p50_ms / direct.p50_ms
    );
    Ok(())
}
