//! [`TalosClientOps`]: the machine side of operations over the satusky-machines
//! Talos client (mTLS with the fleet's client identity, one connection per
//! machine endpoint), and machine facts and link probes for the runtime.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use satusky_core::fleet::ports::ApiMode;
use satusky_core::fleet::{OpsError, ResetOptions, ServiceHealth, TalosOps, TalosTarget};
use satusky_machines::{
    DiskIo, MemoryInfo, NetworkStats, RebootMode, SystemStats, TalosClient, TalosClientConfig,
    TalosError, WipeMode,
};
use satusky_types::machines::{Hardware, MachineMetrics};

/// The client certificate the control plane presents to every machine.
#[derive(Clone)]
pub struct TalosIdentity {
    /// PEM CA that signed the machines' API certificates.
    pub ca_pem: String,
    /// PEM client certificate (Organization `os:admin` or `os:operator`).
    pub cert_pem: String,
    /// PEM client key.
    pub key_pem: String,
    /// Name to verify server certificates against; `None`: the endpoint's IP.
    pub server_name: Option<String>,
}

impl std::fmt::Debug for TalosIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TalosIdentity")
            .field("server_name", &self.server_name)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Timings of [`TalosClientOps`].
#[derive(Debug, Clone)]
pub struct TalosOpsSettings {
    /// Deadline of each Talos RPC.
    pub rpc_timeout: Duration,
    /// Gap between the two samples of a first metrics call (rates need two).
    pub sample_gap: Duration,
    /// A previous sample older than this is not used for rates.
    pub sample_max_age: Duration,
}

impl Default for TalosOpsSettings {
    fn default() -> Self {
        Self {
            rpc_timeout: Duration::from_secs(10),
            sample_gap: Duration::from_secs(1),
            sample_max_age: Duration::from_mins(2),
        }
    }
}

/// Cumulative counters of one metrics sample.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    stats: SystemStats,
    net: NetworkStats,
    disk: DiskIo,
}

/// [`TalosOps`] over mTLS Talos clients.
#[derive(Debug, Default)]
pub struct TalosClientOps {
    identity: RwLock<Option<TalosIdentity>>,
    settings: TalosOpsSettings,
    clients: Mutex<HashMap<String, TalosClient>>,
    samples: Mutex<HashMap<String, Sample>>,
    /// The SideroLink WireGuard peers, once the fleet runtime started.
    links: RwLock<Option<crate::Links>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn talos_error(m: &TalosTarget, what: &str, e: TalosError) -> OpsError {
    if e.is_unreachable() {
        OpsError::Unreachable {
            what: format!("machine {} at {}", m.machine_id, m.endpoint),
            source: Some(Box::new(e)),
        }
    } else {
        OpsError::Failed {
            message: format!("Talos {what} on machine {}", m.machine_id),
            source: Some(Box::new(e)),
        }
    }
}

impl TalosClientOps {
    /// Ops presenting `identity`; without one every call fails until
    /// [`TalosClientOps::set_identity`].
    pub fn new(identity: Option<TalosIdentity>, settings: TalosOpsSettings) -> Self {
        Self {
            identity: RwLock::new(identity),
            settings,
            clients: Mutex::new(HashMap::new()),
            samples: Mutex::new(HashMap::new()),
            links: RwLock::new(None),
        }
    }

    /// The WireGuard peers `remove_link` removes from (set by the fleet
    /// runtime when it starts).
    pub fn set_links(&self, links: crate::Links) {
        *self.links.write().unwrap_or_else(PoisonError::into_inner) = Some(links);
    }

    /// Replaces the client identity (e.g. once `satusky dev` started its machines);
    /// open clients are dropped.
    pub fn set_identity(&self, identity: TalosIdentity) {
        *self
            .identity
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(identity);
        lock(&self.clients).clear();
    }

