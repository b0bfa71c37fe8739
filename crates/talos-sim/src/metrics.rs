//! Plausible, changing metrics in Talos units: memory in KiB, CPU times in cumulative
//! seconds since boot, network and disk counters cumulative since boot (disk in
//! 512-byte sectors, as /proc/diskstats).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use satusky_proto::machine as pb;

use crate::hardware::Hardware;

#[derive(Debug, Clone, Default)]
struct CpuAcc {
    user: f64,
    nice: f64,
    system: f64,
    idle: f64,
    iowait: f64,
    irq: f64,
    soft_irq: f64,
}

#[derive(Debug, Clone, Default)]
struct NetAcc {
    name: String,
    bytes_per_sec_at_full: f64,
    rx_bytes: f64,
    tx_bytes: f64,
    rx_packets: f64,
    tx_packets: f64,
}

#[derive(Debug, Clone, Default)]
struct DiskAcc {
    name: String,
    /// Bytes per second read and written at full utilisation.
    bytes_per_sec_at_full: f64,
    read_bytes: f64,
    write_bytes: f64,
    reads: f64,
    writes: f64,
    io_ms: f64,
}

/// Metrics of one boot.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub boot_time_unix: u64,
    started: Instant,
    last: Instant,
    rng: StdRng,
    base_util: f64,
    phase: f64,
    cpu_weights: Vec<f64>,
    cpus: Vec<CpuAcc>,
    load: [f64; 3],
    net: Vec<NetAcc>,
    disks: Vec<DiskAcc>,
    context_switches: f64,
    processes_created: f64,
    mem_total_kib: u64,
    mem_base_frac: f64,
    util_now: f64,
}

impl Metrics {
    pub fn new(hw: &Hardware, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = hw.cpu.logical_cpus().max(1) as usize;
        let now = Instant::now();
        let mut net: Vec<NetAcc> = hw
            .nics
            .iter()
            .map(|nic| NetAcc {
                name: nic.name.clone(),
                bytes_per_sec_at_full: f64::from(nic.speed_mbps) * 125_000.0 * 0.05,
                ..NetAcc::default()
            })
            .collect();
        net.push(NetAcc {
            name: "lo".into(),
            bytes_per_sec_at_full: 2_000_000.0,
            ..NetAcc::default()
        });
        let disks: Vec<DiskAcc> = hw
            .disks
            .iter()
            .map(|d| DiskAcc {
                name: d.device.trim_start_matches("/dev/").to_owned(),
                // The system disk works harder (logs, images, etcd).
                bytes_per_sec_at_full: if d.system_disk { 40e6 } else { 10e6 },
                ..DiskAcc::default()
            })
            .collect();
        // The kernel keeps ~3% of RAM for itself.
        let mem_total_kib = hw.memory_kib() - hw.memory_kib() * 3 / 100;
        Self {
            boot_time_unix: chrono::Utc::now().timestamp() as u64,
            started: now,
            last: now,
            base_util: rng.gen_range(0.05..0.45),
            phase: rng.gen_range(0.0..std::f64::consts::TAU),
            cpu_weights: (0..n).map(|_| rng.gen_range(0.7..1.3)).collect(),
            cpus: vec![CpuAcc::default(); n],
            load: [0.0; 3],
            net,
            disks,
            context_switches: 0.0,
            processes_created: 120.0,
            mem_total_kib,
            mem_base_frac: rng.gen_range(0.15..0.45),
            util_now: 0.0,
            rng,
        }
    }

    fn util_at(&mut self, t: f64) -> f64 {
        let wave = 1.0 + 0.5 * (t / 30.0 + self.phase).sin();
        let noise = self.rng.gen_range(-0.03..0.03);
        (self.base_util * wave + noise).clamp(0.01, 0.95)
    }

    /// Integrates counters up to now.
    pub fn advance(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        let t = now.duration_since(self.started).as_secs_f64();
        let u = self.util_at(t);
        self.util_now = u;
        for (cpu, w) in self.cpus.iter_mut().zip(&self.cpu_weights) {
            let cu = (u * w).clamp(0.0, 0.97);
            cpu.user += dt * cu * 0.70;
            cpu.nice += dt * cu * 0.04;
            cpu.system += dt * cu * 0.22;
            cpu.irq += dt * cu * 0.01;
            cpu.soft_irq += dt * cu * 0.03;
            cpu.iowait += dt * 0.005;
            cpu.idle += dt * (1.0 - cu - 0.005);
        }
        let n = self.cpus.len() as f64;
        let target = u * n;
        for (load, tau) in self.load.iter_mut().zip([60.0, 300.0, 900.0]) {
            let k = (-dt / tau).exp();
            *load = *load * k + target * (1.0 - k);
        }
        for nic in &mut self.net {
            let rx = nic.bytes_per_sec_at_full * u * dt;
            let tx = rx * 0.6;
            nic.rx_bytes += rx;
            nic.tx_bytes += tx;
            nic.rx_packets += rx / 900.0;
            nic.tx_packets += tx / 700.0;
        }
        for disk in &mut self.disks {
            let read = disk.bytes_per_sec_at_full * u * 0.3 * dt;
            let write = disk.bytes_per_sec_at_full * (0.05 + u) * 0.7 * dt;
            disk.read_bytes += read;
            disk.write_bytes += write;
            disk.reads += read / 16_384.0;
            disk.writes += write / 32_768.0;
            disk.io_ms += dt * 1000.0 * (0.02 + u * 0.3);
        }
        self.context_switches += dt * 1500.0 * n * (0.2 + u);
        self.processes_created += dt * 4.0;
        self.last = now;
    }

