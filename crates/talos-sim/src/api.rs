//! The machine's Talos API: `machine.MachineService` (subset) and
//! `storage.StorageService/Disks`, over mTLS with roles taken from the client
//! certificate's Organization. In maintenance mode the client certificate is not
//! required and every caller is a reader, and power operations are not implemented,
//! as in Talos's maintenance service.

#![expect(
    clippy::result_large_err,
    reason = "tonic::Status is the error type of the generated service traits"
)]

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use satusky_proto::common::{Data, Metadata};
use satusky_proto::machine as pb;
use satusky_proto::machine::machine_service_server::{MachineService, MachineServiceServer};
use satusky_proto::storage as spb;
use satusky_proto::storage::storage_service_server::{StorageService, StorageServiceServer};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use crate::SimError;
use crate::hardware::DiskKind;
use crate::machine::{Command, Shared};
use crate::pki::Role;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[derive(Debug, Clone)]
struct Api {
    shared: Arc<Shared>,
    maintenance: bool,
}

impl Api {
    #[expect(clippy::unnecessary_wraps, reason = "prost message fields are Option")]
    fn meta(&self) -> Option<Metadata> {
        Some(Metadata {
            hostname: self.shared.hostname.clone(),
            ..Metadata::default()
        })
    }

    /// Applies the "never answers" fault and the role check.
    async fn gate<T>(&self, req: &Request<T>, needed: Role) -> Result<(), Status> {
        let mut never = self.shared.never_answers.subscribe();
        if *never.borrow_and_update() {
            // Hold the call until the fault is lifted or the client gives up.
            let _ = never.wait_for(|on| !*on).await;
        }
        let role = if self.maintenance {
            Role::Reader
        } else {
            req.peer_certs()
                .and_then(|certs| certs.first().and_then(|c| Role::from_cert_der(c)))
                .ok_or_else(|| Status::permission_denied("no Talos role in client certificate"))?
        };
        if role < needed {
            return Err(Status::permission_denied(format!(
                "not authorized: {} required",
                needed.as_str()
            )));
        }
        Ok(())
    }

    fn power(&self, what: &str) -> Result<(), Status> {
        if self.maintenance {
            return Err(Status::unimplemented(format!(
                "{what} is not implemented in maintenance mode"
            )));
        }
        Ok(())
    }

    fn send(&self, c: Command) -> Result<(), Status> {
        self.shared
            .commands
            .send(c)
            .map_err(|_| Status::unavailable("machine is stopping"))
    }

