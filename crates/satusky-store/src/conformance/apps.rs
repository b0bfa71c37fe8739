//! Conformance of the app methods: apps, releases, idempotency keys, secret
//! versions, app events, clusters and platform administrators.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::TimeDelta;
use satusky_core::apps::{
    AppEventRecord, AppRecord, ClusterRecord, IdempotencyRecord, ReleaseRecord, SecretVersionRecord,
};
use satusky_core::pagination::PageRequest;
use satusky_core::store::{Store, StoreError, conflict};
use satusky_types::apps::{AppPhase, AppSpec, AppStatus, ReleaseCause};

use super::{
    all, assert_conflict, assert_not_found, given_org, given_user, micros, new_id, pages, t0,
};

fn app(org_id: &str, name: &str) -> AppRecord {
    AppRecord {
        id: new_id(),
        org_id: org_id.to_owned(),
        name: name.to_owned(),
        environment: "production".to_owned(),
        generation: 0,
        current_release: None,
        restarted_at: None,
        cluster_id: None,
        status: AppStatus::default(),
        deleting: false,
        delete_volumes: false,
        created_at: t0(),
        updated_at: t0(),
    }
}

async fn given_app(store: &dyn Store, name: &str) -> AppRecord {
    let owner = given_user(store, &format!("owner-of-{name}@example.com")).await;
    let o = given_org(store, &format!("org-of-{name}"), &owner).await;
    let a = app(&o.id, name);
    store.create_app(&a).await.expect("create_app");
    a
}

fn spec(image: &str) -> AppSpec {
    let mut spec = AppSpec {
        image: image.to_owned(),
        replicas: 2,
        secret_version: 1,
        zone: Some("zone-a".to_owned()),
        ..AppSpec::default()
    };
    spec.env
        .insert("GREETING".to_owned(), "héllo \"world\"".to_owned());
    spec
}

fn release(app_id: &str, number: u64) -> ReleaseRecord {
    ReleaseRecord {
        app_id: app_id.to_owned(),
        number,
        spec: spec(&format!("ghcr.io/acme/web:{number}")),
        cause: ReleaseCause::Deploy,
        rollback_of: None,
        author_id: Some(new_id()),
        author_email: Some("ada@example.com".to_owned()),
        created_at: t0() + TimeDelta::minutes(i64::try_from(number).unwrap_or(0)) + micros(1),
    }
}

fn idempotency(app_id: &str, key: &str, release: u64) -> IdempotencyRecord {
    IdempotencyRecord {
        app_id: app_id.to_owned(),
        key: key.to_owned(),
        request_hash: format!("sha256-of-{key}"),
        release,
        created_at: t0() + micros(5),
    }
}

fn event(app_id: &str, kind: &str) -> AppEventRecord {
    AppEventRecord {
        app_id: app_id.to_owned(),
        seq: 999,
        kind: kind.to_owned(),
        message: format!("{kind} happened"),
        release: Some(1),
        at: t0() + micros(9),
    }
}

fn cluster(name: &str, is_default: bool) -> ClusterRecord {
    ClusterRecord {
        id: new_id(),
        name: name.to_owned(),
        region: "eu-west".to_owned(),
        zone: "eu-west-1a".to_owned(),
        sealed_kubeconfig: vec![0, 1, 2, 255, 254],
        is_default,
        priority: -3,
        health: "unknown".to_owned(),
        health_message: None,
        created_at: t0(),
    }
}

pub async fn platform_admins_are_set_and_cleared(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let other = given_user(&*store, "bob@example.com").await;
    assert!(!store.is_platform_admin(&u.id).await.expect("is admin"));
    store.set_platform_admin(&u.id, true).await.expect("grant");
    assert!(store.is_platform_admin(&u.id).await.expect("is admin"));
    assert!(!store.is_platform_admin(&other.id).await.expect("is admin"));
    store
        .set_platform_admin(&u.id, true)
        .await
        .expect("grant twice");
    store
        .set_platform_admin(&u.id, false)
        .await
        .expect("revoke");
    assert!(!store.is_platform_admin(&u.id).await.expect("is admin"));
    assert!(
        !store
            .is_platform_admin(&new_id())
            .await
            .expect("unknown user")
    );
    assert_not_found(store.set_platform_admin(&new_id(), true).await);
    let got = store.get_user(&u.id).await.expect("get_user");
    assert_eq!(got, Some(u), "the user record is unchanged");
}

