//! Conformance of the machine methods: join tokens, machines (with their
//! compare-and-set updates) and machine events.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;
use satusky_core::machines::{JoinTokenRecord, MachineEventRecord, MachineRecord};
use satusky_core::store::{Store, conflict};
use satusky_types::machines::{Hardware, MachineState, Visibility};

use super::{
    all, assert_conflict, assert_not_found, given_org, given_user, micros, new_id, pages, t0,
};

fn join_token(org_id: &str, name: &str) -> JoinTokenRecord {
    JoinTokenRecord {
        id: new_id(),
        org_id: org_id.to_owned(),
        name: name.to_owned(),
        expires_at: t0() + TimeDelta::hours(24) + micros(3),
        revoked_at: None,
        created_at: t0(),
    }
}

pub(super) fn machine(org_id: &str, name: &str, uuid: &str) -> MachineRecord {
    MachineRecord {
        id: new_id(),
        org_id: org_id.to_owned(),
        owner_user_id: None,
        name: name.to_owned(),
        uuid: uuid.to_owned(),
        fingerprint: format!("fp-{}", new_id()),
        state: MachineState::Discovered,
        visibility: Visibility::Organization,
        labels: BTreeMap::from([("pool".to_owned(), "gpu".to_owned())]),
        system_labels: BTreeMap::from([
            ("arch".to_owned(), "amd64".to_owned()),
            ("zone".to_owned(), "eu-1a".to_owned()),
        ]),
        hardware: Hardware {
            arch: "amd64".to_owned(),
            cpu_cores: 8,
            memory_bytes: 17_179_869_184,
            gpus: 1,
            disks: vec!["/dev/nvme0n1".to_owned()],
        },
        zone: "eu-1a".to_owned(),
        overlay_address: "fdae:41e4:649b:9303::a".to_owned(),
        talos_endpoint: "[fdae:41e4:649b:9303::a]:50000".to_owned(),
        connected: true,
        last_seen_at: Some(t0() + micros(1)),
        node_name: None,
        cordoned_by_us: false,
        operation: None,
        note: None,
        created_at: t0(),
        updated_at: t0() + micros(2),
        version: 0,
    }
}

fn machine_event(machine_id: &str, kind: &str) -> MachineEventRecord {
    MachineEventRecord {
        machine_id: machine_id.to_owned(),
        seq: 999,
        kind: kind.to_owned(),
        message: format!("{kind} happened"),
        at: t0() + micros(9),
    }
}

pub async fn join_tokens_round_trip_and_are_revoked_once(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other = given_org(&*store, "other", &owner).await;
    let t = join_token(&o.id, "rack-1");
    store.create_join_token(&t).await.expect("create");
    assert_eq!(
        store.get_join_token(&t.id).await.expect("get"),
        Some(t.clone())
    );
    assert_eq!(store.get_join_token(&new_id()).await.expect("get"), None);
    assert_conflict(
        store.create_join_token(&join_token(&o.id, "rack-1")).await,
        conflict::JOIN_TOKEN_NAME,
    );
    store
        .create_join_token(&join_token(&other.id, "rack-1"))
        .await
        .expect("names are per organization");
    assert_not_found(store.create_join_token(&join_token(&new_id(), "x")).await);

    let at = t0() + TimeDelta::hours(1) + micros(5);
    assert_not_found(store.revoke_join_token(&other.id, &t.id, at).await);
    store
        .revoke_join_token(&o.id, &t.id, at)
        .await
        .expect("revoke");
    store
        .revoke_join_token(&o.id, &t.id, at + TimeDelta::hours(1))
        .await
        .expect("revoke again");
    let got = store
        .get_join_token(&t.id)
        .await
        .expect("get")
        .expect("some");
    assert_eq!(got.revoked_at, Some(at), "the first revocation time stays");
    assert_not_found(store.revoke_join_token(&o.id, &new_id(), at).await);
}

pub async fn join_tokens_list_per_org_in_id_order_across_pages(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other = given_org(&*store, "other", &owner).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let t = join_token(&o.id, &format!("t{i}"));
        store.create_join_token(&t).await.expect("create");
        ids.push(t.id);
    }
    store
        .create_join_token(&join_token(&other.id, "elsewhere"))
        .await
        .expect("create");
    let got = pages(
        2,
        |p| {
            let store = Arc::clone(&store);
            let org = o.id.clone();
            async move { store.list_join_tokens(&org, &p).await }
        },
        |t| t.id.clone(),
    )
    .await;
    assert_eq!(got.len(), 3);
    let listed: Vec<String> = got.into_iter().flatten().map(|t| t.id).collect();
    assert_eq!(listed, ids);
}

