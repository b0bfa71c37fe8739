//! Conformance of the machine metric samples (the short metrics history).

use std::sync::Arc;

use satusky_core::store::{MachineSampleRecord, Store};
use satusky_types::machines::MachineMetrics;

use super::machines::machine;
use super::{assert_not_found, given_org, given_user, micros, new_id, t0};

fn sample(machine_id: &str, at_micros: i64, cpu: f64) -> MachineSampleRecord {
    MachineSampleRecord {
        machine_id: machine_id.to_owned(),
        metrics: MachineMetrics {
            at: t0() + micros(at_micros),
            cpu_percent: cpu,
            memory_used_bytes: 3 * 1024 * 1024 * 1024,
            memory_total_bytes: 16 * 1024 * 1024 * 1024,
            load1: 0.75,
            net_rx_bytes_per_sec: 1234.5,
            net_tx_bytes_per_sec: 99.25,
            disk_read_bytes_per_sec: 0.0,
            disk_write_bytes_per_sec: 4096.0,
        },
    }
}

pub async fn machine_samples_round_trip_in_time_order_and_are_pruned(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let a = machine(&o.id, "a", "ua");
    let b = machine(&o.id, "b", "ub");
    store.create_machine(&a).await.expect("create");
    store.create_machine(&b).await.expect("create");

    // Written out of order, in two batches, with one duplicate (ignored).
    let s1 = sample(&a.id, 1_000_000, 10.0);
    let s2 = sample(&a.id, 2_000_000, 20.5);
    let s3 = sample(&a.id, 3_000_001, 30.25);
    store
        .insert_machine_samples(&[s3.clone(), s1.clone(), sample(&b.id, 1_000_000, 99.0)])
        .await
        .expect("insert");
    store
        .insert_machine_samples(&[s2.clone(), sample(&a.id, 1_000_000, 55.0)])
        .await
        .expect("insert");
    store.insert_machine_samples(&[]).await.expect("nothing");

    let all = store
        .list_machine_samples(&a.id, None, 100)
        .await
        .expect("list");
    assert_eq!(all, vec![s1.clone(), s2.clone(), s3.clone()]);
    assert_eq!(
        store
            .list_machine_samples(&a.id, None, 2)
            .await
            .expect("list"),
        vec![s1.clone(), s2.clone()]
    );
    assert_eq!(
        store
            .list_machine_samples(&a.id, Some(s2.metrics.at), 100)
            .await
            .expect("list"),
        vec![s3.clone()]
    );
    assert_eq!(
        store
            .list_machine_samples(&b.id, None, 100)
            .await
            .expect("list")
            .len(),
        1
    );

    // A sample of a missing machine stores nothing of its batch.
    assert_not_found(
        store
            .insert_machine_samples(&[sample(&a.id, 9_000_000, 1.0), sample(&new_id(), 1, 1.0)])
            .await,
    );
    assert_eq!(
        store
            .list_machine_samples(&a.id, Some(s3.metrics.at), 100)
            .await
            .expect("list"),
        vec![]
    );

    // Pruning removes strictly older samples, of every machine.
    assert_eq!(
        store
            .prune_machine_samples(s2.metrics.at)
            .await
            .expect("prune"),
        2
    );
    assert_eq!(
        store
            .list_machine_samples(&a.id, None, 100)
            .await
            .expect("list"),
        vec![s2, s3]
    );
    assert!(
        store
            .list_machine_samples(&b.id, None, 100)
            .await
            .expect("list")
            .is_empty()
    );
}
