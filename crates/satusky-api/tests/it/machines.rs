//! Machines: join tokens, admission, tenancy, labels and selectors, and
//! operations run through fake in-memory `NodeOps`/`TalosOps` that log every
//! call in one shared order. The fake Talos reboots a machine's node like a
//! real one (still Ready for a moment, NotReady, then Ready with a new boot
//! id) and answers in maintenance mode after a reset.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use satusky_api::ApiConfig;
use satusky_core::clock::Clock as _;
use satusky_core::fleet::jointoken::{self, Claims};
use satusky_core::fleet::ports::{ApiMode, CONTROL_PLANE_LABEL};
use satusky_core::fleet::{
    DrainOptions, DrainProgress, NodeOps, NodeStatus, OpsError, ResetOptions, ServiceHealth,
    SigningKey, TalosOps, TalosTarget, async_trait,
};
use satusky_core::services::AdmitRequest;
use satusky_core::{Services, ServicesConfig};
use satusky_types::ErrorCode;
use satusky_types::machines::{DrainBlocker, DrainReport, Hardware, MachineMetrics};
use serde_json::{Value, json};

use crate::support::TestApp;

const KEY: [u8; 32] = [9u8; 32];

type Log = Arc<Mutex<Vec<String>>>;

#[derive(Debug, Clone, Default)]
struct FakeNode {
    ready: bool,
    unschedulable: bool,
    labels: BTreeMap<String, String>,
    /// `None`: the kubelet reports no boot id.
    boot_id: Option<String>,
}

#[derive(Debug, Default)]
struct FakeNodes {
    log: Log,
    nodes: Mutex<BTreeMap<String, FakeNode>>,
    /// When set, drains end in this phase with one blocker.
    drain_outcome: Mutex<Option<String>>,
    /// When set, drains wait for a notification after their first report.
    hold: Mutex<Option<Arc<tokio::sync::Notify>>>,
}

impl FakeNodes {
    fn node(&self, name: &str) -> FakeNode {
        self.nodes.lock().unwrap()[name].clone()
    }
}

#[async_trait]
impl NodeOps for FakeNodes {
    async fn set_labels(
        &self,
        node: &str,
        set: &BTreeMap<String, String>,
        unset: &[String],
    ) -> Result<(), OpsError> {
        let mut nodes = self.nodes.lock().unwrap();
        let n = nodes
            .get_mut(node)
            .ok_or_else(|| OpsError::NotFound(format!("node {node}")))?;
        n.labels.extend(set.clone());
        for k in unset {
            n.labels.remove(k);
        }
        Ok(())
    }

    async fn cordon(&self, node: &str, unschedulable: bool) -> Result<(), OpsError> {
        let what = if unschedulable { "cordon" } else { "uncordon" };
        self.log.lock().unwrap().push(format!("{what} {node}"));
        let mut nodes = self.nodes.lock().unwrap();
        nodes
            .get_mut(node)
            .ok_or_else(|| OpsError::NotFound(format!("node {node}")))?
            .unschedulable = unschedulable;
        Ok(())
    }

    async fn drain(
        &self,
        node: &str,
        opts: &DrainOptions,
        progress: DrainProgress<'_>,
    ) -> Result<DrainReport, OpsError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("drain {node} timeout={}s", opts.timeout.as_secs()));
        let started_at = chrono::Utc::now();
        progress(&DrainReport {
            phase: "running".to_owned(),
            evicted: 1,
            remaining: 1,
            blockers: vec![],
            started_at,
            finished_at: None,
        });
        let hold = self.hold.lock().unwrap().clone();
        if let Some(gate) = hold {
            gate.notified().await;
        }
        let outcome = self.drain_outcome.lock().unwrap().clone();
        Ok(match outcome {
            None => DrainReport {
                phase: "completed".to_owned(),
                evicted: 2,
                remaining: 0,
                blockers: vec![],
                started_at,
                finished_at: Some(chrono::Utc::now()),
            },
            Some(phase) => DrainReport {
                phase,
                evicted: 1,
                remaining: 1,
                blockers: vec![DrainBlocker {
                    namespace: "shop".to_owned(),
                    pod: "db-0".to_owned(),
                    reason: "PodDisruptionBudget shop/db allows no disruption".to_owned(),
                }],
                started_at,
                finished_at: Some(chrono::Utc::now()),
            },
        })
    }

    async fn node_status(&self, node: &str) -> Result<Option<NodeStatus>, OpsError> {
        Ok(self.nodes.lock().unwrap().get(node).map(|n| NodeStatus {
            ready: n.ready,
            unschedulable: n.unschedulable,
            conditions: vec![],
            boot_id: n.boot_id.clone(),
            control_plane: n.labels.contains_key(CONTROL_PLANE_LABEL),
        }))
    }

    async fn delete_node(&self, node: &str) -> Result<(), OpsError> {
        self.log.lock().unwrap().push(format!("delete {node}"));
        self.nodes.lock().unwrap().remove(node);
        Ok(())
    }
}

/// What the fake Talos does to a machine's node when it reboots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rebooting {
    /// Ready for `DOWN_AFTER`, NotReady for `UP_AFTER`, then Ready again
    /// (with a new boot id when it reports one), logged `booted <node>`.
    LikeAMachine,
    /// The node does not change at all (a reboot that did not happen).
    Nothing,
    /// The node goes NotReady and comes back with the same boot id (a
    /// kubelet restart, not a reboot).
    Flap,
}

const DOWN_AFTER: Duration = Duration::from_millis(40);
const UP_AFTER: Duration = Duration::from_millis(40);

#[derive(Debug)]
struct FakeTalos {
    log: Log,
    /// The nodes its machines run (`uuid-<host>` runs `node-<host>`).
    nodes: Arc<FakeNodes>,
    /// Machines (by uuid) that do not answer.
    unreachable: Mutex<BTreeSet<String>>,
    /// Machines (by uuid) answering in maintenance mode.
    maintenance: Mutex<BTreeSet<String>>,
    rebooting: Mutex<Rebooting>,
    /// A reset is accepted but the machine keeps its configuration.
    reset_sticks: Mutex<bool>,
    /// When set, reboot calls wait for a notification first.
    hold_reboot: Mutex<Option<Arc<tokio::sync::Notify>>>,
}

impl FakeTalos {
    fn new(log: &Log, nodes: &Arc<FakeNodes>) -> Self {
        Self {
            log: log.clone(),
            nodes: nodes.clone(),
            unreachable: Mutex::default(),
            maintenance: Mutex::default(),
            rebooting: Mutex::new(Rebooting::LikeAMachine),
            reset_sticks: Mutex::new(false),
            hold_reboot: Mutex::default(),
        }
    }

    fn call(&self, what: &str, m: &TalosTarget) -> Result<(), OpsError> {
        if self.unreachable.lock().unwrap().contains(&m.uuid) {
            return Err(OpsError::unreachable(format!("machine {}", m.uuid)));
        }
        self.log.lock().unwrap().push(what.to_owned());
        Ok(())
    }

    fn talos_reboots(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|c| *c == "talos reboot")
            .count()
    }
}

/// Takes `node` down and up again as a rebooting machine's kubelet does
/// (with a new boot id when `new_boot`).
fn reboot_node(nodes: Arc<FakeNodes>, node: String, new_boot: bool) {
    tokio::spawn(async move {
        tokio::time::sleep(DOWN_AFTER).await;
        if let Some(n) = nodes.nodes.lock().unwrap().get_mut(&node) {
            n.ready = false;
        }
        tokio::time::sleep(UP_AFTER).await;
        if let Some(n) = nodes.nodes.lock().unwrap().get_mut(&node) {
            n.ready = true;
            if new_boot {
                n.boot_id = n.boot_id.as_ref().map(|b| format!("{b}+"));
                nodes.log.lock().unwrap().push(format!("booted {node}"));
            } else {
                nodes.log.lock().unwrap().push(format!("flapped {node}"));
            }
        }
    });
}

