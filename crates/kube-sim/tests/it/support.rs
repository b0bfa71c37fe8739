//! A simulator per test, with a kubeconfig in a temp dir and a kubectl runner.

use std::future::Future;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use kube_sim::{Builder, KubeSim, Sim};
use tempfile::TempDir;

pub struct TestSim {
    pub sim: Sim,
    dir: TempDir,
    kubeconfig: PathBuf,
}

/// Short delays so controller-driven tests finish quickly.
pub fn fast() -> Builder {
    KubeSim::builder()
        .nodes(3)
        .tick(Duration::from_millis(10))
        .pod_start_delay(Duration::from_millis(20))
        .pod_ready_delay(Duration::from_millis(10))
        .pod_stop_delay(Duration::from_millis(20))
}

impl TestSim {
    pub async fn start() -> Self {
        Self::with(fast()).await
    }

    pub async fn with(builder: Builder) -> Self {
        let sim = builder.start().await.expect("sim starts");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Self {
            sim,
            dir,
            kubeconfig,
        }
    }

    pub fn client(&self) -> kube::Client {
        self.sim.client().expect("client")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a manifest into the temp dir and returns its path.
    pub fn manifest(&self, name: &str, yaml: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, yaml).expect("write manifest");
        p.display().to_string()
    }

    pub fn kubectl_cmd(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .env("HOME", self.dir.path())
            .kill_on_drop(true);
        c
    }

    pub async fn kubectl(&self, args: &[&str]) -> Output {
        tokio::time::timeout(Duration::from_mins(1), self.kubectl_cmd(args).output())
            .await
            .expect("kubectl finishes within 60 s")
            .expect("kubectl runs")
    }

    /// Runs kubectl, asserts success and returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed\nstdout: {stdout}\nstderr: {stderr}"
        );
        stdout
    }

    /// Runs kubectl, asserts failure and returns stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }
}

/// Polls `f` until it returns true, or panics after `secs`.
pub async fn eventually<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out after {secs}s waiting for: {what}");
}

pub const DEPLOYMENT: &str = r"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {team: a}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        resources: {requests: {cpu: 100m, memory: 64Mi}}
";
