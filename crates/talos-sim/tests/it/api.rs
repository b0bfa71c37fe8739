use std::time::Duration;

use futures::StreamExt;
use satusky_proto::machine::machine_service_client::MachineServiceClient;
use satusky_proto::machine::{self as pb};
use satusky_proto::storage::storage_service_client::StorageServiceClient;
use talos_sim::{Fault, Fleet, Hardware, MachineSpec, Stage, Timings};

use crate::support::{admin, channel};

const T: Duration = Duration::from_secs(10);

async fn one_small_machine() -> Fleet {
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
async fn the_api_serves_version_hostname_and_disks_over_mtls() {
    let fleet = one_small_machine().await;
    let m = fleet.machine(0);
    let mut c = admin(&fleet, m);
    let v = c.version(()).await.unwrap().into_inner().messages.remove(0);
    assert_eq!(v.version.unwrap().arch, "amd64");
    assert_eq!(v.metadata.unwrap().hostname, m.hostname());
    let h = c
        .hostname(())
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);
    assert_eq!(h.hostname, m.hostname());
    let mut s = StorageServiceClient::new(channel(&fleet, m, fleet.admin_identity()));
    let d = s.disks(()).await.unwrap().into_inner().messages.remove(0);
    assert_eq!(d.disks.len(), 1);
    assert_eq!(d.disks[0].size, 256_060_514_304);
    assert!(d.disks[0].system_disk);
    fleet.stop().await;
}

#[tokio::test]
async fn metrics_use_talos_units_and_grow() {
    let fleet = one_small_machine().await;
    let m = fleet.machine(0);
    let mut c = admin(&fleet, m);
    let mem = c.memory(()).await.unwrap().into_inner().messages.remove(0);
    let mi = mem.meminfo.unwrap();
    // 8 GiB in KiB, less the kernel's share.
    assert!(
        mi.memtotal > 7_900_000 && mi.memtotal <= 8 * 1024 * 1024,
        "{}",
        mi.memtotal
    );
    assert!(mi.memfree < mi.memtotal && mi.memavailable <= mi.memtotal);
    let s1 = c
        .system_stat(())
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s2 = c
        .system_stat(())
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);
    assert_eq!(s2.cpu.len(), 4);
    let total =
        |c: &pb::CpuStat| c.user + c.nice + c.system + c.idle + c.iowait + c.irq + c.soft_irq;
    let (a, b) = (s1.cpu_total.unwrap(), s2.cpu_total.unwrap());
    let dt = total(&b) - total(&a);
    // Cumulative seconds: four CPUs over ~0.3 s.
    assert!(dt > 0.8 && dt < 8.0, "{dt}");
    assert!(b.idle > a.idle && b.user > a.user);
    let now = chrono::Utc::now().timestamp() as u64;
    assert!(s2.boot_time <= now && s2.boot_time + 60 > now);
    let n1 = c
        .network_device_stats(())
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n2 = c
        .network_device_stats(())
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);
    assert!(n2.total.unwrap().rx_bytes > n1.total.unwrap().rx_bytes);
    assert!(n2.devices.iter().any(|d| d.name == "eth0"));
    let cpu = c
        .cpu_info(())
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);
    assert_eq!(cpu.cpu_info.len(), 4);
    let l = c
        .load_avg(())
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);
    assert!(l.load1 >= 0.0);
    fleet.stop().await;
}

#[tokio::test]
async fn a_reader_cannot_reboot_and_a_reboot_resets_boot_time_and_counters() {
    let fleet = one_small_machine().await;
    let m = fleet.machine(0);
    let mut reader = MachineServiceClient::new(channel(&fleet, m, fleet.reader_identity()));
    let err = reader
        .reboot(pb::RebootRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(reader.version(()).await.is_ok());

    let mut c = admin(&fleet, m);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = c
        .system_stat(())
        .await
        .unwrap()
        .into_inner()
        .messages
        .remove(0);
    let r = c
        .reboot(pb::RebootRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!r.messages[0].actor_id.is_empty());
    m.wait_for_stage(Stage::Rebooting, T).await.unwrap();
    m.wait_for_stage(Stage::Running, T).await.unwrap();
    let mut c = admin(&fleet, m);
    let after = loop {
        match c.system_stat(()).await {
            Ok(r) => break r.into_inner().messages.remove(0),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(after.boot_time > before.boot_time);
    assert!(after.cpu_total.unwrap().idle < before.cpu_total.unwrap().idle);
    assert_eq!(m.boots(), 2);
    fleet.stop().await;
}

#[tokio::test]
async fn events_logs_and_dmesg_stream() {
    let fleet = one_small_machine().await;
    let m = fleet.machine(0);
    let mut c = admin(&fleet, m);
    let mut events = c
        .events(pb::EventsRequest {
            tail_events: -1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = events.next().await.unwrap().unwrap();
    assert!(
        first
            .data
            .unwrap()
            .type_url
            .starts_with("talos/runtime/machine.")
    );

    let logs: Vec<_> = c
        .logs(pb::LogsRequest {
            namespace: "system".into(),
            id: "kubelet".into(),
            tail_lines: -1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    assert!(!logs.is_empty());
    let missing = c
        .logs(pb::LogsRequest {
            id: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let dmesg: Vec<_> = c
        .dmesg(pb::DmesgRequest::default())
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    let text: String = dmesg
        .into_iter()
        .map(|d| String::from_utf8(d.unwrap().bytes).unwrap())
        .collect();
    assert!(text.contains("Linux version"));

    // Follow: a reboot shows up on the open stream, then the stream ends.
    m.reboot();
    let mut saw_reboot = false;
    while let Some(Ok(e)) = events.next().await {
        if String::from_utf8_lossy(&e.data.unwrap().value).contains("reboot") {
            saw_reboot = true;
        }
    }
    assert!(saw_reboot);
    fleet.stop().await;
}

#[tokio::test]
async fn the_never_answers_fault_holds_calls_until_lifted() {
    let fleet = one_small_machine().await;
    let m = fleet.machine(0);
    let mut c = admin(&fleet, m);
    m.set_fault(Fault::NeverAnswers, true);
    let r = tokio::time::timeout(Duration::from_millis(300), c.version(())).await;
    assert!(r.is_err(), "no answer");
    m.set_fault(Fault::NeverAnswers, false);
    assert!(c.version(()).await.is_ok());
    fleet.stop().await;
}

#[tokio::test]
async fn maintenance_mode_serves_reads_without_client_certs_and_refuses_power_calls() {
    let fleet = Fleet::builder()
        .maintenance_mode(true)
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    m.wait_for_stage(Stage::Maintenance, T).await.unwrap();
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(
        tonic::transport::Certificate::from_pem(m.maintenance_ca_pem()),
    );
    let ch = tonic::transport::Endpoint::from_shared(format!("https://{}", m.api_addr()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    let mut c = MachineServiceClient::new(ch);
    assert!(c.version(()).await.is_ok());
    let err = c
        .shutdown(pb::ShutdownRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    m.install();
    m.wait_for_stage(Stage::Running, T).await.unwrap();
    fleet.stop().await;
}
