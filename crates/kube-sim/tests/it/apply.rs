//! Server-side apply field removal: what a manager stops applying goes as a whole, through
//! kube-rs and `kubectl apply --server-side`, checked through both.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::{TestSim, fast};

/// A Deployment with probes, node affinity, a RollingUpdate strategy and resource limits.
fn full() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}},
                    "containers": [{
                        "name": "app", "image": "nginx:1",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "MODE", "value": "prod"}],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                        "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}},
                        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}
                    }]
                }
            }
        }
    })
}

/// The same Deployment without probes, affinity or limits, and with a Recreate strategy.
fn slim() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "app", "image": "nginx:1",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "MODE", "value": "prod"}]
                    }]
                }
            }
        }
    })
}

/// A second manager's fields: the memory limit (shared, same value) and pod anti-affinity.
fn tuner() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {"app": "web"}}}}]}},
            "containers": [{"name": "app", "resources": {"limits": {"memory": "256Mi"}}}]
        }}}
    })
}

fn container(d: &Value) -> &Value {
    &d["spec"]["template"]["spec"]["containers"][0]
}

/// Asserts the slim configuration left nothing of what it stopped applying; `tuned` says
/// whether the second manager's fields must still be there.
fn assert_removed(d: &Value, tuned: bool) {
    let pod = &d["spec"]["template"]["spec"];
    let c = container(d);
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}), "{d:#}");
    assert!(c.get("readinessProbe").is_none(), "{c:#}");
    assert!(c.get("livenessProbe").is_none(), "{c:#}");
    assert_eq!(c["name"], "app");
    assert_eq!(c["image"], "nginx:1");
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(c["env"], json!([{"name": "MODE", "value": "prod"}]));
    if tuned {
        assert_eq!(
            c["resources"],
            json!({"limits": {"memory": "256Mi"}}),
            "{c:#}"
        );
        assert_eq!(
            pod["affinity"],
            tuner()["spec"]["template"]["spec"]["affinity"]
        );
    } else {
        assert!(c.get("resources").is_none_or(|r| r == &json!({})), "{c:#}");
        assert!(pod.get("affinity").is_none(), "{pod:#}");
    }
    assert_eq!(pod["containers"].as_array().map(Vec::len), Some(1));
}

