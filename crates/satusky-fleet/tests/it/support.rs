//! A control plane in a test: core services over SQLite, kube-sim, the fleet
//! runtime, and talos-sim machines joining through it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use satusky_core::clock::{Clock, ManualClock, SystemClock};
use satusky_core::fleet::SigningKey;
use satusky_core::services::{Ctx, Services, ServicesConfig};
use satusky_fleet::{
    FleetConfig, FleetHandle, FleetPorts, FleetRuntime, FleetTimings, NodeOpsSettings,
    SiderolinkSettings, StaticEndpoints, TalosIdentity, TalosOpsSettings,
};
use satusky_types::machines::{CreateJoinTokenRequest, Machine, MachineQuery, MachineState};
use talos_sim::{Fleet, Timings};

pub const ORG: &str = "acme";

/// A link is down after this long without WireGuard keepalives (3 × the
/// simulated machines' 200 ms keepalive, plus slack for a loaded test host).
pub const LINK_DOWN_AFTER: Duration = Duration::from_secs(3);

pub struct Env {
    pub services: Services,
    pub ctx: Ctx,
    _kube_sim: kube_sim::Sim,
    pub kube: kube::Client,
    pub ports: FleetPorts,
    pub handle: FleetHandle,
    pub endpoints: Arc<StaticEndpoints>,
    pub clock: Option<ManualClock>,
    _dir: tempfile::TempDir,
}

/// Simulated machine timings: fast, but a reboot long enough to be seen.
pub fn sim_timings() -> Timings {
    Timings {
        reboot: Duration::from_millis(800),
        ..Timings::fast()
    }
}

impl Env {
    pub async fn new() -> Result<Self> {
        Self::build(None, Duration::from_secs(3)).await
    }

    /// Admission waits at most `d` for a machine's facts.
    pub async fn with_facts_timeout(d: Duration) -> Result<Self> {
        Self::build(None, d).await
    }

    /// With a clock that moves only when told to (for token expiry).
    pub async fn with_manual_clock() -> Result<Self> {
        Self::build(
            Some(ManualClock::new(chrono::Utc::now())),
            Duration::from_secs(3),
        )
        .await
    }