    /// Streams `initial` then live items until the API goes down or the client leaves.
    fn follow<T, L, F>(
        &self,
        initial: Vec<T>,
        live: Option<broadcast::Receiver<L>>,
        mut map: F,
    ) -> BoxStream<T>
    where
        T: Send + 'static,
        L: Clone + Send + 'static,
        F: FnMut(L) -> Option<T> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(64);
        let mut gen_rx = self.shared.api_gen.subscribe();
        gen_rx.borrow_and_update();
        tokio::spawn(async move {
            for item in initial {
                if tx.send(Ok(item)).await.is_err() {
                    return;
                }
            }
            let Some(mut live) = live else { return };
            loop {
                tokio::select! {
                    r = live.recv() => match r {
                        Ok(l) => {
                            if let Some(item) = map(l)
                                && tx.send(Ok(item)).await.is_err()
                            {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    _ = gen_rx.changed() => return,
                    () = tx.closed() => return,
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

fn actor() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tonic::async_trait]
impl MachineService for Api {
    type DmesgStream = BoxStream<Data>;
    type EventsStream = BoxStream<pb::Event>;
    type LogsStream = BoxStream<Data>;

    async fn cpu_info(&self, req: Request<()>) -> Result<Response<pb::CpuInfoResponse>, Status> {
        self.gate(&req, Role::Reader).await?;
        let cpu = &self.shared.hardware.cpu;
        let threads = cpu.cores_per_socket * cpu.threads_per_core;
        let cpu_info = (0..cpu.logical_cpus())
            .map(|i| pb::CpuInfo {
                processor: i,
                vendor_id: cpu.vendor_id.clone(),
                cpu_family: "6".into(),
                model: "106".into(),
                model_name: cpu.model_name.clone(),
                stepping: "6".into(),
                microcode: "0xd0003a5".into(),
                cpu_mhz: cpu.mhz,
                cache_size: "49152 KB".into(),
                physical_id: (i / threads.max(1)).to_string(),
                siblings: threads,
                core_id: ((i % threads.max(1)) / cpu.threads_per_core.max(1)).to_string(),
                cpu_cores: cpu.cores_per_socket,
                apic_id: i.to_string(),
                initial_apic_id: i.to_string(),
                fpu: "yes".into(),
                fpu_exception: "yes".into(),
                cpu_id_level: 27,
                wp: "yes".into(),
                flags: [
                    "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "sse", "sse2", "avx2",
                ]
                .iter()
                .map(ToString::to_string)
                .collect(),
                bugs: Vec::new(),
                bogo_mips: cpu.mhz * 2.0,
                cl_flush_size: 64,
                cache_alignment: 64,
                address_sizes: "46 bits physical, 57 bits virtual".into(),
                power_management: String::new(),
            })
            .collect();
        Ok(Response::new(pb::CpuInfoResponse {
            messages: vec![pb::CpUsInfo {
                metadata: self.meta(),
                cpu_info,
            }],
        }))
    }

    async fn dmesg(
        &self,
        req: Request<pb::DmesgRequest>,
    ) -> Result<Response<Self::DmesgStream>, Status> {
        self.gate(&req, Role::Reader).await?;
        let r = req.into_inner();
        let (lines, live) = self.shared.logs.snapshot_and_subscribe("");
        let initial = if r.tail { Vec::new() } else { lines };
        let meta = self.meta();
        let data = move |line: String| Data {
            metadata: meta.clone(),
            bytes: format!("{line}\n").into_bytes(),
        };
        let initial: Vec<Data> = initial.into_iter().map(&data).collect();
        Ok(Response::new(self.follow(
            initial,
            r.follow.then_some(live),
            move |l: crate::logs::LogLine| l.source.is_empty().then(|| data(l.line)),
        )))
    }

    async fn events(
        &self,
        req: Request<pb::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        self.gate(&req, Role::Reader).await?;
        let r = req.into_inner();
        let (backlog, live) = self.shared.events.snapshot_and_subscribe();
        let now = chrono::Utc::now();
        let mut initial: Vec<_> = if !r.tail_id.is_empty() {
            let pos = backlog.iter().position(|e| e.id == r.tail_id);
            pos.map_or_else(Vec::new, |p| backlog[p + 1..].to_vec())
        } else if r.tail_seconds > 0 {
            let from = now - chrono::Duration::seconds(i64::from(r.tail_seconds));
            backlog.into_iter().filter(|e| e.at >= from).collect()
        } else if r.tail_events < 0 {
            backlog
        } else {
            let n = r.tail_events as usize;
            let skip = backlog.len().saturating_sub(n);
            backlog.into_iter().skip(skip).collect()
        };
        let actor = r.with_actor_id;
        initial.retain(|e| actor.is_empty() || e.actor_id == actor);
        let meta = self.meta();
        let to_pb = move |e: crate::events::StoredEvent| pb::Event {
            metadata: meta.clone(),
            data: Some(prost_types::Any {
                type_url: format!("{}{}", satusky_proto::EVENTS_API_TYPE_URL_PREFIX, e.name),
                value: e.value,
            }),
            id: e.id,
            actor_id: e.actor_id,
        };
        let initial: Vec<pb::Event> = initial.into_iter().map(&to_pb).collect();
        Ok(Response::new(self.follow(
            initial,
            Some(live),
            move |e: crate::events::StoredEvent| {
                (actor.is_empty() || e.actor_id == actor).then(|| to_pb(e))
            },
        )))
    }

    async fn hostname(&self, req: Request<()>) -> Result<Response<pb::HostnameResponse>, Status> {
        self.gate(&req, Role::Reader).await?;
        Ok(Response::new(pb::HostnameResponse {
            messages: vec![pb::Hostname {
                metadata: self.meta(),
                hostname: self.shared.hostname.clone(),
            }],
        }))
    }

    async fn load_avg(&self, req: Request<()>) -> Result<Response<pb::LoadAvgResponse>, Status> {
        self.gate(&req, Role::Reader).await?;
        let mut m = self.shared.lock().metrics.load_avg();
        m.metadata = self.meta();
        Ok(Response::new(pb::LoadAvgResponse { messages: vec![m] }))
    }

    async fn logs(
        &self,
        req: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        self.gate(&req, Role::Reader).await?;
        let r = req.into_inner();
        if r.id.is_empty() || !self.shared.logs.has_service(&r.id) {
            return Err(Status::not_found(format!(
                "log {:?} was not registered",
                r.id
            )));
        }
        let (lines, live) = self.shared.logs.snapshot_and_subscribe(&r.id);
        let initial: Vec<String> = if r.tail_lines >= 0 {
            let skip = lines.len().saturating_sub(r.tail_lines as usize);
            lines.into_iter().skip(skip).collect()
        } else {
            lines
        };
        let meta = self.meta();
        let data = move |line: String| Data {
            metadata: meta.clone(),
            bytes: format!("{line}\n").into_bytes(),
        };
        let initial: Vec<Data> = initial.into_iter().map(&data).collect();
        let id = r.id;
        Ok(Response::new(self.follow(
            initial,
            r.follow.then_some(live),
            move |l: crate::logs::LogLine| (l.source == id).then(|| data(l.line)),
        )))
    }

    async fn memory(&self, req: Request<()>) -> Result<Response<pb::MemoryResponse>, Status> {
        self.gate(&req, Role::Reader).await?;
        let meminfo = self.shared.lock().metrics.meminfo();
        Ok(Response::new(pb::MemoryResponse {
            messages: vec![pb::Memory {
                metadata: self.meta(),
                meminfo: Some(meminfo),
            }],
        }))
    }

    async fn network_device_stats(
        &self,
        req: Request<()>,
    ) -> Result<Response<pb::NetworkDeviceStatsResponse>, Status> {
        self.gate(&req, Role::Reader).await?;
        let mut m = self.shared.lock().metrics.net_stats();
        m.metadata = self.meta();
        Ok(Response::new(pb::NetworkDeviceStatsResponse {
            messages: vec![m],
        }))
    }

    async fn disk_stats(
        &self,
        req: Request<()>,
    ) -> Result<Response<pb::DiskStatsResponse>, Status> {
        self.gate(&req, Role::Reader).await?;
        let mut m = self.shared.lock().metrics.disk_stats();
        m.metadata = self.meta();
        Ok(Response::new(pb::DiskStatsResponse { messages: vec![m] }))
    }

    async fn reboot(
        &self,
        req: Request<pb::RebootRequest>,
    ) -> Result<Response<pb::RebootResponse>, Status> {
        self.power("reboot")?;
        self.gate(&req, Role::Operator).await?;
        let actor_id = actor();
        self.send(Command::Reboot {
            actor_id: actor_id.clone(),
        })?;
        Ok(Response::new(pb::RebootResponse {
            messages: vec![pb::Reboot {
                metadata: self.meta(),
                actor_id,
            }],
        }))
    }

    async fn reset(
        &self,
        req: Request<pb::ResetRequest>,
    ) -> Result<Response<pb::ResetResponse>, Status> {
        self.power("reset")?;
        self.gate(&req, Role::Admin).await?;
        let r = req.into_inner();
        let actor_id = actor();
        self.send(Command::Reset {
            reboot: r.reboot,
            actor_id: actor_id.clone(),
        })?;
        Ok(Response::new(pb::ResetResponse {
            messages: vec![pb::Reset {
                metadata: self.meta(),
                actor_id,
            }],
        }))
    }

    async fn service_list(
        &self,
        req: Request<()>,
    ) -> Result<Response<pb::ServiceListResponse>, Status> {
        self.gate(&req, Role::Reader).await?;
        let services = self
            .shared
            .lock()
            .services
            .iter()
            .map(|s| pb::ServiceInfo {
                id: s.id.clone(),
                state: s.state.clone(),
                events: Some(pb::ServiceEvents {
                    events: s
                        .events
                        .iter()
                        .map(|(msg, state, at)| pb::ServiceEvent {
                            msg: msg.clone(),
                            state: state.clone(),
                            ts: Some(prost_types::Timestamp {
                                seconds: at.timestamp(),
                                nanos: at.timestamp_subsec_nanos() as i32,
                            }),
                        })
                        .collect(),
                }),
                health: Some(pb::ServiceHealth {
                    unknown: s.healthy.is_none(),
                    healthy: s.healthy.unwrap_or(false),
                    last_message: if s.healthy == Some(true) {
                        "Health check successful".into()
                    } else {
                        String::new()
                    },
                    last_change: None,
                }),
            })
            .collect();
        Ok(Response::new(pb::ServiceListResponse {
            messages: vec![pb::ServiceList {
                metadata: self.meta(),
                services,
            }],
        }))
    }

    async fn shutdown(
        &self,
        req: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        self.power("shutdown")?;
        self.gate(&req, Role::Operator).await?;
        let actor_id = actor();
        self.send(Command::Shutdown {
            actor_id: actor_id.clone(),
        })?;
        Ok(Response::new(pb::ShutdownResponse {
            messages: vec![pb::Shutdown {
                metadata: self.meta(),
                actor_id,
            }],
        }))
    }

    async fn system_stat(
        &self,
        req: Request<()>,
    ) -> Result<Response<pb::SystemStatResponse>, Status> {
        self.gate(&req, Role::Reader).await?;
        let mut m = self.shared.lock().metrics.system_stat();
        m.metadata = self.meta();
        Ok(Response::new(pb::SystemStatResponse { messages: vec![m] }))
    }

    async fn version(&self, req: Request<()>) -> Result<Response<pb::VersionResponse>, Status> {
        self.gate(&req, Role::Reader).await?;
        let cfg = &self.shared.config;
        Ok(Response::new(pb::VersionResponse {
            messages: vec![pb::Version {
                metadata: self.meta(),
                version: Some(pb::VersionInfo {
                    tag: cfg.talos_version.clone(),
                    sha: "5ea3c2b1".into(),
                    built: String::new(),
                    go_version: "go1.24.6".into(),
                    os: "linux".into(),
                    arch: self.shared.hardware.arch.as_str().into(),
                }),
                platform: Some(pb::PlatformInfo {
                    name: "metal".into(),
                    mode: "metal".into(),
                }),
                features: Some(pb::FeaturesInfo { rbac: true }),
            }],
        }))
    }
}

#[tonic::async_trait]
impl StorageService for Api {
    async fn disks(&self, req: Request<()>) -> Result<Response<spb::DisksResponse>, Status> {
        use spb::disk::DiskType;
        self.gate(&req, Role::Reader).await?;
        let disks = self
            .shared
            .hardware
            .disks
            .iter()
            .map(|d| spb::Disk {
                size: d.size_bytes,
                model: d.model.clone(),
                device_name: d.device.clone(),
                name: d.model.clone(),
                serial: d.serial.clone(),
                modalias: String::new(),
                uuid: String::new(),
                wwid: format!("eui.{}", d.serial.to_ascii_lowercase()),
                r#type: match d.kind {
                    DiskKind::Nvme => DiskType::Nvme,
                    DiskKind::Ssd => DiskType::Ssd,
                    DiskKind::Hdd => DiskType::Hdd,
                } as i32,
                bus_path: format!("/pci0000:00/{}", d.device.trim_start_matches("/dev/")),
                system_disk: d.system_disk && self.shared.lock().installed,
                subsystem: "/sys/class/block".into(),
                readonly: false,
            })
            .collect();
        Ok(Response::new(spb::DisksResponse {
            messages: vec![spb::Disks {
                metadata: self.meta(),
                disks,
            }],
        }))
    }
}

async fn bind(shared: &Shared) -> Result<TcpListener, SimError> {
    // The port was chosen at fleet start; after a reboot it may linger briefly.
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(shared.api_addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(SimError::Bind {
        addr: shared.api_addr,
        source: last.unwrap_or_else(|| std::io::Error::other("bind failed")),
    })
}

/// Serves the API until `stop` fires.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    stop: oneshot::Receiver<()>,
) -> Result<(), SimError> {
    let maintenance = !shared.lock().installed;
    let listener = bind(&shared).await?;
    let id = if maintenance {
        &shared.maintenance_identity
    } else {
        &shared.server_identity
    };
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&id.cert_pem, &id.key_pem))
        .client_ca_root(Certificate::from_pem(&shared.ca_pem))
        .client_auth_optional(maintenance);
    let api = Api {
        shared: shared.clone(),
        maintenance,
    };
    Server::builder()
        .tls_config(tls)
        .map_err(|e| SimError::Serve(e.to_string()))?
        .add_service(MachineServiceServer::new(api.clone()))
        .add_service(StorageServiceServer::new(api))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            let _ = stop.await;
        })
        .await
        .map_err(|e| SimError::Serve(e.to_string()))
}