/// The `fieldsV1` of `manager`'s `managedFields` entry (null without one).
fn fields_of(d: &Value, manager: &str) -> Value {
    d["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .find(|e| e["manager"] == manager)
        .map_or(Value::Null, |e| e["fieldsV1"].clone())
}

async fn ssa(t: &TestSim, file: &str, manager: &str) {
    let manager = format!("--field-manager={manager}");
    t.ok(&["apply", "--server-side", &manager, "-f", file])
        .await;
}

async fn get_json(t: &TestSim) -> Value {
    let out = t.ok(&["get", "deploy", "web", "-o", "json"]).await;
    serde_json::from_str(&out).expect("kubectl prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_removes_probes_affinity_rolling_update_and_limits_as_a_whole() {
    let t = TestSim::with(fast().controllers(false)).await;
    let api: Api<Deployment> = Api::default_namespaced(t.client());
    let pp = PatchParams::apply("satusky");
    let d = api.patch("web", &pp, &Patch::Apply(full())).await.unwrap();
    let d = serde_json::to_value(d).unwrap();
    assert_eq!(container(&d)["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(
        d["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": 1, "maxUnavailable": 0})
    );

    let d = api.patch("web", &pp, &Patch::Apply(slim())).await.unwrap();
    let d = serde_json::to_value(d).unwrap();
    assert_removed(&d, false);
    let mf = fields_of(&d, "satusky");
    let c = &mf["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"];
    assert!(c.get("f:readinessProbe").is_none(), "{mf:#}");
    assert!(c.get("f:resources").is_none(), "{mf:#}");
    assert!(
        c["f:ports"]
            .get("k:{\"containerPort\":8080,\"protocol\":\"TCP\"}")
            .is_some(),
        "{mf:#}"
    );
    assert!(c["f:env"].get("k:{\"name\":\"MODE\"}").is_some(), "{mf:#}");
    assert!(
        mf["f:spec"]["f:strategy"].get("f:rollingUpdate").is_none(),
        "{mf:#}"
    );
    assert_removed(&get_json(&t).await, false);

    // the same body again, twice: nothing changes, not even the resourceVersion
    let rv = d["metadata"]["resourceVersion"].clone();
    for _ in 0..2 {
        let again = api.patch("web", &pp, &Patch::Apply(slim())).await.unwrap();
        assert_eq!(json!(again.metadata.resource_version), rv);
    }
    // and putting the fields back brings them back
    let d = api.patch("web", &pp, &Patch::Apply(full())).await.unwrap();
    let d = serde_json::to_value(d).unwrap();
    assert_eq!(container(&d)["livenessProbe"]["httpGet"]["path"], "/live");
    assert_eq!(
        d["spec"]["template"]["spec"]["affinity"],
        full()["spec"]["template"]["spec"]["affinity"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_a_second_manager_owns_survive_the_first_managers_removal() {
    let t = TestSim::with(fast().controllers(false)).await;
    let api: Api<Deployment> = Api::default_namespaced(t.client());
    let pp = PatchParams::apply("satusky");
    api.patch("web", &pp, &Patch::Apply(full())).await.unwrap();
    api.patch("web", &PatchParams::apply("tuner"), &Patch::Apply(tuner()))
        .await
        .unwrap();
    let d = api.patch("web", &pp, &Patch::Apply(slim())).await.unwrap();
    let d = serde_json::to_value(d).unwrap();
    // the memory limit and the anti-affinity stay, in parents that keep only them
    assert_removed(&d, true);
    let tuned = fields_of(&d, "tuner");
    assert!(
        tuned["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]
            ["f:resources"]["f:limits"]
            .get("f:memory")
            .is_some(),
        "{tuned:#}"
    );
    assert_removed(&get_json(&t).await, true);

    // the second manager lets go too: now the parents go
    let bare = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    let d = api
        .patch("web", &PatchParams::apply("tuner"), &Patch::Apply(bare))
        .await
        .unwrap();
    let d = serde_json::to_value(d).unwrap();
    assert_removed(&d, false);
    assert_removed(&get_json(&t).await, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_server_side_removes_what_a_manager_stopped_applying() {
    let t = TestSim::with(fast().controllers(false)).await;
    let full_f = t.manifest("full.json", &full().to_string());
    let slim_f = t.manifest("slim.json", &slim().to_string());
    let tuner_f = t.manifest("tuner.json", &tuner().to_string());
    ssa(&t, &full_f, "deployer").await;
    let d = get_json(&t).await;
    assert_eq!(
        container(&d)["resources"]["limits"],
        json!({"cpu": "500m", "memory": "256Mi"})
    );
    ssa(&t, &slim_f, "deployer").await;
    let d = get_json(&t).await;
    assert_removed(&d, false);
    let api: Api<Deployment> = Api::default_namespaced(t.client());
    assert_removed(
        &serde_json::to_value(api.get("web").await.unwrap()).unwrap(),
        false,
    );

    // re-applying the same file twice changes nothing
    let rv = d["metadata"]["resourceVersion"].clone();
    for _ in 0..2 {
        ssa(&t, &slim_f, "deployer").await;
        assert_eq!(get_json(&t).await["metadata"]["resourceVersion"], rv);
    }

    // with a second manager holding some of the fields, they survive the removal
    ssa(&t, &full_f, "deployer").await;
    ssa(&t, &tuner_f, "tuner").await;
    ssa(&t, &slim_f, "deployer").await;
    assert_removed(&get_json(&t).await, true);
    assert_removed(
        &serde_json::to_value(api.get("web").await.unwrap()).unwrap(),
        true,
    );
}