pub async fn apps_round_trip_and_names_are_unique_per_org(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other_org = given_org(&*store, "other", &owner).await;
    let a = AppRecord {
        generation: 4,
        current_release: Some(3),
        restarted_at: Some(t0() + micros(17)),
        cluster_id: Some(new_id()),
        status: AppStatus {
            phase: AppPhase::Degraded,
            reason: Some("CrashLoopBackOff".to_owned()),
            message: Some("back-off restarting".to_owned()),
            observed_generation: 3,
            observed_release: Some(3),
            desired_replicas: 2,
            ready_replicas: 1,
            updated_replicas: 2,
            updated_at: Some(t0() + micros(3)),
            ..AppStatus::default()
        },
        deleting: true,
        delete_volumes: true,
        updated_at: t0() + micros(21),
        ..app(&o.id, "web")
    };
    store.create_app(&a).await.expect("create_app");

    assert_eq!(
        store.get_app(&o.id, "web").await.expect("get_app"),
        Some(a.clone())
    );
    assert_eq!(
        store.get_app_by_id(&a.id).await.expect("by id"),
        Some(a.clone())
    );
    assert_eq!(
        store.get_app(&other_org.id, "web").await.expect("get_app"),
        None
    );
    assert_eq!(store.get_app_by_id(&new_id()).await.expect("by id"), None);

    assert_conflict(
        store.create_app(&app(&o.id, "web")).await,
        conflict::APP_NAME,
    );
    store
        .create_app(&app(&other_org.id, "web"))
        .await
        .expect("same name, other org");
    assert_not_found(store.create_app(&app(&new_id(), "web")).await);
}

pub async fn apps_list_in_id_order_across_pages(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other_org = given_org(&*store, "other", &owner).await;
    let mut mine = Vec::new();
    let mut everything = Vec::new();
    for i in 0..7 {
        let a = app(&o.id, &format!("app-{i}"));
        store.create_app(&a).await.expect("create_app");
        mine.push(a.id.clone());
        everything.push(a.id);
    }
    for i in 0..2 {
        let a = app(&other_org.id, &format!("app-{i}"));
        store.create_app(&a).await.expect("create_app");
        everything.push(a.id);
    }
    mine.sort();
    everything.sort();

    let got = pages(
        3,
        |p| {
            let store = Arc::clone(&store);
            let org_id = o.id.clone();
            async move { store.list_apps(&org_id, &p).await }
        },
        |a: &AppRecord| a.id.clone(),
    )
    .await;
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    assert_eq!(
        got.into_iter().flatten().map(|a| a.id).collect::<Vec<_>>(),
        mine
    );

    let got = pages(
        4,
        |p| {
            let store = Arc::clone(&store);
            async move { store.list_all_apps(&p).await }
        },
        |a: &AppRecord| a.id.clone(),
    )
    .await;
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 1]);
    assert_eq!(
        got.into_iter().flatten().map(|a| a.id).collect::<Vec<_>>(),
        everything
    );
}

pub async fn releases_append_in_order_and_bump_the_generation(store: Arc<dyn Store>) {
    let a = given_app(&*store, "web").await;

    let r1 = release(&a.id, 1);
    assert_eq!(store.append_release(&r1, None).await.expect("append 1"), 1);
    let got = store.get_app_by_id(&a.id).await.expect("get").expect("app");
    assert_eq!(
        got,
        AppRecord {
            generation: 1,
            current_release: Some(1),
            updated_at: r1.created_at,
            ..a.clone()
        }
    );
    assert_eq!(
        store.get_release(&a.id, 1).await.expect("get_release"),
        Some(r1.clone())
    );

    assert_conflict(
        store.append_release(&release(&a.id, 1), None).await,
        conflict::RELEASE_NUMBER,
    );
    assert_conflict(
        store.append_release(&release(&a.id, 3), None).await,
        conflict::RELEASE_NUMBER,
    );
    assert_conflict(
        store.append_release(&release(&a.id, 0), None).await,
        conflict::RELEASE_NUMBER,
    );
    assert_not_found(store.append_release(&release(&new_id(), 1), None).await);

    let r2 = ReleaseRecord {
        cause: ReleaseCause::Rollback,
        rollback_of: Some(1),
        author_id: None,
        author_email: None,
        ..release(&a.id, 2)
    };
    let key = idempotency(&a.id, "retry-me", 2);
    assert_eq!(
        store
            .append_release(&r2, Some(&key))
            .await
            .expect("append 2"),
        2
    );
    assert_eq!(
        store.get_release(&a.id, 2).await.expect("get_release"),
        Some(r2)
    );
    let found = store
        .get_idempotency(&a.id, "retry-me")
        .await
        .expect("get_idempotency");
    assert_eq!(found, Some(key.clone()));
    assert_eq!(
        store
            .get_idempotency(&a.id, "other")
            .await
            .expect("get_idempotency"),
        None
    );

    // A reused key refuses the whole append.
    let r3 = release(&a.id, 3);
    let reused = IdempotencyRecord { release: 3, ..key };
    assert_conflict(
        store.append_release(&r3, Some(&reused)).await,
        conflict::IDEMPOTENCY_KEY,
    );
    assert_eq!(
        store.get_release(&a.id, 3).await.expect("get_release"),
        None
    );
    let got = store.get_app_by_id(&a.id).await.expect("get").expect("app");
    assert_eq!(
        (got.generation, got.current_release),
        (2, Some(2)),
        "rolled back"
    );
    assert_eq!(store.append_release(&r3, None).await.expect("append 3"), 3);
}

