//! Conformance of machine usage periods (billing history): one open period
//! per machine, closing, listing newest first with filters, and history that
//! outlives the machine and the organization.

use std::sync::Arc;

use satusky_core::pagination::PageRequest;
use satusky_core::store::{MachineUsageRecord, Store};

use super::machines::machine;
use super::{all, given_org, given_user, micros, new_id, pages, t0};

fn period(org_id: &str, machine_id: &str, start: i64) -> MachineUsageRecord {
    MachineUsageRecord {
        id: new_id(),
        org_id: org_id.to_owned(),
        machine_id: machine_id.to_owned(),
        machine_name: format!("m-{start}"),
        cpu_cores: 8,
        memory_bytes: 17_179_869_184,
        gpus: 1,
        started_at: t0() + micros(start),
        ended_at: None,
        end_reason: None,
    }
}

pub async fn machine_usage_periods_open_once_close_and_list_newest_first(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other = given_org(&*store, "other", &owner).await;
    let a = machine(&o.id, "a", "ua");
    let b = machine(&o.id, "b", "ub");
    store.create_machine(&a).await.expect("create");
    store.create_machine(&b).await.expect("create");

    let first = period(&o.id, &a.id, 10);
    assert!(store.open_machine_usage(&first).await.expect("open"));
    // A second open period for the same machine is refused, whoever asks.
    assert!(
        !store
            .open_machine_usage(&period(&o.id, &a.id, 20))
            .await
            .expect("open")
    );
    assert!(
        !store
            .open_machine_usage(&period(&other.id, &a.id, 20))
            .await
            .expect("open")
    );

    assert!(
        store
            .close_machine_usage(&a.id, t0() + micros(100), "released")
            .await
            .expect("close")
    );
    assert!(
        !store
            .close_machine_usage(&a.id, t0() + micros(200), "again")
            .await
            .expect("close")
    );
    // Held again later: a new period.
    let second = period(&o.id, &a.id, 300);
    assert!(store.open_machine_usage(&second).await.expect("open"));
    let on_b = period(&o.id, &b.id, 50);
    assert!(store.open_machine_usage(&on_b).await.expect("open"));
    let elsewhere = period(&other.id, &new_id(), 60);
    assert!(store.open_machine_usage(&elsewhere).await.expect("open"));

    let list = store
        .list_machine_usage(&o.id, None, None, None, &all())
        .await
        .expect("list");
    let mut want = vec![first.id.clone(), second.id.clone(), on_b.id.clone()];
    want.sort();
    want.reverse();
    assert_eq!(
        list.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        want,
        "newest first, own org only"
    );
    let closed = list.iter().find(|u| u.id == first.id).expect("first");
    assert_eq!(closed.ended_at, Some(t0() + micros(100)));
    assert_eq!(closed.end_reason.as_deref(), Some("released"));
    assert_eq!(
        (closed.cpu_cores, closed.memory_bytes, closed.gpus),
        (8, 17_179_869_184, 1)
    );

    // Filters: one machine; periods overlapping [since, until).
    let of_a = store
        .list_machine_usage(&o.id, Some(&a.id), None, None, &all())
        .await
        .expect("list");
    assert_eq!(of_a.len(), 2);
    let ids = |v: Vec<MachineUsageRecord>| {
        let mut ids: Vec<String> = v.into_iter().map(|u| u.id).collect();
        ids.sort();
        ids
    };
    let late = store
        .list_machine_usage(&o.id, None, Some(t0() + micros(150)), None, &all())
        .await
        .expect("list");
    let mut want = vec![second.id.clone(), on_b.id.clone()];
    want.sort();
    assert_eq!(ids(late), want, "the closed period ended before `since`");
    let early = store
        .list_machine_usage(&o.id, None, None, Some(t0() + micros(40)), &all())
        .await
        .expect("list");
    assert_eq!(ids(early), vec![first.id.clone()]);

    // Pages, newest first, as the API walks them.
    let paged: Vec<String> = pages(
        1,
        |page: PageRequest| {
            let store = Arc::clone(&store);
            let org = o.id.clone();
            async move {
                store
                    .list_machine_usage(&org, None, None, None, &page)
                    .await
            }
        },
        |u| u.id.clone(),
    )
    .await
    .into_iter()
    .flatten()
    .map(|u| u.id)
    .collect();
    assert_eq!(paged.len(), 3);

    // History outlives the organization (and its machines).
    store.delete_org(&o.id).await.expect("delete org");
    let kept = store
        .list_machine_usage(&o.id, None, None, None, &all())
        .await
        .expect("list");
    assert_eq!(kept.len(), 3);
}
