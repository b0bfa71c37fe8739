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

    /// The current directory of every run (where satusky.toml files go).
    pub fn work_dir(&self) -> PathBuf {
        let dir = self.dir.path().join("work");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes a file in the work directory.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.work_dir().join(name), text).unwrap();
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
        cmd.current_dir(self.work_dir());
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
    pub idempotency_key: Option<String>,
    pub body: Value,
}

/// One route of the mock: its answers in turn, the last one repeated.
struct Route {
    method: String,
    path: String,
    answers: Vec<(u16, Value)>,
    next: usize,
}

#[derive(Default)]
struct MockState {
    routes: Vec<Route>,
    requests: Vec<Recorded>,
    /// Events each WebSocket connection to `…/events/ws` is sent, then closed.
    ws_events: Option<Vec<Value>>,
    /// Messages sent on WebSocket connections to one exact path, then closed.
    ws_paths: Vec<(String, Vec<Value>)>,
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
            .route(
                "/v1/orgs/{org}/apps/{app}/events/ws",
                axum::routing::get(events_ws),
            )
            .route(
                "/v1/orgs/{org}/apps/{app}/logs/ws",
                axum::routing::get(events_ws),
            )
            .route(
                "/v1/orgs/{org}/machines/{machine}/events/ws",
                axum::routing::get(events_ws),
            )
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
        self.on_seq(method, path, vec![(status, body)])
    }

    /// Answers `method path` with each of `answers` in turn, then the last
    /// one again and again.
    pub fn on_seq(&self, method: &str, path: &str, answers: Vec<(u16, Value)>) -> &Self {
        self.state.lock().unwrap().routes.push(Route {
            method: method.to_owned(),
            path: path.to_owned(),
            answers,
            next: 0,
        });
        self
    }

    /// Accepts WebSocket connections to `…/apps/{app}/events/ws`, sends
    /// `events` as text messages, then closes. Without this the upgrade is
    /// refused with 404.
    pub fn ws_events(&self, events: Vec<Value>) -> &Self {
        self.state.lock().unwrap().ws_events = Some(events);
        self
    }

    /// Accepts WebSocket connections to exactly `path` (an app's logs, a
    /// machine's events), sends `messages` as text, then closes.
    pub fn ws_on(&self, path: &str, messages: Vec<Value>) -> &Self {
        self.state
            .lock()
            .unwrap()
            .ws_paths
            .push((path.to_owned(), messages));
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
        idempotency_key: header("idempotency-key"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let mut state = state.lock().unwrap();
    let full = match uri.query() {
        Some(q) => format!("{}?{q}", uri.path()),
        None => uri.path().to_owned(),
    };
    let index = state
        .routes
        .iter()
        .position(|r| r.method == recorded.method && r.path == full)
        .or_else(|| {
            state
                .routes
                .iter()
                .position(|r| r.method == recorded.method && r.path == recorded.path)
        });
    let found = index.map(|i| {
        let route = &mut state.routes[i];
        let answer = route.answers[route.next.min(route.answers.len() - 1)].clone();
        route.next += 1;
        answer
    });
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

async fn events_ws(
    State(state): State<Arc<Mutex<MockState>>>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Response {
    use axum::extract::ws::Message;
    let events = {
        let mut state = state.lock().unwrap();
        state.requests.push(Recorded {
            method: "WS".to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            idempotency_key: None,
            body: Value::Null,
        });
        let path = uri.path();
        match state.ws_paths.iter().find(|(p, _)| p == path) {
            Some((_, messages)) => Some(messages.clone()),
            None if path.contains("/apps/") && path.ends_with("/events/ws") => {
                state.ws_events.clone()
            }
            None => None,
        }
    };
    match (events, ws) {
        (Some(events), Ok(ws)) => ws.on_upgrade(move |mut socket| async move {
            for e in events {
                let _ = socket.send(Message::Text(e.to_string().into())).await;
            }
            let _ = socket.send(Message::Close(None)).await;
        }),
        _ => (
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

/// An app as the server shows it, with a status.
pub fn app(name: &str, release: u64, status: Value) -> Value {
    json!({
        "id": format!("app_{name}"), "name": name, "environment": "production", "org": "acme",
        "generation": release, "current_release": release,
        "default_domain": format!("{name}-acme.apps.satusky.test"),
        "status": status,
        "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"
    })
}

/// A status in `phase` describing release `observed` with `ready` of `desired` replicas.
pub fn status(phase: &str, observed: u64, ready: u32, desired: u32) -> Value {
    json!({"phase": phase, "observed_generation": observed, "observed_release": observed,
        "desired_replicas": desired, "ready_replicas": ready, "updated_replicas": ready})
}

pub fn spec(image: &str) -> Value {
    json!({"image": image, "env": {"OLD": "kept"}, "secret_version": 0,
        "resources": {"cpu_request": "100m", "cpu_limit": "1", "memory_request": "128Mi", "memory_limit": "128Mi"},
        "replicas": 2, "ports": [{"container_port": 8080, "protocol": "TCP", "public": true}],
        "strategy": {"type": "rolling", "max_surge": "1", "max_unavailable": "0"}, "volumes": []})
}

pub fn release(n: u64, cause: &str) -> Value {
    json!({"number": n, "spec": spec("nginx:1"), "cause": cause, "author": "alice@example.com",
        "created_at": "2026-01-02T03:04:05Z"})
}

pub fn deployed(n: u64, cause: &str, replayed: bool) -> Value {
    json!({"app": app("web", n, status("progressing", n - 1, 0, 2)), "release": release(n, cause), "replayed": replayed})
}

pub fn event(seq: u64, kind: &str, message: &str, release: u64) -> Value {
    json!({"seq": seq, "kind": kind, "message": message, "release": release, "at": "2026-01-02T03:04:05Z"})
}

/// A machine as the server shows it.
pub fn machine(id: &str, name: &str, state: &str) -> Value {
    json!({
        "id": id, "name": name, "uuid": format!("uuid-{id}"), "org": "acme", "state": state,
        "visibility": "organization", "labels": {"pool": "gpu"}, "system_labels": {"arch": "amd64", "zone": "kul-1"},
        "hardware": {"arch": "amd64", "cpu_cores": 8, "memory_bytes": 17_179_869_184_u64},
        "zone": "kul-1", "link": {"connected": true, "address": "fdae:41e4:649b:9303::2"},
        "node_name": name, "operable": true,
        "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"
    })
}

/// `m` with an operation of `kind` in `phase`, at `step` of its plan.
pub fn with_operation(
    mut m: Value,
    kind: &str,
    phase: &str,
    step: u32,
    drain: Option<Value>,
) -> Value {
    let mut op = json!({
        "id": "op_1", "kind": kind, "phase": phase,
        "plan": ["cordon_node", "drain_node", "talos_reboot"], "step": step,
        "from_state": "joined", "started_at": "2026-01-02T03:04:05Z"
    });
    if let Some(d) = drain {
        op["drain"] = d;
    }
    m["operation"] = op;
    m
}

pub fn machine_event(seq: u64, kind: &str, message: &str) -> Value {
    json!({"seq": seq, "kind": kind, "message": message, "at": "2026-01-02T03:04:05Z"})
}

/// A fresh 1ctl home logged in to `api` with organization `acme` selected.
pub fn logged_in(api: &MockApi) -> TestEnv {
    let env = TestEnv::new();
    env.seed_profile("default", &api.url, "sk_pat_secret", Some("acme"));
    env
}