pub async fn releases_list_newest_first_across_pages(store: Arc<dyn Store>) {
    let a = given_app(&*store, "web").await;
    let b = given_app(&*store, "api").await;
    for n in 1..=7 {
        store
            .append_release(&release(&a.id, n), None)
            .await
            .expect("append");
    }
    store
        .append_release(&release(&b.id, 1), None)
        .await
        .expect("other app");

    let got = pages(
        3,
        |p| {
            let store = Arc::clone(&store);
            let app_id = a.id.clone();
            async move { store.list_releases(&app_id, &p).await }
        },
        |r: &ReleaseRecord| r.number.to_string(),
    )
    .await;
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let numbers: Vec<u64> = got.into_iter().flatten().map(|r| r.number).collect();
    assert_eq!(numbers, [7, 6, 5, 4, 3, 2, 1]);

    let forged = PageRequest {
        limit: 3,
        after: Some("not-a-number".to_owned()),
    };
    assert_eq!(
        store.list_releases(&a.id, &forged).await.expect("list"),
        vec![]
    );
}

pub async fn concurrent_release_appends_let_exactly_one_win(store: Arc<dyn Store>) {
    let a = given_app(&*store, "web").await;
    for n in 1..=5 {
        let tasks = [release(&a.id, n), release(&a.id, n)].map(|r| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.append_release(&r, None).await })
        });
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("task"));
        }
        let won = results.iter().filter(|r| r.is_ok()).count();
        let lost = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict(c)) if *c == conflict::RELEASE_NUMBER))
            .count();
        assert_eq!((won, lost), (1, 1), "release {n}: {results:?}");
    }
    let got = store.get_app_by_id(&a.id).await.expect("get").expect("app");
    assert_eq!((got.generation, got.current_release), (5, Some(5)));
}

pub async fn restarting_and_deleting_an_app_bump_its_generation(store: Arc<dyn Store>) {
    let a = given_app(&*store, "web").await;
    let at = t0() + TimeDelta::hours(1) + micros(7);

    assert_eq!(store.restart_app(&a.id, at).await.expect("restart"), 1);
    let status = AppStatus {
        phase: AppPhase::Available,
        observed_generation: 1,
        ready_replicas: 2,
        ..AppStatus::default()
    };
    store.set_app_status(&a.id, &status).await.expect("status");
    store
        .set_app_cluster(&a.id, Some("cluster-1"))
        .await
        .expect("place");
    let got = store.get_app_by_id(&a.id).await.expect("get").expect("app");
    let expected = AppRecord {
        generation: 1,
        restarted_at: Some(at),
        updated_at: at,
        status: status.clone(),
        cluster_id: Some("cluster-1".to_owned()),
        ..a.clone()
    };
    assert_eq!(
        got, expected,
        "status and placement leave the generation alone"
    );

    store.set_app_cluster(&a.id, None).await.expect("unplace");
    assert_eq!(
        store
            .mark_app_deleting(&a.id, true)
            .await
            .expect("mark deleting"),
        2
    );
    let got = store.get_app_by_id(&a.id).await.expect("get").expect("app");
    let expected = AppRecord {
        generation: 2,
        deleting: true,
        delete_volumes: true,
        cluster_id: None,
        ..expected
    };
    assert_eq!(got, expected);
    assert_eq!(
        store.mark_app_deleting(&a.id, false).await.expect("again"),
        3
    );
    let got = store.get_app_by_id(&a.id).await.expect("get").expect("app");
    assert!(got.deleting && !got.delete_volumes);

    let missing = new_id();
    assert_not_found(store.restart_app(&missing, at).await);
    assert_not_found(store.set_app_status(&missing, &status).await);
    assert_not_found(store.set_app_cluster(&missing, None).await);
    assert_not_found(store.mark_app_deleting(&missing, false).await);
}