    fn client_for(&self, endpoint: &str) -> Result<TalosClient, OpsError> {
        if endpoint.is_empty() {
            return Err(OpsError::failed("the machine has no Talos endpoint"));
        }
        if let Some(c) = lock(&self.clients).get(endpoint) {
            return Ok(c.clone());
        }
        let identity = self
            .identity
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                OpsError::failed("no Talos client identity is configured on this installation")
            })?;
        let mut config = TalosClientConfig::new(
            endpoint,
            identity.ca_pem,
            identity.cert_pem,
            identity.key_pem,
        )
        .rpc_timeout(self.settings.rpc_timeout);
        config.server_name = identity.server_name;
        config.connect_timeout = self.settings.rpc_timeout.min(Duration::from_secs(5));
        let client = TalosClient::connect(&config).map_err(|e| OpsError::Failed {
            message: format!("Talos endpoint {endpoint} is unusable"),
            source: Some(Box::new(e)),
        })?;
        lock(&self.clients).insert(endpoint.to_owned(), client.clone());
        Ok(client)
    }

    pub(crate) fn client(&self, m: &TalosTarget) -> Result<TalosClient, OpsError> {
        self.client_for(&m.endpoint)
    }

    async fn sample(&self, m: &TalosTarget, c: &TalosClient) -> Result<Sample, OpsError> {
        let stats = c
            .system_stat()
            .await
            .map_err(|e| talos_error(m, "SystemStat", e))?;
        let net = c
            .network_device_stats()
            .await
            .map_err(|e| talos_error(m, "NetworkDeviceStats", e))?;
        let disk = c
            .disk_stats()
            .await
            .map_err(|e| talos_error(m, "DiskStats", e))?;
        Ok(Sample {
            at: Instant::now(),
            stats,
            net,
            disk,
        })
    }

    /// Whether the machine's API answers, with our identity or in maintenance
    /// mode (no client certificate). The link probe of the runtime.
    pub async fn probe(&self, endpoint: &str) -> bool {
        if let Ok(c) = self.client_for(endpoint)
            && c.version().await.is_ok()
        {
            return true;
        }
        match TalosClient::connect_maintenance(endpoint, self.settings.rpc_timeout) {
            Ok(c) => c.version().await.is_ok(),
            Err(_) => false,
        }
    }

    /// What the machine says about itself: hostname and hardware. Tries our
    /// identity first, then maintenance mode.
    pub async fn facts(&self, endpoint: &str) -> Option<(String, Hardware)> {
        let mut clients = Vec::new();
        if let Ok(c) = self.client_for(endpoint) {
            clients.push(c);
        }
        if let Ok(c) = TalosClient::connect_maintenance(endpoint, self.settings.rpc_timeout) {
            clients.push(c);
        }
        for c in clients {
            let Ok(version) = c.version().await else {
                continue;
            };
            let hostname = c.hostname().await.unwrap_or_default();
            let cpus = c.cpu_info().await.map(|v| v.len()).unwrap_or_default();
            let memory = c.memory().await.map(|m| m.total_kib).unwrap_or_default();
            let disks = c
                .disks()
                .await
                .map(|ds| {
                    ds.into_iter()
                        .map(|d| {
                            format!(
                                "{} {:?} {}GB",
                                d.device_name,
                                d.kind,
                                d.size_bytes / 1_000_000_000
                            )
                            .to_lowercase()
                        })
                        .collect()
                })
                .unwrap_or_default();
            return Some((
                hostname,
                Hardware {
                    arch: version.arch,
                    cpu_cores: cpus as u32,
                    memory_bytes: memory * 1024,
                    gpus: 0,
                    disks,
                },
            ));
        }
        None
    }

    fn forget(&self, m: &TalosTarget) {
        lock(&self.clients).remove(&m.endpoint);
        lock(&self.samples).remove(&m.machine_id);
    }
}

