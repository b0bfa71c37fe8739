//! Cluster behaviour: container conventions, workloads, scheduling constraints, watch details.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::support::{TestSim, eventually};

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

async fn pod_status(pods: &Api<Pod>, name: &str) -> Value {
    pods.get(name)
        .await
        .map(|p| serde_json::to_value(p.status).unwrap_or_default())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_names_make_containers_crash_loop_fail_readiness_fail_to_pull_or_complete() {
    let t = TestSim::start().await;
    let pods: Api<Pod> = Api::default_namespaced(t.client());
    for (name, image) in [
        ("crash", "example.test/kube-sim/crashloop:1"),
        ("unready", "kube-sim/unready"),
        ("pull", "registry.test/kube-sim/pullfail:v2"),
        ("done", "kube-sim/complete"),
    ] {
        pods.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": image}]}})),
        )
        .await
        .unwrap();
    }
    pods.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "annotated",
        "annotations": {"kube-sim.satusky.dev/fault": "unready"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})),
    )
    .await
    .unwrap();
    let p = pods.clone();
    eventually("conventions applied", 15, move || {
        let p = p.clone();
        async move {
            let crash = pod_status(&p, "crash").await;
            let unready = pod_status(&p, "unready").await;
            let pull = pod_status(&p, "pull").await;
            let done = pod_status(&p, "done").await;
            let annotated = pod_status(&p, "annotated").await;
            let ready = |s: &Value| {
                s["conditions"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                    .map(|c| c["status"].clone())
            };
            crash["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
                && crash["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)
                && unready["phase"] == "Running"
                && ready(&unready) == Some(json!("False"))
                && ready(&annotated) == Some(json!("False"))
                && annotated["phase"] == "Running"
                && pull["phase"] == "Pending"
                && pull["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
                && done["phase"] == "Succeeded"
        }
    })
    .await;
    let out = t.ok(&["get", "pod", "crash", "pull"]).await;
    assert!(
        out.contains("CrashLoopBackOff") && out.contains("ImagePullBackOff"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_deployments_and_statefulsets_roll_in_order() {
    let t = TestSim::start().await;
    let deps: Api<Deployment> = Api::default_namespaced(t.client());
    deps.create(&PostParams::default(), &obj(json!({"metadata": {"name": "r"},
        "spec": {"replicas": 2, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"app": "r"}},
            "template": {"metadata": {"labels": {"app": "r"}}, "spec": {"containers": [{"name": "c", "image": "a:1"}]}}}})))
        .await
        .unwrap();
    t.ok(&["rollout", "status", "deploy/r", "--timeout=30s"])
        .await;
    t.ok(&["set", "image", "deploy/r", "c=a:2"]).await;
    t.ok(&["rollout", "status", "deploy/r", "--timeout=30s"])
        .await;
    let d = deps.get("r").await.unwrap();
    let conds = d.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Progressing"
                && c.reason.as_deref() == Some("NewReplicaSetAvailable"))
    );
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    );

    let sts: Api<StatefulSet> = Api::default_namespaced(t.client());
    sts.create(&PostParams::default(), &obj(json!({"metadata": {"name": "db"},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "pg:16"}]}}}})))
        .await
        .unwrap();
    let s = sts.clone();
    eventually("statefulset ready", 15, move || {
        let s = s.clone();
        async move {
            s.get("db")
                .await
                .unwrap()
                .status
                .and_then(|s| s.ready_replicas)
                == Some(3)
        }
    })
    .await;
    t.ok(&["rollout", "status", "statefulset/db", "--timeout=20s"])
        .await;
    let names = t.ok(&["get", "pods", "-l", "app=db", "-o", "name"]).await;
    assert_eq!(names.trim(), "pod/db-0\npod/db-1\npod/db-2");
    sts.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually("scaled down from the top", 15, || async {
        t.ok(&["get", "pods", "-l", "app=db", "-o", "name"])
            .await
            .trim()
            == "pod/db-0"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_and_topology_spread_place_pods_apart() {
    let t = TestSim::start().await;
    let deps: Api<Deployment> = Api::default_namespaced(t.client());
    let spec = |name: &str, replicas: i32, extra: Value| -> Deployment {
        let mut pod_spec = json!({"containers": [{"name": "c", "image": "i"}]});
        for (k, v) in extra.as_object().unwrap() {
            pod_spec[k] = v.clone();
        }
        obj(
            json!({"metadata": {"name": name}, "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}}),
        )
    };
    deps.create(&PostParams::default(), &spec("anti", 4, json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "anti"}}, "topologyKey": "kubernetes.io/hostname"}]}}})))
        .await
        .unwrap();
    deps.create(&PostParams::default(), &spec("spread", 6, json!({"topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "spread"}}}]})))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(t.client());
    let p = pods.clone();
    eventually("placed", 15, move || {
        let p = p.clone();
        async move {
            let anti = p
                .list(&ListParams::default().labels("app=anti"))
                .await
                .unwrap()
                .items;
            let scheduled: Vec<String> = anti
                .iter()
                .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                .collect();
            let mut uniq = scheduled.clone();
            uniq.sort();
            uniq.dedup();
            let spread = p
                .list(&ListParams::default().labels("app=spread"))
                .await
                .unwrap()
                .items;
            let mut per_node = std::collections::HashMap::new();
            for s in &spread {
                if let Some(n) = s.spec.as_ref().and_then(|s| s.node_name.clone()) {
                    *per_node.entry(n).or_insert(0) += 1;
                }
            }
            scheduled.len() == 3
                && uniq.len() == 3
                && per_node.len() == 3
                && per_node.values().all(|c| *c == 2)
        }
    })
    .await;
    // the fourth anti-affinity pod cannot be placed
    let pending = pods
        .list(
            &ListParams::default()
                .labels("app=anti")
                .fields("status.phase=Pending"),
        )
        .await
        .unwrap()
        .items;
    let msg = pending.iter().find_map(|p| {
        p.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "PodScheduled")?
            .message
            .clone()
    });
    assert!(msg.is_some_and(|m| m.contains("anti-affinity")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_report_selector_transitions_and_streaming_lists_end_with_a_bookmark() {
    let t = TestSim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(t.client());
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("color=blue"), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "c", "labels": {"color": "red"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"color": "blue"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"color": "red"}}})),
    )
    .await
    .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Modified(_) => kinds.push("MODIFIED"),
            WatchEvent::Deleted(_) => kinds.push("DELETED"),
            _ => {}
        }
    }
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);

    // kube-rs streaming lists (sendInitialEvents) see existing and new objects
    let seen = watcher(api.clone(), watcher::Config::default().streaming_lists())
        .applied_objects()
        .take(2)
        .map(|o| o.unwrap().metadata.name.unwrap())
        .collect::<Vec<_>>();
    let creator = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "d"}})),
        )
        .await
        .unwrap();
    };
    let (names, ()) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(seen, creator)
    })
    .await
    .unwrap();
    assert_eq!(names, ["c", "d"]);

    // delete_collection with a selector
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("color=red"),
    )
    .await
    .unwrap();
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_serves_aggregated_and_legacy_documents() {
    let t = TestSim::start().await;
    let client = t.client();
    let req = http::Request::get("/apis")
        .header(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let agg: Value = serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    assert_eq!(agg["kind"], "APIGroupDiscoveryList");
    let apps = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .unwrap();
    let deploy = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .unwrap();
    assert!(
        deploy["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["subresource"] == "scale" && s["responseKind"]["kind"] == "Scale")
    );
    let core: Value = serde_json::from_str(
        &client
            .request_text(http::Request::get("/api/v1").body(Vec::new()).unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    let eviction = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/eviction")
        .unwrap();
    assert_eq!(eviction["group"], "policy");
    assert_eq!(eviction["kind"], "Eviction");
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let explain = t.ok(&["explain", "deployments"]).await;
    assert!(explain.contains("Deployment"), "{explain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_scales_a_deployment_when_simulated_load_rises() {
    let t = TestSim::start().await;
    let f = t.manifest(
        "web.yaml",
        crate::support::DEPLOYMENT
            .replace("replicas: 3", "replicas: 2")
            .as_str(),
    );
    t.ok(&["apply", "-f", &f]).await;
    t.ok(&["rollout", "status", "deploy/web", "--timeout=30s"])
        .await;
    // kubectl autoscale posts an autoscaling/v1 HPA (served as a view over v2)
    t.ok(&[
        "autoscale",
        "deployment",
        "web",
        "--min=2",
        "--max=5",
        "--cpu-percent=50",
    ])
    .await;
    let v1: Value = serde_json::from_str(
        &t.ok(&[
            "get",
            "--raw",
            "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
    let deps: Api<Deployment> = Api::default_namespaced(t.client());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        deps.get("web").await.unwrap().spec.unwrap().replicas,
        Some(2),
        "at target: no change"
    );
    let pods: Api<Pod> = Api::default_namespaced(t.client());
    for p in pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items
    {
        t.sim.set_load("default", &p.metadata.name.unwrap(), 200);
    }
    let d = deps.clone();
    eventually("scaled to max", 15, move || {
        let d = d.clone();
        async move { d.get("web").await.unwrap().spec.unwrap().replicas == Some(5) }
    })
    .await;
    let hpa = t
        .ok(&[
            "get",
            "hpa",
            "web",
            "-o",
            "jsonpath={.status.desiredReplicas}",
        ])
        .await;
    assert_eq!(hpa, "5");
    let table = t.ok(&["get", "hpa", "web"]).await;
    assert!(
        table.contains("Deployment/web") && table.contains("cpu:"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_or_fail_past_their_backoff_limit() {
    let t = TestSim::start().await;
    let ok = t.manifest(
        "job.yaml",
        r"apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: app:1, command: [migrate]}]
",
    );
    t.ok(&["apply", "-f", &ok]).await;
    t.ok(&[
        "wait",
        "--for=condition=complete",
        "job/migrate",
        "--timeout=20s",
    ])
    .await;
    assert_eq!(
        t.ok(&[
            "get",
            "job",
            "migrate",
            "-o",
            "jsonpath={.status.succeeded}"
        ])
        .await,
        "3"
    );
    let bad = t.manifest(
        "bad.yaml",
        r"apiVersion: batch/v1
kind: Job
metadata: {name: broken}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: example.test/kube-sim/fail:1}]
",
    );
    t.ok(&["apply", "-f", &bad]).await;
    t.ok(&[
        "wait",
        "--for=condition=failed",
        "job/broken",
        "--timeout=20s",
    ])
    .await;
    assert_eq!(
        t.ok(&["get", "job", "broken", "-o", "jsonpath={.status.failed}"])
            .await,
        "2"
    );
    let always = t.manifest(
        "always.yaml",
        &std::fs::read_to_string(&bad)
            .unwrap()
            .replace("Never", "Always")
            .replace("broken", "wrong"),
    );
    let err = t.fails(&["apply", "-f", &always]).await;
    assert!(err.contains("restartPolicy"), "{err}");
}
