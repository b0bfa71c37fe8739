//! Conformance of the machines' SideroLink peers (what the fleet runtime
//! restores into its WireGuard endpoint after a restart).

use std::sync::Arc;

use satusky_core::store::{MachineLinkRecord, Store};

use super::machines::machine;
use super::{assert_not_found, given_org, given_user, micros, new_id, t0};

fn link(machine_id: &str, key: &str, uuid: &str, at_micros: i64) -> MachineLinkRecord {
    MachineLinkRecord {
        machine_id: machine_id.to_owned(),
        public_key: key.to_owned(),
        uuid: uuid.to_owned(),
        overlay_address: "fdae:41e4:649b:9303:1:2:3:4".to_owned(),
        last_endpoint: None,
        updated_at: t0() + micros(at_micros),
    }
}

pub async fn machine_links_are_recorded_replaced_listed_and_forgotten(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let mut a = machine(&o.id, "a", "ua");
    let mut b = machine(&o.id, "b", "ub");
    // Listed by machine id whatever the creation order.
    if b.id < a.id {
        std::mem::swap(&mut a.id, &mut b.id);
    }
    store.create_machine(&b).await.expect("create");
    store.create_machine(&a).await.expect("create");
    assert!(store.list_machine_links().await.expect("list").is_empty());

    let a1 = MachineLinkRecord {
        last_endpoint: Some("192.0.2.7:51820".to_owned()),
        ..link(&a.id, "a-key-1=", "ua", 1)
    };
    let b1 = link(&b.id, "b-key-1=", "ub", 2);
    store.put_machine_link(&b1).await.expect("put");
    store.put_machine_link(&a1).await.expect("put");
    assert_eq!(
        store.list_machine_links().await.expect("list"),
        vec![a1.clone(), b1.clone()]
    );

    // A new key replaces the machine's peer, every field of it.
    let a2 = MachineLinkRecord {
        overlay_address: "fdae:41e4:649b:9303::9".to_owned(),
        ..link(&a.id, "a-key-2=", "ua-2", 3)
    };
    store.put_machine_link(&a2).await.expect("replace");
    assert_eq!(
        store.list_machine_links().await.expect("list"),
        vec![a2.clone(), b1.clone()]
    );

    // The endpoint moves only for the stored key.
    assert!(
        !store
            .set_machine_link_endpoint(&a.id, "a-key-1=", "192.0.2.8:1", t0() + micros(4))
            .await
            .expect("stale key")
    );
    assert!(
        store
            .set_machine_link_endpoint(&a.id, "a-key-2=", "[2001:db8::1]:51820", t0() + micros(5))
            .await
            .expect("endpoint")
    );
    assert!(
        !store
            .set_machine_link_endpoint(&new_id(), "a-key-2=", "192.0.2.8:1", t0())
            .await
            .expect("missing machine")
    );
    let a3 = MachineLinkRecord {
        last_endpoint: Some("[2001:db8::1]:51820".to_owned()),
        updated_at: t0() + micros(5),
        ..a2.clone()
    };
    assert_eq!(
        store.list_machine_links().await.expect("list"),
        vec![a3.clone(), b1.clone()]
    );

    // A peer of a missing machine is not stored.
    assert_not_found(
        store
            .put_machine_link(&link(&new_id(), "x=", "ux", 6))
            .await,
    );

    // Forgetting with a key that is not the stored one keeps the peer;
    // with the stored key, or without a key, deletes it.
    assert!(
        !store
            .delete_machine_link(&a.id, Some("a-key-1="))
            .await
            .expect("stale key")
    );
    assert_eq!(store.list_machine_links().await.expect("list").len(), 2);
    assert!(
        store
            .delete_machine_link(&a.id, Some("a-key-2="))
            .await
            .expect("forget")
    );
    assert!(
        store
            .delete_machine_link(&b.id, None)
            .await
            .expect("forget")
    );
    assert!(!store.delete_machine_link(&b.id, None).await.expect("twice"));
    assert!(store.list_machine_links().await.expect("list").is_empty());
}

pub async fn deleting_a_machine_deletes_its_link(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other = given_org(&*store, "other", &owner).await;
    let a = machine(&o.id, "a", "ua");
    let b = machine(&other.id, "b", "ub");
    store.create_machine(&a).await.expect("create");
    store.create_machine(&b).await.expect("create");
    store
        .put_machine_link(&link(&a.id, "a=", "ua", 1))
        .await
        .expect("put");
    let kept = link(&b.id, "b=", "ub", 2);
    store.put_machine_link(&kept).await.expect("put");

    // Machines go with their organization; their peers go with them.
    store.delete_org(&o.id).await.expect("delete org");
    assert_eq!(store.list_machine_links().await.expect("list"), vec![kept]);
}