/// Metrics between two samples: CPU utilisation and byte rates.
fn metrics_between(
    earlier: &Sample,
    later: &Sample,
    memory: &MemoryInfo,
    load1: f64,
) -> MachineMetrics {
    let secs = later.at.duration_since(earlier.at).as_secs_f64();
    let rate = |a: u64, b: u64| {
        if secs > 0.0 && b >= a {
            (b - a) as f64 / secs
        } else {
            0.0
        }
    };
    let cpu = later
        .stats
        .cpu_total
        .utilisation_since(&earlier.stats.cpu_total)
        .unwrap_or(0.0);
    MachineMetrics {
        at: chrono::Utc::now(),
        cpu_percent: (cpu * 1000.0).round() / 10.0,
        memory_used_bytes: memory.used_kib() * 1024,
        memory_total_bytes: memory.total_kib * 1024,
        load1,
        net_rx_bytes_per_sec: rate(earlier.net.total.rx_bytes, later.net.total.rx_bytes),
        net_tx_bytes_per_sec: rate(earlier.net.total.tx_bytes, later.net.total.tx_bytes),
        disk_read_bytes_per_sec: rate(earlier.disk.total.read_bytes, later.disk.total.read_bytes),
        disk_write_bytes_per_sec: rate(
            earlier.disk.total.write_bytes,
            later.disk.total.write_bytes,
        ),
    }
}

