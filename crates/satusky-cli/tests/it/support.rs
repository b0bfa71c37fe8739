//! Test fixtures: a temporary configuration directory to run the real
//! `1ctl` in, and a mock Satusky API on 127.0.0.1 answering canned JSON and
//! recording every request.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use satusky_types::env;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_1ctl");

/// Variables that must not leak from the developer's shell into a test.
const SCRUBBED: &[&str] = &[
    env::SATUSKY_API_URL,
    env::SATUSKY_TOKEN,
    env::SATUSKY_PROFILE,
    env::SATUSKY_CONFIG_DIR,
    "NO_COLOR",
    "COLUMNS",
];

/// What one run of `1ctl` did.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Exit code, stdout and stderr, for a snapshot.
    pub fn snapshot(&self) -> String {
        format!(
            "exit: {}\n----- stdout -----\n{}----- stderr -----\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success:\n{}", self.snapshot());
        self
    }
}

/// A home for one test: its own configuration directory.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir().join("config.json")
    }

    pub fn config(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.config_file()).unwrap()).unwrap()
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for key in SCRUBBED {
            cmd.env_remove(key);
        }
        cmd.env(env::SATUSKY_CONFIG_DIR, self.config_dir());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[], None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(args, &[], Some(stdin))
    }

    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut cmd = self.command();
        cmd.args(args).envs(envs.iter().copied());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run 1ctl");
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Logs the default profile in to `mock` with a token, without the server.
    pub fn seed_profile(&self, name: &str, api_url: &str, token: &str, org: Option<&str>) {
        let mut config = if self.config_file().exists() {
            self.config()
        } else {
            json!({"active_profile": name, "profiles": {}})
        };
        let mut profile = json!({"api_url": api_url, "token": token});
        if let Some(org) = org {
            profile["org"] = json!(org);
        }
        config["profiles"][name] = profile;
        std::fs::create_dir_all(self.config_dir()).unwrap();
        std::fs::write(
            self.config_file(),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
    }
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct MockState {
    routes: Vec<(String, String, u16, Value)>,
    requests: Vec<Recorded>,
}

/// A mock Satusky API. Routes match on method and path, or on method, path
/// and query when the route is written with `?`.
pub struct MockApi {
    pub url: String,
    state: Arc<Mutex<MockState>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MockApi {
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(MockState::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Self {
            url,
            state,
            shutdown: Some(tx),
        }
    }

    /// Answers `method path` with `status` and `body` (`Value::Null` → no body).
    pub fn on(&self, method: &str, path: &str, status: u16, body: Value) -> &Self {
        self.state
            .lock()
            .unwrap()
            .routes
            .push((method.to_owned(), path.to_owned(), status, body));
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests as `METHOD /path?query` lines.
    pub fn calls(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| match &r.query {
                Some(q) => format!("{} {}?{q}", r.method, r.path),
                None => format!("{} {}", r.method, r.path),
            })
            .collect()
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle(
    State(state): State<Arc<Mutex<MockState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        authorization: header("authorization"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let mut state = state.lock().unwrap();
    let full = match uri.query() {
        Some(q) => format!("{}?{q}", uri.path()),
        None => uri.path().to_owned(),
    };
    let found = state
        .routes
        .iter()
        .find(|(m, p, ..)| *m == recorded.method && *p == full)
        .or_else(|| {
            state
                .routes
                .iter()
                .find(|(m, p, ..)| *m == recorded.method && *p == recorded.path)
        })
        .map(|(_, _, status, body)| (*status, body.clone()));
    state.requests.push(recorded);
    match found {
        Some((status, Value::Null)) => StatusCode::from_u16(status).unwrap().into_response(),
        Some((status, body)) => {
            (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(error_body("route_not_found", "no such route", "req-mock")),
        )
            .into_response(),
    }
}

pub fn error_body(code: &str, message: &str, request_id: &str) -> Value {
    json!({"error": {"code": code, "message": message, "request_id": request_id}})
}

pub fn user() -> Value {
    json!({"id": "usr_1", "email": "alice@example.com", "name": "Alice", "created_at": "2026-01-02T03:04:05Z"})
}

pub fn me(auth: &str, token_org: Option<&str>) -> Value {
    let mut me = json!({"user": user(), "auth": auth});
    if let Some(org) = token_org {
        me["token_org"] = json!(org);
    }
    me
}

pub fn org(slug: &str) -> Value {
    json!({"id": format!("org_{slug}"), "slug": slug, "name": slug.to_uppercase(), "namespace": format!("org-{slug}"), "role": "owner", "created_at": "2026-01-02T03:04:05Z"})
}

pub fn page(items: Vec<Value>, next: Option<&str>) -> Value {
    match next {
        Some(c) => json!({"items": items, "next_cursor": c}),
        None => json!({"items": items}),
    }
}

pub fn member(email: &str, role: &str) -> Value {
    json!({"user_id": "usr_2", "email": email, "name": "Bob", "role": role, "joined_at": "2026-01-02T03:04:05Z"})
}

pub fn api_token(name: &str) -> Value {
    json!({"id": "tok_1", "name": name, "prefix": "sk_pat_ab12", "enabled": true, "created_at": "2026-01-02T03:04:05Z"})
}

pub fn audit_entry(id: &str) -> Value {
    json!({"id": id, "org_id": "org_acme", "actor_email": "alice@example.com", "action": "org.member.add", "target": "user:bob@example.com", "request_id": "req-1", "outcome": "success", "at": "2026-01-02T03:04:05Z"})
}
