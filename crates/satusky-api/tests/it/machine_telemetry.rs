//! Machine telemetry through the API: logs (once and followed over a
//! WebSocket) and the short metrics history (sampled into the store, paged,
//! streamed), with fake Talos ports.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use futures::StreamExt as _;
use satusky_api::ApiConfig;
use satusky_core::fleet::ports::ApiMode;
use satusky_core::fleet::{
    CapacityOps, DrainOptions, DrainProgress, LineStream, LogRequest, LogSource, MachineLogs,
    NodeCapacity, NodeOps, NodeStatus, OpsError, ResetOptions, ServiceHealth, SigningKey, TalosOps,
    TalosTarget, async_trait,
};
use satusky_core::services::AdmitRequest;
use satusky_core::{Services, ServicesConfig};
use satusky_types::machines::{DrainReport, Hardware, MachineMetrics};
use serde_json::{Value, json};

use crate::support::TestApp;

#[derive(Debug, Default)]
struct Nodes;

#[async_trait]
impl NodeOps for Nodes {
    async fn set_labels(
        &self,
        _node: &str,
        _set: &BTreeMap<String, String>,
        _unset: &[String],
    ) -> Result<(), OpsError> {
        Ok(())
    }
    async fn cordon(&self, _node: &str, _unschedulable: bool) -> Result<(), OpsError> {
        Ok(())
    }
    async fn drain(
        &self,
        _node: &str,
        _opts: &DrainOptions,
        _progress: DrainProgress<'_>,
    ) -> Result<DrainReport, OpsError> {
        Err(OpsError::failed("not in these tests"))
    }
    async fn node_status(&self, _node: &str) -> Result<Option<NodeStatus>, OpsError> {
        Ok(Some(NodeStatus {
            ready: true,
            ..NodeStatus::default()
        }))
    }
    async fn delete_node(&self, _node: &str) -> Result<(), OpsError> {
        Ok(())
    }
}

/// Talos with a CPU figure that grows by one per sample, per machine, and
/// machines (by uuid) that do not answer.
#[derive(Debug, Default)]
struct Talos {
    calls: Mutex<HashMap<String, u32>>,
    unreachable: Mutex<BTreeSet<String>>,
}

#[async_trait]
impl TalosOps for Talos {
    async fn reboot(&self, _m: &TalosTarget) -> Result<(), OpsError> {
        Ok(())
    }
    async fn shutdown(&self, _m: &TalosTarget) -> Result<(), OpsError> {
        Ok(())
    }
    async fn reset(&self, _m: &TalosTarget, _opts: ResetOptions) -> Result<(), OpsError> {
        Ok(())
    }
    async fn metrics(&self, m: &TalosTarget) -> Result<MachineMetrics, OpsError> {
        if self.unreachable.lock().unwrap().contains(&m.uuid) {
            return Err(OpsError::unreachable(format!("machine {}", m.uuid)));
        }
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(m.uuid.clone()).or_default();
            *n += 1;
            *n
        };
        Ok(MachineMetrics {
            at: chrono::Utc::now(),
            cpu_percent: f64::from(n),
            memory_used_bytes: 1 << 30,
            memory_total_bytes: 16 << 30,
            load1: 0.5,
            net_rx_bytes_per_sec: 10.0,
            net_tx_bytes_per_sec: 20.0,
            disk_read_bytes_per_sec: 30.0,
            disk_write_bytes_per_sec: 40.0,
        })
    }
    async fn version(&self, _m: &TalosTarget) -> Result<String, OpsError> {
        Ok("v1.13.0".to_owned())
    }
    async fn services(&self, m: &TalosTarget) -> Result<Vec<ServiceHealth>, OpsError> {
        if self.unreachable.lock().unwrap().contains(&m.uuid) {
            return Err(OpsError::unreachable(format!("machine {}", m.uuid)));
        }
        Ok(["apid", "kubelet"]
            .map(|id| ServiceHealth {
                id: id.to_owned(),
                state: "Running".to_owned(),
                healthy: true,
            })
            .into())
    }
    async fn remove_link(&self, _m: &TalosTarget) -> Result<(), OpsError> {
        Ok(())
    }
    async fn api_mode(&self, _m: &TalosTarget) -> Result<ApiMode, OpsError> {
        Ok(ApiMode::Configured)
    }
}

