use std::time::Duration;

use futures::StreamExt;
use satusky_machines::types::{DiskKind, EventsQuery, LogsQuery};
use satusky_machines::{EventPayload, RebootMode, TalosClient, TalosError};
use talos_sim::{Fault, Fleet, Hardware, MachineSpec, Stage, Timings};

use crate::support::{T, client, client_config};

async fn small_machine() -> Fleet {
    let fleet = Fleet::builder()
        .machine_spec(
            0,
            MachineSpec {
                hardware: Some(Hardware::small()),
                ..MachineSpec::default()
            },
        )
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    fleet
        .machine(0)
        .wait_for_stage(Stage::Running, T)
        .await
        .unwrap();
    fleet
}

#[tokio::test]
async fn the_client_reads_identity_and_inventory_over_mtls() {
    let fleet = small_machine().await;
    let m = fleet.machine(0);
    let c = client(&fleet, m);
    let v = c.version().await.unwrap();
    assert_eq!(v.tag, "v1.13.0");
    assert_eq!(v.arch, "amd64");
    assert_eq!(v.platform, "metal");
    assert_eq!(c.hostname().await.unwrap(), m.hostname());
    let cpus = c.cpu_info().await.unwrap();
    assert_eq!(cpus.len(), 4);
    assert_eq!(cpus[0].vendor_id, "GenuineIntel");
    let disks = c.disks().await.unwrap();
    assert_eq!(disks.len(), 1);
    assert_eq!(disks[0].size_bytes, 256_060_514_304);
    assert_eq!(disks[0].kind, DiskKind::Nvme);
    assert!(disks[0].system_disk);
    let services = c.service_list().await.unwrap();
    let kubelet = services.iter().find(|s| s.id == "kubelet").unwrap();
    assert_eq!(kubelet.state, "Running");
    assert_eq!(kubelet.healthy, Some(true));
    fleet.stop().await;
}

#[tokio::test]
async fn metrics_come_back_in_talos_units() {
    let fleet = small_machine().await;
    let c = client(&fleet, fleet.machine(0));
    let mem = c.memory().await.unwrap();
    // 8 GiB is 8_388_608 KiB; MemTotal is a little less (the kernel's share).
    assert!(
        mem.total_kib <= 8_388_608 && mem.total_kib > 8_000_000,
        "{mem:?}"
    );
    assert!(mem.used_kib() > 0 && mem.used_kib() < mem.total_kib);
    assert!(mem.available_kib >= mem.free_kib);

    let a = c.system_stat().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = c.system_stat().await.unwrap();
    assert_eq!(b.cpus.len(), 4);
    let elapsed_cpu_seconds = b.cpu_total.total() - a.cpu_total.total();
    assert!(
        (1.5..12.0).contains(&elapsed_cpu_seconds),
        "4 CPUs × ~0.5 s of cumulative seconds, got {elapsed_cpu_seconds}"
    );
    let util = b.cpu_total.utilisation_since(&a.cpu_total).unwrap();
    assert!((0.0..=1.0).contains(&util));
    assert_eq!(a.boot_time, b.boot_time);
    assert!(b.context_switches >= a.context_switches);

    let n1 = c.network_device_stats().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n2 = c.network_device_stats().await.unwrap();
    assert!(n2.total.rx_bytes > n1.total.rx_bytes);
    assert!(n2.devices.iter().any(|d| d.name == "eth0"));
    // Disk I/O: cumulative bytes (sectors × 512) per device and in total.
    let d1 = c.disk_stats().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let d2 = c.disk_stats().await.unwrap();
    assert!(d2.total.write_bytes > d1.total.write_bytes, "{d1:?} {d2:?}");
    assert!(d2.total.read_bytes >= d1.total.read_bytes);
    assert_eq!(d2.total.write_bytes % 512, 0);
    assert_eq!(
        d2.total.write_bytes,
        d2.devices.iter().map(|d| d.write_bytes).sum::<u64>()
    );
    assert!(!d2.devices.is_empty() && d2.devices.iter().all(|d| !d.name.starts_with("/dev/")));
    let load = c.load_avg().await.unwrap();
    assert!(load.load1 >= 0.0 && load.load15 >= 0.0);
    fleet.stop().await;
}

