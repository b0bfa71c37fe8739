//! The platform as a newcomer drives it: `satusky dev`, then `1ctl`.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Dev, eventually};

const WAIT: Duration = Duration::from_mins(1);

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_deploy_rolls_out_changes_roll_back_drift_is_repaired_and_delete_cleans_up() {
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path());
    dev.login();
    let orgs = dev.ctl_json(&["org", "list", "-o", "json"]);
    assert_eq!(orgs[0]["slug"], "dev");
    dev.ctl_json(&["org", "switch", "dev", "-o", "json"]);

    // A 3-replica deploy reaches Ready, with exactly the expected objects.
    let out = dev.ctl(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1.27",
        "--replicas",
        "3",
        "--port",
        "80",
        "--wait",
        "--timeout",
        "60s",
        "-o",
        "json",
    ]);
    assert!(
        out.status.success(),
        "deploy --wait failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deployment = dev.kubectl_json(&["-n", "org-dev", "get", "deployment", "web"]);
    assert_eq!(deployment["status"]["readyReplicas"], 3);
    let app = dev.ctl_json(&["app", "get", "web", "-o", "json"]);
    assert_eq!(app["status"]["phase"], "available");
    let app_id = app["id"].as_str().unwrap().to_owned();
    let selector = format!("satusky.com/app-id={app_id}");
    for kind in ["deployment", "service", "httproute", "poddisruptionbudget"] {
        let list = dev.kubectl_json(&["-n", "org-dev", "get", kind, "-l", &selector]);
        assert_eq!(names(&list), ["web"], "{kind}");
    }
    assert!(
        dev.kubectl_json(&["-n", "org-dev", "get", "ingress"])["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no Ingress, ever"
    );
    // Logs come from the pod log subresource of every replica.
    let client = reqwest::blocking::Client::new();
    let logs: Value = client
        .get(format!("{}/v1/orgs/dev/apps/web/logs?tail=5", dev.api))
        .bearer_auth(&dev.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let pods: std::collections::BTreeSet<_> = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["pod"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pods.len(), 3, "a log from each replica: {logs}");
    assert!(logs.to_string().contains("started container"), "{logs}");
    let route = dev.kubectl_json(&["-n", "org-dev", "get", "httproute", "web"]);
    assert_eq!(route["spec"]["hostnames"][0], "web-dev.apps.satusky.test");

    // Scale, config change and rollback each make a release and roll out.
    dev.ctl_json(&["app", "scale", "web", "2", "-o", "json"]);
    eventually("scale to 2", WAIT, || {
        let d = dev.kubectl_json(&["-n", "org-dev", "get", "deployment", "web"]);
        (d["spec"]["replicas"] == 2 && d["status"]["readyReplicas"] == 2).then_some(())
    });
    dev.ctl_json(&[
        "config",
        "create",
        "MODE=prod",
        "--app",
        "web",
        "-o",
        "json",
    ]);
    eventually("env rolled out", WAIT, || {
        let d = dev.kubectl_json(&["-n", "org-dev", "get", "deployment", "web"]);
        let env = d["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
        env.contains("MODE").then_some(())
    });
    dev.ctl_json(&["app", "rollback", "web", "--to", "1", "-o", "json"]);
    let releases = dev.ctl_json(&["app", "releases", "web", "-o", "json"]);
    let causes: Vec<_> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cause"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(causes, ["rollback", "config", "scale", "deploy"]);
    eventually("rollback to 3 replicas without MODE", WAIT, || {
        let d = dev.kubectl_json(&["-n", "org-dev", "get", "deployment", "web"]);
        let env = d["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
        (d["spec"]["replicas"] == 3 && !env.contains("MODE") && d["status"]["readyReplicas"] == 3)
            .then_some(())
    });

    // Drift is repaired: a deleted Deployment comes back.
    let gone = dev.kubectl(&[
        "-n",
        "org-dev",
        "delete",
        "deployment",
        "web",
        "--wait=false",
    ]);
    assert!(gone.status.success());
    eventually("deployment restored", WAIT, || {
        let out = dev.kubectl(&["-n", "org-dev", "get", "deployment", "web", "-o", "json"]);
        out.status.success().then_some(())
    });

    // Deleting the app removes every object it owned.
    dev.ctl_json(&["app", "delete", "web", "--yes", "-o", "json"]);
    eventually("objects removed", WAIT, || {
        let kinds =
            "deployments,services,httproutes,poddisruptionbudgets,secrets,persistentvolumeclaims";
        let left = dev.kubectl_json(&["-n", "org-dev", "get", kinds, "-l", &selector]);
        left["items"].as_array().unwrap().is_empty().then_some(())
    });
    eventually("app record removed", WAIT, || {
        let out = dev.ctl(&["app", "get", "web", "-o", "json"]);
        (out.status.code() == Some(1)).then_some(())
    });
}

#[test]
fn a_crash_looping_image_fails_deploy_wait_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path());
    dev.login();
    dev.ctl_json(&["org", "switch", "dev", "-o", "json"]);
    let out = dev.ctl(&[
        "deploy",
        "--name",
        "crashy",
        "--image",
        "ghcr.io/acme/kube-sim/crashloop:1",
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CrashLoopBackOff"), "stderr: {stderr}");
}

#[test]
fn another_organization_sees_none_of_it_and_a_restart_keeps_everything() {
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path());
    dev.login();
    dev.ctl_json(&["org", "switch", "dev", "-o", "json"]);
    dev.ctl_json(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1",
        "--replicas",
        "2",
        "-o",
        "json",
    ]);

    // Killed right after the deploy was accepted: the next run converges with nothing lost or duplicated.
    let token = dev.token.clone();
    let data_dir = dev.kill();
    let dev = Dev::start(&data_dir);
    assert_eq!(dev.token, token, "the dev token is kept between runs");
    dev.login();
    dev.ctl_json(&["org", "switch", "dev", "-o", "json"]);
    eventually("web available after restart", WAIT, || {
        let app = dev.ctl_json(&["app", "get", "web", "-o", "json"]);
        (app["status"]["phase"] == "available").then_some(())
    });
    let releases = dev.ctl_json(&["app", "releases", "web", "-o", "json"]);
    assert_eq!(releases.as_array().unwrap().len(), 1, "nothing duplicated");

    // Another organization: invisible.
    let eve = dev.another_user("eve@example.com");
    assert_eq!(
        dev.api_as(&eve, reqwest::Method::GET, "/v1/orgs/dev/apps", None)
            .0,
        404
    );
    assert_eq!(
        dev.api_as(&eve, reqwest::Method::GET, "/v1/orgs/dev/apps/web", None)
            .0,
        404
    );
}

#[test]
fn volumes_are_claimed_detached_and_deleted_only_when_detached() {
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path());
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        dev.api(method, &format!("/v1/orgs/dev/apps/db{path}"), body)
    };
    let deploy = serde_json::json!({"image": "postgres:16", "create": true, "volumes": [{"name": "data", "size": "1Gi", "mount_path": "/var/lib/postgresql"}]});
    assert_eq!(call(reqwest::Method::POST, "/deploy", Some(deploy)).0, 201);
    let bound = eventually("claim bound", WAIT, || {
        let (_, v) = call(reqwest::Method::GET, "/volumes/data", None);
        (v["phase"] == "Bound").then_some(v)
    });
    assert_eq!(
        (bound["attached"].as_bool(), bound["claim"].as_str()),
        (Some(true), Some("db-data"))
    );
    let (status, err) = call(reqwest::Method::DELETE, "/volumes/data", None);
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("volume_attached"))
    );
    let (status, detached) = call(reqwest::Method::POST, "/volumes/data/detach", None);
    assert_eq!(
        (status, detached["release"]["cause"].as_str()),
        (201, Some("volume_detach"))
    );
    eventually("deployment without the volume", WAIT, || {
        let d = dev.kubectl_json(&["-n", "org-dev", "get", "deployment", "db"]);
        d["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .is_none_or(Vec::is_empty)
            .then_some(())
    });
    let (_, claims) = call(reqwest::Method::GET, "/volume-claims", None);
    assert_eq!(
        claims["items"][0]["attached"], false,
        "the data stays: {claims}"
    );
    assert!(
        dev.kubectl(&["-n", "org-dev", "get", "pvc", "db-data"])
            .status
            .success()
    );
    assert_eq!(call(reqwest::Method::DELETE, "/volumes/data", None).0, 204);
    eventually("claim deleted", WAIT, || {
        (!dev
            .kubectl(&["-n", "org-dev", "get", "pvc", "db-data"])
            .status
            .success())
        .then_some(())
    });
}

