//! kube-rs clients, watcher, reflector and Controller against kube-sim, with faults.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube_sim::{Fault, Verb};

use crate::support::{TestSim, eventually, fast};

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..ConfigMap::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_recovers_from_a_forced_410_and_a_dropped_watch() {
    let t = TestSim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(t.client());
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let task = tokio::spawn(
        watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .for_each(move |o| {
                if let Ok(o) = o {
                    seen2
                        .lock()
                        .unwrap()
                        .push(o.metadata.name.unwrap_or_default());
                }
                futures::future::ready(())
            }),
    );
    let has = |n: &'static str| {
        let s = seen.clone();
        move || {
            let s = s.clone();
            async move { s.lock().unwrap().iter().any(|x| x == n) }
        }
    };
    api.create(&PostParams::default(), &cm("one"))
        .await
        .unwrap();
    eventually("watcher sees one", 10, has("one")).await;
    t.sim.faults().expire_watches();
    api.create(&PostParams::default(), &cm("two"))
        .await
        .unwrap();
    eventually("watcher sees two after 410", 10, has("two")).await;
    t.sim.faults().drop_watches();
    api.create(&PostParams::default(), &cm("three"))
        .await
        .unwrap();
    eventually("watcher sees three after a dropped watch", 10, has("three")).await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_store_converges_after_faults() {
    let t = TestSim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(t.client());
    let (reader, writer) = reflector::store();
    let task = tokio::spawn(
        reflector(writer, watcher(api.clone(), watcher::Config::default()))
            .default_backoff()
            .for_each(|_| futures::future::ready(())),
    );
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("c{i}")))
            .await
            .unwrap();
    }
    let r = reader.clone();
    eventually("store has 5", 10, || {
        let r = r.clone();
        async move { r.state().len() == 5 }
    })
    .await;
    t.sim.faults().expire_watches();
    api.delete("c0", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    t.sim.faults().drop_watches();
    api.create(&PostParams::default(), &cm("c5")).await.unwrap();
    let r = reader.clone();
    eventually("store converges", 10, || {
        let r = r.clone();
        async move {
            let mut names: Vec<String> = r
                .state()
                .iter()
                .map(|c| c.metadata.name.clone().unwrap_or_default())
                .collect();
            names.sort();
            names == ["c1", "c2", "c3", "c4", "c5"]
        }
    })
    .await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reconciles_through_410_dropped_watches_and_500s() {
    let t = TestSim::start().await;
    let client = t.client();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let reconciled = Arc::new(AtomicUsize::new(0));
    struct Ctx {
        api: Api<ConfigMap>,
        count: Arc<AtomicUsize>,
    }
    async fn reconcile(obj: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
        let name = obj.metadata.name.clone().unwrap_or_default();
        if obj
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("done"))
        {
            return Ok(Action::await_change());
        }
        let patch = serde_json::json!({"metadata": {"annotations": {"done": "yes"}}});
        ctx.api
            .patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await?;
        ctx.count.fetch_add(1, Ordering::SeqCst);
        Ok(Action::await_change())
    }
    fn error_policy(_: Arc<ConfigMap>, _: &kube::Error, _: Arc<Ctx>) -> Action {
        Action::requeue(Duration::from_millis(50))
    }
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        count: reconciled.clone(),
    });
    let task = tokio::spawn(
        Controller::new(api.clone(), watcher::Config::default())
            .run(reconcile, error_policy, ctx)
            .for_each(|_| futures::future::ready(())),
    );
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let done = |n: &'static str| {
        let api = api.clone();
        move || {
            let api = api.clone();
            async move {
                api.get(n)
                    .await
                    .ok()
                    .and_then(|c| c.metadata.annotations)
                    .is_some_and(|a| a.contains_key("done"))
            }
        }
    };
    eventually("a reconciled", 10, done("a")).await;
    t.sim.faults().expire_watches();
    t.sim.faults().inject(
        Fault::error(500)
            .verb(Verb::Patch)
            .resource("configmaps")
            .times(2),
    );
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    eventually("b reconciled despite 410 and two 500s", 10, done("b")).await;
    t.sim.faults().drop_watches();
    api.create(&PostParams::default(), &cm("c")).await.unwrap();
    eventually("c reconciled after a dropped watch", 10, done("c")).await;
    assert!(reconciled.load(Ordering::SeqCst) >= 3);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_router_serves_kube_client_without_a_port() {
    let sim = fast().build().expect("sim");
    let client = sim.client().expect("client");
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &cm("inproc"))
        .await
        .unwrap();
    let got = api.get("inproc").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "v");
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(sim.client().unwrap());
    assert_eq!(
        nodes
            .list(&kube::api::ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_hit_the_chosen_verb_and_kind() {
    let t = TestSim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(t.client());
    for code in [409u16, 429, 500] {
        t.sim.faults().inject(
            Fault::error(code)
                .verb(Verb::Create)
                .resource("configmaps")
                .times(1),
        );
        let err = api
            .create(&PostParams::default(), &cm("x"))
            .await
            .unwrap_err();
        match err {
            kube::Error::Api(s) => assert_eq!(s.code, code),
            other => panic!("unexpected {other:?}"),
        }
    }
    api.create(&PostParams::default(), &cm("x")).await.unwrap();
    t.sim
        .faults()
        .inject(Fault::latency(Duration::from_millis(300)).verb(Verb::Get));
    let start = std::time::Instant::now();
    api.get("x").await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    t.sim.faults().clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_publishes_events_k8s_io_events_and_logs_stream() {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let t = TestSim::start().await;
    let client = t.client();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let c = api
        .create(&PostParams::default(), &cm("evented"))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "test-ctl".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Normal,
        reason: "Synced".into(),
        note: Some("all good".into()),
        action: "Sync".into(),
        secondary: None,
    };
    let reference = kube::Resource::object_ref(&c, &());
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &reference).await.unwrap();
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::default_namespaced(client.clone());
    let list = events
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items;
    let mine: Vec<_> = list
        .iter()
        .filter(|e| e.reason.as_deref() == Some("Synced"))
        .collect();
    assert_eq!(
        mine.len(),
        1,
        "the repeat is a series update, not a new event"
    );
    assert!(mine[0].series.as_ref().is_some_and(|s| s.count >= 2));

    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::default_namespaced(client);
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "logger"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let p = pods.clone();
    eventually("logger running", 10, move || {
        let p = p.clone();
        async move {
            p.get("logger")
                .await
                .ok()
                .and_then(|p| p.status)
                .and_then(|s| s.phase)
                .as_deref()
                == Some("Running")
        }
    })
    .await;
    let logs = pods
        .logs("logger", &kube::api::LogParams::default())
        .await
        .unwrap();
    assert!(logs.contains("started container c"), "{logs}");
}