    async fn build(manual: Option<ManualClock>, facts_timeout: Duration) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("x.db").display());
        let store = satusky_store::connect(&url).await?;
        let kube_sim = kube_sim::KubeSim::builder()
            .nodes(0)
            .tick(Duration::from_millis(10))
            .pod_start_delay(Duration::from_millis(20))
            .pod_ready_delay(Duration::from_millis(10))
            .pod_stop_delay(Duration::from_millis(20))
            .start()
            .await?;
        let kube = kube_sim.client()?;
        let ports = FleetPorts::with_settings(
            kube.clone(),
            None,
            NodeOpsSettings {
                call_timeout: Duration::from_secs(10),
                eviction_retry: Duration::from_millis(300),
                poll_interval: Duration::from_millis(100),
            },
            TalosOpsSettings {
                rpc_timeout: Duration::from_secs(3),
                sample_gap: Duration::from_millis(200),
                ..TalosOpsSettings::default()
            },
        );
        let mut config = ServicesConfig {
            join_token_key: Some(SigningKey::new([7u8; 32])),
            node_ready_timeout: Duration::from_secs(30),
            machine_poll_interval: Duration::from_millis(100),
            ..ServicesConfig::default()
        };
        ports.install(&mut config);
        let clock: Arc<dyn Clock> = match &manual {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(SystemClock),
        };
        let services = Services::new(store, clock, config);
        services
            .create_user("ops@example.com", "correct horse battery", None)
            .await?;
        let session = services
            .login("ops@example.com", "correct horse battery", "127.0.0.1")
            .await?;
        let principal = services.authenticate(&session.token).await?;
        let ctx = Ctx {
            principal,
            request_id: "test".to_owned(),
        };
        services.create_org(&ctx, ORG, None).await?;
        let endpoints = StaticEndpoints::new(Duration::from_secs(5));
        let handle = FleetRuntime::start(FleetConfig {
            services: services.clone(),
            kube: kube.clone(),
            talos: ports.talos_ops.clone(),
            provision_listen: "127.0.0.1:0".parse()?,
            event_sink_listen: "127.0.0.1:0".parse()?,
            siderolink: SiderolinkSettings::default(),
            endpoints: endpoints.clone(),
            timings: FleetTimings {
                resync: Duration::from_millis(200),
                link_poll: Duration::from_millis(300),
                facts_timeout,
                // talos-sim's fast timings keep alive every 200 ms.
                wireguard_keepalive: Duration::from_millis(200),
                link_down_after: LINK_DOWN_AFTER,
                ..FleetTimings::default()
            },
        })
        .await?;
        Ok(Self {
            services,
            ctx,
            _kube_sim: kube_sim,
            kube,
            ports,
            handle,
            endpoints,
            clock: manual,
            _dir: dir,
        })
    }

    pub async fn join_token(&self, name: &str) -> Result<String> {
        Ok(self
            .services
            .create_join_token(
                &self.ctx,
                ORG,
                &CreateJoinTokenRequest {
                    name: name.to_owned(),
                    expires_in_hours: Some(1),
                },
            )
            .await?
            .token)
    }

    /// Simulated machines provisioning with `token`, wired like `satusky dev`.
    pub async fn machines(&self, n: usize, token: &str) -> Result<Fleet> {
        let fleet = Fleet::builder()
            .machines(n)
            .siderolink_endpoint(self.handle.siderolink_url())
            .join_token(token)
            .event_sink(self.handle.event_sink_addr().to_string())
            .kube_client(self.kube.clone())
            .timings(sim_timings())
            .start()
            .await?;
        let admin = fleet.admin_identity();
        self.ports.talos_ops.set_identity(TalosIdentity {
            ca_pem: fleet.ca_pem().to_owned(),
            cert_pem: admin.cert_pem.clone(),
            key_pem: admin.key_pem.clone(),
            server_name: None,
        });
        for m in fleet.machines() {
            self.endpoints.insert(m.uuid(), m.api_addr().to_string());
        }
        Ok(fleet)
    }

    pub async fn list(&self) -> Result<Vec<Machine>> {
        Ok(self
            .services
            .list_machines(&self.ctx, ORG, &MachineQuery::default())
            .await?
            .items)
    }

    pub async fn machine(&self, key: &str) -> Result<Machine> {
        Ok(self.services.get_machine(&self.ctx, ORG, key).await?)
    }

    pub async fn events(&self, key: &str) -> Result<Vec<(String, String)>> {
        let (_, events) = self
            .services
            .machine_events(&self.ctx, ORG, key, 0, 1000)
            .await?;
        Ok(events.into_iter().map(|e| (e.kind, e.message)).collect())
    }

    /// Waits until `f` says yes about the machine.
    pub async fn wait_machine(
        &self,
        key: &str,
        what: &str,
        timeout: Duration,
        f: impl Fn(&Machine) -> bool,
    ) -> Result<Machine> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let m = self.machine(key).await?;
            if f(&m) {
                return Ok(m);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("machine {key} never {what}; last seen: {m:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One simulated machine, provisioned, claimed and joined as a node.
    pub async fn joined_machine(&self) -> Result<(Fleet, Machine)> {
        let token = self.join_token("workers").await?;
        let fleet = self.machines(1, &token).await?;
        let m = wait_for(
            Duration::from_secs(15),
            "a machine to be discovered",
            || async { Ok(self.list().await?.into_iter().next()) },
        )
        .await?;
        self.services.claim_machine(&self.ctx, ORG, &m.name).await?;
        self.handle.resync();
        let m = self
            .wait_machine(&m.name, "joined", Duration::from_secs(15), |m| {
                m.state == MachineState::Joined && m.node_name.is_some()
            })
            .await?;
        Ok((fleet, m))
    }

    pub async fn node(&self, name: &str) -> Result<Option<Node>> {
        let api: Api<Node> = Api::all(self.kube.clone());
        Ok(api.get_opt(name).await?)
    }
}

/// Polls `f` until it returns `Some`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, f: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(anyhow::anyhow!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks `events` contains kinds in this order (others may come between).
pub fn in_order(events: &[(String, String)], kinds: &[&str]) -> Result<()> {
    let mut it = events.iter();
    for k in kinds {
        it.find(|(kind, _)| kind == k)
            .with_context(|| format!("no `{k}` event in order {kinds:?} among {events:#?}"))?;
    }
    Ok(())
}
