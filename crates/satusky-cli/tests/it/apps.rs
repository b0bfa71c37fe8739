//! Apps against a mock API: `init`, `deploy` (precedence of flags,
//! satusky.toml and the current release; idempotency keys; `--wait`), `app`,
//! `config`, `secret` and `volumes`.

use serde_json::{Value, json};

use crate::support::{
    MockApi, TestEnv, app, deployed, error_body, event, logged_in, page, release, status,
};

const APP: &str = "/v1/orgs/acme/apps/web";

fn not_found() -> Value {
    error_body("app_not_found", "app `web` not found", "req-404")
}

/// The body of the one deploy request.
fn deploy_body(api: &MockApi) -> Value {
    let deploys: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/deploy"))
        .collect();
    assert_eq!(deploys.len(), 1, "{:?}", api.calls());
    deploys[0].body.clone()
}

/// A mock where `web` exists with release 1 (`spec("nginx:1")`).
fn existing_app() -> MockApi {
    let api = MockApi::start();
    api.on("GET", APP, 200, app("web", 1, status("available", 1, 2, 2)));
    api.on(
        "GET",
        &format!("{APP}/releases/1"),
        200,
        release(1, "deploy"),
    );
    api.on(
        "POST",
        &format!("{APP}/deploy"),
        201,
        deployed(2, "deploy", false),
    );
    api
}