#[async_trait]
impl TalosOps for FakeTalos {
    async fn reboot(&self, m: &TalosTarget) -> Result<(), OpsError> {
        let hold = self.hold_reboot.lock().unwrap().clone();
        if let Some(gate) = hold {
            gate.notified().await;
        }
        self.call("talos reboot", m)?;
        let rebooting = *self.rebooting.lock().unwrap();
        if rebooting != Rebooting::Nothing
            && let Some(host) = m.uuid.strip_prefix("uuid-")
        {
            reboot_node(
                self.nodes.clone(),
                format!("node-{host}"),
                rebooting == Rebooting::LikeAMachine,
            );
        }
        Ok(())
    }
    async fn shutdown(&self, m: &TalosTarget) -> Result<(), OpsError> {
        self.call("talos shutdown", m)
    }
    async fn reset(&self, m: &TalosTarget, opts: ResetOptions) -> Result<(), OpsError> {
        self.call(
            &format!(
                "talos reset wipe={} graceful={}",
                opts.wipe_user_disks, opts.graceful
            ),
            m,
        )?;
        if !*self.reset_sticks.lock().unwrap() {
            self.maintenance.lock().unwrap().insert(m.uuid.clone());
        }
        Ok(())
    }
    async fn api_mode(&self, m: &TalosTarget) -> Result<ApiMode, OpsError> {
        Ok(if self.unreachable.lock().unwrap().contains(&m.uuid) {
            ApiMode::Unreachable
        } else if self.maintenance.lock().unwrap().contains(&m.uuid) {
            ApiMode::Maintenance
        } else {
            ApiMode::Configured
        })
    }
    async fn metrics(&self, m: &TalosTarget) -> Result<MachineMetrics, OpsError> {
        self.call("talos metrics", m)?;
        Ok(MachineMetrics {
            at: chrono::Utc::now(),
            cpu_percent: 12.5,
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
    async fn services(&self, _m: &TalosTarget) -> Result<Vec<ServiceHealth>, OpsError> {
        Ok(vec![])
    }
    async fn remove_link(&self, m: &TalosTarget) -> Result<(), OpsError> {
        self.call("remove link", m)
    }
}

/// A TestApp with machine ports, an organization `acme` and a join token.
struct Fleet {
    app: TestApp,
    owner: String,
    log: Log,
    nodes: Arc<FakeNodes>,
    talos: Arc<FakeTalos>,
    token: String,
}

fn config(nodes: &Arc<FakeNodes>, talos: &Arc<FakeTalos>) -> ServicesConfig {
    ServicesConfig {
        join_token_key: Some(SigningKey::new(KEY)),
        siderolink_url: "https://link.example.com:443".to_owned(),
        node_ops: Some(nodes.clone()),
        talos_ops: Some(talos.clone()),
        machine_poll_interval: Duration::from_millis(5),
        node_ready_timeout: Duration::from_millis(300),
        machine_reset_timeout: Duration::from_millis(300),
        ..ServicesConfig::default()
    }
}

fn hardware(arch: &str, cpu: u32, gib: u64, gpus: u32) -> Hardware {
    Hardware {
        arch: arch.to_owned(),
        cpu_cores: cpu,
        memory_bytes: gib << 30,
        gpus,
        disks: vec![],
    }
}

impl Fleet {
    async fn new() -> Self {
        let log = Log::default();
        let nodes = Arc::new(FakeNodes {
            log: log.clone(),
            ..FakeNodes::default()
        });
        let talos = Arc::new(FakeTalos::new(&log, &nodes));
        let app = TestApp::with_config(config(&nodes, &talos), ApiConfig::default()).await;
        let owner = app.user("owner@example.com").await;
        app.org(&owner, "acme").await;
        let created = app
            .post(
                "/v1/orgs/acme/join-tokens",
                &owner,
                json!({"name": "rack-1", "expires_in_hours": 48}),
            )
            .await
            .ok();
        let token = created["token"].as_str().unwrap().to_owned();
        Self {
            app,
            owner,
            log,
            nodes,
            talos,
            token,
        }
    }

    fn request(&self, host: &str, uuid: &str, fingerprint: &str) -> AdmitRequest {
        AdmitRequest {
            token: self.token.clone(),
            uuid: uuid.to_owned(),
            fingerprint: fingerprint.to_owned(),
            hostname: host.to_owned(),
            hardware: hardware("amd64", 8, 16, 0),
            zone: "a".to_owned(),
            talos_endpoint: format!("[fdae::{host}]:50000"),
            overlay_address: format!("fdae:41e4:649b:9303::{}", host.len()),
            talos_version: Some("v1.13.0".to_owned()),
        }
    }

    async fn admit(&self, host: &str) -> String {
        self.app
            .services
            .admit_machine(self.request(host, &format!("uuid-{host}"), &format!("fp-{host}")))
            .await
            .unwrap()
            .id
    }

    /// Admitted, claimed, and joined as node `node-<host>`.
    async fn joined(&self, host: &str) -> String {
        let id = self.admit(host).await;
        self.app
            .post(
                &format!("/v1/orgs/acme/machines/{host}/claim"),
                &self.owner,
                json!({}),
            )
            .await
            .ok();
        let node = format!("node-{host}");
        self.nodes.nodes.lock().unwrap().insert(
            node.clone(),
            FakeNode {
                ready: true,
                boot_id: Some(format!("boot-{host}")),
                ..FakeNode::default()
            },
        );
        self.app
            .services
            .machine_node_joined(&id, &node)
            .await
            .unwrap();
        id
    }

    fn calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    async fn get(&self, machine: &str) -> Value {
        self.app
            .get(&format!("/v1/orgs/acme/machines/{machine}"), &self.owner)
            .await
            .ok()
    }

    /// Waits until the machine's operation is no longer running.
    async fn settle(&self, machine: &str) -> Value {
        for _ in 0..500 {
            let m = self.get(machine).await;
            if m["operation"]["phase"] != "running" {
                // The runner records the end, then its event.
                for _ in 0..50 {
                    let events = self.events(machine).await;
                    let last = events.iter().rev().find(|e| e.starts_with("operation."));
                    if last.is_none_or(|e| {
                        e.starts_with("operation.completed")
                            || e.starts_with("operation.failed")
                            || e.starts_with("operation.cancelled")
                    }) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                return m;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("operation of {machine} did not finish");
    }

    async fn op(&self, machine: &str, action: &str, body: Value) -> Value {
        let res = self
            .app
            .post(
                &format!("/v1/orgs/acme/machines/{machine}/{action}"),
                &self.owner,
                body,
            )
            .await;
        assert_eq!(res.status, 202, "{action} {machine}: {}", res.body);
        self.settle(machine).await
    }

    async fn events(&self, machine: &str) -> Vec<String> {
        self.app
            .get(
                &format!("/v1/orgs/acme/machines/{machine}/events?limit=1000"),
                &self.owner,
            )
            .await
            .ok()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["kind"].as_str().unwrap(),
                    e["message"].as_str().unwrap()
                )
            })
            .collect()
    }

    async fn audit_actions(&self) -> Vec<String> {
        self.app
            .get("/v1/orgs/acme/audit?limit=500", &self.owner)
            .await
            .ok()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["action"].as_str().unwrap(),
                    e["outcome"].as_str().unwrap()
                )
            })
            .collect()
    }
}

fn code(e: &satusky_core::Error) -> ErrorCode {
    e.code
}

#[tokio::test]
async fn join_tokens_are_created_listed_revoked_and_checked_at_admission() {
    let f = Fleet::new().await;
    let app = &f.app;
    let created = app
        .post(
            "/v1/orgs/acme/join-tokens",
            &f.owner,
            json!({"name": "short"}),
        )
        .await;
    assert_eq!(created.status, 201);
    let created = created.body;
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("sjt1."), "{token}");
    assert_eq!(
        created["kernel_args"],
        json!([
            format!("siderolink.api=https://link.example.com:443?jointoken={token}"),
            "talos.events.sink=[fdae:41e4:649b:9303::1]:8090",
            "talos.logging.kernel=tcp://[fdae:41e4:649b:9303::1]:8092",
        ])
    );
    app.post(
        "/v1/orgs/acme/join-tokens",
        &f.owner,
        json!({"name": "short"}),
    )
    .await
    .err(409, "join_token_name_taken");
    app.post(
        "/v1/orgs/acme/join-tokens",
        &f.owner,
        json!({"name": "x", "expires_in_hours": 0}),
    )
    .await
    .err(400, "validation_failed");

    let list = app.get("/v1/orgs/acme/join-tokens", &f.owner).await.ok();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rack-1", "short"]);
    assert!(
        list["items"][0].get("token").is_none(),
        "no secret in lists"
    );

    // A wrong token: garbage, or well-formed but signed with another key.
    let s = &app.services;
    let mut req = f.request("m1", "u1", "fp1");
    for bad in [
        "nonsense".to_owned(),
        format!("{token}x"),
        jointoken::sign(
            &SigningKey::new([1u8; 32]),
            &Claims {
                tid: created["join_token"]["id"].as_str().unwrap().to_owned(),
                org: "whatever".to_owned(),
                exp: i64::MAX,
            },
        ),
    ] {
        req.token = bad;
        let e = s.admit_machine(req.clone()).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::JoinTokenInvalid, "{}", e.message);
    }

    // A good one admits a discovered machine into the organization.
    req.token = token.to_owned();
    let m = s.admit_machine(req.clone()).await.unwrap();
    assert_eq!(m.state.as_str(), "discovered");
    assert_eq!(m.name, "m1");
    let got = app.get("/v1/orgs/acme/machines/m1", &f.owner).await.ok();
    assert_eq!(got["org"], "acme");
    assert_eq!(got["state"], "discovered");
    assert_eq!(got["system_labels"]["cpu"], "8");

    // Revoked (by name): refused with its own code.
    let revoked = app
        .post(
            "/v1/orgs/acme/join-tokens/short/revoke",
            &f.owner,
            json!({}),
        )
        .await
        .ok();
    assert_eq!(revoked["revoked"], true);
    let e = s
        .admit_machine(f.request("m2", "u2", "fp2"))
        .await
        .map(|_| ())
        .err();
    // (that request used rack-1, still valid)
    assert!(e.is_none());
    let mut req = f.request("m3", "u3", "fp3");
    req.token = token.to_owned();
    let e = s.admit_machine(req).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::JoinTokenRevoked);
    app.post("/v1/orgs/acme/join-tokens/nope/revoke", &f.owner, json!({}))
        .await
        .err(404, "join_token_not_found");

    // Expired: rack-1 lives 48 hours.
    f.app.clock.advance(chrono::Duration::hours(49));
    let e = s
        .admit_machine(f.request("m4", "u4", "fp4"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::JoinTokenExpired);
    assert!(s.verify_join_token(&f.token).await.is_err());

    let audit = f.audit_actions().await;
    for want in [
        "machine.join_token.create success",
        "machine.join_token.revoke success",
        "machine.admit success",
        "machine.admit denied",
    ] {
        assert!(audit.iter().any(|a| a == want), "{want} in {audit:?}");
    }
}

#[tokio::test]
async fn join_tokens_need_a_signing_key_and_an_admin() {
    let app = TestApp::new().await;
    let owner = app.user("owner@example.com").await;
    app.user("member@example.com").await;
    app.org(&owner, "acme").await;
    app.add_member(&owner, "acme", "member@example.com", "member")
        .await;
    app.post("/v1/orgs/acme/join-tokens", &owner, json!({"name": "t"}))
        .await
        .err(503, "unavailable");
    let member = app.login("member@example.com").await;
    app.post("/v1/orgs/acme/join-tokens", &member, json!({"name": "t"}))
        .await
        .err(403, "forbidden");
}

#[tokio::test]
async fn a_known_machine_reprovisions_in_place_and_a_uuid_twin_never_evicts_it() {
    let f = Fleet::new().await;
    let s = &f.app.services;
    let first = s
        .admit_machine(f.request("alpha", "same-uuid", "fp-1"))
        .await
        .unwrap();
    s.machine_link_changed(&first.id, false).await.unwrap();

    // The same machine again (new boot, new WireGuard key, new proposed address).
    let mut again = f.request("alpha", "same-uuid", "fp-1");
    again.overlay_address = "fdae:41e4:649b:9303::ffff".to_owned();
    let back = s.admit_machine(again).await.unwrap();
    assert_eq!(back.id, first.id);
    assert_eq!(back.overlay_address, first.overlay_address, "address kept");
    assert!(back.connected);

    // Another machine with the same UUID: its own record, with a note.
    let twin = s
        .admit_machine(f.request("alpha", "same-uuid", "fp-2"))
        .await
        .unwrap();
    assert_ne!(twin.id, first.id);
    assert_eq!(twin.name, "alpha-2");
    let note = twin.note.clone().unwrap();
    assert!(
        note.contains("same-uuid") && note.contains("`alpha`"),
        "{note}"
    );

    let original = f.get(&first.id).await;
    assert_eq!(original["state"], "discovered");
    assert_eq!(original["link"]["connected"], true);
    assert_eq!(original["name"], "alpha");
    assert!(original.get("note").is_none());
    let list = f.app.get("/v1/orgs/acme/machines", &f.owner).await.ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // Placeholder UUIDs are noted too.
    let zero = s
        .admit_machine(f.request("zero", "00000000-0000-0000-0000-000000000000", "fp-z"))
        .await
        .unwrap();
    assert!(zero.note.unwrap().contains("placeholder"));
}