pub async fn deleting_an_app_removes_its_releases_secrets_and_events(store: Arc<dyn Store>) {
    let a = given_app(&*store, "web").await;
    let kept = given_app(&*store, "api").await;
    for x in [&a, &kept] {
        let key = idempotency(&x.id, "k", 1);
        store
            .append_release(&release(&x.id, 1), Some(&key))
            .await
            .expect("append");
        let secret = SecretVersionRecord {
            app_id: x.id.clone(),
            version: 1,
            sealed: vec![1, 2, 3],
            created_at: t0(),
        };
        store.create_secret_version(&secret).await.expect("secret");
        store
            .append_app_event(&event(&x.id, "deployed"))
            .await
            .expect("event");
    }

    store.delete_app(&a.id).await.expect("delete_app");
    assert_eq!(store.get_app_by_id(&a.id).await.expect("get"), None);
    assert_eq!(store.get_release(&a.id, 1).await.expect("release"), None);
    assert_eq!(store.get_idempotency(&a.id, "k").await.expect("key"), None);
    assert_eq!(
        store.latest_secret_version(&a.id).await.expect("secret"),
        None
    );
    assert_eq!(
        store.list_app_events(&a.id, 0, 10).await.expect("events"),
        vec![]
    );
    assert_not_found(store.delete_app(&a.id).await);

    assert!(
        store
            .get_release(&kept.id, 1)
            .await
            .expect("release")
            .is_some()
    );
    assert!(
        store
            .get_idempotency(&kept.id, "k")
            .await
            .expect("key")
            .is_some()
    );
    assert!(
        store
            .latest_secret_version(&kept.id)
            .await
            .expect("secret")
            .is_some()
    );
    assert_eq!(
        store
            .list_app_events(&kept.id, 0, 10)
            .await
            .expect("events")
            .len(),
        1
    );
}

pub async fn deleting_an_org_deletes_its_apps(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let a = app(&o.id, "web");
    store.create_app(&a).await.expect("create_app");
    store
        .append_release(&release(&a.id, 1), None)
        .await
        .expect("append");
    store.delete_org(&o.id).await.expect("delete_org");
    assert_eq!(store.get_app_by_id(&a.id).await.expect("get"), None);
    assert_eq!(store.get_release(&a.id, 1).await.expect("release"), None);
    assert_eq!(store.list_all_apps(&all()).await.expect("list"), vec![]);
}

pub async fn secret_versions_are_unique_and_the_latest_wins(store: Arc<dyn Store>) {
    let a = given_app(&*store, "web").await;
    assert_eq!(
        store.latest_secret_version(&a.id).await.expect("latest"),
        None
    );
    let v1 = SecretVersionRecord {
        app_id: a.id.clone(),
        version: 1,
        sealed: (0..=255).collect(),
        created_at: t0() + micros(1),
    };
    let v2 = SecretVersionRecord {
        version: 2,
        sealed: vec![],
        ..v1.clone()
    };
    store.create_secret_version(&v1).await.expect("v1");
    store.create_secret_version(&v2).await.expect("v2");

    assert_eq!(
        store.latest_secret_version(&a.id).await.expect("latest"),
        Some(v2.clone())
    );
    assert_eq!(
        store.get_secret_version(&a.id, 1).await.expect("get"),
        Some(v1)
    );
    assert_eq!(store.get_secret_version(&a.id, 3).await.expect("get"), None);
    assert_conflict(
        store.create_secret_version(&v2).await,
        conflict::SECRET_VERSION,
    );
    let orphan = SecretVersionRecord {
        app_id: new_id(),
        ..v2
    };
    assert_not_found(store.create_secret_version(&orphan).await);
}