#[async_trait]
impl TalosOps for TalosClientOps {
    #[tracing::instrument(skip_all, fields(machine.id = %m.machine_id))]
    async fn reboot(&self, m: &TalosTarget) -> Result<(), OpsError> {
        self.client(m)?
            .reboot(RebootMode::Default)
            .await
            .map_err(|e| talos_error(m, "Reboot", e))?;
        lock(&self.samples).remove(&m.machine_id);
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(machine.id = %m.machine_id))]
    async fn shutdown(&self, m: &TalosTarget) -> Result<(), OpsError> {
        // Our own drain ran first when one was asked for; Talos's own drain
        // does not honour disruption budgets (reference §9), so force.
        self.client(m)?
            .shutdown(true)
            .await
            .map_err(|e| talos_error(m, "Shutdown", e))?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(machine.id = %m.machine_id))]
    async fn reset(&self, m: &TalosTarget, opts: ResetOptions) -> Result<(), OpsError> {
        let req = satusky_machines::ResetOptions {
            graceful: opts.graceful,
            reboot: true,
            system_partitions_to_wipe: if opts.wipe_user_disks {
                Vec::new()
            } else {
                vec!["EPHEMERAL".to_owned(), "STATE".to_owned()]
            },
            user_disks_to_wipe: Vec::new(),
            mode: if opts.wipe_user_disks {
                WipeMode::All
            } else {
                WipeMode::SystemDisk
            },
        };
        self.client(m)?
            .reset(req)
            .await
            .map_err(|e| talos_error(m, "Reset", e))?;
        self.forget(m);
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(machine.id = %m.machine_id))]
    async fn metrics(&self, m: &TalosTarget) -> Result<MachineMetrics, OpsError> {
        let c = self.client(m)?;
        let previous = lock(&self.samples).get(&m.machine_id).cloned();
        let earlier = match previous {
            Some(p) if p.at.elapsed() <= self.settings.sample_max_age => p,
            _ => {
                let first = self.sample(m, &c).await?;
                tokio::time::sleep(self.settings.sample_gap).await;
                first
            }
        };
        let mut later = self.sample(m, &c).await?;
        let earlier = if later.stats.boot_time == earlier.stats.boot_time {
            earlier
        } else {
            // Rebooted in between: counters restarted.
            let again = later;
            tokio::time::sleep(self.settings.sample_gap).await;
            later = self.sample(m, &c).await?;
            again
        };
        let memory = c.memory().await.map_err(|e| talos_error(m, "Memory", e))?;
        let load = c
            .load_avg()
            .await
            .map_err(|e| talos_error(m, "LoadAvg", e))?;
        let metrics = metrics_between(&earlier, &later, &memory, load.load1);
        lock(&self.samples).insert(m.machine_id.clone(), later);
        Ok(metrics)
    }

    async fn version(&self, m: &TalosTarget) -> Result<String, OpsError> {
        Ok(self
            .client(m)?
            .version()
            .await
            .map_err(|e| talos_error(m, "Version", e))?
            .tag)
    }

    async fn services(&self, m: &TalosTarget) -> Result<Vec<ServiceHealth>, OpsError> {
        Ok(self
            .client(m)?
            .service_list()
            .await
            .map_err(|e| talos_error(m, "ServiceList", e))?
            .into_iter()
            .map(|s| ServiceHealth {
                id: s.id,
                state: s.state,
                healthy: s.healthy.unwrap_or(false),
            })
            .collect())
    }

    /// Our identity first (a configured machine), then maintenance mode.
    /// A machine that refuses our certificate but answers without one was
    /// reset (its new maintenance certificate is not ours to verify).
    /// Without an identity of our own, only maintenance mode is probed.
    #[tracing::instrument(skip_all, fields(machine.id = %m.machine_id))]
    async fn api_mode(&self, m: &TalosTarget) -> Result<ApiMode, OpsError> {
        if let Ok(ours) = self.client(m)
            && ours.version().await.is_ok()
        {
            return Ok(ApiMode::Configured);
        }
        // Our cached connection is to a machine that no longer exists as
        // configured: dial afresh next time.
        lock(&self.clients).remove(&m.endpoint);
        let maintenance = TalosClient::connect_maintenance(&m.endpoint, self.settings.rpc_timeout)
            .map_err(|e| talos_error(m, "Version (maintenance)", e))?;
        Ok(if maintenance.version().await.is_ok() {
            ApiMode::Maintenance
        } else {
            ApiMode::Unreachable
        })
    }

    /// Removes the machine's WireGuard peer (its handshakes are ignored from
    /// now on, so its link goes down) and forgets its client and samples.
    async fn remove_link(&self, m: &TalosTarget) -> Result<(), OpsError> {
        let links = self
            .links
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(links) = links {
            let removed = links.remove(&m.machine_id, &m.uuid);
            tracing::info!(machine.id = %m.machine_id, peers = removed, "SideroLink peer removed");
        }
        self.forget(m);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use satusky_machines::{CpuTimes, NetDeviceStats};

    fn sample(at: Instant, busy: f64, idle: f64, rx: u64) -> Sample {
        let disk = DiskIo {
            total: satusky_machines::DiskIoStats {
                read_bytes: rx * 4,
                write_bytes: rx * 8,
                ..satusky_machines::DiskIoStats::default()
            },
            devices: Vec::new(),
        };
        Sample {
            at,
            stats: SystemStats {
                boot_time: 1,
                cpu_total: CpuTimes {
                    user: busy,
                    idle,
                    ..CpuTimes::default()
                },
                ..SystemStats::default()
            },
            net: NetworkStats {
                total: NetDeviceStats {
                    rx_bytes: rx,
                    tx_bytes: rx / 2,
                    ..NetDeviceStats::default()
                },
                devices: Vec::new(),
            },
            disk,
        }
    }

    #[test]
    fn metrics_come_from_counter_deltas_in_si_units() {
        let t0 = Instant::now();
        let a = sample(t0, 10.0, 30.0, 1000);
        let b = sample(t0 + Duration::from_secs(2), 13.0, 31.0, 5000);
        let mem = MemoryInfo {
            total_kib: 1024,
            free_kib: 256,
            ..MemoryInfo::default()
        };
        let m = metrics_between(&a, &b, &mem, 0.5);
        assert!((m.cpu_percent - 75.0).abs() < 0.01, "{}", m.cpu_percent);
        assert_eq!(m.memory_total_bytes, 1024 * 1024);
        assert_eq!(m.memory_used_bytes, 768 * 1024);
        assert!((m.net_rx_bytes_per_sec - 2000.0).abs() < 0.01);
        assert!((m.net_tx_bytes_per_sec - 1000.0).abs() < 0.01);
        assert!((m.disk_read_bytes_per_sec - 8000.0).abs() < 0.01);
        assert!((m.disk_write_bytes_per_sec - 16000.0).abs() < 0.01);
    }
}