pub async fn machines_round_trip_and_names_are_unique_per_org(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other = given_org(&*store, "other", &owner).await;
    let mut m = machine(&o.id, "node-1", "uuid-1");
    m.owner_user_id = Some(owner.id.clone());
    m.operation = Some(serde_json_value());
    m.note = Some("a note".to_owned());
    m.node_name = Some("node-1".to_owned());
    store.create_machine(&m).await.expect("create");
    assert_eq!(
        store.get_machine(&m.id).await.expect("get"),
        Some(m.clone())
    );
    assert_eq!(
        store
            .get_machine_by_name(&o.id, "node-1")
            .await
            .expect("get by name"),
        Some(m.clone())
    );
    assert_eq!(
        store
            .get_machine_by_name(&other.id, "node-1")
            .await
            .expect("get by name"),
        None
    );
    assert_conflict(
        store
            .create_machine(&machine(&o.id, "node-1", "uuid-2"))
            .await,
        conflict::MACHINE_NAME,
    );
    // The same UUID twice (a clone, a firmware placeholder) is allowed.
    let twin = machine(&other.id, "node-1", "uuid-1");
    store
        .create_machine(&twin)
        .await
        .expect("same uuid elsewhere");
    let same = store.find_machines_by_uuid("uuid-1").await.expect("find");
    assert_eq!(same, vec![m.clone(), twin]);
    assert!(
        store
            .find_machines_by_uuid("uuid-9")
            .await
            .expect("find")
            .is_empty()
    );
    assert_not_found(store.create_machine(&machine(&new_id(), "x", "u")).await);
}

fn serde_json_value() -> sqlx::types::JsonValue {
    let mut op = sqlx::types::JsonValue::default();
    op["kind"] = "reboot".into();
    op["step"] = 2.into();
    op["plan"] = vec!["cordon_node", "drain_node"].into();
    op
}

pub async fn machines_list_own_and_public_in_id_order_across_pages(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other = given_org(&*store, "other", &owner).await;
    let mut own = Vec::new();
    let mut public = Vec::new();
    for i in 0..4 {
        let m = machine(&o.id, &format!("m{i}"), &format!("u{i}"));
        store.create_machine(&m).await.expect("create");
        own.push(m.id);
        let mut p = machine(&other.id, &format!("p{i}"), &format!("v{i}"));
        if i % 2 == 0 {
            p.visibility = Visibility::Public;
            public.push(p.id.clone());
        }
        store.create_machine(&p).await.expect("create");
    }
    let list = |include_public: bool| {
        let store = Arc::clone(&store);
        let org = o.id.clone();
        move |p| {
            let store = Arc::clone(&store);
            let org = org.clone();
            async move { store.list_machines(&org, include_public, &p).await }
        }
    };
    let got: Vec<String> = pages(3, list(false), |m| m.id.clone())
        .await
        .into_iter()
        .flatten()
        .map(|m| m.id)
        .collect();
    assert_eq!(got, own);
    let got: Vec<String> = pages(3, list(true), |m| m.id.clone())
        .await
        .into_iter()
        .flatten()
        .map(|m| m.id)
        .collect();
    let mut want: Vec<String> = own.iter().chain(&public).cloned().collect();
    want.sort();
    assert_eq!(got, want);
    let everything = store.list_all_machines(&all()).await.expect("list all");
    assert_eq!(everything.len(), 8);
    assert!(everything.windows(2).all(|w| w[0].id < w[1].id));
}

pub async fn updating_a_machine_compares_and_sets_its_version(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let m = machine(&o.id, "node-1", "uuid-1");
    store.create_machine(&m).await.expect("create");
    let mut changed = m.clone();
    changed.owner_user_id = Some(owner.id.clone());
    "renamed".clone_into(&mut changed.name);
    changed.state = MachineState::Cordoned;
    changed.visibility = Visibility::Public;
    changed.labels.insert("tier".to_owned(), "gold".to_owned());
    changed.system_labels.remove("zone");
    changed.hardware.gpus = 0;
    "eu-1b".clone_into(&mut changed.zone);
    "fdae::b".clone_into(&mut changed.overlay_address);
    "[fdae::b]:50000".clone_into(&mut changed.talos_endpoint);
    changed.connected = false;
    changed.last_seen_at = None;
    changed.node_name = Some("n1".to_owned());
    changed.cordoned_by_us = true;
    changed.operation = Some(serde_json_value());
    changed.note = Some("moved".to_owned());
    changed.updated_at = t0() + TimeDelta::minutes(3) + micros(1);
    assert_eq!(store.update_machine(&changed).await.expect("update"), 1);
    let got = store.get_machine(&m.id).await.expect("get").expect("some");
    assert_eq!(
        got,
        MachineRecord {
            version: 1,
            ..changed.clone()
        }
    );
    // A writer that read version 0 loses.
    assert_conflict(
        store.update_machine(&changed).await,
        conflict::MACHINE_VERSION,
    );
    let mut back = got.clone();
    back.operation = None;
    back.note = None;
    assert_eq!(store.update_machine(&back).await.expect("update"), 2);
    let got = store.get_machine(&m.id).await.expect("get").expect("some");
    assert_eq!((got.operation, got.note, got.version), (None, None, 2));
    assert_not_found(store.update_machine(&machine(&o.id, "ghost", "u")).await);
}