#[test]
fn init_writes_a_commented_file_and_never_overwrites_one_unasked() {
    let env = TestEnv::new();
    let out = env.run(&[
        "-o", "json", "init", "--name", "web", "--image", "nginx:1", "--port", "3000",
    ]);
    out.ok();
    assert_eq!(out.json()["app"], "web");
    let text = std::fs::read_to_string(env.work_dir().join("satusky.toml")).unwrap();
    assert!(text.contains("name = \"web\""), "{text}");
    assert!(text.contains("image = \"nginx:1\""), "{text}");
    assert!(text.contains("port = 3000"), "{text}");
    assert!(text.contains("# health_path"), "{text}");

    let out = env.run(&["init", "--name", "other"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert!(out.stderr.contains("hint: pass --force"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(env.work_dir().join("satusky.toml")).unwrap(),
        text
    );
    env.run(&["init", "--name", "other", "--force"]).ok();
    let text = std::fs::read_to_string(env.work_dir().join("satusky.toml")).unwrap();
    assert!(text.contains("name = \"other\""), "{text}");

    // --config NAME writes satusky.NAME.toml, seeded from satusky.toml.
    env.run(&["init", "--config", "prod"]).ok();
    let prod = std::fs::read_to_string(env.work_dir().join("satusky.prod.toml")).unwrap();
    assert_eq!(prod, text);

    let out = env.run(&["init", "--name", "Bad_Name", "--force"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
}

#[test]
fn a_first_deploy_creates_the_app_with_the_defaults_and_an_idempotency_key() {
    let api = MockApi::start();
    api.on("GET", APP, 404, not_found());
    api.on(
        "POST",
        &format!("{APP}/deploy"),
        201,
        deployed(1, "deploy", false),
    );
    let env = logged_in(&api);
    let out = env.run(&[
        "-o", "json", "deploy", "--name", "web", "--image", "nginx:1",
    ]);
    out.ok();
    assert_eq!(out.json()["release"]["number"], 1);
    assert_eq!(
        api.calls(),
        vec![format!("GET {APP}"), format!("POST {APP}/deploy")]
    );
    assert_eq!(
        deploy_body(&api),
        json!({
            "image": "nginx:1",
            "create": true,
            "ports": [{"container_port": 8080, "protocol": "TCP", "public": true}],
            "resources": {"cpu_request": "250m", "cpu_limit": "1", "memory_request": "256Mi", "memory_limit": "256Mi"},
        })
    );
    let key = api.requests()[1].idempotency_key.clone().unwrap();
    assert_eq!(key.len(), 36, "{key}");
    assert!(
        api.requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer sk_pat_secret"))
    );

    // Each run has its own key.
    env.run(&["deploy", "--name", "web", "--image", "nginx:1"])
        .ok();
    let keys: Vec<_> = api
        .requests()
        .into_iter()
        .filter_map(|r| r.idempotency_key)
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
}

#[test]
fn a_given_idempotency_key_is_sent_and_a_replay_is_reported() {
    let api = MockApi::start();
    api.on("GET", APP, 404, not_found());
    api.on(
        "POST",
        &format!("{APP}/deploy"),
        200,
        deployed(1, "deploy", true),
    );
    let env = logged_in(&api);
    let out = env.run(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1",
        "--idempotency-key",
        "ci-build-42",
    ]);
    out.ok();
    assert!(out.stderr.contains("was used before"), "{}", out.stderr);
    assert_eq!(
        api.requests()[1].idempotency_key.as_deref(),
        Some("ci-build-42")
    );
}

#[test]
fn satusky_toml_values_are_not_overridden_by_flag_defaults() {
    let api = existing_app();
    let env = logged_in(&api);
    env.write(
        "satusky.toml",
        r#"
[app]
name = "web"
image = "ghcr.io/acme/web:2"
port = 9000
replicas = 3
cpu_request = "500m"
memory = "512Mi"

[checks]
health_path = "/healthz"

[deploy]
strategy = "recreate"

[env]
A = "file"
B = "file"

[build]
dockerfile = "Dockerfile"
"#,
    );
    let out = env.run(&[
        "-o",
        "json",
        "deploy",
        "--env",
        "B=flag",
        "--env",
        "C=flag",
        "--cpu-limit",
        "2",
    ]);
    out.ok();
    assert!(
        out.stderr
            .contains("warning: satusky.toml: `[build]` is not used"),
        "{}",
        out.stderr
    );
    assert_eq!(
        deploy_body(&api),
        json!({
            "image": "ghcr.io/acme/web:2",
            "create": true,
            "replicas": 3,
            "ports": [{"container_port": 9000, "protocol": "TCP", "public": true}],
            "resources": {"cpu_request": "500m", "cpu_limit": "2", "memory_request": "512Mi", "memory_limit": "512Mi"},
            "env": {"A": "file", "B": "flag", "C": "flag", "OLD": "kept"},
            "health": {"path": "/healthz", "initial_delay_seconds": 0},
            "strategy": {"type": "recreate"},
        })
    );
}

#[test]
fn an_explicit_flag_wins_over_satusky_toml_even_when_it_equals_the_default() {
    let api = existing_app();
    let env = logged_in(&api);
    env.write(
        "satusky.toml",
        "[app]\nname = \"web\"\nimage = \"nginx:1\"\nport = 9000\nreplicas = 3\nmemory = \"1Gi\"\n[deploy]\nstrategy = \"recreate\"\n",
    );
    env.run(&[
        "deploy",
        "--strategy",
        "rolling",
        "--port",
        "8080",
        "--replicas",
        "1",
        "--memory",
        "256Mi",
        "--image",
        "nginx:2",
    ])
    .ok();
    let body = deploy_body(&api);
    assert_eq!(body["image"], "nginx:2");
    assert_eq!(body["replicas"], 1);
    assert_eq!(body["ports"][0]["container_port"], 8080);
    assert_eq!(body["resources"]["memory_request"], "256Mi");
    assert_eq!(body["resources"]["memory_limit"], "256Mi");
    // Resources not given anywhere keep the current release's values.
    assert_eq!(body["resources"]["cpu_request"], "100m");
    // Rolling, with the current release's surge (not the flag's default).
    assert_eq!(
        body["strategy"],
        json!({"type": "rolling", "max_surge": "1", "max_unavailable": "0"})
    );
}

#[test]
fn settings_given_nowhere_are_left_to_the_current_release() {
    let api = existing_app();
    let env = logged_in(&api);
    env.run(&["deploy", "--name", "web", "--image", "nginx:2"])
        .ok();
    assert_eq!(
        deploy_body(&api),
        json!({"image": "nginx:2", "create": true})
    );
    assert_eq!(
        api.calls(),
        vec![
            format!("GET {APP}"),
            format!("GET {APP}/releases/1"),
            format!("POST {APP}/deploy"),
        ]
    );
}

#[test]
fn config_chooses_the_file_and_a_missing_one_is_a_usage_error() {
    let api = existing_app();
    let env = logged_in(&api);
    env.write(
        "satusky.toml",
        "[app]\nname = \"web\"\nimage = \"nginx:1\"\n",
    );
    env.write(
        "satusky.prod.toml",
        "[app]\nname = \"web\"\nimage = \"nginx:prod\"\nreplicas = 5\n",
    );
    env.run(&["deploy", "--config", "prod"]).ok();
    let body = deploy_body(&api);
    assert_eq!(body["image"], "nginx:prod");
    assert_eq!(body["replicas"], 5);

    let out = env.run(&["deploy", "--config", "staging"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(
        out.stderr.contains("satusky.staging.toml"),
        "{}",
        out.stderr
    );
}

#[test]
fn deploy_flags_reach_the_request() {
    let api = MockApi::start();
    api.on("GET", APP, 404, not_found());
    api.on(
        "POST",
        &format!("{APP}/deploy"),
        201,
        deployed(1, "deploy", false),
    );
    let env = logged_in(&api);
    env.run(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1",
        "--port",
        "8080",
        "--port",
        "9090",
        "--memory",
        "256Mi",
        "--memory-limit",
        "1Gi",
        "--rolling-max-surge",
        "2",
        "--volume-size",
        "1Gi",
        "--volume-mount",
        "/data",
        "--hpa",
        "--hpa-max",
        "5",
        "--pdb-min-available",
        "1",
        "--zone",
        "my-kul-1b",
        "--machine-label",
        "pool=gpu",
        "--machine-tag",
        "ssd & (region=kul | region=bki)",
        "--environment",
        "staging",
    ])
    .ok();
    assert_eq!(
        deploy_body(&api),
        json!({
            "image": "nginx:1",
            "create": true,
            "environment": "staging",
            "ports": [
                {"container_port": 8080, "protocol": "TCP", "public": true},
                {"container_port": 9090, "protocol": "TCP", "public": false},
            ],
            "resources": {"cpu_request": "250m", "cpu_limit": "1", "memory_request": "256Mi", "memory_limit": "1Gi"},
            "strategy": {"type": "rolling", "max_surge": "2", "max_unavailable": "25%"},
            "volumes": [{"name": "data", "size": "1Gi", "mount_path": "/data"}],
            "autoscaling": {"min_replicas": 1, "max_replicas": 5, "cpu_percent": 80},
            "disruption_budget": {"min_available": "1"},
            "zone": "my-kul-1b",
            "machine_selector": "pool=gpu,ssd,region in (kul,bki)",
        })
    );
}

#[test]
fn placement_a_selector_cannot_express_is_a_usage_error() {
    let api = MockApi::start();
    let env = logged_in(&api);
    let out = env.run(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1",
        "--machine-label-any",
        "a=1",
        "--machine-label-any",
        "b=2",
    ]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(out.stderr.contains("--machine-selector"), "{}", out.stderr);
    let out = env.run(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1",
        "--machine-selector",
        "a=1",
        "--machine-tag",
        "gpu",
    ]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(api.calls().iter().all(|c| !c.starts_with("POST")));
}

#[test]
fn deploy_without_an_image_or_a_name_is_a_usage_error() {
    let api = MockApi::start();
    let env = logged_in(&api);
    let out = env.run(&["deploy", "--name", "web"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    let out = env.run(&["deploy", "--image", "nginx:1"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
}

fn waiting_app(last: Value) -> MockApi {
    let api = MockApi::start();
    api.on_seq(
        "GET",
        APP,
        vec![
            (404, not_found()),
            (200, app("web", 1, status("progressing", 0, 0, 2))),
            (200, app("web", 1, status("progressing", 1, 1, 2))),
            (200, last),
        ],
    );
    api.on("GET", &format!("{APP}/events"), 404, not_found());
    api.on(
        "POST",
        &format!("{APP}/deploy"),
        201,
        deployed(1, "deploy", false),
    );
    api
}

#[test]
fn deploy_wait_exits_0_once_the_new_release_is_available() {
    let api = waiting_app(app("web", 1, status("available", 1, 2, 2)));
    api.ws_events(vec![
        event(1, "release.created", "release 1 (deploy)", 1),
        event(2, "rollout.progress", "1/2 replicas ready, 1 updated", 1),
        event(3, "rollout.complete", "2/2 replicas ready", 1),
    ]);
    let env = logged_in(&api);
    let out = env.run(&[
        "-o", "json", "deploy", "--name", "web", "--image", "nginx:1", "--wait",
    ]);
    out.ok();
    assert_eq!(out.json()["release"]["number"], 1);
    assert!(out.stderr.contains("1/2 replicas ready"), "{}", out.stderr);
    assert!(out.stderr.contains("rollout.progress"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("is available at https://web-acme.apps.satusky.test"),
        "{}",
        out.stderr
    );
    let ws: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "WS")
        .collect();
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0].query.as_deref(), Some("from=0"));
    assert_eq!(ws[0].authorization.as_deref(), Some("Bearer sk_pat_secret"));
}

#[test]
fn deploy_wait_exits_1_with_the_reason_when_the_release_degrades() {
    let mut degraded = status("degraded", 1, 0, 2);
    degraded["reason"] = json!("CrashLoopBackOff");
    degraded["message"] = json!("back-off 40s restarting failed container web");
    let api = waiting_app(app("web", 1, degraded));
    api.ws_events(vec![
        event(1, "release.created", "release 1 (deploy)", 1),
        event(2, "rollout.progress", "0/2 replicas ready", 1),
        event(
            3,
            "rollout.failed",
            "CrashLoopBackOff: back-off 40s restarting failed container web",
            1,
        ),
    ]);
    let env = logged_in(&api);
    let out = env.run(&["deploy", "--name", "web", "--image", "nginx:1", "--wait"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr.contains(
            "error: release 1 of `web` failed: CrashLoopBackOff: back-off 40s restarting failed container web"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
}

#[test]
fn deploy_wait_polls_without_a_websocket_and_times_out_with_what_it_saw() {
    let mut stuck = status("progressing", 1, 1, 2);
    stuck["replicas"] = json!([
        {"pod": "web-1", "phase": "Running", "ready": true, "restarts": 0, "release": 1},
        {"pod": "web-2", "phase": "Pending", "ready": false, "restarts": 0, "reason": "Unschedulable", "release": 1},
    ]);
    let api = MockApi::start();
    api.on_seq(
        "GET",
        APP,
        vec![(404, not_found()), (200, app("web", 1, stuck))],
    );
    api.on("GET", &format!("{APP}/events"), 404, not_found());
    api.on(
        "POST",
        &format!("{APP}/deploy"),
        201,
        deployed(1, "deploy", false),
    );
    let env = logged_in(&api);
    let started = std::time::Instant::now();
    let out = env.run(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1",
        "--wait",
        "--timeout",
        "3s",
    ]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(out.stderr.contains("polling"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("timed out after 3 s waiting for release 1 of `web`; last seen: progressing, 1/2 replicas ready (Unschedulable (pod web-2))"),
        "{}",
        out.stderr
    );
}

#[test]
fn app_commands_send_the_documented_requests() {
    let api = MockApi::start();
    let web = app("web", 3, status("available", 3, 2, 2));
    api.on(
        "GET",
        "/v1/orgs/acme/apps",
        200,
        page(vec![web.clone()], None),
    );
    api.on("GET", APP, 200, web.clone());
    api.on("DELETE", APP, 202, web.clone());
    api.on("POST", &format!("{APP}/restart"), 202, web.clone());
    api.on(
        "GET",
        &format!("{APP}/releases"),
        200,
        page(vec![release(2, "scale"), release(1, "deploy")], None),
    );
    api.on(
        "POST",
        &format!("{APP}/rollback"),
        201,
        deployed(4, "rollback", false),
    );
    api.on(
        "POST",
        &format!("{APP}/scale"),
        201,
        deployed(5, "scale", false),
    );
    let env = logged_in(&api);

    let out = env.run(&["-o", "json", "app", "list"]);
    out.ok();
    assert_eq!(out.json()[0]["name"], "web");
    let out = env.run(&["-o", "json", "app", "get", "web"]);
    out.ok();
    assert_eq!(out.json()["status"]["phase"], "available");
    let out = env.run(&["-o", "json", "app", "status", "--app", "web"]);
    out.ok();
    assert_eq!(out.json()["ready_replicas"], 2);
    let out = env.run(&["app", "open", "web"]);
    out.ok();
    assert_eq!(out.stdout, "https://web-acme.apps.satusky.test\n");
    let out = env.run(&["-o", "json", "app", "open", "web"]);
    assert_eq!(out.json()["url"], "https://web-acme.apps.satusky.test");
    env.run(&["-o", "json", "app", "restart", "web"]).ok();
    let out = env.run(&["-o", "json", "app", "releases", "web"]);
    out.ok();
    assert_eq!(out.json()[1]["cause"], "deploy");
    let out = env.run(&["-o", "json", "app", "rollback", "web", "--to", "1"]);
    out.ok();
    assert_eq!(out.json()["release"]["cause"], "rollback");
    env.run(&["app", "rollback", "web"]).ok();
    env.run(&["-o", "json", "app", "scale", "web", "3"]).ok();
    env.run(&["app", "scale", "--app", "web", "4"]).ok();
    let out = env.run(&[
        "-o",
        "json",
        "app",
        "delete",
        "web",
        "--yes",
        "--delete-volumes",
    ]);
    out.ok();
    assert_eq!(
        out.json(),
        json!({"kind": "app", "id": "web", "action": "deleting"})
    );
    env.run(&["app", "delete", "web", "-y"]).ok();

    assert_eq!(
        api.calls(),
        vec![
            "GET /v1/orgs/acme/apps?limit=1000".to_owned(),
            format!("GET {APP}"),
            format!("GET {APP}"),
            format!("GET {APP}"),
            format!("GET {APP}"),
            format!("POST {APP}/restart"),
            format!("GET {APP}/releases?limit=1000"),
            format!("POST {APP}/rollback"),
            format!("POST {APP}/rollback"),
            format!("POST {APP}/scale"),
            format!("POST {APP}/scale"),
            format!("DELETE {APP}?delete_volumes=true"),
            format!("DELETE {APP}"),
        ]
    );
    let bodies: Vec<Value> = api.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies[7], json!({"to": 1}));
    assert_eq!(bodies[8], json!({"to": null}));
    assert_eq!(bodies[9], json!({"replicas": 3}));
    assert_eq!(bodies[10], json!({"replicas": 4}));
}

#[test]
fn app_delete_without_a_terminal_needs_yes_and_bad_scales_are_usage_errors() {
    let api = MockApi::start();
    let env = logged_in(&api);
    let out = env.run(&["app", "delete", "web"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    let out = env.run(&["app", "scale", "web", "many"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    let out = env.run(&["app", "get", "web", "--app", "api"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(api.calls().is_empty(), "{:?}", api.calls());
}

#[test]
fn the_app_comes_from_satusky_toml_when_not_named() {
    let api = MockApi::start();
    api.on("GET", APP, 200, app("web", 1, status("available", 1, 1, 1)));
    api.on(
        "GET",
        "/v1/orgs/acme/apps/web-prod",
        200,
        app("web-prod", 1, status("available", 1, 1, 1)),
    );
    let env = logged_in(&api);
    let out = env.run(&["app", "get"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(out.stderr.contains("no satusky.toml"), "{}", out.stderr);

    env.write("satusky.toml", "[app]\nname = \"web\"\n");
    env.write("satusky.prod.toml", "[app]\nname = \"web-prod\"\n");
    std::fs::create_dir_all(env.work_dir().join("src/deep")).unwrap();
    env.run(&["app", "get"]).ok();
    env.run(&["app", "get", "--config", "prod"]).ok();
    env.run(&["app", "get", "--config", "satusky.prod.toml"])
        .ok();
    assert_eq!(
        api.calls(),
        vec![
            format!("GET {APP}"),
            "GET /v1/orgs/acme/apps/web-prod".to_owned(),
            "GET /v1/orgs/acme/apps/web-prod".to_owned(),
        ]
    );
}

#[test]
fn an_unknown_app_exits_1_with_a_hint() {
    let api = MockApi::start();
    api.on("GET", "/v1/orgs/acme/apps/nope", 404, not_found());
    let env = logged_in(&api);
    let out = env.run(&["app", "get", "nope"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr
            .starts_with("error: app `web` not found (app_not_found)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: run `1ctl app list`"),
        "{}",
        out.stderr
    );
}

#[test]
fn events_are_listed_or_followed() {
    let api = MockApi::start();
    api.on(
        "GET",
        &format!("{APP}/events"),
        200,
        page(
            vec![
                event(3, "release.created", "release 2", 2),
                event(4, "rollout.complete", "2/2 replicas ready", 2),
            ],
            None,
        ),
    );
    api.ws_events(vec![
        event(3, "release.created", "release 2", 2),
        event(4, "rollout.complete", "2/2 replicas ready", 2),
    ]);
    let env = logged_in(&api);
    let out = env.run(&["-o", "json", "app", "events", "web", "--from", "2"]);
    out.ok();
    assert_eq!(out.json()[1]["seq"], 4);
    let out = env.run(&[
        "-o", "json", "app", "events", "web", "--follow", "--from", "2",
    ]);
    out.ok();
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "release.created");
    let out = env.run(&["app", "events", "web", "-f"]);
    out.ok();
    assert!(out.stdout.contains("rollout.complete"), "{}", out.stdout);
    let calls = api.calls();
    assert_eq!(calls[0], format!("GET {APP}/events?from=2&limit=1000"));
    assert_eq!(calls[1], format!("WS {APP}/events/ws?from=2"));
    assert_eq!(calls[2], format!("WS {APP}/events/ws?from=0"));
}

#[test]
fn config_commands_merge_list_and_unset() {
    let api = MockApi::start();
    api.on(
        "PATCH",
        &format!("{APP}/env"),
        201,
        deployed(2, "config", false),
    );
    api.on(
        "GET",
        &format!("{APP}/env"),
        200,
        json!({"A": "1", "B": "x=y"}),
    );
    api.on("GET", "/v1/orgs/acme/apps/empty/env", 200, json!({}));
    let env = logged_in(&api);
    let out = env.run(&[
        "-o", "json", "config", "create", "A=1", "B=x=y", "--app", "web",
    ]);
    out.ok();
    assert_eq!(out.json()["release"]["cause"], "config");
    let out = env.run(&["-o", "json", "env", "list", "--app", "web"]);
    out.ok();
    assert_eq!(
        out.json(),
        json!([{"key": "A", "value": "1"}, {"key": "B", "value": "x=y"}])
    );
    let out = env.run(&["-o", "json", "config", "list", "--app", "empty"]);
    out.ok();
    assert_eq!(out.json(), json!([]));
    let out = env.run(&["config", "list", "--app", "empty"]);
    out.ok();
    assert_eq!(out.stdout, "");
    env.run(&["config", "unset", "A", "B", "--app", "web"]).ok();
    let out = env.run(&["config", "create", "NOEQUALS", "--app", "web"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());

    let bodies: Vec<Value> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.body)
        .collect();
    assert_eq!(
        bodies,
        vec![
            json!({"set": {"A": "1", "B": "x=y"}, "unset": []}),
            json!({"set": {}, "unset": ["A", "B"]}),
        ]
    );
}

#[test]
fn secret_values_appear_only_when_one_key_is_asked_for() {
    let api = MockApi::start();
    api.on(
        "PATCH",
        &format!("{APP}/secrets"),
        201,
        deployed(2, "secret", false),
    );
    api.on(
        "GET",
        &format!("{APP}/secrets"),
        200,
        page(
            vec![json!({"key": "DB_PASSWORD", "value": "********", "version": 1})],
            None,
        ),
    );
    api.on(
        "GET",
        &format!("{APP}/secrets/DB_PASSWORD"),
        200,
        json!({"key": "DB_PASSWORD", "value": "hunter2", "version": 1}),
    );
    let env = logged_in(&api);
    env.write("satusky.toml", "[app]\nname = \"web\"\n");
    let out = env.run(&["-o", "json", "secret", "create", "DB_PASSWORD=hunter2"]);
    out.ok();
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
    let out = env.run(&["-o", "json", "secret", "list"]);
    out.ok();
    assert_eq!(out.json(), json!([{"key": "DB_PASSWORD", "version": 1}]));
    let out = env.run(&["secret", "list"]);
    out.ok();
    assert!(!out.stdout.contains("****") && !out.stdout.contains("hunter2"));
    let out = env.run(&["secret", "get", "DB_PASSWORD"]);
    out.ok();
    assert_eq!(out.stdout, "hunter2\n");
    let out = env.run(&["-o", "json", "secret", "get", "DB_PASSWORD"]);
    out.ok();
    assert_eq!(out.json()["value"], "hunter2");
    env.run(&["secret", "unset", "DB_PASSWORD"]).ok();
    env.run_stdin(
        &["secret", "create", "API_TOKEN", "--value-stdin"],
        "s3cr=t\n",
    )
    .ok();
    let out = env.run_stdin(&["secret", "create", "A=1", "--value-stdin"], "x\n");
    assert_eq!(out.code, 2, "{}", out.snapshot());
    let patches: Vec<Value> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.body)
        .collect();
    assert_eq!(
        patches,
        vec![
            json!({"set": {"DB_PASSWORD": "hunter2"}, "unset": []}),
            json!({"set": {}, "unset": ["DB_PASSWORD"]}),
            json!({"set": {"API_TOKEN": "s3cr=t"}, "unset": []}),
        ]
    );
}

#[test]
fn volumes_are_listed_and_inspected() {
    let api = MockApi::start();
    api.on(
        "GET",
        &format!("{APP}/volumes"),
        200,
        page(
            vec![json!({"name": "data", "size": "1Gi", "mount_path": "/data"})],
            None,
        ),
    );
    api.on(
        "GET",
        "/v1/orgs/acme/apps/empty/volumes",
        200,
        page(vec![], None),
    );
    api.on(
        "GET",
        &format!("{APP}/volumes/data"),
        200,
        json!({"name": "data", "size": "1Gi", "mount_path": "/data", "attached": true, "claim": "web-data", "phase": "Bound", "capacity": "1Gi"}),
    );
    api.on(
        "GET",
        &format!("{APP}/volumes/logs"),
        404,
        json!({"error": {"code": "volume_not_found", "message": "app `web` has no volume `logs`", "request_id": "r"}}),
    );
    api.on(
        "POST",
        &format!("{APP}/volumes/data/detach"),
        201,
        json!({"app": app("web", 4, status("progressing", 1, 0, 0)), "release": {"number": 4, "spec": {"image": "nginx:1"}, "cause": "volume_detach", "created_at": "2026-11-21T00:00:00Z"}, "replayed": false}),
    );
    api.on("DELETE", &format!("{APP}/volumes/data"), 204, json!(null));
    let env = logged_in(&api);
    let out = env.run(&["-o", "json", "volumes", "detach", "data", "--app", "web"]);
    out.ok();
    assert_eq!(out.json()["cause"], "volume_detach");
    let out = env.run(&["volumes", "delete", "data", "--app", "web"]);
    assert_eq!(out.code, 2, "deleting data needs --yes: {}", out.snapshot());
    let out = env.run(&[
        "-o", "json", "volumes", "delete", "data", "--app", "web", "--yes",
    ]);
    out.ok();
    assert!(
        api.calls()
            .iter()
            .any(|c| c.starts_with("DELETE /v1/orgs/acme/apps/web/volumes/data")),
        "{:?}",
        api.calls()
    );
    let out = env.run(&["-o", "json", "volumes", "list", "web"]);
    out.ok();
    assert_eq!(out.json()[0]["mount_path"], "/data");
    let out = env.run(&["-o", "json", "volume", "list", "empty"]);
    out.ok();
    assert_eq!(out.json(), json!([]));
    let out = env.run(&["-o", "yaml", "volumes", "inspect", "data", "--app", "web"]);
    out.ok();
    assert!(
        out.stdout.contains("size: 1Gi") && out.stdout.contains("phase: Bound"),
        "{}",
        out.stdout
    );
    let out = env.run(&["volumes", "inspect", "logs", "--app", "web"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
}

#[test]
fn app_tables_are_for_people() {
    let api = MockApi::start();
    let mut s = status("degraded", 3, 1, 2);
    s["reason"] = json!("CrashLoopBackOff");
    s["replicas"] = json!([{"pod": "web-1", "phase": "Running", "ready": false, "restarts": 5, "reason": "CrashLoopBackOff", "release": 3}]);
    api.on("GET", APP, 200, app("web", 3, s));
    api.on("GET", "/v1/orgs/acme/apps", 200, page(vec![], None));
    let env = logged_in(&api);
    let out = env.run(&["app", "status", "web"]);
    out.ok();
    assert!(
        out.stdout.contains("degraded (CrashLoopBackOff)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("web-1"), "{}", out.stdout);
    let out = env.run(&["app", "list"]);
    out.ok();
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("No apps"), "{}", out.stderr);
    let out = env.run(&["-o", "json", "app", "list"]);
    assert_eq!(out.json(), json!([]));
}

#[test]
fn autoscaling_flags_imply_hpa_and_file_tuning_alone_does_not_enable_it() {
    let api = existing_app();
    let env = logged_in(&api);
    env.write(
        "satusky.toml",
        "[app]\nname = \"web\"\nimage = \"nginx:1\"\n[hpa]\nmin_replicas = 2\n",
    );
    env.run(&["deploy"]).ok();
    assert_eq!(deploy_body(&api).get("autoscaling"), None);

    let api = existing_app();
    let env = logged_in(&api);
    env.write(
        "satusky.toml",
        "[app]\nname = \"web\"\nimage = \"nginx:1\"\n[hpa]\nmin_replicas = 2\n",
    );
    env.run(&["deploy", "--hpa-max", "4"]).ok();
    assert_eq!(
        deploy_body(&api)["autoscaling"],
        json!({"min_replicas": 2, "max_replicas": 4, "cpu_percent": 80})
    );

    let api = MockApi::start();
    let env = logged_in(&api);
    let out = env.run(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1",
        "--hpa-min",
        "5",
        "--hpa-max",
        "2",
    ]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(api.calls().is_empty(), "{:?}", api.calls());
}

#[test]
fn empty_lists_are_empty_json_arrays() {
    let api = MockApi::start();
    api.on("GET", &format!("{APP}/releases"), 200, page(vec![], None));
    api.on("GET", &format!("{APP}/events"), 200, page(vec![], None));
    api.on("GET", &format!("{APP}/secrets"), 200, page(vec![], None));
    api.on("GET", &format!("{APP}/env"), 200, json!({}));
    api.on("GET", &format!("{APP}/volumes"), 200, page(vec![], None));
    api.on("GET", "/v1/orgs/acme/apps", 200, page(vec![], None));
    let env = logged_in(&api);
    for args in [
        &["app", "list"][..],
        &["app", "releases", "web"][..],
        &["app", "events", "web"][..],
        &["secret", "list", "--app", "web"][..],
        &["config", "list", "--app", "web"][..],
        &["volumes", "list", "web"][..],
    ] {
        let out = env.run(&[&["-o", "json"][..], args].concat());
        out.ok();
        assert_eq!(out.json(), json!([]), "{args:?}");
        let out = env.run(&[&["-o", "yaml"][..], args].concat());
        out.ok();
        assert_eq!(out.stdout.trim(), "[]", "{args:?}");
        let out = env.run(args);
        out.ok();
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}
