//! A Talos machine API client over mTLS, one connection per machine, with a deadline
//! on every RPC. Replies are unwrapped (`messages[0]`, `metadata.error` checked) and
//! converted to the plain types of [`crate::types`].

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use satusky_proto::machine as pb;
use satusky_proto::machine::machine_service_client::MachineServiceClient;
use satusky_proto::storage::storage_service_client::StorageServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::events::{MachineEvent, decode_payload};
use crate::types::{
    CpuInfo, CpuTimes, DiskInfo, DiskIo, DiskIoStats, DiskKind, EventsQuery, LoadAverage,
    LogDriver, LogsQuery, MemoryInfo, NetDeviceStats, NetworkStats, RebootMode, ResetOptions,
    ServiceStatus, ServiceTransition, SystemStats, VersionInfo, WipeMode,
};

/// Chunks of log or kernel-log output, as sent by the machine.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, TalosError>> + Send>>;

/// A stream of Talos runtime events.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<MachineEvent, TalosError>> + Send>>;

/// Failure of a Talos API call.
#[derive(Debug, thiserror::Error)]
pub enum TalosError {
    /// The endpoint or TLS material is unusable.
    #[error("invalid Talos endpoint {endpoint}")]
    InvalidEndpoint {
        /// The endpoint.
        endpoint: String,
        /// Cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// The TLS configuration could not be built.
    #[error("TLS setup for Talos endpoint {endpoint} failed: {message}")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// The call failed with a gRPC status.
    #[error("Talos {method} call failed")]
    Rpc {
        /// Method name.
        method: &'static str,
        /// Cause.
        #[source]
        source: Box<tonic::Status>,
    },
    /// No answer within the deadline.
    #[error("Talos {method} call timed out after {timeout:?}")]
    Timeout {
        /// Method name.
        method: &'static str,
        /// The deadline.
        timeout: Duration,
    },
    /// The reply held no message.
    #[error("Talos {method} reply was empty")]
    EmptyReply {
        /// Method name.
        method: &'static str,
    },
    /// The node answered with an error in the reply metadata.
    #[error("Talos node reported an error for {method}: {message}")]
    Node {
        /// Method name.
        method: &'static str,
        /// The node's message.
        message: String,
    },
}

impl TalosError {
    /// Whether the machine could not be reached (down, rebooting, link lost).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Rpc { source, .. } => matches!(
                source.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
            ),
            _ => false,
        }
    }

    /// Whether the machine refused the call for lack of permission.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::Rpc { source, .. } if source.code() == tonic::Code::PermissionDenied)
    }
}

/// How to reach one machine's Talos API.
#[derive(Debug, Clone)]
pub struct TalosClientConfig {
    /// `host:port`, e.g. `[fdae:41e4:649b:9303::2]:50000` or `127.0.0.1:41234`.
    pub address: String,
    /// Name to verify the server certificate against; `None`: the host of `address`
    /// (an IP SAN).
    pub server_name: Option<String>,
    /// PEM CA that signed the machine's API certificate.
    pub ca_pem: String,
    /// PEM client certificate (its Organization is the Talos role, e.g. `os:admin`).
    pub client_cert_pem: String,
    /// PEM client key.
    pub client_key_pem: String,
    /// Deadline of each unary RPC and of opening each stream.
    pub rpc_timeout: Duration,
    /// TCP + TLS connect deadline.
    pub connect_timeout: Duration,
}