async fn names(f: &Fleet, selector: &str) -> BTreeSet<String> {
    let q = serde_urlencoded::to_string([("selector", selector)]).unwrap();
    let res = f
        .app
        .get(&format!("/v1/orgs/acme/machines?{q}"), &f.owner)
        .await
        .ok();
    res["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn claimed_and_labelled_machines_are_queried_with_the_full_selector_grammar() {
    let f = Fleet::new().await;
    let s = &f.app.services;
    for (host, arch, cpu, gib, gpus, zone) in [
        ("gpu-1", "amd64", 32, 128, 2, "a"),
        ("gpu-2", "amd64", 32, 128, 2, "b"),
        ("web-1", "arm64", 8, 16, 0, "a"),
        ("spare", "amd64", 8, 16, 0, "b"),
    ] {
        let mut req = f.request(host, &format!("u-{host}"), &format!("fp-{host}"));
        req.hardware = hardware(arch, cpu, gib, gpus);
        req.zone = zone.to_owned();
        s.admit_machine(req).await.unwrap();
        let m = f
            .app
            .post(
                &format!("/v1/orgs/acme/machines/{host}/claim"),
                &f.owner,
                json!({}),
            )
            .await
            .ok();
        assert_eq!(m["state"], "claimed");
    }
    f.app
        .post("/v1/orgs/acme/machines/spare/claim", &f.owner, json!({}))
        .await
        .err(409, "machine_state_conflict");
    f.app
        .post("/v1/orgs/acme/machines/spare/release", &f.owner, json!({}))
        .await
        .ok();
    for (host, labels) in [
        ("gpu-1", json!({"pool": "gpu", "ssd": ""})),
        ("gpu-2", json!({"satusky.com/pool": "gpu", "tier": "gold"})),
        ("web-1", json!({"pool": "web", "ssd": ""})),
    ] {
        let m = f
            .app
            .patch(
                &format!("/v1/orgs/acme/machines/{host}/labels"),
                &f.owner,
                json!({ "set": labels }),
            )
            .await
            .ok();
        assert!(m["labels"].get("satusky.com/pool").is_none(), "stored bare");
    }
    for bad in [
        json!({"set": {"zone": "c"}}),
        json!({"set": {"arch": "x"}}),
        json!({"set": {"kubernetes.io/role": "x"}}),
        json!({"set": {"pool": "not valid"}}),
        json!({"unset": ["hostname"]}),
    ] {
        f.app
            .patch("/v1/orgs/acme/machines/web-1/labels", &f.owner, bad)
            .await
            .err(400, "validation_failed");
    }
    let m = f
        .app
        .patch(
            "/v1/orgs/acme/machines/gpu-2/labels",
            &f.owner,
            json!({"unset": ["tier"]}),
        )
        .await
        .ok();
    assert!(m["labels"].get("tier").is_none());

    for (selector, want) in [
        ("pool=gpu", set(&["gpu-1", "gpu-2"])),
        ("pool==gpu", set(&["gpu-1", "gpu-2"])),
        ("satusky.com/pool=gpu", set(&["gpu-1", "gpu-2"])),
        ("pool!=gpu", set(&["web-1", "spare"])),
        ("pool in (gpu, web)", set(&["gpu-1", "gpu-2", "web-1"])),
        ("pool notin (gpu)", set(&["web-1", "spare"])),
        ("ssd", set(&["gpu-1", "web-1"])),
        ("!ssd", set(&["gpu-2", "spare"])),
        ("!pool", set(&["spare"])),
        ("pool=gpu,zone=b", set(&["gpu-2"])),
        ("zone=a,arch=arm64", set(&["web-1"])),
        ("topology.kubernetes.io/zone=b", set(&["gpu-2", "spare"])),
        ("kubernetes.io/arch=amd64,gpu=2", set(&["gpu-1", "gpu-2"])),
        ("cpu=8,memory=16Gi", set(&["web-1", "spare"])),
        ("hostname in (spare)", set(&["spare"])),
        ("", set(&["gpu-1", "gpu-2", "web-1", "spare"])),
    ] {
        assert_eq!(names(&f, selector).await, want, "selector `{selector}`");
    }
    f.app
        .get("/v1/orgs/acme/machines?selector=pool%20in%20gpu", &f.owner)
        .await
        .err(400, "validation_failed");

    // Pagination over a filtered list visits every match once.
    let mut seen = Vec::new();
    let mut path = "/v1/orgs/acme/machines?selector=pool&limit=1".to_owned();
    loop {
        let page = f.app.get(&path, &f.owner).await.ok();
        for m in page["items"].as_array().unwrap() {
            seen.push(m["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/orgs/acme/machines?selector=pool&limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen.iter().cloned().collect::<BTreeSet<_>>(),
        set(&["gpu-1", "gpu-2", "web-1"])
    );
}

#[tokio::test]
async fn labels_reach_the_node_under_node_label_keys() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    let node = f.nodes.node("node-w1");
    assert_eq!(node.labels["topology.kubernetes.io/zone"], "a");
    assert_eq!(node.labels["satusky.com/cpu"], "8");
    f.app
        .patch(
            "/v1/orgs/acme/machines/w1/labels",
            &f.owner,
            json!({"set": {"pool": "gpu", "tier": "gold"}}),
        )
        .await
        .ok();
    f.app
        .patch(
            "/v1/orgs/acme/machines/w1/labels",
            &f.owner,
            json!({"unset": ["tier"]}),
        )
        .await
        .ok();
    let node = f.nodes.node("node-w1");
    assert_eq!(
        node.labels.get("satusky.com/pool").map(String::as_str),
        Some("gpu")
    );
    assert!(!node.labels.contains_key("satusky.com/tier"));

    // A re-provision with new facts (more memory) relabels the node.
    let id = f.get("w1").await["id"].as_str().unwrap().to_owned();
    let mut req = f.request("w1", "uuid-w1", "fp-w1");
    req.hardware = hardware("amd64", 8, 32, 0);
    f.app.services.admit_machine(req).await.unwrap();
    assert_eq!(f.nodes.node("node-w1").labels["satusky.com/memory"], "32Gi");
    // And a full resync returns (and pushes) everything Satusky owns.
    f.nodes
        .nodes
        .lock()
        .unwrap()
        .get_mut("node-w1")
        .unwrap()
        .labels
        .clear();
    let synced = f.app.services.sync_machine_node_labels(&id).await.unwrap();
    assert_eq!(synced["satusky.com/pool"], "gpu");
    assert_eq!(f.nodes.node("node-w1").labels, synced);
}

#[tokio::test]
async fn other_organizations_see_public_machines_read_only_and_nothing_else() {
    let f = Fleet::new().await;
    let id = f.admit("shared").await;
    let hidden = f.admit("private").await;
    let app = &f.app;
    let other = app.user("other@example.com").await;
    app.org(&other, "other").await;

    for m in [&id, &hidden] {
        app.get(&format!("/v1/orgs/other/machines/{m}"), &other)
            .await
            .err(404, "machine_not_found");
    }
    let list = app.get("/v1/orgs/other/machines", &other).await.ok();
    assert_eq!(list["items"], json!([]));

    app.call(
        Method::PUT,
        "/v1/orgs/acme/machines/shared/visibility",
        Some(&f.owner),
        Some(json!({"visibility": "public"})),
    )
    .await
    .ok();
    let list = app.get("/v1/orgs/other/machines", &other).await.ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["operable"], false);
    assert_eq!(list["items"][0]["org"], "acme");
    let seen = app
        .get(&format!("/v1/orgs/other/machines/{id}"), &other)
        .await
        .ok();
    assert_eq!(seen["name"], "shared");
    // By name only within your own organization.
    app.get("/v1/orgs/other/machines/shared", &other)
        .await
        .err(404, "machine_not_found");
    for (action, body) in [
        ("claim", json!({})),
        ("cordon", json!({})),
        ("reboot", json!({})),
    ] {
        app.post(
            &format!("/v1/orgs/other/machines/{id}/{action}"),
            &other,
            body,
        )
        .await
        .err(403, "forbidden");
    }
    app.patch(
        &format!("/v1/orgs/other/machines/{id}/labels"),
        &other,
        json!({"set": {"pool": "x"}}),
    )
    .await
    .err(403, "forbidden");
    let mine = app
        .get("/v1/orgs/acme/machines/shared", &f.owner)
        .await
        .ok();
    assert_eq!(mine["operable"], true);

    // `owner` visibility: the claimer and admins only.
    app.user("member@example.com").await;
    app.user("admin@example.com").await;
    app.add_member(&f.owner, "acme", "member@example.com", "member")
        .await;
    app.add_member(&f.owner, "acme", "admin@example.com", "admin")
        .await;
    let member = app.login("member@example.com").await;
    let admin = app.login("admin@example.com").await;
    app.post("/v1/orgs/acme/machines/private/claim", &f.owner, json!({}))
        .await
        .ok();
    app.call(
        Method::PUT,
        "/v1/orgs/acme/machines/private/visibility",
        Some(&f.owner),
        Some(json!({"visibility": "owner"})),
    )
    .await
    .ok();
    app.get("/v1/orgs/acme/machines/private", &member)
        .await
        .err(404, "machine_not_found");
    app.get("/v1/orgs/acme/machines/private", &admin).await.ok();
    let listed = app.get("/v1/orgs/acme/machines", &member).await.ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    app.call(
        Method::PUT,
        "/v1/orgs/acme/machines/shared/visibility",
        Some(&member),
        Some(json!({"visibility": "organization"})),
    )
    .await
    .err(403, "forbidden");
}

#[tokio::test]
async fn cordon_uncordon_and_drain_call_the_node_in_order() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    assert_eq!(f.get("w1").await["state"], "joined");
    f.calls();

    let m = f.op("w1", "cordon", json!({})).await;
    assert_eq!(m["state"], "cordoned");
    assert_eq!(m["operation"]["phase"], "completed");
    assert_eq!(f.calls(), ["cordon node-w1"]);
    // Cordoning again changes nothing.
    let again = f
        .app
        .post("/v1/orgs/acme/machines/w1/cordon", &f.owner, json!({}))
        .await;
    assert_eq!(again.status, 202);
    assert!(f.calls().is_empty());

    let m = f.op("w1", "uncordon", json!({})).await;
    assert_eq!(m["state"], "joined");
    assert_eq!(f.calls(), ["uncordon node-w1"]);

    let m = f.op("w1", "drain", json!({"timeout_seconds": 60})).await;
    assert_eq!(m["state"], "cordoned");
    assert_eq!(f.calls(), ["cordon node-w1", "drain node-w1 timeout=60s"]);
    assert_eq!(m["operation"]["drain"]["phase"], "completed");
    assert_eq!(m["operation"]["drain"]["evicted"], 2);
    let events = f.events("w1").await;
    assert!(
        events.iter().any(|e| e.starts_with("drain.progress")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("operation.completed: drain completed")),
        "{events:?}"
    );

    // A machine without a node cannot be cordoned.
    f.admit("fresh").await;
    let res = f
        .app
        .post("/v1/orgs/acme/machines/fresh/cordon", &f.owner, json!({}))
        .await;
    res.err(409, "machine_state_conflict");
    assert!(
        res.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a discovered machine cannot be cordoned")
    );
}

#[tokio::test]
async fn reboot_and_shutdown_drain_first_unless_forced() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    f.calls();
    let m = f.op("w1", "reboot", json!({})).await;
    assert_eq!(
        f.calls(),
        [
            "cordon node-w1",
            "drain node-w1 timeout=300s",
            "talos reboot",
            "booted node-w1",
            "uncordon node-w1"
        ]
    );
    assert_eq!(m["state"], "joined");
    assert!(!f.nodes.node("node-w1").unschedulable);

    let m = f.op("w1", "reboot", json!({"force": true})).await;
    assert_eq!(f.calls(), ["talos reboot", "booted node-w1"]);
    assert_eq!(m["state"], "joined");

    let m = f.op("w1", "shutdown", json!({})).await;
    assert_eq!(
        f.calls(),
        [
            "cordon node-w1",
            "drain node-w1 timeout=300s",
            "talos shutdown"
        ]
    );
    assert_eq!(m["state"], "powered_off");
    assert_eq!(m["link"]["connected"], false);

    // A claimed machine without a node reboots straight away and stays claimed.
    f.admit("c1").await;
    f.app
        .post("/v1/orgs/acme/machines/c1/claim", &f.owner, json!({}))
        .await
        .ok();
    let m = f.op("c1", "reboot", json!({})).await;
    assert_eq!(f.calls(), ["talos reboot"]);
    assert_eq!(m["state"], "claimed");
}