/// Logs kept per machine uuid and source name; a followed log gets the
/// lines written later through `write`.
#[derive(Debug, Default)]
struct Logs {
    lines: Mutex<HashMap<(String, String), Vec<String>>>,
    followers: Mutex<Vec<(String, String, tokio::sync::mpsc::UnboundedSender<String>)>>,
    unreachable: Mutex<BTreeSet<String>>,
    requests: Mutex<Vec<LogRequest>>,
}

impl Logs {
    fn write(&self, uuid: &str, source: &str, line: &str) {
        self.lines
            .lock()
            .unwrap()
            .entry((uuid.to_owned(), source.to_owned()))
            .or_default()
            .push(line.to_owned());
        for (u, s, tx) in self.followers.lock().unwrap().iter() {
            if u == uuid && s == source {
                let _ = tx.send(line.to_owned());
            }
        }
    }
}

#[async_trait]
impl MachineLogs for Logs {
    async fn logs(&self, m: &TalosTarget, req: &LogRequest) -> Result<LineStream, OpsError> {
        self.requests.lock().unwrap().push(req.clone());
        if self.unreachable.lock().unwrap().contains(&m.uuid) {
            return Err(OpsError::unreachable(format!("machine {}", m.uuid)));
        }
        let source = match &req.source {
            LogSource::Kernel => "kernel".to_owned(),
            LogSource::Service(s) => s.clone(),
        };
        let key = (m.uuid.clone(), source.clone());
        let Some(lines) = self.lines.lock().unwrap().get(&key).cloned() else {
            return Err(OpsError::NotFound(format!("log {source}")));
        };
        let tail = req.tail_lines.map_or(lines.len(), |t| t as usize);
        let head: Vec<Result<String, OpsError>> = lines
            .iter()
            .skip(lines.len().saturating_sub(tail))
            .cloned()
            .map(Ok)
            .collect();
        if !req.follow {
            return Ok(futures::stream::iter(head).boxed());
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.followers
            .lock()
            .unwrap()
            .push((m.uuid.clone(), source, tx));
        let live = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|line| (Ok(line), rx))
        });
        Ok(futures::stream::iter(head).chain(live).boxed())
    }
}

/// Node capacity by node name: 2 cores, 4 GiB and 10 pods each, with
/// per-node requests already used and cordons.
#[derive(Debug, Default)]
struct Capacity {
    used: Mutex<HashMap<String, (u64, u64, u32)>>,
    cordoned: Mutex<BTreeSet<String>>,
}

#[async_trait]
impl CapacityOps for Capacity {
    async fn capacity(&self, node: &str) -> Result<Option<NodeCapacity>, OpsError> {
        let (cpu, mem, pods) = self
            .used
            .lock()
            .unwrap()
            .get(node)
            .copied()
            .unwrap_or_default();
        let cordoned = self.cordoned.lock().unwrap().contains(node);
        Ok(Some(NodeCapacity {
            cpu_allocatable_millis: 2000,
            memory_allocatable_bytes: 4 << 30,
            pods_allocatable: 10,
            cpu_requested_millis: cpu,
            memory_requested_bytes: mem,
            pods,
            schedulable: !cordoned,
            reason: cordoned.then(|| "cordoned".to_owned()),
        }))
    }
}

struct Fleet {
    app: TestApp,
    owner: String,
    talos: Arc<Talos>,
    logs: Arc<Logs>,
    capacity: Arc<Capacity>,
}

impl Fleet {
    async fn new(retention: Duration) -> Self {
        let talos = Arc::new(Talos::default());
        let logs = Arc::new(Logs::default());
        let capacity = Arc::new(Capacity::default());
        let config = ServicesConfig {
            capacity: Some(capacity.clone()),
            join_token_key: Some(SigningKey::new([7u8; 32])),
            node_ops: Some(Arc::new(Nodes)),
            talos_ops: Some(talos.clone()),
            machine_logs: Some(logs.clone()),
            machine_sample_retention: retention,
            ..ServicesConfig::default()
        };
        let app = TestApp::with_config(config, ApiConfig::default()).await;
        let owner = app.user("owner@example.com").await;
        app.org(&owner, "acme").await;
        Self {
            app,
            owner,
            talos,
            logs,
            capacity,
        }
    }