impl TalosClientConfig {
    /// A config with 10 s RPC and 5 s connect deadlines.
    pub fn new(
        address: impl Into<String>,
        ca_pem: impl Into<String>,
        client_cert_pem: impl Into<String>,
        client_key_pem: impl Into<String>,
    ) -> Self {
        Self {
            address: address.into(),
            server_name: None,
            ca_pem: ca_pem.into(),
            client_cert_pem: client_cert_pem.into(),
            client_key_pem: client_key_pem.into(),
            rpc_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Sets the per-RPC deadline.
    pub fn rpc_timeout(mut self, t: Duration) -> Self {
        self.rpc_timeout = t;
        self
    }
}

/// A client of one machine's Talos API. Cheap to clone; reconnects by itself.
#[derive(Debug, Clone)]
pub struct TalosClient {
    machine: MachineServiceClient<Channel>,
    storage: StorageServiceClient<Channel>,
    rpc_timeout: Duration,
}

fn first<T>(method: &'static str, messages: Vec<T>) -> Result<T, TalosError> {
    messages
        .into_iter()
        .next()
        .ok_or(TalosError::EmptyReply { method })
}

fn check_meta(
    method: &'static str,
    meta: Option<&satusky_proto::common::Metadata>,
) -> Result<(), TalosError> {
    match meta {
        Some(m) if !m.error.is_empty() => Err(TalosError::Node {
            method,
            message: m.error.clone(),
        }),
        _ => Ok(()),
    }
}

fn ts(t: Option<prost_types::Timestamp>) -> Option<chrono::DateTime<chrono::Utc>> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
}

fn cpu_times(c: pb::CpuStat) -> CpuTimes {
    CpuTimes {
        user: c.user,
        nice: c.nice,
        system: c.system,
        idle: c.idle,
        iowait: c.iowait,
        irq: c.irq,
        soft_irq: c.soft_irq,
        steal: c.steal,
        guest: c.guest,
        guest_nice: c.guest_nice,
    }
}

fn net_dev(d: pb::NetDev) -> NetDeviceStats {
    NetDeviceStats {
        name: d.name,
        rx_bytes: d.rx_bytes,
        rx_packets: d.rx_packets,
        rx_errors: d.rx_errors,
        rx_dropped: d.rx_dropped,
        tx_bytes: d.tx_bytes,
        tx_packets: d.tx_packets,
        tx_errors: d.tx_errors,
        tx_dropped: d.tx_dropped,
    }
}

/// /proc/diskstats sectors are 512 bytes, whatever the device's block size.
const SECTOR_BYTES: u64 = 512;

fn disk_io(d: pb::DiskStat) -> DiskIoStats {
    DiskIoStats {
        name: d.name,
        reads: d.read_completed,
        read_bytes: d.read_sectors.saturating_mul(SECTOR_BYTES),
        writes: d.write_completed,
        write_bytes: d.write_sectors.saturating_mul(SECTOR_BYTES),
        io_time_ms: d.io_time_ms,
    }
}

impl TalosClient {
    /// Prepares a client. No connection is made until the first call, so building a
    /// client for a machine that is down succeeds; its calls then fail fast.
    pub fn connect(config: &TalosClientConfig) -> Result<Self, TalosError> {
        let url = format!("https://{}", config.address);
        let invalid = |source| TalosError::InvalidEndpoint {
            endpoint: config.address.clone(),
            source,
        };
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&config.ca_pem))
            .identity(Identity::from_pem(
                &config.client_cert_pem,
                &config.client_key_pem,
            ));
        if let Some(name) = &config.server_name {
            tls = tls.domain_name(name.clone());
        }
        let channel = Endpoint::from_shared(url)
            .map_err(invalid)?
            .tls_config(tls)
            .map_err(invalid)?
            .connect_timeout(config.connect_timeout)
            .timeout(config.rpc_timeout)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .connect_lazy();
        Ok(Self {
            machine: MachineServiceClient::new(channel.clone()),
            storage: StorageServiceClient::new(channel),
            rpc_timeout: config.rpc_timeout,
        })
    }

    /// A client for a machine in maintenance mode: TLS without verifying the server
    /// and without a client certificate, as Talos's maintenance API expects. Use it
    /// only over the SideroLink tunnel, where the address is the machine's identity.
    /// "Is this machine in maintenance mode?" is "does `version` succeed here?".
    pub fn connect_maintenance(address: &str, rpc_timeout: Duration) -> Result<Self, TalosError> {
        let invalid = |source| TalosError::InvalidEndpoint {
            endpoint: address.to_owned(),
            source,
        };
        let config = crate::maintenance::insecure_config().map_err(|e| TalosError::Tls {
            endpoint: address.to_owned(),
            message: e.to_string(),
        })?;
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .map_err(invalid)?
            .connect_timeout(rpc_timeout)
            .timeout(rpc_timeout)
            .connect_with_connector_lazy(tower::service_fn(move |uri| {
                crate::maintenance::dial(config.clone(), uri)
            }));
        Ok(Self {
            machine: MachineServiceClient::new(channel.clone()),
            storage: StorageServiceClient::new(channel),
            rpc_timeout,
        })
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.rpc_timeout);
        r
    }

    async fn call<F, T>(&self, method: &'static str, fut: F) -> Result<T, TalosError>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match tokio::time::timeout(self.rpc_timeout, fut).await {
            Err(_) => Err(TalosError::Timeout {
                method,
                timeout: self.rpc_timeout,
            }),
            Ok(Err(source))
                if source.code() == tonic::Code::Cancelled
                    && source.message().contains("Timeout expired") =>
            {
                Err(TalosError::Timeout {
                    method,
                    timeout: self.rpc_timeout,
                })
            }
            Ok(Err(source)) => Err(TalosError::Rpc {
                method,
                source: Box::new(source),
            }),
            Ok(Ok(r)) => Ok(r.into_inner()),
        }
    }

    /// `MachineService/Version`.
    pub async fn version(&self) -> Result<VersionInfo, TalosError> {
        const M: &str = "Version";
        let mut c = self.machine.clone();
        let r = self.call(M, c.version(self.request(()))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        let info = v.version.unwrap_or_default();
        let platform = v.platform.unwrap_or_default();
        Ok(VersionInfo {
            tag: info.tag,
            sha: info.sha,
            built: info.built,
            go_version: info.go_version,
            os: info.os,
            arch: info.arch,
            platform: platform.name,
            platform_mode: platform.mode,
            rbac: v.features.is_some_and(|f| f.rbac),
        })
    }

    /// `MachineService/Hostname`.
    pub async fn hostname(&self) -> Result<String, TalosError> {
        const M: &str = "Hostname";
        let mut c = self.machine.clone();
        let r = self.call(M, c.hostname(self.request(()))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(v.hostname)
    }

    /// `MachineService/Memory`, in KiB.
    pub async fn memory(&self) -> Result<MemoryInfo, TalosError> {
        const M: &str = "Memory";
        let mut c = self.machine.clone();
        let r = self.call(M, c.memory(self.request(()))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        let m = v.meminfo.unwrap_or_default();
        Ok(MemoryInfo {
            total_kib: m.memtotal,
            free_kib: m.memfree,
            available_kib: m.memavailable,
            buffers_kib: m.buffers,
            cached_kib: m.cached,
            shmem_kib: m.shmem,
            swap_total_kib: m.swaptotal,
            swap_free_kib: m.swapfree,
        })
    }

    /// `MachineService/SystemStat`, CPU times in cumulative seconds.
    pub async fn system_stat(&self) -> Result<SystemStats, TalosError> {
        const M: &str = "SystemStat";
        let mut c = self.machine.clone();
        let r = self.call(M, c.system_stat(self.request(()))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(SystemStats {
            boot_time: v.boot_time,
            cpu_total: cpu_times(v.cpu_total.unwrap_or_default()),
            cpus: v.cpu.into_iter().map(cpu_times).collect(),
            context_switches: v.context_switches,
            processes_created: v.process_created,
            processes_running: v.process_running,
            processes_blocked: v.process_blocked,
        })
    }

    /// `MachineService/CPUInfo`, one entry per logical CPU.
    pub async fn cpu_info(&self) -> Result<Vec<CpuInfo>, TalosError> {
        const M: &str = "CPUInfo";
        let mut c = self.machine.clone();
        let r = self.call(M, c.cpu_info(self.request(()))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(v.cpu_info
            .into_iter()
            .map(|i| CpuInfo {
                processor: i.processor,
                vendor_id: i.vendor_id,
                model_name: i.model_name,
                mhz: i.cpu_mhz,
                physical_id: i.physical_id,
                core_id: i.core_id,
                cpu_cores: i.cpu_cores,
                siblings: i.siblings,
                flags: i.flags,
            })
            .collect())
    }

    /// `MachineService/LoadAvg`.
    pub async fn load_avg(&self) -> Result<LoadAverage, TalosError> {
        const M: &str = "LoadAvg";
        let mut c = self.machine.clone();
        let r = self.call(M, c.load_avg(self.request(()))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(LoadAverage {
            load1: v.load1,
            load5: v.load5,
            load15: v.load15,
        })
    }

    /// `MachineService/NetworkDeviceStats`, cumulative counters.
    pub async fn network_device_stats(&self) -> Result<NetworkStats, TalosError> {
        const M: &str = "NetworkDeviceStats";
        let mut c = self.machine.clone();
        let r = self
            .call(M, c.network_device_stats(self.request(())))
            .await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(NetworkStats {
            total: net_dev(v.total.unwrap_or_default()),
            devices: v.devices.into_iter().map(net_dev).collect(),
        })
    }

    /// `MachineService/DiskStats`, cumulative I/O counters in bytes.
    pub async fn disk_stats(&self) -> Result<DiskIo, TalosError> {
        const M: &str = "DiskStats";
        let mut c = self.machine.clone();
        let r = self.call(M, c.disk_stats(self.request(()))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(DiskIo {
            total: disk_io(v.total.unwrap_or_default()),
            devices: v.devices.into_iter().map(disk_io).collect(),
        })
    }

    /// `storage.StorageService/Disks`, sizes in bytes.
    pub async fn disks(&self) -> Result<Vec<DiskInfo>, TalosError> {
        use satusky_proto::storage::disk::DiskType;
        const M: &str = "Disks";
        let mut c = self.storage.clone();
        let r = self.call(M, c.disks(self.request(()))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(v.disks
            .into_iter()
            .map(|d| DiskInfo {
                kind: match DiskType::try_from(d.r#type).unwrap_or(DiskType::Unknown) {
                    DiskType::Unknown => DiskKind::Unknown,
                    DiskType::Ssd => DiskKind::Ssd,
                    DiskType::Hdd => DiskKind::Hdd,
                    DiskType::Nvme => DiskKind::Nvme,
                    DiskType::Sd => DiskKind::Sd,
                    DiskType::Cd => DiskKind::Cd,
                },
                size_bytes: d.size,
                model: d.model,
                device_name: d.device_name,
                name: d.name,
                serial: d.serial,
                wwid: d.wwid,
                bus_path: d.bus_path,
                system_disk: d.system_disk,
                readonly: d.readonly,
            })
            .collect())
    }

    /// `MachineService/ServiceList`.
    pub async fn service_list(&self) -> Result<Vec<ServiceStatus>, TalosError> {
        const M: &str = "ServiceList";
        let mut c = self.machine.clone();
        let r = self.call(M, c.service_list(self.request(()))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(v.services
            .into_iter()
            .map(|s| {
                let health = s.health.unwrap_or_default();
                ServiceStatus {
                    id: s.id,
                    state: s.state,
                    healthy: (!health.unknown).then_some(health.healthy),
                    last_health_message: health.last_message,
                    events: s
                        .events
                        .unwrap_or_default()
                        .events
                        .into_iter()
                        .map(|e| ServiceTransition {
                            message: e.msg,
                            state: e.state,
                            at: ts(e.ts),
                        })
                        .collect(),
                }
            })
            .collect())
    }

    /// `MachineService/Reboot`. Returns the actor id of the call, which tags the
    /// events it causes.
    pub async fn reboot(&self, mode: RebootMode) -> Result<String, TalosError> {
        use pb::reboot_request::Mode;
        const M: &str = "Reboot";
        let mode = match mode {
            RebootMode::Default => Mode::Default,
            RebootMode::Powercycle => Mode::Powercycle,
            RebootMode::Force => Mode::Force,
        };
        let mut c = self.machine.clone();
        let req = pb::RebootRequest { mode: mode as i32 };
        let r = self.call(M, c.reboot(self.request(req))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(v.actor_id)
    }

    /// `MachineService/Shutdown`. With `force`, skip cordon and drain.
    pub async fn shutdown(&self, force: bool) -> Result<String, TalosError> {
        const M: &str = "Shutdown";
        let mut c = self.machine.clone();
        let req = pb::ShutdownRequest { force };
        let r = self.call(M, c.shutdown(self.request(req))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(v.actor_id)
    }

    /// `MachineService/Reset`.
    pub async fn reset(&self, opts: ResetOptions) -> Result<String, TalosError> {
        use pb::reset_request::WipeMode as W;
        const M: &str = "Reset";
        let req = pb::ResetRequest {
            graceful: opts.graceful,
            reboot: opts.reboot,
            system_partitions_to_wipe: opts
                .system_partitions_to_wipe
                .into_iter()
                .map(|label| pb::ResetPartitionSpec { label, wipe: true })
                .collect(),
            user_disks_to_wipe: opts.user_disks_to_wipe,
            mode: match opts.mode {
                WipeMode::All => W::All,
                WipeMode::SystemDisk => W::SystemDisk,
                WipeMode::UserDisks => W::UserDisks,
            } as i32,
        };
        let mut c = self.machine.clone();
        let r = self.call(M, c.reset(self.request(req))).await?;
        let v = first(M, r.messages)?;
        check_meta(M, v.metadata.as_ref())?;
        Ok(v.actor_id)
    }

    /// `MachineService/Events`: a stream of runtime events (no deadline once open).
    pub async fn events(&self, query: EventsQuery) -> Result<EventStream, TalosError> {
        const M: &str = "Events";
        let req = pb::EventsRequest {
            tail_events: query.tail_events,
            tail_id: query.tail_id,
            tail_seconds: query.tail_seconds,
            with_actor_id: query.with_actor_id,
        };
        let mut c = self.machine.clone();
        let stream = self.call(M, c.events(tonic::Request::new(req))).await?;
        Ok(Box::pin(stream.map(|item| {
            item.map(|e| MachineEvent {
                id: e.id,
                actor_id: e.actor_id,
                payload: decode_payload(e.data.as_ref()),
            })
            .map_err(|source| TalosError::Rpc {
                method: M,
                source: Box::new(source),
            })
        })))
    }

    /// `MachineService/Logs`: raw log bytes (no deadline once open).
    pub async fn logs(&self, query: LogsQuery) -> Result<ByteStream, TalosError> {
        const M: &str = "Logs";
        let driver = match query.driver {
            LogDriver::Containerd => satusky_proto::common::ContainerDriver::Containerd,
            LogDriver::Cri => satusky_proto::common::ContainerDriver::Cri,
        };
        let req = pb::LogsRequest {
            namespace: query.namespace,
            id: query.id,
            driver: driver as i32,
            follow: query.follow,
            tail_lines: query
                .tail_lines
                .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX)),
        };
        let mut c = self.machine.clone();
        let stream = self.call(M, c.logs(tonic::Request::new(req))).await?;
        Ok(data_stream(M, stream))
    }

    /// `MachineService/Dmesg`: the kernel log (no deadline once open).
    pub async fn dmesg(&self, follow: bool, tail: bool) -> Result<ByteStream, TalosError> {
        const M: &str = "Dmesg";
        let mut c = self.machine.clone();
        let req = pb::DmesgRequest { follow, tail };
        let stream = self.call(M, c.dmesg(tonic::Request::new(req))).await?;
        Ok(data_stream(M, stream))
    }
}

fn data_stream(
    method: &'static str,
    stream: tonic::Streaming<satusky_proto::common::Data>,
) -> ByteStream {
    Box::pin(stream.map(move |item| {
        item.map_err(|source| TalosError::Rpc {
            method,
            source: Box::new(source),
        })
        .and_then(|d| {
            check_meta(method, d.metadata.as_ref())?;
            Ok(d.bytes)
        })
    }))
}