#[tokio::test]
async fn a_failed_drain_uncordons_only_a_node_we_cordoned_and_never_reboots() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    f.joined("w2").await;
    *f.nodes.drain_outcome.lock().unwrap() = Some("timed_out".to_owned());
    f.calls();

    let m = f.op("w1", "drain", json!({})).await;
    assert_eq!(
        f.calls(),
        [
            "cordon node-w1",
            "drain node-w1 timeout=300s",
            "uncordon node-w1"
        ]
    );
    assert_eq!(m["state"], "joined");
    assert_eq!(m["operation"]["phase"], "failed");
    let msg = m["operation"]["message"].as_str().unwrap();
    assert!(
        msg.contains("shop/db-0") && msg.contains("PodDisruptionBudget"),
        "{msg}"
    );
    assert_eq!(m["operation"]["drain"]["blockers"][0]["pod"], "db-0");

    // A reboot whose drain fails never reboots.
    let m = f.op("w1", "reboot", json!({})).await;
    assert_eq!(
        f.calls(),
        [
            "cordon node-w1",
            "drain node-w1 timeout=300s",
            "uncordon node-w1"
        ]
    );
    assert_eq!(m["state"], "joined");

    // Someone else cordoned w2: a failed drain leaves their cordon alone.
    f.nodes
        .nodes
        .lock()
        .unwrap()
        .get_mut("node-w2")
        .unwrap()
        .unschedulable = true;
    let m = f.op("w2", "drain", json!({})).await;
    assert_eq!(f.calls(), ["drain node-w2 timeout=300s"]);
    assert_eq!(m["state"], "cordoned");
    assert!(f.nodes.node("node-w2").unschedulable);
    let events = f.events("w2").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("operation.failed: drain failed")),
        "{events:?}"
    );
    let audit = f.audit_actions().await;
    assert!(
        audit.iter().any(|a| a == "machine.drain failure"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn decommission_resets_and_removes_but_keeps_the_record_and_force_marks_needs_wipe() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    f.calls();
    let m = f
        .op("w1", "decommission", json!({"wipe_user_disks": false}))
        .await;
    assert_eq!(
        f.calls(),
        [
            "cordon node-w1",
            "drain node-w1 timeout=300s",
            "talos reset wipe=false graceful=true",
            "delete node-w1",
            "remove link"
        ]
    );
    assert_eq!(m["state"], "decommissioned");
    assert!(m.get("node_name").is_none());
    assert_eq!(f.get(&id).await["id"], id.as_str());
    assert!(f.events("w1").await.len() >= 5, "history kept");
    f.app
        .post("/v1/orgs/acme/machines/w1/cordon", &f.owner, json!({}))
        .await
        .err(409, "machine_state_conflict");
    f.app
        .patch(
            "/v1/orgs/acme/machines/w1/labels",
            &f.owner,
            json!({"set": {"a": "b"}}),
        )
        .await
        .err(409, "machine_state_conflict");

    // An unreachable machine: the graceful path stops at the reset and says why…
    let w2 = f.joined("w2").await;
    f.talos
        .unreachable
        .lock()
        .unwrap()
        .insert("uuid-w2".to_owned());
    f.calls();
    let m = f.op("w2", "decommission", json!({})).await;
    assert_eq!(m["state"], "decommissioning");
    assert_eq!(m["operation"]["phase"], "failed");
    assert!(
        m["operation"]["message"]
            .as_str()
            .unwrap()
            .contains("decommission with force"),
        "{m}"
    );
    // …and force removes it, marking it for an out-of-band wipe.
    let m = f.op("w2", "decommission", json!({"force": true})).await;
    assert_eq!(m["state"], "needs_wipe");
    assert!(m["note"].as_str().unwrap().contains("wipe its disks"));
    let calls = f.calls();
    assert!(calls.contains(&"delete node-w2".to_owned()), "{calls:?}");
    // It cannot come back with the same identity.
    let e = f
        .app
        .services
        .admit_machine(f.request("w2", "uuid-w2", "fp-w2"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ErrorCode::MachineIdentityRevoked);
    assert_eq!(f.get(&w2).await["state"], "needs_wipe");

    let audit = f.audit_actions().await;
    for want in [
        "machine.claim success",
        "machine.decommission success",
        "machine.decommission failure",
        "machine.admit denied",
    ] {
        assert!(audit.iter().any(|a| a == want), "{want} in {audit:?}");
    }
}

#[tokio::test]
async fn operations_without_ports_answer_503_and_members_cannot_decommission() {
    let app = TestApp::with_config(
        ServicesConfig {
            join_token_key: Some(SigningKey::new(KEY)),
            ..ServicesConfig::default()
        },
        ApiConfig::default(),
    )
    .await;
    let owner = app.user("owner@example.com").await;
    app.user("member@example.com").await;
    app.org(&owner, "acme").await;
    app.add_member(&owner, "acme", "member@example.com", "member")
        .await;
    let member = app.login("member@example.com").await;
    let token = app
        .post("/v1/orgs/acme/join-tokens", &owner, json!({"name": "t"}))
        .await
        .ok()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let m = app
        .services
        .admit_machine(AdmitRequest {
            token,
            uuid: "u".to_owned(),
            fingerprint: "f".to_owned(),
            hostname: "m1".to_owned(),
            ..AdmitRequest::default()
        })
        .await
        .unwrap();
    app.post("/v1/orgs/acme/machines/m1/claim", &owner, json!({}))
        .await
        .ok();
    app.services.machine_node_joined(&m.id, "n1").await.unwrap();
    for action in ["cordon", "drain", "reboot", "shutdown"] {
        app.post(
            &format!("/v1/orgs/acme/machines/m1/{action}"),
            &owner,
            json!({}),
        )
        .await
        .err(503, "unavailable");
    }
    app.get("/v1/orgs/acme/machines/m1/metrics", &owner)
        .await
        .err(503, "unavailable");
    app.post("/v1/orgs/acme/machines/m1/decommission", &member, json!({}))
        .await
        .err(403, "forbidden");
    // Nothing changed.
    let got = app.get("/v1/orgs/acme/machines/m1", &owner).await.ok();
    assert_eq!(got["state"], "joined");
    assert!(got.get("operation").is_none());
}

#[tokio::test]
async fn a_persisted_operation_resumes_after_a_restart() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    let store = f.app.services.store().clone();
    // The control plane stopped during a reboot, after cordon and drain.
    let mut m = store.get_machine(&id).await.unwrap().unwrap();
    m.state = satusky_core::machines::MachineState::Rebooting;
    m.cordoned_by_us = true;
    m.operation = Some(json!({
        "id": "op-1",
        "kind": "reboot",
        "phase": "running",
        "plan": ["cordon_node", "drain_node", "talos_reboot", "wait_node_ready", "uncordon_if_ours"],
        "step": 2,
        "from_state": "joined",
        "drain_timeout_seconds": 300,
        "started_at": "2026-11-21T10:00:00Z",
    }));
    store.update_machine(&m).await.unwrap();
    f.nodes
        .nodes
        .lock()
        .unwrap()
        .get_mut("node-w1")
        .unwrap()
        .unschedulable = true;
    f.calls();

    // A new control plane over the same store.
    let restarted = Services::new(
        store,
        Arc::new(f.app.clock.clone()),
        config(&f.nodes, &f.talos),
    );
    assert_eq!(restarted.resume_machine_operations().await.unwrap(), 1);
    let m = f.settle("w1").await;
    assert_eq!(
        f.calls(),
        ["talos reboot", "booted node-w1", "uncordon node-w1"]
    );
    assert_eq!(m["state"], "joined");
    assert_eq!(m["operation"]["phase"], "completed");
    assert_eq!(m["operation"]["step"], 5);
    let events = f.events("w1").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("operation.resumed: reboot resumed at step talos_reboot")),
        "{events:?}"
    );
    // Nothing left to resume.
    assert_eq!(f.app.services.resume_machine_operations().await.unwrap(), 0);
}

