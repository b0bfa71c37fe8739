//! Plain Rust types returned by [`crate::TalosClient`]. Units follow Talos: memory in
//! KiB, CPU times in cumulative seconds, network counters cumulative since boot, disk
//! sizes in bytes.

use chrono::{DateTime, Utc};

/// `MachineService/Version`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionInfo {
    /// Release tag, e.g. `v1.13.0`.
    pub tag: String,
    /// Git SHA.
    pub sha: String,
    /// Build time.
    pub built: String,
    /// Go version.
    pub go_version: String,
    /// OS, e.g. `linux`.
    pub os: String,
    /// Architecture, e.g. `amd64`.
    pub arch: String,
    /// Platform name, e.g. `metal`.
    pub platform: String,
    /// Platform mode, e.g. `metal`.
    pub platform_mode: String,
    /// Whether RBAC is on.
    pub rbac: bool,
}

/// `MachineService/Memory`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryInfo {
    /// `MemTotal`.
    pub total_kib: u64,
    /// `MemFree`.
    pub free_kib: u64,
    /// `MemAvailable`.
    pub available_kib: u64,
    /// `Buffers`.
    pub buffers_kib: u64,
    /// `Cached`.
    pub cached_kib: u64,
    /// `Shmem`.
    pub shmem_kib: u64,
    /// `SwapTotal`.
    pub swap_total_kib: u64,
    /// `SwapFree`.
    pub swap_free_kib: u64,
}

impl MemoryInfo {
    /// talosctl's "used": total − free − cached − buffers.
    pub fn used_kib(&self) -> u64 {
        self.total_kib
            .saturating_sub(self.free_kib)
            .saturating_sub(self.cached_kib)
            .saturating_sub(self.buffers_kib)
    }
}

/// Cumulative CPU seconds of one CPU or of all CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuTimes {
    /// `user`.
    pub user: f64,
    /// `nice`.
    pub nice: f64,
    /// `system`.
    pub system: f64,
    /// `idle`.
    pub idle: f64,
    /// `iowait`.
    pub iowait: f64,
    /// `irq`.
    pub irq: f64,
    /// `softirq`.
    pub soft_irq: f64,
    /// `steal`.
    pub steal: f64,
    /// `guest`.
    pub guest: f64,
    /// `guest_nice`.
    pub guest_nice: f64,
}

impl CpuTimes {
    /// Sum of all fields.
    pub fn total(&self) -> f64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.soft_irq
            + self.steal
            + self.guest
            + self.guest_nice
    }

    /// Utilisation in `[0, 1]` between `earlier` and `self`:
    /// 1 − Δ(idle + iowait) / Δ(total). `None` when no time passed or counters reset.
    pub fn utilisation_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let dt = self.total() - earlier.total();
        let didle = (self.idle + self.iowait) - (earlier.idle + earlier.iowait);
        if dt <= 0.0 || didle < 0.0 {
            return None;
        }
        Some((1.0 - didle / dt).clamp(0.0, 1.0))
    }
}

/// `MachineService/SystemStat`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemStats {
    /// Boot time, seconds since the Unix epoch (changes on reboot).
    pub boot_time: u64,
    /// All CPUs together.
    pub cpu_total: CpuTimes,
    /// Per CPU.
    pub cpus: Vec<CpuTimes>,
    /// Context switches since boot.
    pub context_switches: u64,
    /// Processes created since boot.
    pub processes_created: u64,
    /// Processes running now.
    pub processes_running: u64,
    /// Processes blocked now.
    pub processes_blocked: u64,
}

/// One logical CPU of `MachineService/CPUInfo`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CpuInfo {
    /// Processor index.
    pub processor: u32,
    /// Vendor, e.g. `GenuineIntel`.
    pub vendor_id: String,
    /// Model name.
    pub model_name: String,
    /// Clock in MHz.
    pub mhz: f64,
    /// Physical package id.
    pub physical_id: String,
    /// Core id.
    pub core_id: String,
    /// Cores per package.
    pub cpu_cores: u32,
    /// Threads per package.
    pub siblings: u32,
    /// CPU flags.
    pub flags: Vec<String>,
}

/// `MachineService/LoadAvg`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LoadAverage {
    /// 1 minute.
    pub load1: f64,
    /// 5 minutes.
    pub load5: f64,
    /// 15 minutes.
    pub load15: f64,
}

/// Counters of one network device, cumulative since boot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetDeviceStats {
    /// Interface name.
    pub name: String,
    /// Received bytes.
    pub rx_bytes: u64,
    /// Received packets.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Sent bytes.
    pub tx_bytes: u64,
    /// Sent packets.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