pub async fn concurrent_machine_updates_let_exactly_one_win(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let m = machine(&o.id, "node-1", "uuid-1");
    store.create_machine(&m).await.expect("create");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            let mut m = m.clone();
            m.note = Some(format!("writer {i}"));
            tokio::spawn(async move { store.update_machine(&m).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(v) => {
                assert_eq!(v, 1);
                wins += 1;
            }
            other => assert_conflict(other, conflict::MACHINE_VERSION),
        }
    }
    assert_eq!(wins, 1);
}

pub async fn machine_events_get_consecutive_seqs_per_machine(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let a = machine(&o.id, "a", "ua");
    let b = machine(&o.id, "b", "ub");
    store.create_machine(&a).await.expect("create");
    store.create_machine(&b).await.expect("create");
    for (i, kind) in ["discovered", "claimed", "joined"].into_iter().enumerate() {
        assert_eq!(
            store
                .append_machine_event(&machine_event(&a.id, kind))
                .await
                .expect("append"),
            i as u64 + 1
        );
    }
    assert_eq!(
        store
            .append_machine_event(&machine_event(&b.id, "discovered"))
            .await
            .expect("append"),
        1
    );
    let expected = |seq: u64, kind: &str| MachineEventRecord {
        seq,
        ..machine_event(&a.id, kind)
    };
    assert_eq!(
        store.list_machine_events(&a.id, 0, 2).await.expect("list"),
        vec![expected(1, "discovered"), expected(2, "claimed")]
    );
    assert_eq!(
        store.list_machine_events(&a.id, 2, 10).await.expect("list"),
        vec![expected(3, "joined")]
    );
    assert_not_found(
        store
            .append_machine_event(&machine_event(&new_id(), "x"))
            .await,
    );
    // Events outlive state changes: updating the machine keeps its seq counter.
    store.update_machine(&a).await.expect("update");
    assert_eq!(
        store
            .append_machine_event(&machine_event(&a.id, "cordoned"))
            .await
            .expect("append"),
        4
    );
}

pub async fn deleting_an_org_deletes_its_machines_and_join_tokens(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let keep = given_org(&*store, "keep", &owner).await;
    let t = join_token(&o.id, "t");
    store.create_join_token(&t).await.expect("create");
    let m = machine(&o.id, "m", "u");
    store.create_machine(&m).await.expect("create");
    store
        .append_machine_event(&machine_event(&m.id, "x"))
        .await
        .expect("append");
    let kept = machine(&keep.id, "m", "u");
    store.create_machine(&kept).await.expect("create");
    store.delete_org(&o.id).await.expect("delete org");
    assert_eq!(store.get_join_token(&t.id).await.expect("get"), None);
    assert_eq!(store.get_machine(&m.id).await.expect("get"), None);
    assert!(
        store
            .list_machine_events(&m.id, 0, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store.find_machines_by_uuid("u").await.expect("find"),
        vec![kept]
    );
}

pub async fn one_live_machine_per_uuid_and_fingerprint(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other = given_org(&*store, "other", &owner).await;
    let first = machine(&o.id, "first", "uuid-1");
    store.create_machine(&first).await.expect("create");
    let again = MachineRecord {
        id: new_id(),
        name: "again".to_owned(),
        ..first.clone()
    };
    assert_conflict(
        store.create_machine(&again).await,
        conflict::MACHINE_IDENTITY,
    );
    assert_conflict(
        store
            .create_machine(&MachineRecord {
                org_id: other.id.clone(),
                ..again.clone()
            })
            .await,
        conflict::MACHINE_IDENTITY,
    );
    // Once decommissioned, the identity is history and may join again.
    let mut gone = first.clone();
    gone.state = MachineState::Decommissioned;
    store.update_machine(&gone).await.expect("decommission");
    store.create_machine(&again).await.expect("a new life");
    assert_eq!(
        store
            .find_machines_by_uuid("uuid-1")
            .await
            .expect("find")
            .len(),
        2
    );
}
