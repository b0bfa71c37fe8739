//! Simulated hardware: CPU, memory, disks, NICs, optional GPU, architecture and zone.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64.
    Amd64,
    /// 64-bit ARM.
    Arm64,
}

impl Arch {
    /// Go/Kubernetes name (`kubernetes.io/arch`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amd64 => "amd64",
            Self::Arm64 => "arm64",
        }
    }
}

/// Processor.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuSpec {
    /// Vendor id, e.g. `GenuineIntel`.
    pub vendor_id: String,
    /// Model name.
    pub model_name: String,
    /// Sockets.
    pub sockets: u32,
    /// Cores per socket.
    pub cores_per_socket: u32,
    /// Threads per core.
    pub threads_per_core: u32,
    /// Clock in MHz.
    pub mhz: f64,
}

impl CpuSpec {
    /// Logical CPUs.
    pub fn logical_cpus(&self) -> u32 {
        self.sockets * self.cores_per_socket * self.threads_per_core
    }
}

/// Kind of disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskKind {
    /// NVMe.
    Nvme,
    /// SATA SSD.
    Ssd,
    /// Spinning disk.
    Hdd,
}

/// A disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// Device path, e.g. `/dev/nvme0n1`.
    pub device: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Model.
    pub model: String,
    /// Serial.
    pub serial: String,
    /// Kind.
    pub kind: DiskKind,
    /// Whether Talos is installed on it.
    pub system_disk: bool,
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicSpec {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// MAC address.
    pub mac: String,
    /// Link speed in Mbit/s.
    pub speed_mbps: u32,
}

/// A GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuSpec {
    /// Extended resource name, e.g. `nvidia.com/gpu`.
    pub resource: String,
    /// Model.
    pub model: String,
    /// How many.
    pub count: u32,
}

/// The hardware of one machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Hardware {
    /// Architecture.
    pub arch: Arch,
    /// Processor.
    pub cpu: CpuSpec,
    /// Installed memory in MiB.
    pub memory_mib: u64,
    /// Disks; exactly one is the system disk.
    pub disks: Vec<DiskSpec>,
    /// NICs.
    pub nics: Vec<NicSpec>,
    /// GPU, if any.
    pub gpu: Option<GpuSpec>,
    /// Region (`topology.kubernetes.io/region`).
    pub region: String,
    /// Zone (`topology.kubernetes.io/zone`).
    pub zone: String,
}

impl Hardware {
    /// Memory in KiB (`/proc/meminfo` units).
    pub fn memory_kib(&self) -> u64 {
        self.memory_mib * 1024
    }

    /// The system disk.
    pub fn system_disk(&self) -> Option<&DiskSpec> {
        self.disks.iter().find(|d| d.system_disk)
    }

    /// A plausible small machine, for tests: 4 amd64 threads, 8 GiB, one NVMe disk.
    pub fn small() -> Self {
        Self {
            arch: Arch::Amd64,
            cpu: CpuSpec {
                vendor_id: "GenuineIntel".into(),
                model_name: "Intel(R) Xeon(R) E-2334 CPU @ 3.40GHz".into(),
                sockets: 1,
                cores_per_socket: 2,
                threads_per_core: 2,
                mhz: 3400.0,
            },
            memory_mib: 8192,
            disks: vec![DiskSpec {
                device: "/dev/nvme0n1".into(),
                size_bytes: 256_060_514_304,
                model: "Samsung SSD 980 250GB".into(),
                serial: "S64BNJ0R000001".into(),
                kind: DiskKind::Nvme,
                system_disk: true,
            }],
            nics: vec![NicSpec {
                name: "eth0".into(),
                mac: "52:54:00:00:00:01".into(),
                speed_mbps: 1000,
            }],
            gpu: None,
            region: "sim-1".into(),
            zone: "sim-1a".into(),
        }
    }

    /// Random but plausible hardware for machine `index`.
    pub fn generate(rng: &mut StdRng, index: usize) -> Self {
        let arch = if rng.gen_bool(0.25) {
            Arch::Arm64
        } else {
            Arch::Amd64
        };
        let cpu = match arch {
            Arch::Amd64 => {
                let (vendor, model, mhz) = *[
                    (
                        "GenuineIntel",
                        "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
                        2000.0,
                    ),
                    ("AuthenticAMD", "AMD EPYC 7443P 24-Core Processor", 2850.0),
                    (
                        "GenuineIntel",
                        "Intel(R) Core(TM) i5-8500T CPU @ 2.10GHz",
                        2100.0,
                    ),
                ]
                .choose(rng)
                .unwrap_or(&("GenuineIntel", "Intel(R) Xeon(R) CPU", 2400.0));
                CpuSpec {
                    vendor_id: vendor.into(),
                    model_name: model.into(),
                    sockets: 1,
                    cores_per_socket: *[2u32, 4, 8, 16].choose(rng).unwrap_or(&4),
                    threads_per_core: 2,
                    mhz,
                }
            }
            Arch::Arm64 => CpuSpec {
                vendor_id: "ARM".into(),
                model_name: "Neoverse-N1".into(),
                sockets: 1,
                cores_per_socket: *[4u32, 8, 16, 32].choose(rng).unwrap_or(&8),
                threads_per_core: 1,
                mhz: 3000.0,
            },
        };
        let memory_mib = 1024 * *[4u64, 8, 16, 32, 64].choose(rng).unwrap_or(&16);
        let mut disks = vec![DiskSpec {
            device: "/dev/nvme0n1".into(),
            size_bytes: *[256_060_514_304u64, 512_110_190_592, 1_000_204_886_016]
                .choose(rng)
                .unwrap_or(&256_060_514_304),
            model: "Samsung SSD 980 PRO".into(),
            serial: format!("S5GXNF0R{index:06}"),
            kind: DiskKind::Nvme,
            system_disk: true,
        }];
        if rng.gen_bool(0.4) {
            disks.push(DiskSpec {
                device: "/dev/sda".into(),
                size_bytes: 4_000_787_030_016,
                model: "WDC WD40EFRX-68N".into(),
                serial: format!("WD-WCC7K{index:07}"),
                kind: DiskKind::Hdd,
                system_disk: false,
            });
        }
        let mut mac = || {
            let b: [u8; 3] = rng.r#gen();
            format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
        };
        let eth0 = mac();
        let eth1 = mac();
        let mut nics = vec![NicSpec {
            name: "eth0".into(),
            mac: eth0,
            speed_mbps: *[1000u32, 10_000, 25_000].choose(rng).unwrap_or(&1000),
        }];
        if rng.gen_bool(0.3) {
            nics.push(NicSpec {
                name: "eth1".into(),
                mac: eth1,
                speed_mbps: 10_000,
            });
        }
        let gpu = (arch == Arch::Amd64 && rng.gen_bool(0.2)).then(|| GpuSpec {
            resource: "nvidia.com/gpu".into(),
            model: "NVIDIA L4".into(),
            count: *[1u32, 2, 4].choose(rng).unwrap_or(&1),
        });
        let zone_letter = ["a", "b", "c"][index % 3];
        Self {
            arch,
            cpu,
            memory_mib,
            disks,
            nics,
            gpu,
            region: "sim-1".into(),
            zone: format!("sim-1{zone_letter}"),
        }
    }
}