    fn services(&self) -> &Services {
        &self.app.services
    }

    /// A machine admitted with a fresh join token, claimed and joined.
    async fn joined(&self, host: &str) -> String {
        let id = self.claimed(host).await;
        self.services()
            .machine_node_joined(&id, &format!("node-{host}"))
            .await
            .unwrap();
        id
    }

    /// A machine admitted with a fresh join token and claimed.
    async fn claimed(&self, host: &str) -> String {
        let token = self
            .app
            .post(
                "/v1/orgs/acme/join-tokens",
                &self.owner,
                json!({"name": format!("t-{host}")}),
            )
            .await
            .ok()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let id = self
            .services()
            .admit_machine(AdmitRequest {
                token,
                uuid: format!("uuid-{host}"),
                fingerprint: format!("fp-{host}"),
                hostname: host.to_owned(),
                hardware: Hardware {
                    arch: "amd64".to_owned(),
                    cpu_cores: 4,
                    memory_bytes: 8 << 30,
                    gpus: 0,
                    disks: vec![],
                },
                zone: "a".to_owned(),
                talos_endpoint: format!("[fdae::{}]:50000", host.len()),
                overlay_address: format!("fdae:41e4:649b:9303::{}", host.len()),
                talos_version: Some("v1.13.0".to_owned()),
            })
            .await
            .unwrap()
            .id;
        self.app
            .post(
                &format!("/v1/orgs/acme/machines/{host}/claim"),
                &self.owner,
                json!({}),
            )
            .await
            .ok();
        id
    }

    async fn ws(&self, addr: &str, path: &str, token: &str) -> Ws {
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{addr}{path}"),
            )
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        tokio_tungstenite::connect_async(req).await.unwrap().0
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws) -> Value {
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message within 10 s")
        .unwrap()
        .unwrap();
    serde_json::from_str(msg.to_text().unwrap()).unwrap()
}