#[tokio::test]
async fn events_logs_and_dmesg_stream_as_plain_types() {
    let fleet = small_machine().await;
    let c = client(&fleet, fleet.machine(0));
    let mut events = c
        .events(EventsQuery {
            tail_events: -1,
            ..EventsQuery::default()
        })
        .await
        .unwrap();
    let mut saw_status = false;
    for _ in 0..50 {
        let Some(Ok(e)) = events.next().await else {
            break;
        };
        if matches!(e.payload, EventPayload::MachineStatus { .. }) {
            saw_status = true;
            break;
        }
    }
    assert!(saw_status);

    let logs: Vec<_> = c
        .logs(LogsQuery::service("kubelet"))
        .await
        .unwrap()
        .collect()
        .await;
    let text: String = logs
        .into_iter()
        .map(|b| String::from_utf8(b.unwrap()).unwrap())
        .collect();
    assert!(text.contains("kubelet"));

    let dmesg: Vec<_> = c.dmesg(false, false).await.unwrap().collect().await;
    let text: String = dmesg
        .into_iter()
        .map(|b| String::from_utf8(b.unwrap()).unwrap())
        .collect();
    assert!(text.contains("Linux version"));
    fleet.stop().await;
}

#[tokio::test]
async fn a_machine_that_never_answers_hits_the_rpc_deadline() {
    let fleet = small_machine().await;
    let m = fleet.machine(0);
    let c = TalosClient::connect(&client_config(&fleet, m).rpc_timeout(Duration::from_millis(300)))
        .unwrap();
    assert!(c.version().await.is_ok());
    m.set_fault(Fault::NeverAnswers, true);
    let started = std::time::Instant::now();
    let err = c.memory().await.unwrap_err();
    assert!(
        matches!(
            err,
            TalosError::Timeout {
                method: "Memory",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    assert!(started.elapsed() < Duration::from_secs(3));
    m.set_fault(Fault::NeverAnswers, false);
    fleet.stop().await;
}

#[tokio::test]
async fn a_reader_certificate_may_read_but_not_reboot() {
    let fleet = small_machine().await;
    let m = fleet.machine(0);
    let id = fleet.reader_identity();
    let mut cfg = client_config(&fleet, m);
    cfg.client_cert_pem.clone_from(&id.cert_pem);
    cfg.client_key_pem.clone_from(&id.key_pem);
    let c = TalosClient::connect(&cfg).unwrap();
    assert!(c.memory().await.is_ok());
    let err = c.reboot(RebootMode::Default).await.unwrap_err();
    assert!(err.is_permission_denied(), "{err:?}");
    fleet.stop().await;
}

#[tokio::test]
async fn shutdown_makes_the_machine_unreachable() {
    let fleet = small_machine().await;
    let m = fleet.machine(0);
    let c = client(&fleet, m);
    c.shutdown(true).await.unwrap();
    m.wait_for_stage(Stage::Off, T).await.unwrap();
    let fresh = TalosClient::connect(&client_config(&fleet, m)).unwrap();
    let err = fresh.version().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    fleet.stop().await;
}

#[tokio::test]
async fn a_reset_machine_answers_only_the_maintenance_client() {
    let fleet = small_machine().await;
    let m = fleet.machine(0);
    client(&fleet, m)
        .reset(satusky_machines::ResetOptions {
            graceful: true,
            reboot: true,
            system_partitions_to_wipe: vec!["EPHEMERAL".into(), "STATE".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    m.wait_for_stage(Stage::Maintenance, T).await.unwrap();
    let maint = TalosClient::connect_maintenance(&m.api_addr().to_string(), Duration::from_secs(5))
        .unwrap();
    let deadline = tokio::time::Instant::now() + T;
    let v = loop {
        match maint.version().await {
            Ok(v) => break v,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "{e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(v.tag, "v1.13.0");
    // Power calls are not part of the maintenance API.
    let err = maint.reboot(RebootMode::Default).await.unwrap_err();
    assert!(
        matches!(&err, TalosError::Rpc { source, .. } if source.code() == tonic::Code::Unimplemented),
        "{err:?}"
    );
    // The maintenance certificate is not from the fleet CA: the mTLS client refuses it.
    assert!(client(&fleet, m).version().await.is_err());
    let disks = maint.disks().await.unwrap();
    assert!(!disks[0].system_disk, "wiped: Talos is no longer installed");
    fleet.stop().await;
}
