//! The real kubectl 1.32 binary against kube-sim.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::support::{DEPLOYMENT, TestSim, eventually};

async fn rolled_out(t: &TestSim, name: &str) {
    t.ok(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=30s",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_tables_yaml_json_and_filters_by_labels_and_fields() {
    let t = TestSim::start().await;
    let nodes = t.ok(&["get", "nodes"]).await;
    assert!(
        nodes.contains("node-0") && nodes.contains("Ready"),
        "{nodes}"
    );
    let f = t.manifest("web.yaml", DEPLOYMENT);
    t.ok(&["apply", "-f", &f]).await;
    rolled_out(&t, "web").await;

    let yaml = t.ok(&["get", "deployment", "web", "-o", "yaml"]).await;
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("readyReplicas: 3"),
        "{yaml}"
    );
    let json: Value = serde_json::from_str(&t.ok(&["get", "pods", "-o", "json"]).await).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 3);

    let by_label = t
        .ok(&["get", "pods", "-l", "app in (web),team!=b", "-o", "name"])
        .await;
    assert_eq!(by_label.lines().count(), 3, "{by_label}");
    let none = t
        .ok(&["get", "pods", "-l", "app=other", "-o", "name"])
        .await;
    assert_eq!(none.trim(), "");

    let node = json["items"][0]["spec"]["nodeName"]
        .as_str()
        .unwrap()
        .to_owned();
    let on_node = t
        .ok(&[
            "get",
            "pods",
            "-A",
            "--field-selector",
            &format!("spec.nodeName={node},status.phase=Running"),
            "-o",
            "name",
        ])
        .await;
    assert!(on_node.lines().count() >= 1, "{on_node}");
    let err = t
        .fails(&["get", "pods", "--field-selector", "spec.image=x"])
        .await;
    assert!(err.contains("field label not supported"), "{err}");
    let err = t.fails(&["get", "pods", "-l", "app in (web"]).await;
    assert!(!err.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_streams_pod_changes() {
    use tokio::io::AsyncBufReadExt;
    let t = TestSim::start().await;
    // a first pod makes kubectl print a row as soon as its initial list is done
    t.ok(&["run", "seed", "--image=busybox"]).await;
    let mut child = t
        .kubectl_cmd(&["get", "pods", "-w", "--request-timeout=0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let read = async {
        while let Ok(Some(l)) = lines.next_line().await {
            seen.push(l.clone());
            if l.starts_with("seed") && seen.iter().filter(|x| x.starts_with("seed")).count() == 1 {
                t.ok(&["run", "solo", "--image=busybox"]).await;
            }
            if l.starts_with("solo") && l.contains("Running") && l.contains("1/1") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .unwrap_or_else(|_| panic!("watch output so far: {seen:?}"));
    child.start_kill().unwrap();
    let solo = seen.iter().filter(|l| l.starts_with("solo")).count();
    assert!(solo >= 2, "the pod's changes stream in: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_pod_conditions_and_events() {
    let t = TestSim::start().await;
    t.ok(&["run", "solo", "--image=busybox"]).await;
    t.ok(&["wait", "--for=condition=Ready", "pod/solo", "--timeout=20s"])
        .await;
    let d = t.ok(&["describe", "pod", "solo"]).await;
    assert!(d.contains("Status:") && d.contains("Running"), "{d}");
    assert!(d.contains("Scheduled") && d.contains("Started"), "{d}");
    let n = t.ok(&["describe", "node", "node-0"]).await;
    assert!(
        n.contains("Allocatable") && n.contains("topology.kubernetes.io/zone"),
        "{n}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_from_files_and_generators() {
    let t = TestSim::start().await;
    t.ok(&["create", "namespace", "team"]).await;
    t.ok(&[
        "-n",
        "team",
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=b",
    ])
    .await;
    t.ok(&[
        "-n",
        "team",
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=k=v",
    ])
    .await;
    t.ok(&[
        "-n",
        "team",
        "create",
        "deployment",
        "d",
        "--image=nginx",
        "--replicas=2",
    ])
    .await;
    t.ok(&[
        "-n",
        "team",
        "create",
        "service",
        "clusterip",
        "svc",
        "--tcp=80:8080",
    ])
    .await;
    let svc = t
        .ok(&[
            "-n",
            "team",
            "get",
            "svc",
            "svc",
            "-o",
            "jsonpath={.spec.ports[0].targetPort} {.spec.clusterIP}",
        ])
        .await;
    assert!(svc.starts_with("8080 10.96."), "{svc}");
    let f = t.manifest("web.yaml", DEPLOYMENT);
    t.ok(&["-n", "team", "create", "-f", &f]).await;
    let err = t.fails(&["-n", "team", "create", "-f", &f]).await;
    assert!(
        err.contains("AlreadyExists") || err.contains("already exists"),
        "{err}"
    );
    let cm = t
        .ok(&["-n", "team", "get", "cm", "cfg", "-o", "jsonpath={.data.a}"])
        .await;
    assert_eq!(cm, "b");
    t.ok(&[
        "-n",
        "team",
        "rollout",
        "status",
        "deployment/d",
        "--timeout=30s",
    ])
    .await;
    let err = t
        .fails(&["-n", "missing", "create", "configmap", "x"])
        .await;
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_client_side_and_server_side_with_a_conflict_and_force() {
    let t = TestSim::start().await;
    let f = t.manifest("web.yaml", DEPLOYMENT);
    t.ok(&["apply", "-f", &f]).await;
    let f2 = t.manifest(
        "web2.yaml",
        &DEPLOYMENT.replace("replicas: 3", "replicas: 2"),
    );
    assert!(t.ok(&["apply", "-f", &f2]).await.contains("configured"));
    assert_eq!(
        t.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
            .await,
        "2"
    );

    // kubectl diff (a server-side dry run) shows exactly the change
    let f5 = t.manifest(
        "web5.yaml",
        &DEPLOYMENT.replace("replicas: 3", "replicas: 5"),
    );
    let diff = t.kubectl(&["diff", "-f", &f5]).await;
    assert_eq!(diff.status.code(), Some(1), "diff exits 1 on differences");
    let changed: Vec<String> = String::from_utf8_lossy(&diff.stdout)
        .lines()
        .filter(|l| (l.starts_with("- ") || l.starts_with("+ ")) && !l.contains("generation"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(changed, ["- replicas: 2", "+ replicas: 5"]);
    assert_eq!(
        t.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
            .await,
        "2"
    );
    t.ok(&["apply", "--server-side", "--field-manager=alice", "-f", &f2])
        .await;
    let f4 = t.manifest(
        "web4.yaml",
        &DEPLOYMENT.replace("replicas: 3", "replicas: 4"),
    );
    let err = t
        .fails(&["apply", "--server-side", "--field-manager=bob", "-f", &f4])
        .await;
    assert!(
        err.contains("conflict") && err.contains(".spec.replicas"),
        "{err}"
    );
    t.ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=bob",
        "-f",
        &f4,
    ])
    .await;
    assert_eq!(
        t.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
            .await,
        "4"
    );
    let mf = t
        .ok(&[
            "get",
            "deploy",
            "web",
            "--show-managed-fields",
            "-o",
            "json",
        ])
        .await;
    let v: Value = serde_json::from_str(&mf).unwrap();
    let managers: Vec<&str> = v["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert!(managers.contains(&"bob"), "{managers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_label_annotate_and_scale() {
    let t = TestSim::start().await;
    let f = t.manifest("web.yaml", DEPLOYMENT);
    t.ok(&["apply", "-f", &f]).await;
    t.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.26"}]}}}}"#,
    ])
    .await;
    t.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"m":"1"}}}"#,
    ])
    .await;
    t.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#,
    ])
    .await;
    t.ok(&["label", "deploy", "web", "tier=front"]).await;
    t.ok(&["annotate", "deploy", "web", "note=hello"]).await;
    let v: Value =
        serde_json::from_str(&t.ok(&["get", "deploy", "web", "-o", "json"]).await).unwrap();
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "100m"
    );
    assert_eq!(v["metadata"]["labels"]["m"], "1");
    assert_eq!(v["metadata"]["labels"]["tier"], "front");
    assert_eq!(v["metadata"]["annotations"]["note"], "hello");
    assert_eq!(v["spec"]["replicas"], 2);
    t.ok(&["scale", "deploy", "web", "--replicas=5"]).await;
    rolled_out(&t, "web").await;
    assert_eq!(
        t.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}"
        ])
        .await,
        "5"
    );
    let err = t
        .fails(&[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
        ])
        .await;
    assert!(!err.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_and_undo_reuse_the_previous_replica_set() {
    let t = TestSim::start().await;
    let f = t.manifest("web.yaml", DEPLOYMENT);
    t.ok(&["apply", "-f", &f]).await;
    rolled_out(&t, "web").await;
    let first_rs = t.ok(&["get", "rs", "-l", "app=web", "-o", "name"]).await;
    t.ok(&["set", "image", "deployment/web", "web=nginx:1.26"])
        .await;
    rolled_out(&t, "web").await;
    let history = t.ok(&["rollout", "history", "deployment/web"]).await;
    assert!(history.contains('1') && history.contains('2'), "{history}");
    t.ok(&["rollout", "undo", "deployment/web"]).await;
    rolled_out(&t, "web").await;
    let image = t
        .ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(image, "nginx:1.25");
    let rs = t.ok(&["get", "rs", "-l", "app=web", "-o", "name"]).await;
    assert_eq!(
        rs.lines().count(),
        2,
        "undo reuses the first replica set: {rs}"
    );
    assert!(rs.contains(first_rs.trim()), "{rs}");
    let revision = t
        .ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ])
        .await;
    assert_eq!(revision, "3");
}

