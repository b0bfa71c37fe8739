//! Runs `satusky dev`, `1ctl` and `kubectl` as a user would.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binaries built next to this test's `satusky`.
pub fn bin(name: &str) -> PathBuf {
    let satusky = PathBuf::from(env!("CARGO_BIN_EXE_satusky"));
    let path = satusky.with_file_name(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace` first",
        path.display()
    );
    path
}

pub struct Dev {
    pub child: Child,
    pub api: String,
    pub token: String,
    pub kubeconfig: String,
    pub data: PathBuf,
    pub home: tempfile::TempDir,
}

impl Dev {
    /// Starts `satusky dev` on a free port with its data in `data`.
    pub fn start(data: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_satusky"))
            .args(["dev", "--port", "0", "--machines", "3", "--data-dir"])
            .arg(data)
            .env("SATUSKY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut api, mut token, mut kubeconfig) = (String::new(), String::new(), String::new());
        for line in lines.by_ref() {
            let line = line.unwrap();
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.first().copied() {
                Some("API:") => words[1].clone_into(&mut api),
                Some("Log") => (*words.last().unwrap()).clone_into(&mut token),
                Some("Kubeconfig:") => words[1].clone_into(&mut kubeconfig),
                Some("Press") => break,
                _ => {}
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        assert!(
            api.starts_with("http://") && token.starts_with("sk_pat_"),
            "dev printed no login line"
        );
        Self {
            child,
            api,
            token,
            kubeconfig,
            data: data.to_owned(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// Logs 1ctl in with the dev token (`auth login --token`), insisting on success.
    pub fn login(&self) {
        self.ctl_json(&[
            "auth",
            "login",
            "--api-url",
            &self.api,
            "--token",
            &self.token,
            "-o",
            "json",
        ]);
    }

    /// Runs 1ctl with its own config directory.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin("1ctl"))
            .args(args)
            .env("SATUSKY_CONFIG_DIR", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("SATUSKY_TOKEN")
            .env_remove("SATUSKY_API_URL")
            .env_remove("SATUSKY_PROFILE")
            .output()
            .unwrap()
    }

    /// Runs 1ctl and parses its JSON output, insisting on success.
    #[track_caller]
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "1ctl {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "1ctl {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.kubectl(&all);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Calls the API as the dev admin; `path` starts at `/v1`.
    pub fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(&self.token, method, path, body)
    }

    /// Calls the API with another token.
    pub fn api_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = reqwest::blocking::Client::new()
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().unwrap_or(Value::Null))
    }

    /// Signs a new user up and logs them in; returns their session token.
    pub fn another_user(&self, email: &str) -> String {
        let body = serde_json::json!({"email": email, "password": "a long password"});
        let (status, _) = self.api_as(
            "",
            reqwest::Method::POST,
            "/v1/auth/signup",
            Some(body.clone()),
        );
        assert!(status == 201 || status == 409, "signup: {status}");
        let (_, login) = self.api_as("", reqwest::Method::POST, "/v1/auth/login", Some(body));
        login["token"].as_str().unwrap().to_owned()
    }

    pub fn kill(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.data.clone()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until `f` returns `Some`, or panics with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
