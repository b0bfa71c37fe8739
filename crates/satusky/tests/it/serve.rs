//! `satusky serve` as an operator runs it: a real cluster (here the
//! standalone kube-sim binary) registered with its kubeconfig.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{bin, eventually};

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_reconciles_apps_onto_a_registered_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let _sim = Killed(
        Command::new(bin("kube-sim"))
            .args(["--listen", "127.0.0.1:0", "--nodes", "2", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("kubeconfig written", Duration::from_secs(20), || {
        kubeconfig.exists().then_some(())
    });
    let port = free_port();
    let data = dir.path().join("data");
    let _serve = Killed(
        Command::new(env!("CARGO_BIN_EXE_satusky"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data)
            .env(
                "SATUSKY_SECRET_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .env("SATUSKY_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::blocking::Client::new();
    eventually("serve answers", Duration::from_secs(20), || {
        http.get(format!("{api}/readyz"))
            .send()
            .ok()
            .filter(|r| r.status().is_success())
    });
    let creds = json!({"email": "op@example.com", "password": "a long password"});
    assert_eq!(
        http.post(format!("{api}/v1/auth/signup"))
            .json(&creds)
            .send()
            .unwrap()
            .status(),
        201
    );
    let granted = Command::new(env!("CARGO_BIN_EXE_satusky"))
        .args(["admin", "grant", "op@example.com", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        granted.status.success(),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    let login: Value = http
        .post(format!("{api}/v1/auth/login"))
        .json(&creds)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let post = |path: &str, body: Value| {
        http.post(format!("{api}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .unwrap()
    };
    let cluster = json!({"name": "eu-1", "region": "eu", "zone": "eu-a", "default": true,
        "kubeconfig": std::fs::read_to_string(&kubeconfig).unwrap()});
    assert_eq!(post("/v1/clusters", cluster).status(), 201);
    assert_eq!(post("/v1/orgs", json!({"slug": "acme"})).status(), 201);
    assert_eq!(
        post(
            "/v1/orgs/acme/apps/web/deploy",
            json!({"image": "nginx:1", "create": true, "replicas": 2})
        )
        .status(),
        201
    );
    eventually(
        "web available on the registered cluster",
        Duration::from_mins(1),
        || {
            let app: Value = http
                .get(format!("{api}/v1/orgs/acme/apps/web"))
                .bearer_auth(&token)
                .send()
                .unwrap()
                .json()
                .unwrap();
            (app["status"]["phase"] == "available" && app["status"]["ready_replicas"] == 2)
                .then_some(())
        },
    );
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["-n", "org-acme", "get", "deployment", "web", "-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the Deployment is on the registered cluster"
    );
}