/// `MachineService/NetworkDeviceStats`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkStats {
    /// Sum over devices.
    pub total: NetDeviceStats,
    /// Per device.
    pub devices: Vec<NetDeviceStats>,
}

/// I/O counters of one block device, cumulative since boot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskIoStats {
    /// Device name (`nvme0n1`), or `total`.
    pub name: String,
    /// Reads completed.
    pub reads: u64,
    /// Bytes read (sectors × 512).
    pub read_bytes: u64,
    /// Writes completed.
    pub writes: u64,
    /// Bytes written (sectors × 512).
    pub write_bytes: u64,
    /// Milliseconds spent doing I/O.
    pub io_time_ms: u64,
}

/// `MachineService/DiskStats`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskIo {
    /// Sum over devices.
    pub total: DiskIoStats,
    /// Per device.
    pub devices: Vec<DiskIoStats>,
}

/// Kind of disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiskKind {
    /// Unknown.
    #[default]
    Unknown,
    /// SATA/SAS SSD.
    Ssd,
    /// Spinning disk.
    Hdd,
    /// NVMe.
    Nvme,
    /// SD card.
    Sd,
    /// Optical.
    Cd,
}

/// One disk of `storage.StorageService/Disks`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskInfo {
    /// Size in bytes.
    pub size_bytes: u64,
    /// Model.
    pub model: String,
    /// Device path, e.g. `/dev/nvme0n1`.
    pub device_name: String,
    /// Name.
    pub name: String,
    /// Serial.
    pub serial: String,
    /// WWID.
    pub wwid: String,
    /// Kind.
    pub kind: DiskKind,
    /// Bus path.
    pub bus_path: String,
    /// Whether Talos is installed on it.
    pub system_disk: bool,
    /// Read-only.
    pub readonly: bool,
}

/// One service of `MachineService/ServiceList`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceStatus {
    /// Service id, e.g. `kubelet`.
    pub id: String,
    /// State, e.g. `Running`.
    pub state: String,
    /// Health; `None` when unknown.
    pub healthy: Option<bool>,
    /// Last health message.
    pub last_health_message: String,
    /// Recent state transitions.
    pub events: Vec<ServiceTransition>,
}

/// A service state transition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceTransition {
    /// Message.
    pub message: String,
    /// State.
    pub state: String,
    /// When.
    pub at: Option<DateTime<Utc>>,
}

/// `RebootRequest.Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RebootMode {
    /// Graceful.
    #[default]
    Default,
    /// Power cycle.
    Powercycle,
    /// Skip the graceful stop.
    Force,
}

/// `ResetRequest.WipeMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WipeMode {
    /// System disk and user disks.
    #[default]
    All,
    /// System disk only.
    SystemDisk,
    /// User disks only.
    UserDisks,
}

/// Options of `MachineService/Reset`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResetOptions {
    /// Drain and leave etcd first.
    pub graceful: bool,
    /// Reboot afterwards (otherwise power off).
    pub reboot: bool,
    /// System partition labels to wipe (e.g. `EPHEMERAL`, `STATE`); empty: all.
    pub system_partitions_to_wipe: Vec<String>,
    /// User disks to wipe.
    pub user_disks_to_wipe: Vec<String>,
    /// What to wipe.
    pub mode: WipeMode,
}

/// Container driver of `MachineService/Logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogDriver {
    /// containerd (Talos services, namespace `system`).
    #[default]
    Containerd,
    /// CRI (Kubernetes containers, namespace `k8s.io`).
    Cri,
}

/// Which logs to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsQuery {
    /// Namespace, `system` for Talos services.
    pub namespace: String,
    /// Service or container id, e.g. `kubelet`.
    pub id: String,
    /// Driver.
    pub driver: LogDriver,
    /// Keep streaming new lines.
    pub follow: bool,
    /// Start with the last N lines (`None`: everything).
    pub tail_lines: Option<u32>,
}

impl LogsQuery {
    /// Logs of a Talos service (namespace `system`, containerd).
    pub fn service(id: impl Into<String>) -> Self {
        Self {
            namespace: "system".into(),
            id: id.into(),
            driver: LogDriver::Containerd,
            follow: false,
            tail_lines: None,
        }
    }
}

/// Which events to read from `MachineService/Events`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventsQuery {
    /// Replay the last N events first (`-1`: all).
    pub tail_events: i32,
    /// Replay events after this id.
    pub tail_id: String,
    /// Replay events of the last N seconds.
    pub tail_seconds: i32,
    /// Only events caused by this actor.
    pub with_actor_id: String,
}