    pub fn meminfo(&mut self) -> pb::MemInfo {
        self.advance();
        let total = self.mem_total_kib;
        let used = (total as f64 * (self.mem_base_frac + 0.1 * self.util_now)) as u64;
        let cached = total * 15 / 100;
        let buffers = total / 100;
        let free = total.saturating_sub(used + cached + buffers);
        pb::MemInfo {
            memtotal: total,
            memfree: free,
            memavailable: free + cached * 8 / 10 + buffers,
            buffers,
            cached,
            active: used / 2 + cached / 2,
            inactive: cached / 2,
            shmem: total / 200,
            slab: total / 50,
            sreclaimable: total / 80,
            kernelstack: 16_384,
            pagetables: total / 400,
            swaptotal: 0,
            swapfree: 0,
            commitlimit: total / 2,
            committedas: used + used / 2,
            vmalloctotal: 34_359_738_367,
            hugepagesize: 2048,
            directmap4k: 400_000,
            directmap2m: total.saturating_sub(400_000),
            ..pb::MemInfo::default()
        }
    }

    fn cpu_stat(c: &CpuAcc) -> pb::CpuStat {
        pb::CpuStat {
            user: c.user,
            nice: c.nice,
            system: c.system,
            idle: c.idle,
            iowait: c.iowait,
            irq: c.irq,
            soft_irq: c.soft_irq,
            steal: 0.0,
            guest: 0.0,
            guest_nice: 0.0,
        }
    }

    pub fn system_stat(&mut self) -> pb::SystemStat {
        self.advance();
        let per_cpu: Vec<pb::CpuStat> = self.cpus.iter().map(Self::cpu_stat).collect();
        let total = per_cpu.iter().fold(pb::CpuStat::default(), |mut a, c| {
            a.user += c.user;
            a.nice += c.nice;
            a.system += c.system;
            a.idle += c.idle;
            a.iowait += c.iowait;
            a.irq += c.irq;
            a.soft_irq += c.soft_irq;
            a
        });
        let n = self.cpus.len() as f64;
        pb::SystemStat {
            metadata: None,
            boot_time: self.boot_time_unix,
            cpu_total: Some(total),
            cpu: per_cpu,
            irq_total: (self.context_switches / 3.0) as u64,
            irq: Vec::new(),
            context_switches: self.context_switches as u64,
            process_created: self.processes_created as u64,
            process_running: 1 + (self.util_now * n) as u64,
            process_blocked: 0,
            soft_irq_total: (self.context_switches / 5.0) as u64,
            soft_irq: None,
        }
    }

    pub fn load_avg(&mut self) -> pb::LoadAvg {
        self.advance();
        pb::LoadAvg {
            metadata: None,
            load1: self.load[0],
            load5: self.load[1],
            load15: self.load[2],
        }
    }

    pub fn net_stats(&mut self) -> pb::NetworkDeviceStats {
        self.advance();
        let devices: Vec<pb::NetDev> = self
            .net
            .iter()
            .map(|n| pb::NetDev {
                name: n.name.clone(),
                rx_bytes: n.rx_bytes as u64,
                rx_packets: n.rx_packets as u64,
                tx_bytes: n.tx_bytes as u64,
                tx_packets: n.tx_packets as u64,
                ..pb::NetDev::default()
            })
            .collect();
        let total = devices.iter().fold(
            pb::NetDev {
                name: "total".into(),
                ..pb::NetDev::default()
            },
            |mut a, d| {
                a.rx_bytes += d.rx_bytes;
                a.rx_packets += d.rx_packets;
                a.tx_bytes += d.tx_bytes;
                a.tx_packets += d.tx_packets;
                a
            },
        );
        pb::NetworkDeviceStats {
            metadata: None,
            total: Some(total),
            devices,
        }
    }

    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "counters are non-negative and far below u64::MAX"
    )]
    pub fn disk_stats(&mut self) -> pb::DiskStats {
        self.advance();
        let devices: Vec<pb::DiskStat> = self
            .disks
            .iter()
            .map(|d| pb::DiskStat {
                name: d.name.clone(),
                read_completed: d.reads as u64,
                read_sectors: (d.read_bytes / 512.0) as u64,
                write_completed: d.writes as u64,
                write_sectors: (d.write_bytes / 512.0) as u64,
                io_time_ms: d.io_ms as u64,
                ..pb::DiskStat::default()
            })
            .collect();
        let total = devices.iter().fold(
            pb::DiskStat {
                name: "total".into(),
                ..pb::DiskStat::default()
            },
            |mut a, d| {
                a.read_completed += d.read_completed;
                a.read_sectors += d.read_sectors;
                a.write_completed += d.write_completed;
                a.write_sectors += d.write_sectors;
                a.io_time_ms += d.io_time_ms;
                a
            },
        );
        pb::DiskStats {
            metadata: None,
            total: Some(total),
            devices,
        }
    }
}