#[test]
fn machines_join_take_labels_place_workloads_drain_and_stay_private() {
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path());
    let api = |method: reqwest::Method, path: &str, body: Option<Value>| {
        dev.api(method, &format!("/v1/orgs/dev{path}"), body)
    };
    // Three simulated Talos machines provisioned through SideroLink and joined as nodes.
    let machines = eventually("three joined machines", WAIT, || {
        let (_, page) = api(reqwest::Method::GET, "/machines", None);
        let items = page["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 3 && items.iter().all(|m| m["state"] == "joined")).then_some(items)
    });
    let nodes = names(&dev.kubectl_json(&["get", "nodes"]));
    let mut machine_nodes: Vec<String> = machines
        .iter()
        .map(|m| m["node_name"].as_str().unwrap().to_owned())
        .collect();
    machine_nodes.sort();
    assert_eq!(nodes, machine_nodes);

    // Labels reach the node within a second, and a selector query agrees with kubectl.
    let (a, b) = (
        machines[0]["id"].as_str().unwrap(),
        machines[1]["id"].as_str().unwrap(),
    );
    for id in [a, b] {
        let (status, _) = api(
            reqwest::Method::PATCH,
            &format!("/machines/{id}/labels"),
            Some(serde_json::json!({"set": {"pool": "gpu"}})),
        );
        assert_eq!(status, 200);
    }
    let started = std::time::Instant::now();
    eventually("labels on nodes", Duration::from_secs(1), || {
        (names(&dev.kubectl_json(&["get", "nodes", "-l", "satusky.com/pool=gpu"])).len() == 2)
            .then_some(())
    });
    assert!(started.elapsed() < Duration::from_secs(1));
    for (ours, theirs) in [
        ("pool=gpu", "satusky.com/pool=gpu"),
        ("!pool", "!satusky.com/pool"),
        (
            "pool in (gpu,cpu),arch",
            "satusky.com/pool in (gpu,cpu),kubernetes.io/arch",
        ),
    ] {
        let (_, page) = api(
            reqwest::Method::GET,
            &format!("/machines?selector={}", urlencode(ours)),
            None,
        );
        let mut got: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["node_name"].as_str().unwrap().to_owned())
            .collect();
        got.sort();
        assert_eq!(
            got,
            names(&dev.kubectl_json(&["get", "nodes", "-l", theirs])),
            "{ours}"
        );
    }

    // A deployment with a selector lands only on matching machines and moves off a drained one.
    let deploy = serde_json::json!({"image": "nginx:1", "create": true, "replicas": 2, "machine_selector": "pool=gpu"});
    assert_eq!(
        api(reqwest::Method::POST, "/apps/ml/deploy", Some(deploy)).0,
        201
    );
    let gpu_nodes = names(&dev.kubectl_json(&["get", "nodes", "-l", "satusky.com/pool=gpu"]));
    let pod_nodes = || -> Vec<String> {
        let pods = dev.kubectl_json(&[
            "-n",
            "org-dev",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=ml",
        ]);
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_owned))
            .collect()
    };
    eventually("two replicas on gpu machines", WAIT, || {
        let on = pod_nodes();
        (on.len() == 2 && on.iter().all(|n| gpu_nodes.contains(n))).then_some(())
    });
    let drained = machines[0]["node_name"].as_str().unwrap().to_owned();
    let (status, _) = api(
        reqwest::Method::POST,
        &format!("/machines/{a}/drain"),
        Some(serde_json::json!({"timeout_seconds": 30})),
    );
    assert_eq!(status, 202);
    eventually("replicas moved off the drained machine", WAIT, || {
        let on = pod_nodes();
        (on.len() == 2 && on.iter().all(|n| *n != drained)).then_some(())
    });
    eventually("drain finished, machine cordoned", WAIT, || {
        let (_, m) = api(reqwest::Method::GET, &format!("/machines/{a}"), None);
        (m["state"] == "cordoned").then_some(())
    });

    // Another organization sees and touches none of it.
    let eve = dev.another_user("eve@example.com");
    assert_eq!(
        dev.api_as(
            &eve,
            reqwest::Method::GET,
            &format!("/v1/orgs/dev/machines/{a}"),
            None
        )
        .0,
        404
    );
    let reboot = dev.api_as(
        &eve,
        reqwest::Method::POST,
        &format!("/v1/orgs/dev/machines/{a}/reboot"),
        Some(serde_json::json!({})),
    );
    assert_eq!(reboot.0, 404);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