#[tokio::test]
async fn bulk_actions_apply_to_exactly_the_selected_machines() {
    let f = Fleet::new().await;
    for host in ["a1", "a2", "b1"] {
        f.joined(host).await;
    }
    for host in ["a1", "a2"] {
        f.app
            .patch(
                &format!("/v1/orgs/acme/machines/{host}/labels"),
                &f.owner,
                json!({"set": {"pool": "a"}}),
            )
            .await
            .ok();
    }
    f.calls();
    let res = f
        .app
        .post(
            "/v1/orgs/acme/machines/bulk/cordon",
            &f.owner,
            json!({"selector": "pool=a"}),
        )
        .await
        .ok();
    assert_eq!(res["selector"], "pool=a");
    let items = res["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|i| i["ok"] == true && i["state"] == "cordoned")
    );
    f.settle("a1").await;
    f.settle("a2").await;
    let mut calls = f.calls();
    calls.sort();
    assert_eq!(calls, ["cordon node-a1", "cordon node-a2"]);

    let res = f
        .app
        .post(
            "/v1/orgs/acme/machines/bulk/labels",
            &f.owner,
            json!({"selector": "pool", "labels": {"set": {"tier": "gold"}}}),
        )
        .await
        .ok();
    assert_eq!(res["items"].as_array().unwrap().len(), 2);
    assert_eq!(names(&f, "tier=gold").await, set(&["a1", "a2"]));

    // Per-machine refusals are reported, not fatal.
    let res = f
        .app
        .post(
            "/v1/orgs/acme/machines/bulk/uncordon",
            &f.owner,
            json!({"selector": "!nothing"}),
        )
        .await
        .ok();
    assert_eq!(res["items"].as_array().unwrap().len(), 3);
    f.app
        .post(
            "/v1/orgs/acme/machines/bulk/cordon",
            &f.owner,
            json!({"selector": ""}),
        )
        .await
        .err(400, "validation_failed");
    f.app
        .post(
            "/v1/orgs/acme/machines/bulk/explode",
            &f.owner,
            json!({"selector": "a"}),
        )
        .await
        .err(404, "route_not_found");
    let audit = f.audit_actions().await;
    for want in [
        "machine.bulk.cordon success",
        "machine.bulk.labels success",
        "machine.cordon success",
        "machine.labels success",
    ] {
        assert!(audit.iter().any(|a| a == want), "{want} in {audit:?}");
    }
}

#[tokio::test]
async fn metrics_come_from_talos() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    let m = f
        .app
        .get("/v1/orgs/acme/machines/w1/metrics", &f.owner)
        .await
        .ok();
    assert_eq!(m["cpu_percent"], 12.5);
    assert_eq!(m["disk_write_bytes_per_sec"], 40.0);
}

#[tokio::test]
async fn machine_events_stream_over_a_websocket_with_operation_progress() {
    use futures::StreamExt as _;
    let f = Fleet::new().await;
    f.joined("w1").await;
    let addr = f.app.serve().await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/v1/orgs/acme/machines/w1/events/ws?from=0"),
    )
    .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", f.owner).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut next = async || -> Value {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        serde_json::from_str(msg.to_text().unwrap()).unwrap()
    };
    let first = next().await;
    assert_eq!(
        (first["seq"].as_u64(), first["kind"].as_str()),
        (Some(1), Some("machine.discovered")),
        "the start is never lost"
    );
    f.app
        .post("/v1/orgs/acme/machines/w1/cordon", &f.owner, json!({}))
        .await;
    let mut kinds = Vec::new();
    while !kinds.iter().any(|k| k == "operation.completed") {
        kinds.push(next().await["kind"].as_str().unwrap().to_owned());
    }
    assert!(kinds.contains(&"operation.started".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"operation.step".to_owned()), "{kinds:?}");
    let anon =
        tokio_tungstenite::connect_async(format!("ws://{addr}/v1/orgs/acme/machines/w1/events/ws"))
            .await;
    assert!(anon.is_err());
}

#[tokio::test]
async fn a_running_operation_refuses_others_but_a_forced_removal_supersedes_it() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    let gate = Arc::new(tokio::sync::Notify::new());
    *f.nodes.hold.lock().unwrap() = Some(gate.clone());
    let res = f
        .app
        .post("/v1/orgs/acme/machines/w1/drain", &f.owner, json!({}))
        .await;
    assert_eq!(res.status, 202);
    // Progress is persisted with the operation while it runs.
    let mut m = f.get("w1").await;
    for _ in 0..500 {
        if m["operation"]["drain"]["phase"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        m = f.get("w1").await;
    }
    assert_eq!(m["state"], "draining");
    assert_eq!(m["operation"]["step"], 1, "cordon done, drain running");
    assert_eq!(m["operation"]["drain"]["evicted"], 1);
    for action in ["reboot", "shutdown"] {
        f.app
            .post(
                &format!("/v1/orgs/acme/machines/w1/{action}"),
                &f.owner,
                json!({}),
            )
            .await
            .err(409, "machine_busy");
    }
    let m = f.op("w1", "decommission", json!({"force": true})).await;
    assert_eq!(m["state"], "needs_wipe");
    assert_eq!(m["operation"]["kind"], "decommission");
    // The superseded drain ends without touching the machine.
    gate.notify_one();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let m = f.get("w1").await;
    assert_eq!(m["state"], "needs_wipe");
    assert_eq!(m["operation"]["kind"], "decommission");
    assert_eq!(m["operation"]["phase"], "completed");
    let calls = f.calls();
    assert!(calls.contains(&"delete node-w1".to_owned()), "{calls:?}");
}

#[tokio::test]
async fn a_node_that_does_not_come_back_after_a_reboot_keeps_our_cordon_until_it_joins() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    f.calls();
    *f.talos.rebooting.lock().unwrap() = Rebooting::Nothing;
    f.nodes
        .nodes
        .lock()
        .unwrap()
        .get_mut("node-w1")
        .unwrap()
        .ready = false;
    let m = f.op("w1", "reboot", json!({})).await;
    assert_eq!(
        f.calls(),
        [
            "cordon node-w1",
            "drain node-w1 timeout=300s",
            "talos reboot"
        ]
    );
    assert_eq!(m["state"], "rebooting");
    assert_eq!(m["operation"]["phase"], "failed");
    assert!(
        m["operation"]["message"]
            .as_str()
            .unwrap()
            .contains("did not become Ready")
    );
    assert!(f.nodes.node("node-w1").unschedulable);
    // The node registers again: the machine is joined and our cordon goes.
    f.nodes
        .nodes
        .lock()
        .unwrap()
        .get_mut("node-w1")
        .unwrap()
        .ready = true;
    f.app
        .services
        .machine_node_joined(&id, "node-w1")
        .await
        .unwrap();
    assert_eq!(f.calls(), ["uncordon node-w1"]);
    assert_eq!(f.get("w1").await["state"], "joined");
    assert!(!f.nodes.node("node-w1").unschedulable);
}

#[tokio::test]
async fn concurrent_provisions_of_one_new_machine_make_one_record() {
    let f = Fleet::new().await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let s = f.app.services.clone();
            let req = f.request("racer", "uuid-racer", "fp-racer");
            tokio::spawn(async move { s.admit_machine(req).await })
        })
        .collect();
    let mut ids = BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap().id);
    }
    assert_eq!(ids.len(), 1);
    let list = f.app.get("/v1/orgs/acme/machines", &f.owner).await.ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_machine_action_is_audited_with_its_outcome() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    f.admit("spare").await;
    let app = &f.app;
    app.call(
        Method::PUT,
        "/v1/orgs/acme/machines/w1/visibility",
        Some(&f.owner),
        Some(json!({"visibility": "public"})),
    )
    .await
    .ok();
    f.app
        .patch(
            "/v1/orgs/acme/machines/w1/labels",
            &f.owner,
            json!({"set": {"pool": "a"}}),
        )
        .await
        .ok();
    for (action, body) in [
        ("cordon", json!({})),
        ("uncordon", json!({})),
        ("drain", json!({})),
        ("reboot", json!({"force": true})),
        ("shutdown", json!({})),
    ] {
        f.op("w1", action, body).await;
    }
    f.op("w1", "decommission", json!({})).await;
    app.post("/v1/orgs/acme/machines/spare/claim", &f.owner, json!({}))
        .await
        .ok();
    app.post("/v1/orgs/acme/machines/spare/release", &f.owner, json!({}))
        .await
        .ok();
    app.post("/v1/orgs/acme/machines/spare/cordon", &f.owner, json!({}))
        .await
        .err(409, "machine_state_conflict");
    app.post(
        "/v1/orgs/acme/machines/bulk/labels",
        &f.owner,
        json!({"selector": "!pool", "labels": {"set": {"pool": "b"}}}),
    )
    .await
    .ok();
    app.post(
        "/v1/orgs/acme/join-tokens/rack-1/revoke",
        &f.owner,
        json!({}),
    )
    .await
    .ok();
    let audit = f.audit_actions().await;
    for want in [
        "machine.join_token.create success",
        "machine.join_token.revoke success",
        "machine.admit success",
        "machine.claim success",
        "machine.release success",
        "machine.labels success",
        "machine.visibility success",
        "machine.cordon success",
        "machine.cordon failure",
        "machine.uncordon success",
        "machine.drain success",
        "machine.reboot success",
        "machine.shutdown success",
        "machine.decommission success",
        "machine.bulk.labels success",
    ] {
        assert!(audit.iter().any(|a| a == want), "{want} in {audit:?}");
    }
    // Another organization sees the public machine, but not who operated it.
    let other = app.user("other@example.com").await;
    app.org(&other, "other").await;
    let id = f.get("w1").await["id"].as_str().unwrap().to_owned();
    let seen = app
        .get(&format!("/v1/orgs/other/machines/{id}"), &other)
        .await
        .ok();
    assert_eq!(seen["operation"]["kind"], "decommission");
    assert!(seen["operation"].get("requested_by").is_none());
    assert_eq!(
        f.get("w1").await["operation"]["requested_by"],
        "owner@example.com"
    );
}

#[tokio::test]
async fn facts_learnt_later_update_system_labels_and_the_node() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    let mut hw = hardware("amd64", 8, 16, 0);
    hw.gpus = 4;
    let m = f
        .app
        .services
        .update_machine_facts(&id, Some("eu-2"), Some(&hw), None)
        .await
        .unwrap();
    assert_eq!(m.zone, "eu-2");
    assert_eq!(m.system_labels["gpu"], "4");
    assert_eq!(m.system_labels["hostname"], "w1");
    let node = f.nodes.node("node-w1");
    assert_eq!(node.labels["topology.kubernetes.io/zone"], "eu-2");
    assert_eq!(node.labels["satusky.com/gpu"], "4");
    assert_eq!(names(&f, "zone=eu-2,gpu=4").await, set(&["w1"]));
    assert!(
        f.app
            .services
            .update_machine_facts(&id, Some("not a zone"), None, None)
            .await
            .is_err()
    );
}