pub async fn app_events_get_consecutive_seqs_per_app(store: Arc<dyn Store>) {
    let a = given_app(&*store, "web").await;
    let b = given_app(&*store, "api").await;
    for (i, kind) in ["created", "deployed", "scaled"].into_iter().enumerate() {
        assert_eq!(
            store
                .append_app_event(&event(&a.id, kind))
                .await
                .expect("append"),
            i as u64 + 1
        );
    }
    assert_eq!(
        store
            .append_app_event(&event(&b.id, "created"))
            .await
            .expect("append"),
        1
    );

    let first = store.list_app_events(&a.id, 0, 2).await.expect("list");
    let expected = |seq: u64, kind: &str| AppEventRecord {
        seq,
        ..event(&a.id, kind)
    };
    assert_eq!(first, vec![expected(1, "created"), expected(2, "deployed")]);
    let rest = store.list_app_events(&a.id, 2, 10).await.expect("list");
    assert_eq!(rest, vec![expected(3, "scaled")]);
    assert_eq!(
        store.list_app_events(&a.id, 3, 10).await.expect("list"),
        vec![]
    );
    assert_not_found(store.append_app_event(&event(&new_id(), "x")).await);
}

pub async fn concurrent_app_events_get_distinct_seqs(store: Arc<dyn Store>) {
    let a = given_app(&*store, "web").await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = Arc::clone(&store);
            let e = event(&a.id, &format!("event-{i}"));
            tokio::spawn(async move { store.append_app_event(&e).await })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for t in tasks {
        seqs.insert(t.await.expect("task").expect("append_app_event"));
    }
    assert_eq!(seqs, (1..=10).collect::<BTreeSet<u64>>());
    let listed = store.list_app_events(&a.id, 0, 100).await.expect("list");
    let listed: Vec<u64> = listed.into_iter().map(|e| e.seq).collect();
    assert_eq!(listed, (1..=10).collect::<Vec<u64>>());
}

pub async fn clusters_round_trip_with_one_default(store: Arc<dyn Store>) {
    let first = cluster("first", true);
    store.create_cluster(&first).await.expect("create");
    assert_eq!(
        store.get_cluster(&first.id).await.expect("get"),
        Some(first.clone())
    );
    assert_eq!(
        store.get_cluster_by_name("first").await.expect("by name"),
        Some(first.clone())
    );
    assert_eq!(store.get_cluster(&new_id()).await.expect("get"), None);
    assert_eq!(
        store.get_cluster_by_name("nope").await.expect("by name"),
        None
    );

    let second = ClusterRecord {
        sealed_kubeconfig: vec![],
        ..cluster("second", true)
    };
    store.create_cluster(&second).await.expect("new default");
    let got = store
        .get_cluster(&first.id)
        .await
        .expect("get")
        .expect("cluster");
    assert!(!got.is_default, "a new default clears the old one");
    let third = cluster("third", false);
    store.create_cluster(&third).await.expect("not default");
    assert!(
        store
            .get_cluster(&second.id)
            .await
            .expect("get")
            .expect("cluster")
            .is_default
    );
    assert_conflict(
        store.create_cluster(&cluster("third", true)).await,
        conflict::CLUSTER_NAME,
    );
    assert!(
        store
            .get_cluster(&second.id)
            .await
            .expect("get")
            .expect("cluster")
            .is_default,
        "a refused default changes nothing"
    );

    store
        .set_cluster_health(&third.id, "unreachable", Some("dial tcp: timeout"))
        .await
        .expect("health");
    let got = store
        .get_cluster(&third.id)
        .await
        .expect("get")
        .expect("cluster");
    assert_eq!(
        (got.health.as_str(), got.health_message.as_deref()),
        ("unreachable", Some("dial tcp: timeout"))
    );
    store
        .set_cluster_health(&third.id, "healthy", None)
        .await
        .expect("health");
    let got = store
        .get_cluster(&third.id)
        .await
        .expect("get")
        .expect("cluster");
    assert_eq!(
        got,
        ClusterRecord {
            health: "healthy".to_owned(),
            ..third.clone()
        }
    );
    assert_not_found(store.set_cluster_health(&new_id(), "healthy", None).await);

    let mut ids = vec![first.id.clone(), second.id.clone(), third.id.clone()];
    ids.sort();
    let got = pages(
        2,
        |p| {
            let store = Arc::clone(&store);
            async move { store.list_clusters(&p).await }
        },
        |c: &ClusterRecord| c.id.clone(),
    )
    .await;
    assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(
        got.into_iter().flatten().map(|c| c.id).collect::<Vec<_>>(),
        ids
    );

    store.delete_cluster(&first.id).await.expect("delete");
    assert_eq!(store.get_cluster(&first.id).await.expect("get"), None);
    assert_not_found(store.delete_cluster(&first.id).await);
}
