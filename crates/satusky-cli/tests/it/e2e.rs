//! End to end: `1ctl` against the real `satusky serve` on SQLite.
//!
//! The server binary is the `satusky` next to `1ctl` in the target directory
//! (`cargo test --workspace` builds it; alone, `cargo build -p satusky`).
//! Without it the test prints a notice and passes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{BIN, TestEnv};

struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_binary() -> Option<PathBuf> {
    let path = PathBuf::from(BIN).parent()?.join("satusky");
    path.exists().then_some(path)
}

fn start_server(bin: &PathBuf) -> Server {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(bin);
    for (name, _) in satusky_types::env::ALL {
        cmd.env_remove(name);
    }
    // Base64 of 32 bytes: lets the server seal app secrets.
    cmd.env(
        satusky_types::env::SATUSKY_SECRET_KEY,
        "c2F0dXNreS1lMmUtdGVzdC1rZXktMzItYnl0ZXMhISE=",
    );
    let child = cmd
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log",
            "warn",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _data: data,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(port) {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("satusky serve exited before it was ready: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "satusky serve did not become ready on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// `GET /readyz` answers 200.
fn ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

fn actions(entries: &Value) -> Vec<String> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_new_user_signs_up_builds_a_team_and_automates_with_a_token() {
    let Some(bin) = server_binary() else {
        eprintln!(
            "notice: skipping the end-to-end test: no satusky binary next to 1ctl (run `cargo build -p satusky`)"
        );
        return;
    };
    let server = start_server(&bin);
    let url = server.url.as_str();
    let env = TestEnv::new();
    let password = "correct-horse-battery\n";

    let out = env.run_stdin(
        &[
            "--api-url",
            url,
            "-o",
            "json",
            "auth",
            "signup",
            "--email",
            "alice@example.com",
            "--name",
            "Alice",
            "--password-stdin",
        ],
        password,
    );
    out.ok();
    assert_eq!(out.json()["email"], "alice@example.com");

    let out = env.run_stdin(
        &[
            "--api-url",
            url,
            "-o",
            "json",
            "auth",
            "login",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        password,
    );
    out.ok();
    assert_eq!(out.json()["auth"], "session");
    assert_eq!(env.config()["profiles"]["default"]["api_url"], url);

    let out = env.run(&["-o", "json", "org", "create", "acme", "--name", "Acme"]);
    out.ok();
    assert_eq!(out.json()["slug"], "acme");
    assert_eq!(out.json()["role"], "owner");
    assert_eq!(env.config()["profiles"]["default"]["org"], "acme");

    env.run_stdin(
        &[
            "--api-url",
            url,
            "-o",
            "json",
            "auth",
            "signup",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        password,
    )
    .ok();
    let out = env.run(&[
        "-o",
        "json",
        "org",
        "team",
        "add",
        "bob@example.com",
        "--role",
        "admin",
    ]);
    out.ok();
    assert_eq!(out.json()["role"], "admin");

    let out = env.run(&[
        "-o",
        "json",
        "token",
        "create",
        "ci",
        "--org",
        "acme",
        "--expires",
        "30",
    ]);
    out.ok();
    let secret = out.json()["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk_pat_"), "{secret}");

    let out = env.run(&["-o", "json", "token", "list"]);
    out.ok();
    assert_eq!(out.json()[0]["name"], "ci");
    assert!(!out.stdout.contains(&secret) && !out.stdout.contains("secret"));

    env.run(&["profile", "create", "ci", "--api-url", url]).ok();
    let out = env.run(&[
        "-p", "ci", "-o", "json", "auth", "login", "--token", &secret,
    ]);
    out.ok();
    assert_eq!(out.json()["auth"], "token");
    assert_eq!(out.json()["org"], "acme");
    assert_eq!(env.config()["active_profile"], "default");

    let out = env.run(&["-p", "ci", "-o", "json", "audit", "list", "--all"]);
    out.ok();
    let seen = actions(&out.json());
    for action in ["org.create", "org.member.add", "token.create"] {
        assert!(seen.iter().any(|a| a == action), "{action} not in {seen:?}");
    }

    let out = env.run(&["-p", "ci", "org", "switch", "nope"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());

    env.run(&["auth", "logout"]).ok();
    let out = env.run(&["auth", "status"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
}

/// A user with an organization, logged in in `env`'s default profile.
fn signed_up(env: &TestEnv, url: &str) {
    let password = "correct-horse-battery\n";
    for args in [
        &[
            "auth",
            "signup",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ][..],
        &[
            "auth",
            "login",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ][..],
    ] {
        let mut full = vec!["--api-url", url, "-o", "json"];
        full.extend_from_slice(args);
        env.run_stdin(&full, password).ok();
    }
    env.run(&["-o", "json", "org", "create", "acme"]).ok();
}

fn causes(releases: &Value) -> Vec<String> {
    releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cause"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_app_is_initialised_deployed_changed_and_rolled_back() {
    let Some(bin) = server_binary() else {
        eprintln!("notice: skipping the apps end-to-end test: no satusky binary next to 1ctl");
        return;
    };
    let server = start_server(&bin);
    let env = TestEnv::new();
    signed_up(&env, &server.url);

    let out = env.run(&[
        "-o",
        "json",
        "init",
        "--name",
        "web",
        "--image",
        "nginx:1.27",
    ]);
    out.ok();
    assert_eq!(out.json()["app"], "web");

    // No cluster is attached to `serve`: deploy without --wait.
    let out = env.run(&["-o", "json", "deploy", "--env", "MODE=e2e"]);
    out.ok();
    let d = out.json();
    assert_eq!(d["release"]["number"], 1);
    assert_eq!(d["release"]["cause"], "deploy");
    assert_eq!(d["release"]["spec"]["image"], "nginx:1.27");
    assert_eq!(d["release"]["spec"]["ports"][0]["container_port"], 8080);
    assert_eq!(d["release"]["spec"]["env"]["MODE"], "e2e");
    assert_eq!(d["replayed"], false);

    // The same idempotency key twice: one release.
    let key = ["--idempotency-key", "e2e-key-1"];
    let first = env.run(
        &[
            &["-o", "json", "deploy", "--image", "nginx:1.28"][..],
            &key[..],
        ]
        .concat(),
    );
    first.ok();
    let again = env.run(
        &[
            &["-o", "json", "deploy", "--image", "nginx:1.28"][..],
            &key[..],
        ]
        .concat(),
    );
    again.ok();
    assert_eq!(first.json()["release"]["number"], 2);
    assert_eq!(again.json()["release"]["number"], 2);
    assert_eq!(again.json()["replayed"], true);

    let out = env.run(&["-o", "json", "app", "get"]);
    out.ok();
    let app = out.json();
    assert_eq!(app["name"], "web");
    assert_eq!(app["current_release"], 2);
    assert_eq!(app["default_domain"], "web-acme.apps.satusky.test");
    let out = env.run(&["app", "open", "web"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "https://web-acme.apps.satusky.test");

    let out = env.run(&["-o", "json", "app", "scale", "3"]);
    out.ok();
    assert_eq!(out.json()["release"]["spec"]["replicas"], 3);

    let out = env.run(&["-o", "json", "config", "create", "LOG_LEVEL=debug"]);
    out.ok();
    assert_eq!(out.json()["release"]["spec"]["env"]["LOG_LEVEL"], "debug");
    assert_eq!(out.json()["release"]["spec"]["env"]["MODE"], "e2e");
    let out = env.run(&["-o", "json", "env", "list"]);
    out.ok();
    assert_eq!(
        out.json(),
        serde_json::json!([{"key": "LOG_LEVEL", "value": "debug"}, {"key": "MODE", "value": "e2e"}])
    );

    let out = env.run(&["-o", "json", "secret", "create", "DB_PASSWORD=hunter2"]);
    out.ok();
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
    let out = env.run(&["-o", "json", "secret", "list"]);
    out.ok();
    assert_eq!(
        out.json(),
        serde_json::json!([{"key": "DB_PASSWORD", "version": 1}])
    );
    assert!(!out.stdout.contains("hunter2") && !out.stdout.contains("value"));
    let out = env.run(&["secret", "get", "DB_PASSWORD"]);
    out.ok();
    assert_eq!(out.stdout, "hunter2\n");
    let out = env.run(&["-o", "json", "secret", "get", "DB_PASSWORD"]);
    out.ok();
    assert_eq!(out.json()["value"], "hunter2");

    let out = env.run(&["-o", "json", "app", "releases"]);
    out.ok();
    assert_eq!(
        causes(&out.json()),
        ["secret", "config", "scale", "deploy", "deploy"]
    );

    let out = env.run(&["-o", "json", "app", "rollback", "--to", "3"]);
    out.ok();
    assert_eq!(out.json()["release"]["number"], 6);
    assert_eq!(out.json()["release"]["cause"], "rollback");
    assert_eq!(out.json()["release"]["rollback_of"], 3);
    assert_eq!(out.json()["release"]["spec"]["replicas"], 3);

    let out = env.run(&["-o", "json", "app", "events"]);
    out.ok();
    let events = out.json();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 6, "{events:?}");
    assert!(events.iter().all(|e| e["kind"] == "release.created"));
    assert_eq!(events[5]["release"], 6);
    let out = env.run(&["-o", "json", "app", "events", "--from", "5"]);
    out.ok();
    assert_eq!(out.json().as_array().unwrap().len(), 1);

    let out = env.run(&["-o", "json", "volumes", "list"]);
    out.ok();
    assert_eq!(out.json(), serde_json::json!([]));

    // --wait follows the event stream (WebSocket, with the token) but no
    // cluster ever reports the release: it times out with what it saw.
    let out = env.run(&[
        "deploy",
        "--image",
        "nginx:1.29",
        "--wait",
        "--timeout",
        "2s",
    ]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out.stderr.contains("release.created"), "{}", out.stderr);
    assert!(out.stderr.contains("timed out after 2 s"), "{}", out.stderr);

    let out = env.run(&["-o", "json", "app", "list"]);
    out.ok();
    assert_eq!(out.json()[0]["name"], "web");
    let out = env.run(&["-o", "json", "app", "delete", "web", "--yes"]);
    out.ok();
    assert_eq!(out.json()["action"], "deleting");
    let out = env.run(&["app", "get", "nope"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
}

/// What `satusky serve` offers without machines or a cluster: join tokens
/// (created, listed without secrets, revoked), an empty fleet, zones, and
/// logs refused (503) until the app runs on a cluster.
#[test]
fn machines_zones_and_logs_without_a_cluster() {
    let Some(bin) = server_binary() else {
        eprintln!("notice: skipping the machines end-to-end test: no satusky binary next to 1ctl");
        return;
    };
    let server = start_server(&bin);
    let env = TestEnv::new();
    signed_up(&env, &server.url);

    let out = env.run(&["-o", "json", "machine", "list"]);
    out.ok();
    assert_eq!(out.json(), serde_json::json!([]));
    let out = env.run(&[
        "-o",
        "json",
        "machine",
        "query",
        "--selector",
        "pool=gpu,!maintenance",
    ]);
    out.ok();
    assert_eq!(out.json(), serde_json::json!([]));
    // The server checks the selector's grammar.
    let out = env.run(&["machine", "list", "--selector", "pool==="]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out.stderr.contains("selector"), "{}", out.stderr);
    let out = env.run(&["machine", "cordon", "node-a"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out.stderr.contains("no machine `node-a`"), "{}", out.stderr);
    let out = env.run(&["-o", "json", "machine", "cordon", "--selector", "pool=gpu"]);
    out.ok();
    assert_eq!(out.json()["items"], serde_json::json!([]));

    let out = env.run(&["-o", "json", "machine", "tokens", "list"]);
    out.ok();
    assert_eq!(out.json(), serde_json::json!([]));
    let out = env.run(&[
        "-o",
        "json",
        "machine",
        "tokens",
        "create",
        "rack-1",
        "--expires",
        "48",
    ]);
    // `serve` signs join tokens with a key derived from its secret key.
    out.ok();
    let created = out.json();
    assert!(!created["token"].as_str().unwrap().is_empty());
    let kernel_args = created["kernel_args"].as_array().unwrap();
    assert!(
        kernel_args
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("siderolink.api=")),
        "{kernel_args:?}"
    );
    let out = env.run(&["machine", "tokens", "create", "rack-2"]);
    out.ok();
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    let out = env.run(&["-o", "json", "machine", "tokens", "list"]);
    out.ok();
    let tokens = out.json();
    assert_eq!(tokens.as_array().unwrap().len(), 2);
    assert!(tokens[0].get("token").is_none(), "{tokens}");
    assert!(!out.stdout.contains(created["token"].as_str().unwrap()));
    let out = env.run(&["-o", "json", "machine", "tokens", "revoke", "rack-1"]);
    out.ok();
    assert_eq!(out.json()["revoked"], true);
    let out = env.run(&["machine", "tokens", "revoke", "nope"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr.contains("join_token_not_found"),
        "{}",
        out.stderr
    );

    let out = env.run(&["-o", "json", "cluster", "zones"]);
    out.ok();
    assert!(out.json().is_array());
    // A new user is not a platform administrator.
    let out = env.run(&["cluster", "list"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());

    // Logs: an unknown app is refused; a deployed app without a cluster is 503.
    let out = env.run(&["logs", "web"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    env.run(&["deploy", "--name", "web", "--image", "nginx:1.27"])
        .ok();
    for args in [
        &["logs", "web"][..],
        &["logs", "web", "--follow"][..],
        &["logs", "stream", "web"][..],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 3, "{args:?}: {}", out.snapshot());
        assert!(out.stderr.contains("(unavailable)"), "{}", out.stderr);
    }

    // A dry run reads the fleet and deploys nothing.
    let out = env.run(&[
        "-o",
        "json",
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1.28",
        "--machine-selector",
        "pool=gpu",
        "--dry-run",
    ]);
    out.ok();
    assert_eq!(out.json()["placement"]["machines"], serde_json::json!([]));
    assert_eq!(out.json()["placement"]["enough"], false);
    let out = env.run(&["-o", "json", "app", "releases", "web"]);
    out.ok();
    assert_eq!(out.json().as_array().unwrap().len(), 1);
}

/// Every route the client calls is one the server documents.
#[test]
fn the_client_and_the_server_agree_on_every_route() {
    let Some(bin) = server_binary() else {
        eprintln!("notice: skipping the route contract test: no satusky binary next to 1ctl");
        return;
    };
    let server = start_server(&bin);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let doc = rt
        .block_on(
            satusky_client::Client::new(&server.url, None)
                .unwrap()
                .openapi(),
        )
        .unwrap();
    let normalize = |path: &str| {
        path.split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut server_routes = std::collections::BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            server_routes.insert((method.to_uppercase(), normalize(path)));
        }
    }
    // WebSocket upgrades (`…/ws`) are documented as GETs answering 101.
    let client_routes: std::collections::BTreeSet<_> = satusky_client::ROUTES
        .iter()
        .filter(|(_, p)| p.starts_with("/v1/") && *p != "/v1/openapi.json")
        .map(|(m, p)| ((*m).to_owned(), normalize(p)))
        .collect();
    // The client never calls a route the server does not have.
    let unknown: Vec<_> = client_routes.difference(&server_routes).collect();
    assert!(
        unknown.is_empty(),
        "the client calls routes the server lacks: {unknown:?}"
    );
    // Server routes without a client method yet are reported, not failed, so
    // the server can grow ahead of the client.
    let missing: Vec<_> = server_routes.difference(&client_routes).collect();
    if !missing.is_empty() {
        eprintln!("notice: server routes without a satusky-client method: {missing:?}");
    }
}
