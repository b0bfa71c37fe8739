//! API semantics and cluster behaviour through kube-rs.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::policy::v1::{Eviction, PodDisruptionBudget};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::{TestSim, eventually, fast};

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

fn api_code<T>(r: Result<T, kube::Error>) -> u16 {
    match r {
        Err(kube::Error::Api(s)) => s.code,
        Err(e) => panic!("not an API error: {e:?}"),
        Ok(_) => 0,
    }
}

fn pod(name: &str, labels: Value) -> Pod {
    obj(json!({"metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}))
}

async fn ready(pods: &Api<Pod>, name: &str) {
    let (p, n) = (pods.clone(), name.to_owned());
    eventually(&format!("pod {name} ready"), 20, move || {
        let (p, n) = (p.clone(), n.clone());
        async move {
            p.get(&n)
                .await
                .ok()
                .and_then(|p| p.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_limit_and_continue_and_old_watches_get_410() {
    let t = TestSim::with(fast().history(5)).await;
    let api: Api<ConfigMap> = Api::default_namespaced(t.client());
    for i in 0..12 {
        api.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": format!("c{i:02}")}})),
        )
        .await
        .unwrap();
    }
    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(5);
    loop {
        let page = api.list(&lp).await.unwrap();
        assert!(page.metadata.resource_version.is_some());
        names.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(names.len(), 12);
    // history keeps 5 events: a watch from the first revision is expired
    let code = api_code(
        api.watch(&kube::api::WatchParams::default(), "1")
            .await
            .map(|_| ()),
    );
    let status = t.client().request_text(
        http::Request::get("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2&timeoutSeconds=1")
            .body(Vec::new())
            .unwrap(),
    )
    .await;
    // either an immediate 410 or an ERROR event with code 410
    let text = match status {
        Ok(t) => t,
        Err(kube::Error::Api(s)) => s.code.to_string(),
        Err(e) => format!("{e:?}"),
    };
    assert!(code == 410 || text.contains("410"), "{code} {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_finalizers_and_no_op_writes() {
    let t = TestSim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(t.client());
    let created = api
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "f", "finalizers": ["test/hold"]}})),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    // no-op write keeps the resourceVersion
    let same = api
        .replace("f", &PostParams::default(), &created)
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        created.metadata.resource_version
    );
    // stale resourceVersion
    let mut changed = created.clone();
    changed.data = Some([("a".to_owned(), "b".to_owned())].into());
    api.replace("f", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(
        api_code(api.replace("f", &PostParams::default(), &changed).await),
        409
    );
    // delete with a finalizer leaves the object with a deletionTimestamp
    let res = api.delete("f", &DeleteParams::default()).await.unwrap();
    assert!(res.is_left(), "pending deletion answers the object");
    let held = api.get("f").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let add = json!({"metadata": {"finalizers": ["test/hold", "test/other"]}});
    assert_eq!(
        api_code(
            api.patch("f", &PatchParams::default(), &Patch::Merge(&add))
                .await
        ),
        422
    );
    let remove = json!([{"op": "test", "path": "/metadata/finalizers", "value": ["test/hold"]}, {"op": "remove", "path": "/metadata/finalizers"}]);
    api.patch(
        "f",
        &PatchParams::default(),
        &Patch::<()>::Json(serde_json::from_value(remove).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(api_code(api.get("f").await), 404);
    // create in a missing namespace
    let other: Api<ConfigMap> = Api::namespaced(t.client(), "missing");
    assert_eq!(
        api_code(
            other
                .create(
                    &PostParams::default(),
                    &obj(json!({"metadata": {"name": "x"}}))
                )
                .await
        ),
        404
    );
    // apply needs a field manager; force only with apply
    let force_merge = PatchParams {
        force: true,
        ..PatchParams::default()
    };
    let r = api.patch("g", &force_merge, &Patch::Merge(json!({}))).await;
    assert!(r.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_follows_the_decision_table() {
    let t = TestSim::start().await;
    let client = t.client();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client.clone());
    for n in ["a", "b"] {
        pods.create(&PostParams::default(), &pod(n, json!({"app": "x"})))
            .await
            .unwrap();
        ready(&pods, n).await;
    }
    pdbs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "pdb"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "x"}}}})),
    )
    .await
    .unwrap();
    let p2 = pdbs.clone();
    eventually("pdb processed", 10, move || {
        let p = p2.clone();
        async move {
            p.get("pdb")
                .await
                .ok()
                .and_then(|p| p.status)
                .is_some_and(|s| s.observed_generation == Some(1))
        }
    })
    .await;
    let eviction: Eviction = obj(json!({"metadata": {"name": "a"}}));
    let err = pods
        .create_subresource::<Value>(
            "eviction",
            "a",
            &PostParams::default(),
            serde_json::to_vec(&eviction).unwrap(),
        )
        .await;
    match err {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 429);
            assert!(s.message.contains("disruption budget"), "{}", s.message);
        }
        other => panic!("expected 429, got {other:?}"),
    }
    // name mismatch
    let bad = pods
        .create_subresource::<Value>(
            "eviction",
            "b",
            &PostParams::default(),
            serde_json::to_vec(&eviction).unwrap(),
        )
        .await;
    assert_eq!(api_code(bad), 400);
    // a second PDB on the same pods: 500
    pdbs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "pdb2"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "x"}}}})),
    )
    .await
    .unwrap();
    let r = pods
        .create_subresource::<Value>(
            "eviction",
            "a",
            &PostParams::default(),
            serde_json::to_vec(&eviction).unwrap(),
        )
        .await;
    assert_eq!(api_code(r), 500);
    pdbs.delete("pdb2", &DeleteParams::default()).await.unwrap();
    // the budget allows one disruption at minAvailable 1
    pdbs.patch(
        "pdb",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minAvailable": 1}})),
    )
    .await
    .unwrap();
    let p2 = pdbs.clone();
    eventually("pdb allows one", 10, move || {
        let p = p2.clone();
        async move {
            p.get("pdb")
                .await
                .ok()
                .and_then(|p| p.status)
                .is_some_and(|s| s.disruptions_allowed == 1 && s.observed_generation == Some(2))
        }
    })
    .await;
    pods.evict("a", &kube::api::EvictParams::default())
        .await
        .unwrap();
    let gone = pods.get("a").await;
    assert!(gone.is_err() || gone.unwrap().metadata.deletion_timestamp.is_some());
    let status = pdbs.get("pdb").await.unwrap().status.unwrap();
    assert!(
        status.disrupted_pods.unwrap_or_default().contains_key("a")
            || status.disruptions_allowed == 0
    );
    // a pending pod is evicted regardless of the budget
    pods.create(&PostParams::default(), &obj(json!({"metadata": {"name": "p", "labels": {"app": "x"}},
        "spec": {"nodeSelector": {"nowhere": "true"}, "containers": [{"name": "c", "image": "i"}]}})))
        .await
        .unwrap();
    pods.evict("p", &kube::api::EvictParams::default())
        .await
        .unwrap();
    assert_eq!(api_code(pods.get("p").await), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_explains_unschedulable_pods_and_honours_taints_and_affinity() {
    let t = TestSim::start().await;
    let pods: Api<Pod> = Api::default_namespaced(t.client());
    let nodes: Api<Node> = Api::all(t.client());
    pods.create(&PostParams::default(), &obj(json!({"metadata": {"name": "big"},
        "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "64"}}}]}})))
        .await
        .unwrap();
    let p = pods.clone();
    eventually("unschedulable condition", 10, move || {
        let p = p.clone();
        async move {
            p.get("big")
                .await
                .ok()
                .and_then(|p| p.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        c.type_ == "PodScheduled"
                            && c.status == "False"
                            && c.reason.as_deref() == Some("Unschedulable")
                            && c.message.as_deref().is_some_and(|m| {
                                m.starts_with("0/3 nodes are available: 3 Insufficient cpu")
                            })
                    })
                })
        }
    })
    .await;
    nodes
        .patch("node-1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}})))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &obj(json!({"metadata": {"name": "db"},
        "spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]}]}}},
            "containers": [{"name": "c", "image": "i"}]}})))
        .await
        .unwrap();
    ready(&pods, "db").await;
    assert_eq!(
        pods.get("db")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .as_deref(),
        Some("node-1")
    );
    pods.create(&PostParams::default(), &obj(json!({"metadata": {"name": "plain"},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": "node-1"}, "containers": [{"name": "c", "image": "i"}]}})))
        .await
        .unwrap();
    let p = pods.clone();
    eventually("taint blocks plain pod", 10, move || {
        let p = p.clone();
        async move {
            p.get("plain")
                .await
                .ok()
                .and_then(|p| p.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "PodScheduled" && c.status == "False")
                })
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_heartbeating_turns_not_ready_and_its_pods_are_evicted() {
    let t = TestSim::with(
        fast()
            .heartbeat(Duration::from_millis(50))
            .node_monitor_grace(Duration::from_millis(300))
            .toleration_scale(0.001),
    )
    .await;
    let pods: Api<Pod> = Api::default_namespaced(t.client());
    let nodes: Api<Node> = Api::all(t.client());
    pods.create(&PostParams::default(), &obj(json!({"metadata": {"name": "victim"},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": "node-2"}, "containers": [{"name": "c", "image": "i"}]}})))
        .await
        .unwrap();
    ready(&pods, "victim").await;
    t.sim.stop_node("node-2");
    let n = nodes.clone();
    eventually("node-2 not ready with taint", 10, move || {
        let n = n.clone();
        async move {
            let node = n.get("node-2").await.unwrap();
            let not_ready = node
                .status
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status != "True"));
            let tainted = node.spec.and_then(|s| s.taints).is_some_and(|t| {
                t.iter()
                    .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute")
            });
            not_ready && tainted
        }
    })
    .await;
    let p = pods.clone();
    eventually("victim marked for deletion", 10, move || {
        let p = p.clone();
        async move {
            p.get("victim")
                .await
                .map_or(true, |p| p.metadata.deletion_timestamp.is_some())
        }
    })
    .await;
    t.sim.start_node("node-2");
    let n = nodes.clone();
    eventually("node-2 ready again", 10, move || {
        let n = n.clone();
        async move {
            n.get("node-2")
                .await
                .unwrap()
                .spec
                .and_then(|s| s.taints)
                .is_none_or(|t| t.is_empty())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::many_single_char_names)]
async fn pvcs_bind_certificates_issue_secrets_and_gateways_get_status() {
    let t = TestSim::start().await;
    let client = t.client();
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(client.clone());
    pvcs.create(&PostParams::default(), &obj(json!({"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})))
        .await
        .unwrap();
    let p = pvcs.clone();
    eventually("pvc bound", 10, move || {
        let p = p.clone();
        async move {
            p.get("data")
                .await
                .unwrap()
                .status
                .and_then(|s| s.phase)
                .as_deref()
                == Some("Bound")
        }
    })
    .await;

    let gvk = |g: &str, v: &str, k: &str| ApiResource::from_gvk(&GroupVersionKind::gvk(g, v, k));
    let certs: Api<DynamicObject> =
        Api::default_namespaced_with(client.clone(), &gvk("cert-manager.io", "v1", "Certificate"));
    let cert: DynamicObject = obj(
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "site"},
        "spec": {"secretName": "site-tls", "dnsNames": ["example.test"], "issuerRef": {"name": "le", "kind": "ClusterIssuer"}}}),
    );
    certs.create(&PostParams::default(), &cert).await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let s = secrets.clone();
    eventually("tls secret", 10, move || {
        let s = s.clone();
        async move {
            s.get("site-tls")
                .await
                .is_ok_and(|s| s.type_.as_deref() == Some("kubernetes.io/tls"))
        }
    })
    .await;
    let c = certs.clone();
    eventually("certificate ready", 10, move || {
        let c = c.clone();
        async move { c.get("site").await.unwrap().data["status"]["conditions"][0]["status"] == "True" }
    })
    .await;

    let classes: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &gvk("gateway.networking.k8s.io", "v1", "GatewayClass"),
    );
    classes
        .create(
            &PostParams::default(),
            &obj(
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "sim"}, "spec": {"controllerName": "example.test/gw"}}),
            ),
        )
        .await
        .unwrap();
    let gws: Api<DynamicObject> = Api::default_namespaced_with(
        client.clone(),
        &gvk("gateway.networking.k8s.io", "v1", "Gateway"),
    );
    gws.create(&PostParams::default(), &obj(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw"}, "spec": {"gatewayClassName": "sim", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}))).await.unwrap();
    let routes: Api<DynamicObject> = Api::default_namespaced_with(
        client.clone(),
        &gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
    );
    for name in ["first", "second"] {
        routes.create(&PostParams::default(), &obj(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name}, "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["app.example.test"],
                "rules": [{"backendRefs": [{"name": "missing-svc", "port": 80}]}]}}))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let r = routes.clone();
    eventually("route status with conflict", 10, move || {
        let r = r.clone();
        async move {
            let first =
                r.get("first").await.unwrap().data["status"]["parents"][0]["conditions"].clone();
            let second =
                r.get("second").await.unwrap().data["status"]["parents"][0]["conditions"].clone();
            let cond = |c: &Value, ty: &str| {
                c.as_array()
                    .and_then(|a| a.iter().find(|x| x["type"] == ty))
                    .map(|x| x["status"].clone())
            };
            cond(&first, "Accepted") == Some(json!("True"))
                && cond(&first, "ResolvedRefs") == Some(json!("False"))
                && cond(&second, "Accepted") == Some(json!("False"))
        }
    })
    .await;
    let g = gws.clone();
    eventually("gateway programmed", 10, move || {
        let g = g.clone();
        async move { g.get("gw").await.unwrap().data["status"]["addresses"][0]["value"].is_string() }
    })
    .await;
    // strategic merge is refused for custom resources
    let r = routes
        .patch(
            "first",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {}})),
        )
        .await;
    assert_eq!(api_code(r), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_are_served_generically() {
    let t = TestSim::start().await;
    let client = t.client();
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        )),
    );
    crds.create(&PostParams::default(), &obj(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.test"},
        "spec": {"group": "example.test", "scope": "Namespaced", "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})))
        .await
        .unwrap();
    let widgets: Api<DynamicObject> = Api::default_namespaced_with(
        client,
        &ApiResource::from_gvk(&GroupVersionKind::gvk("example.test", "v1", "Widget")),
    );
    let w = widgets
        .create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "example.test/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"ignored": true}})),
        )
        .await
        .unwrap();
    assert!(
        w.data.get("status").is_none(),
        "status is ignored on create"
    );
    let pp = PatchParams::apply("me").force();
    let applied = widgets.patch("w", &pp, &Patch::Apply(json!({"apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}}))).await.unwrap();
    assert_eq!(applied.data["spec"]["size"], 2);
    assert_eq!(applied.metadata.generation, Some(2));
    let st = widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["ready"], true);
    assert_eq!(
        st.metadata.generation,
        Some(2),
        "status writes do not bump generation"
    );
    let out = t.ok(&["get", "widgets", "-o", "name"]).await;
    assert_eq!(out.trim(), "widget.example.test/w");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_creates_shares_and_prunes_fields() {
    let t = TestSim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(t.client());
    let pp = PatchParams::apply("ops");
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ssa", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1", "y": "2"}});
    let created = api.patch("ssa", &pp, &Patch::Apply(&first)).await.unwrap();
    let mf = created.metadata.managed_fields.unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("ops"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    // a second manager applying the same value shares ownership
    let shared = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"y": "2"}});
    api.patch("ssa", &PatchParams::apply("other"), &Patch::Apply(&shared))
        .await
        .unwrap();
    let second = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ssa", "labels": {"a": "1"}}, "data": {"x": "1"}});
    let pruned = api.patch("ssa", &pp, &Patch::Apply(&second)).await.unwrap();
    let labels = pruned.metadata.labels.unwrap();
    assert!(
        labels.contains_key("a") && !labels.contains_key("b"),
        "{labels:?}"
    );
    let data = pruned.data.unwrap();
    assert_eq!(data.get("x").map(String::as_str), Some("1"));
    assert_eq!(
        data.get("y").map(String::as_str),
        Some("2"),
        "still owned by other"
    );
    // re-applying the same configuration is a no-op
    let again = api.patch("ssa", &pp, &Patch::Apply(&second)).await.unwrap();
    assert_eq!(
        again.metadata.resource_version,
        pruned.metadata.resource_version
    );
    // apply without a field manager is refused
    let r = api
        .patch("ssa", &PatchParams::default(), &Patch::Apply(&second))
        .await;
    assert!(r.is_err());
}