// ---- reboot readiness, resumed reboots, leases and decommission

/// Stores a running reboot of `w1` at `step` (2: `talos_reboot`, 3:
/// `wait_node_ready`) with the runner state `runner`, as a control plane
/// that stopped there left it.
async fn stopped_during_a_reboot(f: &Fleet, id: &str, step: u32, runner: Option<Value>) {
    let store = f.app.services.store().clone();
    let mut m = store.get_machine(id).await.unwrap().unwrap();
    m.state = satusky_core::machines::MachineState::Rebooting;
    m.cordoned_by_us = true;
    let mut op = json!({
        "id": "op-1",
        "kind": "reboot",
        "phase": "running",
        "plan": ["cordon_node", "drain_node", "talos_reboot", "wait_node_ready", "uncordon_if_ours"],
        "step": step,
        "from_state": "joined",
        "drain_timeout_seconds": 300,
        "started_at": "2026-11-21T10:00:00Z",
    });
    if let Some(r) = runner {
        op["runner"] = r;
    }
    m.operation = Some(op);
    store.update_machine(&m).await.unwrap();
    f.nodes
        .nodes
        .lock()
        .unwrap()
        .get_mut("node-w1")
        .unwrap()
        .unschedulable = true;
    f.calls();
}

fn set_node(f: &Fleet, node: &str, ready: bool, boot_id: Option<&str>) {
    let mut nodes = f.nodes.nodes.lock().unwrap();
    let n = nodes.get_mut(node).unwrap();
    n.ready = ready;
    n.boot_id = boot_id.map(str::to_owned);
}

/// A control plane over the fleet's store and ports, as another replica.
fn replica(f: &Fleet, name: &str, clock: &satusky_core::clock::ManualClock) -> Services {
    Services::new(
        f.app.services.store().clone(),
        Arc::new(clock.clone()),
        ServicesConfig {
            replica_id: name.to_owned(),
            machine_op_lease_ttl: Duration::from_millis(300),
            ..config(&f.nodes, &f.talos)
        },
    )
}

#[tokio::test]
async fn a_reboot_waits_for_the_node_to_come_back_with_a_new_boot_id_not_for_its_old_ready() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    f.calls();
    // The node stays Ready with its old boot id for a while after Talos
    // accepted the reboot (as the node lifecycle controller keeps it).
    let m = f.op("w1", "reboot", json!({"force": true})).await;
    assert_eq!(f.calls(), ["talos reboot", "booted node-w1"]);
    assert_eq!(m["state"], "joined");
    let events = f.events("w1").await;
    assert!(
        events
            .iter()
            .any(|e| e
                == "operation.step: wait_node_ready: node node-w1 is Ready (boot id boot-w1+)"),
        "{events:?}"
    );
    // The boot id is runner state, not part of the operation on the wire.
    assert!(m["operation"].get("runner").is_none(), "{m}");
}

#[tokio::test]
async fn without_a_boot_id_a_reboot_is_over_only_once_the_node_was_seen_not_ready() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    set_node(&f, "node-w1", true, None);
    f.calls();
    let m = f.op("w1", "reboot", json!({})).await;
    assert_eq!(
        f.calls(),
        [
            "cordon node-w1",
            "drain node-w1 timeout=300s",
            "talos reboot",
            "booted node-w1",
            "uncordon node-w1"
        ]
    );
    assert_eq!(m["state"], "joined");
}

#[tokio::test]
async fn a_reboot_that_never_takes_the_node_down_fails_instead_of_passing_for_done() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    *f.talos.rebooting.lock().unwrap() = Rebooting::Nothing;
    f.calls();
    let m = f.op("w1", "reboot", json!({"force": true})).await;
    assert_eq!(f.calls(), ["talos reboot"]);
    assert_eq!(m["state"], "rebooting");
    assert_eq!(m["operation"]["phase"], "failed");
    let msg = m["operation"]["message"].as_str().unwrap();
    assert!(
        msg.contains("did not become Ready")
            && msg.contains("still Ready with boot id boot-w1 from before the reboot"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_node_back_from_not_ready_with_its_old_boot_id_has_not_rebooted() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    *f.talos.rebooting.lock().unwrap() = Rebooting::Flap;
    f.calls();
    let m = f.op("w1", "reboot", json!({"force": true})).await;
    assert_eq!(f.calls(), ["talos reboot", "flapped node-w1"]);
    assert_eq!(m["operation"]["phase"], "failed");
    let msg = m["operation"]["message"].as_str().unwrap();
    assert!(
        msg.contains("still Ready with boot id boot-w1 from before the reboot"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_resumed_reboot_that_already_happened_is_not_asked_for_again() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    // Stopped after the reboot call, before recording it: the node has
    // booted again meanwhile.
    let mark = json!({"reboot": {"boot_id": "boot-w1", "requested_at": f.app.clock.now()}});
    stopped_during_a_reboot(&f, &id, 2, Some(mark)).await;
    set_node(&f, "node-w1", true, Some("boot-w1+"));
    let restarted = replica(&f, "restarted", &f.app.clock);
    assert_eq!(restarted.resume_machine_operations().await.unwrap(), 1);
    let m = f.settle("w1").await;
    assert_eq!(f.calls(), ["uncordon node-w1"]);
    assert_eq!(m["state"], "joined");
    assert_eq!(m["operation"]["phase"], "completed");
    let events = f.events("w1").await;
    assert!(
        events.iter().any(|e| e.contains(
            "talos_reboot: the reboot asked for before the control plane restarted is under way: node node-w1 booted again"
        )),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_resumed_reboot_of_a_node_that_went_down_waits_for_it_instead_of_rebooting_again() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    let mark = json!({"reboot": {"boot_id": "boot-w1", "requested_at": f.app.clock.now()}});
    stopped_during_a_reboot(&f, &id, 2, Some(mark)).await;
    set_node(&f, "node-w1", false, Some("boot-w1"));
    let restarted = replica(&f, "restarted", &f.app.clock);
    assert_eq!(restarted.resume_machine_operations().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(60)).await;
    set_node(&f, "node-w1", true, Some("boot-w1+"));
    let m = f.settle("w1").await;
    assert_eq!(f.calls(), ["uncordon node-w1"]);
    assert_eq!(m["operation"]["phase"], "completed");
    assert_eq!(m["state"], "joined");
}

#[tokio::test]
async fn a_resumed_reboot_whose_call_never_happened_reboots_once() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    // The mark was written long ago and the node never left its boot.
    let long_ago = f.app.clock.now() - chrono::Duration::hours(1);
    let mark = json!({"reboot": {"boot_id": "boot-w1", "requested_at": long_ago}});
    stopped_during_a_reboot(&f, &id, 2, Some(mark)).await;
    let restarted = replica(&f, "restarted", &f.app.clock);
    assert_eq!(restarted.resume_machine_operations().await.unwrap(), 1);
    let m = f.settle("w1").await;
    assert_eq!(
        f.calls(),
        ["talos reboot", "booted node-w1", "uncordon node-w1"]
    );
    assert_eq!(m["operation"]["phase"], "completed");
}

#[tokio::test]
async fn two_replicas_run_one_operation_once_and_the_other_takes_over_when_the_lease_expires() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    stopped_during_a_reboot(&f, &id, 2, None).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    *f.talos.hold_reboot.lock().unwrap() = Some(gate.clone());
    let (clock_a, clock_b) = (
        satusky_core::clock::ManualClock::new(chrono::Utc::now()),
        satusky_core::clock::ManualClock::new(chrono::Utc::now()),
    );
    let a = replica(&f, "replica-a", &clock_a);
    let b = replica(&f, "replica-b", &clock_b);
    let (ra, rb) = tokio::join!(a.resume_machine_operations(), b.resume_machine_operations());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra + rb, 1, "exactly one replica resumes it");
    let (winner, loser_clock) = if ra == 1 {
        ("replica-a", &clock_b)
    } else {
        ("replica-b", &clock_a)
    };
    let store = f.app.services.store().clone();
    let lease_name = format!("machine-op/{id}");
    let holder = || async {
        store
            .get_lease(&lease_name)
            .await
            .unwrap()
            .map(|l| l.holder)
    };
    // The winner holds the lease and keeps it renewed; the other stands by.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        holder()
            .await
            .unwrap()
            .starts_with(&format!("{winner} op ")),
        "{:?}",
        holder().await
    );
    let resumed = |events: &[String]| {
        events
            .iter()
            .filter(|e| e.starts_with("operation.resumed"))
            .count()
    };
    assert_eq!(resumed(&f.events("w1").await), 1);

    // The winner stops renewing (its clock stands still while the other's
    // moves past the lease's end): the other replica takes over.
    loser_clock.advance(chrono::Duration::hours(1));
    let mut took_over = false;
    for _ in 0..200 {
        if holder()
            .await
            .is_some_and(|h| !h.starts_with(&format!("{winner} op ")))
        {
            took_over = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(took_over, "{:?}", holder().await);
    // Give the old holder time to notice it lost the lease and drop its call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.notify_one();
    let m = f.settle("w1").await;
    assert_eq!(m["operation"]["phase"], "completed");
    assert_eq!(m["state"], "joined");
    assert_eq!(f.talos.talos_reboots(), 1, "{:?}", f.log.lock().unwrap());
    let events = f.events("w1").await;
    assert_eq!(resumed(&events), 2, "{events:?}");
    assert!(
        events.iter().any(|e| e.ends_with(
            "reboot resumed at step talos_reboot here: the replica that ran it stopped renewing its lease"
        )),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.starts_with("operation.completed"))
            .count(),
        1
    );
    // The lease is given back at the end.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(holder().await, None);
}

#[tokio::test]
async fn decommission_waits_until_the_reset_machine_answers_in_maintenance_mode() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    f.calls();
    let m = f.op("w1", "decommission", json!({})).await;
    assert_eq!(m["state"], "decommissioned");
    assert_eq!(
        m["operation"]["plan"],
        json!([
            "cordon_node",
            "drain_node",
            "talos_reset",
            "wait_maintenance",
            "delete_node",
            "remove_link"
        ])
    );
    let events = f.events("w1").await;
    assert!(
        events.iter().any(|e| e
            == "operation.step: wait_maintenance: the machine answers in maintenance mode: its configuration and our identity on it are gone"),
        "{events:?}"
    );

    // A reset that is accepted but never wipes the machine: it still
    // answers with our identity, the decommission stops before removing it…
    f.joined("w2").await;
    *f.talos.reset_sticks.lock().unwrap() = true;
    f.calls();
    let m = f.op("w2", "decommission", json!({})).await;
    assert_eq!(m["state"], "decommissioning");
    assert_eq!(m["operation"]["phase"], "failed");
    let msg = m["operation"]["message"].as_str().unwrap();
    assert!(
        msg.contains("still answers with our identity") && msg.contains("decommission with force"),
        "{msg}"
    );
    let calls = f.calls();
    assert!(!calls.contains(&"delete node-w2".to_owned()), "{calls:?}");
    // …and force removes it as needing a wipe.
    let m = f.op("w2", "decommission", json!({"force": true})).await;
    assert_eq!(m["state"], "needs_wipe");
}