fn lines(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}: {}",
                l["source"].as_str().unwrap(),
                l["line"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn machine_logs_read_the_last_lines_of_a_service_or_the_kernel() {
    let f = Fleet::new(Duration::from_hours(1)).await;
    f.joined("w1").await;
    for i in 1..=5 {
        f.logs
            .write("uuid-w1", "kubelet", &format!("kubelet line {i}"));
    }
    f.logs.write("uuid-w1", "machined", "machined up");
    f.logs
        .write("uuid-w1", "kernel", "[    0.000000] Linux version 6.12");

    let page = f
        .app
        .get(
            "/v1/orgs/acme/machines/w1/logs?source=kubelet&tail=2",
            &f.owner,
        )
        .await
        .ok();
    assert_eq!(
        lines(&page),
        ["kubelet: kubelet line 4", "kubelet: kubelet line 5"]
    );
    assert_eq!(page["next_cursor"], Value::Null);
    // The default source is machined; `dmesg` is the kernel's other name.
    let page = f
        .app
        .get("/v1/orgs/acme/machines/w1/logs", &f.owner)
        .await
        .ok();
    assert_eq!(lines(&page), ["machined: machined up"]);
    for source in ["kernel", "dmesg"] {
        let page = f
            .app
            .get(
                &format!("/v1/orgs/acme/machines/w1/logs?source={source}"),
                &f.owner,
            )
            .await
            .ok();
        assert_eq!(lines(&page), ["kernel: [    0.000000] Linux version 6.12"]);
    }
    let asked = f.logs.requests.lock().unwrap().clone();
    assert_eq!(asked[0].tail_lines, Some(2));
    assert_eq!(asked[1].tail_lines, Some(100), "the default tail");
    assert!(asked.iter().all(|r| !r.follow));

    // Bad input is refused before Talos is asked.
    let before = f.logs.requests.lock().unwrap().len();
    for (query, code) in [
        ("source=Kubelet", "invalid_query"),
        ("source=../../etc", "invalid_query"),
        ("tail=0", "invalid_query"),
        ("tail=10001", "invalid_query"),
        ("tail=many", "invalid_query"),
        ("follow=true", "invalid_query"),
    ] {
        f.app
            .get(&format!("/v1/orgs/acme/machines/w1/logs?{query}"), &f.owner)
            .await
            .err(400, code);
    }
    assert_eq!(f.logs.requests.lock().unwrap().len(), before);

    f.app
        .get("/v1/orgs/acme/machines/w1/logs?source=etcd", &f.owner)
        .await
        .err(404, "machine_log_not_found");
    f.app
        .get("/v1/orgs/acme/machines/nope/logs", &f.owner)
        .await
        .err(404, "machine_not_found");
    f.logs.unreachable.lock().unwrap().insert("uuid-w1".into());
    f.app
        .get("/v1/orgs/acme/machines/w1/logs", &f.owner)
        .await
        .err(503, "unavailable");
}

#[tokio::test]
async fn machine_logs_are_for_the_owning_organization_only() {
    let f = Fleet::new(Duration::from_hours(1)).await;
    let id = f.joined("w1").await;
    f.logs.write("uuid-w1", "machined", "secret-ish line");
    let app = &f.app;
    let viewer = app.user("viewer@example.com").await;
    app.add_member(&f.owner, "acme", "viewer@example.com", "viewer")
        .await;
    let page = app
        .get("/v1/orgs/acme/machines/w1/logs", &viewer)
        .await
        .ok();
    assert_eq!(lines(&page), ["machined: secret-ish line"]);

    let other = app.user("other@example.com").await;
    app.org(&other, "other").await;
    for path in [
        format!("/v1/orgs/other/machines/{id}/logs"),
        format!("/v1/orgs/acme/machines/{id}/logs"),
    ] {
        let res = app.get(&path, &other).await;
        assert_eq!(res.status, 404, "{path}: {}", res.body);
    }
    // A public machine is visible read-only to others, but not its logs.
    app.call(
        Method::PUT,
        "/v1/orgs/acme/machines/w1/visibility",
        Some(&f.owner),
        Some(json!({"visibility": "public"})),
    )
    .await
    .ok();
    app.get(&format!("/v1/orgs/other/machines/{id}"), &other)
        .await
        .ok();
    app.get(&format!("/v1/orgs/other/machines/{id}/logs"), &other)
        .await
        .err(403, "forbidden");
}

#[tokio::test]
async fn a_followed_machine_log_streams_new_lines_over_a_websocket() {
    let f = Fleet::new(Duration::from_hours(1)).await;
    f.joined("w1").await;
    for i in 1..=3 {
        f.logs.write("uuid-w1", "kubelet", &format!("old {i}"));
    }
    let addr = f.app.serve().await;
    let mut ws = f
        .ws(
            &addr,
            "/v1/orgs/acme/machines/w1/logs/ws?source=kubelet&tail=1",
            &f.owner,
        )
        .await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({"source": "kubelet", "line": "old 3"})
    );
    f.logs.write("uuid-w1", "kubelet", "new 1");
    f.logs.write("uuid-w1", "machined", "not this log");
    f.logs.write("uuid-w1", "kubelet", "new 2");
    assert_eq!(next_json(&mut ws).await["line"], "new 1");
    assert_eq!(next_json(&mut ws).await["line"], "new 2");
    assert!(f.logs.requests.lock().unwrap().iter().any(|r| r.follow));

    // Refusals happen before the upgrade, as ordinary HTTP errors.
    let anon =
        tokio_tungstenite::connect_async(format!("ws://{addr}/v1/orgs/acme/machines/w1/logs/ws"))
            .await;
    assert!(anon.is_err());
    let missing = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/v1/orgs/acme/machines/w1/logs/ws?source=etcd"
    ))
    .await;
    assert!(missing.is_err());
}

