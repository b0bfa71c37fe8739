use std::time::Duration;

use talos_sim::{Fleet, Stage, Timings};

use crate::fake_kube::FakeKube;

const T: Duration = Duration::from_secs(10);

async fn wait(mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn running_machines_register_nodes_with_hardware_capacity_and_system_labels() {
    let kube = FakeKube::default();
    let fleet = Fleet::builder()
        .machines(3)
        .seed(7)
        .kube_client(kube.client())
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    fleet.wait_for_stage(Stage::Running, T).await.unwrap();
    for m in fleet.machines() {
        let name = m.hostname().to_owned();
        wait(|| kube.ready(&name).as_deref() == Some("True")).await;
        let node = kube.node(&name).unwrap();
        let labels = &node["metadata"]["labels"];
        let hw = m.hardware();
        assert_eq!(labels["kubernetes.io/arch"], hw.arch.as_str());
        assert_eq!(labels["kubernetes.io/hostname"], name.as_str());
        assert_eq!(labels["topology.kubernetes.io/zone"], hw.zone.as_str());
        let cap = &node["status"]["capacity"];
        assert_eq!(cap["cpu"], hw.cpu.logical_cpus().to_string());
        let mem = cap["memory"].as_str().unwrap();
        let kib: u64 = mem.trim_end_matches("Ki").parse().unwrap();
        assert!(kib <= hw.memory_kib() && kib > hw.memory_kib() * 9 / 10);
        let alloc = &node["status"]["allocatable"];
        assert!(alloc["cpu"].as_str().unwrap().ends_with('m'));
        if let Some(gpu) = &hw.gpu {
            assert_eq!(cap[gpu.resource.as_str()], gpu.count.to_string());
        }
        assert_eq!(node["status"]["nodeInfo"]["systemUUID"], m.uuid());
        let lease = kube.lease(&name).unwrap();
        assert_eq!(lease["spec"]["holderIdentity"], name.as_str());
        assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
    }
    fleet.stop().await;
}

#[tokio::test]
async fn leases_and_heartbeats_are_renewed() {
    let kube = FakeKube::default();
    let fleet = Fleet::builder()
        .kube_client(kube.client())
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let name = fleet.machine(0).hostname().to_owned();
    wait(|| kube.lease(&name).is_some()).await;
    let first = kube.lease(&name).unwrap()["spec"]["renewTime"].clone();
    wait(|| kube.lease(&name).unwrap()["spec"]["renewTime"] != first).await;
    fleet.stop().await;
}

#[tokio::test]
async fn reboot_takes_the_node_not_ready_then_ready_and_shutdown_leaves_it_not_ready() {
    let kube = FakeKube::default();
    let fleet = Fleet::builder()
        .kube_client(kube.client())
        .timings(slow_reboot())
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    let name = m.hostname().to_owned();
    wait(|| kube.ready(&name).as_deref() == Some("True")).await;
    let boot1 = kube.node(&name).unwrap()["status"]["nodeInfo"]["bootID"].clone();
    m.reboot();
    wait(|| kube.ready(&name).as_deref() == Some("False")).await;
    wait(|| kube.ready(&name).as_deref() == Some("True")).await;
    let boot2 = kube.node(&name).unwrap()["status"]["nodeInfo"]["bootID"].clone();
    assert_ne!(boot1, boot2);

    m.shutdown();
    m.wait_for_stage(Stage::Off, T).await.unwrap();
    wait(|| kube.ready(&name).as_deref() == Some("False")).await;
    let lease = kube.lease(&name).unwrap()["spec"]["renewTime"].clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        kube.lease(&name).unwrap()["spec"]["renewTime"],
        lease,
        "no renewals while off"
    );
    assert_eq!(kube.ready(&name).as_deref(), Some("False"));

    m.power_on();
    wait(|| kube.ready(&name).as_deref() == Some("True")).await;
    fleet.stop().await;
}

#[tokio::test]
async fn reset_wipes_the_machine_back_to_maintenance_without_a_kubelet() {
    let kube = FakeKube::default();
    let fleet = Fleet::builder()
        .kube_client(kube.client())
        .timings(Timings::fast())
        .start()
        .await
        .unwrap();
    let m = fleet.machine(0);
    let name = m.hostname().to_owned();
    wait(|| kube.ready(&name).as_deref() == Some("True")).await;
    m.reset();
    m.wait_for_stage(Stage::Maintenance, T).await.unwrap();
    wait(|| kube.ready(&name).as_deref() == Some("False")).await;
    fleet.stop().await;
}

/// Fast timings, but a reboot long enough for a poller to see the node NotReady.
fn slow_reboot() -> Timings {
    Timings {
        reboot: Duration::from_millis(1500),
        ..Timings::fast()
    }
}