const DAEMONSET: &str = r"apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: agent:1}]
";

const SCRATCH: &str = r"apiVersion: apps/v1
kind: Deployment
metadata: {name: scratch}
spec:
  replicas: 1
  selector: {matchLabels: {app: scratch}}
  template:
    metadata: {labels: {app: scratch}}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-0}
      containers: [{name: c, image: busybox:1}]
      volumes: [{name: tmp, emptyDir: {}}]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordon_uncordon_and_drain_with_daemonsets_emptydir_and_a_blocking_pdb() {
    let t = TestSim::start().await;
    t.ok(&["apply", "-f", &t.manifest("ds.yaml", DAEMONSET)])
        .await;
    t.ok(&["apply", "-f", &t.manifest("scratch.yaml", SCRATCH)])
        .await;
    rolled_out(&t, "scratch").await;
    eventually("daemonset pods ready", 20, || async {
        t.ok(&["get", "ds", "agent", "-o", "jsonpath={.status.numberReady}"])
            .await
            == "3"
    })
    .await;

    t.ok(&["rollout", "status", "daemonset/agent", "--timeout=20s"])
        .await;
    t.ok(&["cordon", "node-1"]).await;
    let nodes = t.ok(&["get", "node", "node-1"]).await;
    assert!(nodes.contains("SchedulingDisabled"), "{nodes}");
    t.ok(&["uncordon", "node-1"]).await;
    assert!(
        !t.ok(&["get", "node", "node-1"])
            .await
            .contains("SchedulingDisabled")
    );

    // without flags the drain refuses daemonset pods and emptyDir pods
    let err = t.fails(&["drain", "node-0", "--timeout=5s"]).await;
    assert!(
        err.contains("DaemonSet-managed Pods") && err.contains("local storage"),
        "{err}"
    );

    // a PDB that allows no disruption blocks the drain until the timeout
    t.ok(&[
        "create",
        "pdb",
        "scratch",
        "--selector=app=scratch",
        "--min-available=1",
    ])
    .await;
    eventually("pdb status", 10, || async {
        t.ok(&[
            "get",
            "pdb",
            "scratch",
            "-o",
            "jsonpath={.status.observedGeneration}",
        ])
        .await
            == "1"
    })
    .await;
    let err = t
        .fails(&[
            "drain",
            "node-0",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=3s",
        ])
        .await;
    assert!(
        err.contains("global timeout reached") || err.contains("disruption budget"),
        "{err}"
    );
    assert!(
        t.ok(&["get", "node", "node-0"])
            .await
            .contains("SchedulingDisabled")
    );

    t.ok(&["delete", "pdb", "scratch"]).await;
    // the replacement pod cannot go anywhere but node-0 (nodeSelector): relax it
    t.ok(&[
        "patch",
        "deploy",
        "scratch",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]"#,
    ])
    .await;
    let out = t
        .ok(&[
            "drain",
            "node-0",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=30s",
        ])
        .await;
    assert!(out.contains("drained"), "{out}");
    let left = t
        .ok(&[
            "get",
            "pods",
            "--field-selector",
            "spec.nodeName=node-0",
            "-l",
            "app!=agent",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(left.trim(), "", "only daemonset pods stay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_logs_follow() {
    let t = TestSim::start().await;
    t.ok(&[
        "run",
        "talker",
        "--image=busybox",
        "--annotations=kube-sim.satusky.dev/log-every-ms=100",
    ])
    .await;
    t.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/talker",
        "--timeout=20s",
    ])
    .await;
    let logs = t.ok(&["logs", "talker"]).await;
    assert!(logs.contains("started container talker"), "{logs}");
    t.sim
        .append_log("default", "talker", "talker", "hello from the test");
    assert!(
        t.ok(&["logs", "talker", "--tail=20"])
            .await
            .contains("hello from the test")
    );
    let mut child = t
        .kubectl_cmd(&["logs", "-f", "talker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    t.sim
        .append_log("default", "talker", "talker", "streamed line");
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.start_kill().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert!(out.contains("streamed line"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_nodes_and_pods_follow_requests_and_load() {
    let t = TestSim::start().await;
    let f = t.manifest("web.yaml", DEPLOYMENT);
    t.ok(&["apply", "-f", &f]).await;
    rolled_out(&t, "web").await;
    let nodes = t.ok(&["top", "nodes"]).await;
    assert!(nodes.contains("node-0") && nodes.contains("CPU"), "{nodes}");
    let pods = t.ok(&["top", "pods"]).await;
    assert_eq!(
        pods.lines().filter(|l| l.starts_with("web-")).count(),
        3,
        "{pods}"
    );
    let pod = pods
        .lines()
        .find(|l| l.starts_with("web-"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    t.sim.set_load("default", &pod, 900);
    let loaded = t.ok(&["top", "pod", &pod]).await;
    assert!(loaded.contains("950m"), "{loaded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_each_cascade_mode() {
    let t = TestSim::start().await;
    let f = t.manifest("web.yaml", DEPLOYMENT);
    t.ok(&["apply", "-f", &f]).await;
    rolled_out(&t, "web").await;
    t.ok(&["delete", "deploy", "web", "--cascade=orphan"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        t.ok(&["get", "rs", "-l", "app=web", "-o", "name"])
            .await
            .lines()
            .count(),
        1,
        "orphaned replica set stays"
    );
    let rs = t.ok(&["get", "rs", "-l", "app=web", "-o", "json"]).await;
    assert!(!rs.contains("ownerReferences"), "owner reference stripped");

    t.ok(&["delete", "rs", "-l", "app=web", "--cascade=foreground"])
        .await;
    assert_eq!(
        t.ok(&["get", "pods", "-l", "app=web", "-o", "name"])
            .await
            .trim(),
        "",
        "foreground waits for pods"
    );

    t.ok(&["apply", "-f", &f]).await;
    rolled_out(&t, "web").await;
    t.ok(&["delete", "deploy", "web", "--cascade=background"])
        .await;
    eventually("background GC removes pods", 20, || async {
        t.ok(&["get", "rs,pods", "-l", "app=web", "-o", "name"])
            .await
            .trim()
            .is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_namespace_removes_its_content() {
    let t = TestSim::start().await;
    t.ok(&["create", "namespace", "doomed"]).await;
    let f = t.manifest("web.yaml", DEPLOYMENT);
    t.ok(&["-n", "doomed", "apply", "-f", &f]).await;
    t.ok(&[
        "-n",
        "doomed",
        "rollout",
        "status",
        "deploy/web",
        "--timeout=30s",
    ])
    .await;
    t.ok(&["delete", "namespace", "doomed", "--timeout=30s"])
        .await;
    let err = t.fails(&["get", "namespace", "doomed"]).await;
    assert!(err.contains("not found"), "{err}");
    assert_eq!(
        t.ok(&["get", "pods", "-n", "doomed", "-o", "name"])
            .await
            .trim(),
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_bearer_token_work_for_kubectl_and_kube_rs() {
    let t = TestSim::with(crate::support::fast().tls(true).token("s3cret")).await;
    assert!(t.sim.url().starts_with("https://127.0.0.1:"));
    let nodes = t.ok(&["get", "nodes", "-o", "name"]).await;
    assert_eq!(nodes.lines().count(), 3, "{nodes}");
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(t.client());
    assert_eq!(
        api.list(&kube::api::ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    let err = t.fails(&["get", "nodes", "--token", "wrong"]).await;
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );
}