#[tokio::test]
async fn a_machine_already_in_maintenance_mode_is_not_reset_again() {
    let f = Fleet::new().await;
    f.admit("m1").await;
    f.talos
        .maintenance
        .lock()
        .unwrap()
        .insert("uuid-m1".to_owned());
    f.calls();
    let m = f.op("m1", "decommission", json!({})).await;
    assert_eq!(m["state"], "decommissioned");
    assert_eq!(f.calls(), ["remove link"]);
    let events = f.events("m1").await;
    assert!(
        events.iter().any(|e| e
            == "operation.step: talos_reset: the machine already answers in maintenance mode: nothing to reset"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_control_plane_machine_leaves_etcd_in_a_graceful_reset_and_a_forced_removal_warns_of_its_member()
 {
    let f = Fleet::new().await;
    for host in ["cp1", "cp2"] {
        f.joined(host).await;
        f.nodes
            .nodes
            .lock()
            .unwrap()
            .get_mut(&format!("node-{host}"))
            .unwrap()
            .labels
            .insert(CONTROL_PLANE_LABEL.to_owned(), String::new());
    }
    f.calls();
    let m = f.op("cp1", "decommission", json!({})).await;
    assert_eq!(m["state"], "decommissioned");
    let calls = f.calls();
    assert!(
        calls.contains(&"talos reset wipe=false graceful=true".to_owned()),
        "{calls:?}"
    );
    let events = f.events("cp1").await;
    assert!(
        events.iter().any(|e| e.contains(
            "talos_reset: Talos is resetting the control-plane machine gracefully: it leaves etcd, then wipes"
        )),
        "{events:?}"
    );
    // Removed by force, a control-plane machine leaves its etcd member
    // behind: the events say so.
    let m = f.op("cp2", "decommission", json!({"force": true})).await;
    assert_eq!(m["state"], "needs_wipe");
    let events = f.events("cp2").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("machine.etcd_member_left:")
                && e.contains("talosctl etcd remove-member")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_replica_takes_over_an_operation_that_began_after_it_started() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    let (clock_a, clock_b) = (
        satusky_core::clock::ManualClock::new(chrono::Utc::now()),
        satusky_core::clock::ManualClock::new(chrono::Utc::now()),
    );
    let b = replica(&f, "replica-b", &clock_b);
    assert_eq!(b.resume_machine_operations().await.unwrap(), 0);
    // Replica A starts later and runs a reboot that hangs in the Talos call.
    stopped_during_a_reboot(&f, &id, 2, None).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    *f.talos.hold_reboot.lock().unwrap() = Some(gate.clone());
    let a = replica(&f, "replica-a", &clock_a);
    assert_eq!(a.resume_machine_operations().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let store = f.app.services.store().clone();
    let holder = store
        .get_lease(&format!("machine-op/{id}"))
        .await
        .unwrap()
        .unwrap()
        .holder;
    assert!(holder.starts_with("replica-a op op-1 run "), "{holder}");
    // A stops renewing; B's periodic look finds the expired lease.
    clock_b.advance(chrono::Duration::hours(1));
    let mut holder = String::new();
    for _ in 0..200 {
        holder = store
            .get_lease(&format!("machine-op/{id}"))
            .await
            .unwrap()
            .map(|l| l.holder)
            .unwrap_or_default();
        if holder.starts_with("replica-b ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(holder.starts_with("replica-b op op-1 run "), "{holder}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.notify_one();
    let m = f.settle("w1").await;
    assert_eq!(m["operation"]["phase"], "completed");
    assert_eq!(f.talos.talos_reboots(), 1);
}

// ---- cancelling a running operation

impl Fleet {
    /// Waits until `pred` holds of the machine (at most 5 s).
    async fn until(&self, machine: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..500 {
            let m = self.get(machine).await;
            if pred(&m) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{machine} never got there: {}", self.get(machine).await);
    }

    /// Holds every drain until the test ends (or the runner drops it).
    fn hold_drains(&self) -> Arc<tokio::sync::Notify> {
        let gate = Arc::new(tokio::sync::Notify::new());
        *self.nodes.hold.lock().unwrap() = Some(gate.clone());
        gate
    }

    async fn draining(&self, machine: &str) -> Value {
        self.until(machine, |m| {
            let op = &m["operation"];
            op["drain"]["phase"] == "running"
                && op["plan"][op["step"].as_u64().unwrap() as usize] == "drain_node"
        })
        .await
    }

    fn cancel_path(machine: &str) -> String {
        format!("/v1/orgs/acme/machines/{machine}/cancel")
    }
}

#[tokio::test]
async fn a_drain_held_by_a_budget_is_cancelled_at_once_and_our_cordon_goes() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    let _gate = f.hold_drains();
    f.calls();
    let res = f
        .app
        .post(
            "/v1/orgs/acme/machines/w1/drain",
            &f.owner,
            json!({"timeout_seconds": 3600}),
        )
        .await;
    assert_eq!(res.status, 202);
    f.draining("w1").await;

    let res = f
        .app
        .post(&Fleet::cancel_path("w1"), &f.owner, json!({}))
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    let op = &res.body["operation"];
    assert_eq!(op["cancel_requested"], true);
    assert_eq!(op["cancel_requested_by"], "owner@example.com");
    assert!(op["cancel_requested_at"].is_string());

    let m = f.settle("w1").await;
    assert_eq!(m["operation"]["phase"], "cancelled");
    assert_eq!(m["state"], "joined");
    assert_eq!(m["operation"]["drain"]["phase"], "cancelled");
    assert_eq!(
        m["operation"]["message"],
        "cancelled by owner@example.com at drain_node"
    );
    assert!(!f.nodes.node("node-w1").unschedulable);
    assert_eq!(
        f.calls(),
        [
            "cordon node-w1",
            "drain node-w1 timeout=3600s",
            "uncordon node-w1"
        ]
    );
    assert_eq!(f.talos.talos_reboots(), 0);
    let events = f.events("w1").await;
    for want in [
        "operation.cancel_requested: drain cancel requested by owner@example.com during drain_node",
        "operation.step: uncordon_if_ours: node node-w1 uncordoned after the cancel",
        "operation.cancelled: drain cancelled by owner@example.com at drain_node; machine is joined",
    ] {
        assert!(events.iter().any(|e| e == want), "{want} in {events:?}");
    }
    assert!(!events.iter().any(|e| e.starts_with("operation.failed")));

    // Nothing runs any more: a second cancel is refused, and audited so.
    let res = f
        .app
        .post(&Fleet::cancel_path("w1"), &f.owner, json!({}))
        .await;
    res.err(409, "machine_state_conflict");
    assert_eq!(
        res.body["error"]["message"],
        "machine `w1` has no running operation to cancel (it is joined; its last operation, a drain, is cancelled)"
    );
    let audit = f.audit_actions().await;
    for want in ["machine.cancel success", "machine.cancel failure"] {
        assert!(audit.iter().any(|a| a == want), "{want} in {audit:?}");
    }
    // The machine takes new operations again.
    *f.nodes.hold.lock().unwrap() = None;
    let m = f.op("w1", "drain", json!({})).await;
    assert_eq!(m["operation"]["phase"], "completed");
}

#[tokio::test]
async fn a_cancelled_drain_of_a_cordoned_machine_keeps_it_cordoned() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    f.op("w1", "cordon", json!({})).await;
    let _gate = f.hold_drains();
    f.calls();
    f.app
        .post("/v1/orgs/acme/machines/w1/drain", &f.owner, json!({}))
        .await
        .ok();
    f.draining("w1").await;
    f.app
        .post(&Fleet::cancel_path("w1"), &f.owner, json!({}))
        .await
        .ok();
    let m = f.settle("w1").await;
    assert_eq!(m["operation"]["phase"], "cancelled");
    assert_eq!(m["state"], "cordoned");
    assert!(f.nodes.node("node-w1").unschedulable);
    // The cordon was there before the drain: it stays.
    assert_eq!(f.calls(), ["drain node-w1 timeout=300s"]);
}

#[tokio::test]
async fn a_reboot_cancelled_while_draining_never_reboots() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    let _gate = f.hold_drains();
    f.calls();
    f.app
        .post("/v1/orgs/acme/machines/w1/reboot", &f.owner, json!({}))
        .await
        .ok();
    let m = f.draining("w1").await;
    assert_eq!(m["state"], "rebooting");
    f.app
        .post(&Fleet::cancel_path("w1"), &f.owner, json!({}))
        .await
        .ok();
    let m = f.settle("w1").await;
    assert_eq!(m["operation"]["kind"], "reboot");
    assert_eq!(m["operation"]["phase"], "cancelled");
    assert_eq!(m["operation"]["step"], 1, "talos_reboot never began");
    assert_eq!(m["state"], "joined");
    // Even later, no reboot happens.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.talos.talos_reboots(), 0);
    assert_eq!(
        f.calls(),
        [
            "cordon node-w1",
            "drain node-w1 timeout=300s",
            "uncordon node-w1"
        ]
    );
    assert!(!f.nodes.node("node-w1").unschedulable);
    let events = f.events("w1").await;
    assert!(
        events.iter().any(|e| e
            == "operation.cancelled: reboot cancelled by owner@example.com at drain_node; machine is joined"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_decommission_cancelled_while_draining_keeps_the_machine() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    let _gate = f.hold_drains();
    f.calls();
    f.app
        .post(
            "/v1/orgs/acme/machines/w1/decommission",
            &f.owner,
            json!({}),
        )
        .await
        .ok();
    f.draining("w1").await;
    f.app
        .post(&Fleet::cancel_path("w1"), &f.owner, json!({}))
        .await
        .ok();
    let m = f.settle("w1").await;
    assert_eq!(m["operation"]["phase"], "cancelled");
    assert_eq!(m["state"], "joined");
    assert_eq!(m["node_name"], "node-w1");
    let calls = f.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("talos") || c.starts_with("delete")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_cancel_after_the_reboot_call_began_is_refused() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    let gate = Arc::new(tokio::sync::Notify::new());
    *f.talos.hold_reboot.lock().unwrap() = Some(gate.clone());
    f.calls();
    f.app
        .post("/v1/orgs/acme/machines/w1/reboot", &f.owner, json!({}))
        .await
        .ok();
    // Drained; the Talos call has begun (held).
    f.until("w1", |m| m["operation"]["step"] == 2).await;
    let res = f
        .app
        .post(&Fleet::cancel_path("w1"), &f.owner, json!({}))
        .await;
    res.err(409, "machine_state_conflict");
    assert_eq!(
        res.body["error"]["message"],
        "machine `w1` is already rebooting (talos_reboot of its reboot began); it cannot be cancelled"
    );
    gate.notify_one();
    let m = f.settle("w1").await;
    assert_eq!(m["operation"]["phase"], "completed");
    assert!(m["operation"].get("cancel_requested").is_none());
    assert_eq!(m["state"], "joined");
    assert_eq!(f.talos.talos_reboots(), 1);
    let audit = f.audit_actions().await;
    assert!(
        audit.iter().any(|a| a == "machine.cancel failure"),
        "{audit:?}"
    );

    // A forced reboot begins with the Talos call: nothing to cancel at all.
    *f.talos.hold_reboot.lock().unwrap() = Some(gate.clone());
    f.app
        .post(
            "/v1/orgs/acme/machines/w1/reboot",
            &f.owner,
            json!({"force": true}),
        )
        .await
        .ok();
    let res = f
        .app
        .post(&Fleet::cancel_path("w1"), &f.owner, json!({}))
        .await;
    res.err(409, "machine_state_conflict");
    assert!(
        res.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is already rebooting"),
        "{}",
        res.body
    );
    gate.notify_one();
    f.settle("w1").await;
}

#[tokio::test]
async fn cancels_follow_tenancy_and_roles() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    let app = &f.app;
    // Nothing running.
    let res = app
        .post(&Fleet::cancel_path("w1"), &f.owner, json!({}))
        .await;
    res.err(409, "machine_state_conflict");
    assert_eq!(
        res.body["error"]["message"],
        "machine `w1` has no running operation to cancel (it is joined)"
    );

    let gate = f.hold_drains();
    app.post("/v1/orgs/acme/machines/w1/drain", &f.owner, json!({}))
        .await
        .ok();
    f.draining("w1").await;

    // Another organization: not found, then (public) read-only.
    let other = app.user("other@example.com").await;
    app.org(&other, "other").await;
    app.post(
        &format!("/v1/orgs/other/machines/{id}/cancel"),
        &other,
        json!({}),
    )
    .await
    .err(404, "machine_not_found");
    app.call(
        Method::PUT,
        "/v1/orgs/acme/machines/w1/visibility",
        Some(&f.owner),
        Some(json!({"visibility": "public"})),
    )
    .await
    .ok();
    app.post(
        &format!("/v1/orgs/other/machines/{id}/cancel"),
        &other,
        json!({}),
    )
    .await
    .err(403, "forbidden");
    // A viewer may not; a member may.
    app.user("viewer@example.com").await;
    app.user("member@example.com").await;
    app.add_member(&f.owner, "acme", "viewer@example.com", "viewer")
        .await;
    app.add_member(&f.owner, "acme", "member@example.com", "member")
        .await;
    let viewer = app.login("viewer@example.com").await;
    let member = app.login("member@example.com").await;
    app.post(&Fleet::cancel_path("w1"), &viewer, json!({}))
        .await
        .err(403, "forbidden");
    assert_eq!(f.get("w1").await["operation"]["phase"], "running");
    let res = app
        .post(&Fleet::cancel_path("w1"), &member, json!({}))
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    // Asking twice while it stops changes nothing.
    let m = f.settle("w1").await;
    assert_eq!(m["operation"]["phase"], "cancelled");
    assert_eq!(m["operation"]["cancel_requested_by"], "member@example.com");
    // Another organization sees the public machine, not who cancelled.
    let seen = app
        .get(&format!("/v1/orgs/other/machines/{id}"), &other)
        .await
        .ok();
    assert_eq!(seen["operation"]["phase"], "cancelled");
    assert!(seen["operation"].get("cancel_requested_by").is_none());
    drop(gate);
}

#[tokio::test]
async fn a_repeated_cancel_is_accepted_once_and_recorded_once() {
    let f = Fleet::new().await;
    f.joined("w1").await;
    let id = f.get("w1").await["id"].as_str().unwrap().to_owned();
    // A drain stored as running with no runner: the request is recorded,
    // and asking again changes nothing.
    let store = f.app.services.store().clone();
    let mut m = store.get_machine(&id).await.unwrap().unwrap();
    m.state = satusky_core::machines::MachineState::Draining;
    m.operation = Some(json!({
        "id": "op-1", "kind": "drain", "phase": "running",
        "plan": ["cordon_node", "drain_node"], "step": 1, "from_state": "joined",
        "drain_timeout_seconds": 300, "started_at": "2026-11-21T10:00:00Z",
        "runner": {"kept": true},
    }));
    store.update_machine(&m).await.unwrap();
    for _ in 0..2 {
        let res = f
            .app
            .post(&Fleet::cancel_path("w1"), &f.owner, json!({}))
            .await;
        assert_eq!(res.status, 202, "{}", res.body);
        assert_eq!(res.body["operation"]["phase"], "running");
        assert_eq!(res.body["operation"]["cancel_requested"], true);
    }
    let events = f.events("w1").await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.starts_with("operation.cancel_requested"))
            .count(),
        1,
        "{events:?}"
    );
    // The runner's own part of the operation is kept.
    let stored = store.get_machine(&id).await.unwrap().unwrap();
    assert_eq!(stored.operation.unwrap()["runner"]["kept"], true);
}

#[tokio::test]
async fn a_cancel_taken_by_one_replica_stops_the_operation_another_replica_runs() {
    let f = Fleet::new().await;
    let id = f.joined("w1").await;
    let store = f.app.services.store().clone();
    // A drain that `replica-a` runs (resumed there), held by a budget.
    let mut m = store.get_machine(&id).await.unwrap().unwrap();
    m.state = satusky_core::machines::MachineState::Draining;
    m.cordoned_by_us = true;
    m.operation = Some(json!({
        "id": "op-1", "kind": "drain", "phase": "running",
        "plan": ["cordon_node", "drain_node"], "step": 1, "from_state": "joined",
        "drain_timeout_seconds": 3600, "started_at": "2026-11-21T10:00:00Z",
    }));
    store.update_machine(&m).await.unwrap();
    f.nodes
        .nodes
        .lock()
        .unwrap()
        .get_mut("node-w1")
        .unwrap()
        .unschedulable = true;
    let _gate = f.hold_drains();
    f.calls();
    let clock = satusky_core::clock::ManualClock::new(chrono::Utc::now());
    let a = replica(&f, "replica-a", &clock);
    assert_eq!(a.resume_machine_operations().await.unwrap(), 1);
    f.draining("w1").await;
    let holder = store
        .get_lease(&format!("machine-op/{id}"))
        .await
        .unwrap()
        .unwrap()
        .holder;
    assert!(holder.starts_with("replica-a op op-1 "), "{holder}");

    // The API of another replica (the test app's) takes the cancel.
    f.app
        .post(&Fleet::cancel_path("w1"), &f.owner, json!({}))
        .await
        .ok();
    let m = f.settle("w1").await;
    assert_eq!(m["operation"]["phase"], "cancelled");
    assert_eq!(m["state"], "joined");
    assert!(!f.nodes.node("node-w1").unschedulable);
    assert_eq!(
        f.calls(),
        ["drain node-w1 timeout=3600s", "uncordon node-w1"]
    );
    // Replica a gives its lease back.
    let mut released = false;
    for _ in 0..100 {
        if store
            .get_lease(&format!("machine-op/{id}"))
            .await
            .unwrap()
            .is_none()
        {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(released);
}

#[tokio::test]
async fn a_bulk_cancel_stops_the_selected_machines_that_run_something() {
    let f = Fleet::new().await;
    for host in ["a1", "a2", "a3", "b1"] {
        f.joined(host).await;
        if host.starts_with('a') {
            f.app
                .patch(
                    &format!("/v1/orgs/acme/machines/{host}/labels"),
                    &f.owner,
                    json!({"set": {"pool": "a"}}),
                )
                .await
                .ok();
        }
    }
    let _gate = f.hold_drains();
    // a1 and b1 drain (held); a2 reboots and is at its Talos call; a3 idles.
    for host in ["a1", "b1"] {
        f.app
            .post(
                &format!("/v1/orgs/acme/machines/{host}/drain"),
                &f.owner,
                json!({}),
            )
            .await
            .ok();
        f.draining(host).await;
    }
    let reboot_gate = Arc::new(tokio::sync::Notify::new());
    *f.talos.hold_reboot.lock().unwrap() = Some(reboot_gate.clone());
    f.app
        .post(
            "/v1/orgs/acme/machines/a2/reboot",
            &f.owner,
            json!({"force": true}),
        )
        .await
        .ok();
    f.until("a2", |m| m["operation"]["phase"] == "running")
        .await;

    let res = f
        .app
        .post(
            "/v1/orgs/acme/machines/bulk/cancel",
            &f.owner,
            json!({"selector": "pool=a"}),
        )
        .await
        .ok();
    let mut items: Vec<(String, bool, String)> = res["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_owned(),
                i["ok"].as_bool().unwrap(),
                i["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    items.sort();
    assert_eq!(
        items,
        [
            ("a1".to_owned(), true, String::new()),
            ("a2".to_owned(), false, "machine_state_conflict".to_owned()),
        ],
        "a3 runs nothing and b1 is not selected"
    );
    assert_eq!(f.settle("a1").await["operation"]["phase"], "cancelled");
    assert_eq!(f.get("b1").await["operation"]["phase"], "running");
    reboot_gate.notify_one();
    assert_eq!(f.settle("a2").await["operation"]["phase"], "completed");
    let audit = f.audit_actions().await;
    assert!(
        audit.iter().any(|a| a == "machine.bulk.cancel success"),
        "{audit:?}"
    );
    // Unknown actions still say which there are.
    let res = f
        .app
        .post(
            "/v1/orgs/acme/machines/bulk/pause",
            &f.owner,
            json!({"selector": "pool=a"}),
        )
        .await;
    assert_eq!(res.status, 404, "{}", res.body);
    assert!(
        res.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("labels or cancel"),
        "{}",
        res.body
    );
}