#[tokio::test]
async fn sampled_metrics_form_a_paginated_history_and_unreachable_machines_are_skipped() {
    let f = Fleet::new(Duration::from_hours(1)).await;
    let w1 = f.joined("w1").await;
    f.joined("w2").await;
    f.talos.unreachable.lock().unwrap().insert("uuid-w2".into());

    for _ in 0..3 {
        let r = f.services().sample_machines().await.unwrap();
        assert_eq!((r.sampled, r.failed, r.pruned), (1, 1, 0));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let page = f
        .app
        .get(
            "/v1/orgs/acme/machines/w1/metrics/history?limit=2",
            &f.owner,
        )
        .await
        .ok();
    let cpu = |p: &Value| -> Vec<f64> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["cpu_percent"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(cpu(&page), [1.0, 2.0], "oldest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = f
        .app
        .get(
            &format!("/v1/orgs/acme/machines/{w1}/metrics/history?limit=2&cursor={cursor}"),
            &f.owner,
        )
        .await
        .ok();
    assert_eq!(cpu(&rest), [3.0]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let recent = f
        .app
        .get(
            "/v1/orgs/acme/machines/w1/metrics/history?since_seconds=3600",
            &f.owner,
        )
        .await
        .ok();
    assert_eq!(cpu(&recent), [1.0, 2.0, 3.0]);
    let w2 = f
        .app
        .get("/v1/orgs/acme/machines/w2/metrics/history", &f.owner)
        .await
        .ok();
    assert_eq!(w2["items"], json!([]));

    f.app
        .get(
            "/v1/orgs/acme/machines/w1/metrics/history?cursor=bogus",
            &f.owner,
        )
        .await
        .err(400, "invalid_cursor");
    f.app
        .get(
            "/v1/orgs/acme/machines/w1/metrics/history?limit=0",
            &f.owner,
        )
        .await
        .err(400, "invalid_query");

    let other = f.app.user("other@example.com").await;
    f.app.org(&other, "other").await;
    f.app
        .get(
            &format!("/v1/orgs/other/machines/{w1}/metrics/history"),
            &other,
        )
        .await
        .err(404, "machine_not_found");
}

#[tokio::test]
async fn samples_older_than_the_retention_are_pruned() {
    let f = Fleet::new(Duration::from_mins(10)).await;
    f.joined("w1").await;
    let first = f.services().sample_machines().await.unwrap();
    assert_eq!((first.sampled, first.pruned), (1, 0));
    let second = f.services().sample_machines().await.unwrap();
    assert_eq!((second.sampled, second.pruned), (1, 0), "both are recent");
    f.app.clock.advance(chrono::TimeDelta::minutes(11));
    let third = f.services().sample_machines().await.unwrap();
    // The third sample was taken (by Talos's clock) before the control
    // plane's clock moved on, so it is as old as the others.
    assert_eq!((third.sampled, third.pruned), (1, 3));
    let page = f
        .app
        .get("/v1/orgs/acme/machines/w1/metrics/history", &f.owner)
        .await
        .ok();
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn a_metrics_stream_starts_with_recent_samples_then_follows_new_ones() {
    let f = Fleet::new(Duration::from_hours(1)).await;
    f.joined("w1").await;
    f.joined("w2").await;
    f.services().sample_machines().await.unwrap();
    let addr = f.app.serve().await;
    let mut ws = f
        .ws(&addr, "/v1/orgs/acme/machines/w1/metrics/ws", &f.owner)
        .await;
    assert_eq!(next_json(&mut ws).await["cpu_percent"], 1.0);
    f.services().sample_machines().await.unwrap();
    assert_eq!(next_json(&mut ws).await["cpu_percent"], 2.0);
    f.services().sample_machines().await.unwrap();
    assert_eq!(next_json(&mut ws).await["cpu_percent"], 3.0);

    let other = f.app.user("other@example.com").await;
    f.app.org(&other, "other").await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/v1/orgs/acme/machines/w1/metrics/ws"),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {other}").parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}

#[tokio::test]
async fn one_replica_samples_at_a_time_and_another_takes_over_when_it_stops() {
    let f = Fleet::new(Duration::from_hours(1)).await;
    f.joined("w1").await;
    let first = f.services();
    let second = Services::new(
        first.store().clone(),
        first.clock().clone(),
        ServicesConfig {
            replica_id: "replica-two".to_owned(),
            ..first.config().clone()
        },
    );
    let every = Duration::from_secs(10);
    assert_eq!(
        first
            .sample_machines_if_leader(every)
            .await
            .unwrap()
            .map(|r| r.sampled),
        Some(1)
    );
    assert_eq!(second.sample_machines_if_leader(every).await.unwrap(), None);
    // The leader keeps its lease by sampling.
    f.app.clock.advance(chrono::TimeDelta::seconds(20));
    assert!(
        first
            .sample_machines_if_leader(every)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(second.sample_machines_if_leader(every).await.unwrap(), None);
    // It stops: after three intervals the other replica takes over.
    f.app.clock.advance(chrono::TimeDelta::seconds(31));
    assert!(
        second
            .sample_machines_if_leader(every)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(first.sample_machines_if_leader(every).await.unwrap(), None);
    let page = f
        .app
        .get("/v1/orgs/acme/machines/w1/metrics/history", &f.owner)
        .await
        .ok();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn machine_health_joins_link_talos_and_node_into_one_verdict() {
    let f = Fleet::new(Duration::from_hours(1)).await;
    let id = f.joined("w1").await;
    let h = f
        .app
        .get("/v1/orgs/acme/machines/w1/health", &f.owner)
        .await
        .ok();
    assert_eq!(h["verdict"], "healthy", "{h}");
    let status = |h: &Value, t: &str| -> String {
        h["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    for t in ["LinkUp", "TalosReachable", "ServicesHealthy", "NodeReady"] {
        assert_eq!(status(&h, t), "True", "{t}: {h}");
    }
    assert_eq!(h["node_name"], "node-w1");

    // Talos stops answering: the node still runs workloads, so degraded.
    f.talos.unreachable.lock().unwrap().insert("uuid-w1".into());
    let h = f
        .app
        .get("/v1/orgs/acme/machines/w1/health", &f.owner)
        .await
        .ok();
    assert_eq!(h["verdict"], "degraded", "{h}");
    assert_eq!(status(&h, "TalosReachable"), "False");
    assert_eq!(status(&h, "ServicesHealthy"), "Unknown");

    // Another organization: invisible, unless public (then read-only, health included).
    let other = f.app.user("other@example.com").await;
    f.app.org(&other, "other").await;
    f.app
        .get(&format!("/v1/orgs/other/machines/{id}/health"), &other)
        .await
        .err(404, "machine_not_found");
    f.app
        .call(
            Method::PUT,
            "/v1/orgs/acme/machines/w1/visibility",
            Some(&f.owner),
            Some(json!({"visibility": "public"})),
        )
        .await
        .ok();
    let h = f
        .app
        .get(&format!("/v1/orgs/other/machines/{id}/health"), &other)
        .await
        .ok();
    assert_eq!(h["verdict"], "degraded");
}

#[tokio::test]
async fn a_placement_preview_counts_the_room_of_the_matching_machines() {
    let f = Fleet::new(Duration::from_hours(1)).await;
    for m in ["g1", "g2", "c1"] {
        f.joined(m).await;
    }
    for m in ["g1", "g2"] {
        f.app
            .patch(
                &format!("/v1/orgs/acme/machines/{m}/labels"),
                &f.owner,
                json!({"set": {"pool": "gpu"}}),
            )
            .await
            .ok();
    }
    // g1: 1.5 of 2 cores used; g2: cordoned.
    f.capacity
        .used
        .lock()
        .unwrap()
        .insert("node-g1".into(), (1500, 1 << 30, 3));
    f.capacity.cordoned.lock().unwrap().insert("node-g2".into());

    let p = f
        .app
        .get(
            "/v1/orgs/acme/placement?selector=pool%3Dgpu&cpu=250m&memory=256Mi&replicas=3",
            &f.owner,
        )
        .await
        .ok();
    let rooms: BTreeMap<String, (u64, bool)> = p["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                (
                    m["fits"].as_u64().unwrap(),
                    m["schedulable"].as_bool().unwrap(),
                ),
            )
        })
        .collect();
    // g1: CPU decides (500m left / 250m = 2); g2 is cordoned; c1 does not match.
    assert_eq!(
        rooms,
        BTreeMap::from([("g1".to_owned(), (2, true)), ("g2".to_owned(), (0, false))])
    );
    assert_eq!(
        (p["fits"].as_u64(), p["enough"].as_bool()),
        (Some(2), Some(false))
    );
    assert_eq!(p["replicas"], 3);

    // Defaults: the installation's default request, one replica, every machine.
    let p = f.app.get("/v1/orgs/acme/placement", &f.owner).await.ok();
    assert_eq!(
        (p["cpu_request"].as_str(), p["memory_request"].as_str()),
        (Some("100m"), Some("128Mi"))
    );
    assert_eq!(p["machines"].as_array().unwrap().len(), 3);
    assert_eq!(p["enough"], true);

    for query in [
        "cpu=lots",
        "cpu=0",
        "memory=-1Gi",
        "replicas=0",
        "replicas=1001",
        "selector=in%20(",
        "bogus=1",
    ] {
        f.app
            .get(&format!("/v1/orgs/acme/placement?{query}"), &f.owner)
            .await
            .err(
                400,
                if query.starts_with("selector") {
                    "validation_failed"
                } else {
                    "invalid_query"
                },
            );
    }
    let other = f.app.user("other@example.com").await;
    f.app.org(&other, "other").await;
    let p = f.app.get("/v1/orgs/other/placement", &other).await.ok();
    assert_eq!(
        p["machines"],
        json!([]),
        "another organization sees none of them"
    );
}

#[tokio::test]
async fn machine_usage_records_each_period_an_organization_held_a_machine() {
    let f = Fleet::new(Duration::from_hours(1)).await;
    let w1 = f.joined("w1").await;
    f.claimed("w2").await;
    let clock = &f.app.clock;
    clock.advance(chrono::TimeDelta::hours(2));
    // Released before it joined: the period ends, "released".
    f.app
        .post("/v1/orgs/acme/machines/w2/release", &f.owner, json!({}))
        .await
        .ok();
    clock.advance(chrono::TimeDelta::hours(1));
    // Removed by force: the period ends, "removed", and outlives the record's state.
    let res = f
        .app
        .post(
            "/v1/orgs/acme/machines/w1/decommission",
            &f.owner,
            json!({"force": true}),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    for _ in 0..200 {
        let m = f.app.get("/v1/orgs/acme/machines/w1", &f.owner).await.ok();
        if m["state"] == "needs_wipe" && m["operation"]["phase"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let page = f
        .app
        .get("/v1/orgs/acme/machine-usage", &f.owner)
        .await
        .ok();
    let periods: BTreeMap<String, (String, u64)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["machine_name"].as_str().unwrap().to_owned(),
                (
                    u["end_reason"].as_str().unwrap_or("open").to_owned(),
                    u["seconds"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        periods,
        BTreeMap::from([
            ("w1".to_owned(), ("removed".to_owned(), 3 * 3600)),
            ("w2".to_owned(), ("released".to_owned(), 2 * 3600)),
        ])
    );
    // One machine, and a window.
    let since = (satusky_core::clock::Clock::now(&f.app.clock) - chrono::TimeDelta::minutes(90))
        .to_rfc3339();
    let page = f
        .app
        .get(
            &format!(
                "/v1/orgs/acme/machine-usage?machine={w1}&since={}",
                since.replace('+', "%2B")
            ),
            &f.owner,
        )
        .await
        .ok();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["seconds"], 90 * 60);
    f.app
        .get("/v1/orgs/acme/machine-usage?machine=nope", &f.owner)
        .await
        .err(404, "machine_not_found");
    f.app
        .get(
            "/v1/orgs/acme/machine-usage?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            &f.owner,
        )
        .await
        .err(400, "invalid_query");
    let other = f.app.user("other@example.com").await;
    f.app.org(&other, "other").await;
    let page = f.app.get("/v1/orgs/other/machine-usage", &other).await.ok();
    assert_eq!(page["items"], json!([]));
    f.app
        .get("/v1/orgs/acme/machine-usage", &other)
        .await
        .err(404, "org_not_found");
}
