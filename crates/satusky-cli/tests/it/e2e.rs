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
    // WebSocket upgrades (`…/ws`) are not in the OpenAPI document; the
    // end-to-end test follows the events stream instead.
    let client_routes: std::collections::BTreeSet<_> = satusky_client::ROUTES
        .iter()
        .filter(|(_, p)| p.starts_with("/v1/") && *p != "/v1/openapi.json" && !p.ends_with("/ws"))
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
