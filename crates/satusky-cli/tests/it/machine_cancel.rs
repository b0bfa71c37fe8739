//! `machine cancel` against a mock API: the request, what it prints (text and
//! JSON), `--wait` until the operation stopped, the bulk form and how refusals
//! map to exit codes.

use serde_json::{Value, json};

use crate::support::{
    MockApi, error_body, logged_in, machine, machine_event, page, with_operation,
};

const MACHINES: &str = "/v1/orgs/acme/machines";

/// `node-a` (mch_1) drains under a budget; `node-b` (mch_2) reboots.
fn fleet() -> MockApi {
    let api = MockApi::start();
    api.on(
        "GET",
        MACHINES,
        200,
        page(
            vec![
                machine("mch_1", "node-a", "draining"),
                machine("mch_2", "node-b", "rebooting"),
            ],
            None,
        ),
    );
    api
}

/// `node-a`'s reboot, still running at its drain, with a cancel requested.
fn cancel_requested() -> Value {
    let mut m = with_operation(
        machine("mch_1", "node-a", "rebooting"),
        "reboot",
        "running",
        1,
        Some(json!({"phase": "running", "evicted": 3, "remaining": 1,
            "blockers": [{"namespace": "org-acme", "pod": "db-0", "reason": "evicting would violate PodDisruptionBudget db"}],
            "started_at": "2026-01-02T03:04:05Z"})),
    );
    m["operation"]["cancel_requested"] = json!(true);
    m["operation"]["cancel_requested_at"] = json!("2026-01-02T03:05:00Z");
    m["operation"]["cancel_requested_by"] = json!("ops@example.com");
    m
}

/// `node-a` back to joined, its reboot cancelled.
fn cancelled() -> Value {
    let mut m = cancel_requested();
    m["state"] = json!("joined");
    m["operation"]["phase"] = json!("cancelled");
    m["operation"]["drain"]["phase"] = json!("cancelled");
    m["operation"]["message"] = json!("cancelled by ops@example.com at drain_node");
    m["operation"]["finished_at"] = json!("2026-01-02T03:05:01Z");
    m
}

fn actions(api: &MockApi) -> Vec<String> {
    api.calls()
        .into_iter()
        .filter(|c| !c.starts_with(&format!("GET {MACHINES}?limit=")))
        .collect()
}

#[test]
fn machine_cancel_asks_once_and_prints_the_machine() {
    let api = fleet();
    api.on(
        "POST",
        &format!("{MACHINES}/mch_1/cancel"),
        202,
        cancel_requested(),
    );
    let env = logged_in(&api);

    let out = env.run(&["-o", "json", "machine", "cancel", "node-a"]);
    out.ok();
    let m = out.json();
    assert_eq!(m["id"], "mch_1");
    assert_eq!(m["operation"]["cancel_requested"], true);
    assert_eq!(m["operation"]["phase"], "running");
    assert!(
        out.stderr
            .contains("Cancel of the reboot of `node-a` requested at drain_node"),
        "{}",
        out.stderr
    );
    assert_eq!(actions(&api), ["POST /v1/orgs/acme/machines/mch_1/cancel"]);

    // Text: the machine on stdout, what happens next on stderr.
    let out = env.run(&["machine", "cancel", "mch_1"]);
    out.ok();
    assert!(out.stdout.contains("node-a"), "{}", out.stdout);
    assert!(
        out.stderr.contains("machine events node-a --follow"),
        "{}",
        out.stderr
    );
    // Inspecting the machine shows that a cancel is pending.
    let api = MockApi::start();
    api.on("GET", MACHINES, 200, page(vec![cancel_requested()], None));
    let out = logged_in(&api).run(&["machine", "inspect", "node-a"]);
    out.ok();
    assert!(
        out.stdout
            .contains("reboot 1/3 (drain_node), running, cancel requested"),
        "{}",
        out.stdout
    );
}

#[test]
fn machine_cancel_wait_exits_0_once_the_operation_is_cancelled() {
    let api = fleet();
    api.on(
        "GET",
        &format!("{MACHINES}/mch_1/events"),
        200,
        page(vec![machine_event(7, "drain.progress", "3 evicted")], None),
    );
    api.on(
        "POST",
        &format!("{MACHINES}/mch_1/cancel"),
        202,
        cancel_requested(),
    );
    api.on_seq(
        "GET",
        &format!("{MACHINES}/mch_1"),
        vec![(200, cancel_requested()), (200, cancelled())],
    );
    api.ws_on(
        "/v1/orgs/acme/machines/mch_1/events/ws",
        vec![
            machine_event(
                8,
                "operation.cancel_requested",
                "reboot cancel requested by ops@example.com during drain_node",
            ),
            machine_event(
                9,
                "operation.cancelled",
                "reboot cancelled by ops@example.com at drain_node; machine is joined",
            ),
        ],
    );
    let env = logged_in(&api);
    let out = env.run(&["-o", "json", "machine", "cancel", "node-a", "--wait"]);
    out.ok();
    assert_eq!(out.json()["operation"]["phase"], "cancelled");
    assert_eq!(out.json()["state"], "joined");
    assert!(
        out.stderr
            .contains("reboot of `node-a` cancelled (state joined)"),
        "{}",
        out.stderr
    );
    let ws: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "WS")
        .collect();
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0].query.as_deref(), Some("from=7"));
}

#[test]
fn an_operation_followed_with_wait_that_someone_cancels_exits_1() {
    let api = fleet();
    api.on(
        "GET",
        &format!("{MACHINES}/mch_1/events"),
        200,
        page(vec![], None),
    );
    let mut running = cancel_requested();
    running["operation"]["cancel_requested"] = json!(false);
    api.on(
        "POST",
        &format!("{MACHINES}/mch_1/reboot"),
        202,
        running.clone(),
    );
    api.on_seq(
        "GET",
        &format!("{MACHINES}/mch_1"),
        vec![(200, running), (200, cancelled())],
    );
    api.ws_on("/v1/orgs/acme/machines/mch_1/events/ws", vec![]);
    let env = logged_in(&api);
    let out = env.run(&["machine", "reboot", "node-a", "--wait"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("error: reboot of `node-a` was cancelled by ops@example.com at drain_node"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn a_cancel_the_server_refuses_exits_1_with_its_reason_and_a_hint() {
    let api = fleet();
    api.on(
        "POST",
        &format!("{MACHINES}/mch_2/cancel"),
        409,
        error_body(
            "machine_state_conflict",
            "machine `node-b` is already rebooting (talos_reboot of its reboot began); it cannot be cancelled",
            "req-1",
        ),
    );
    api.on(
        "POST",
        &format!("{MACHINES}/mch_1/cancel"),
        403,
        error_body(
            "forbidden",
            "your role in `acme` (viewer) may not operate machines",
            "req-2",
        ),
    );
    let env = logged_in(&api);
    let out = env.run(&["machine", "cancel", "node-b"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("is already rebooting (talos_reboot of its reboot began); it cannot be cancelled (machine_state_conflict)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert!(out.stderr.contains("machine status"), "{}", out.stderr);
    assert_eq!(out.stdout, "");

    let out = env.run(&["-o", "json", "machine", "cancel", "node-b", "--wait"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert_eq!(out.stdout, "");

    let out = env.run(&["machine", "cancel", "node-a"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out.stderr.contains("(forbidden)"), "{}", out.stderr);

    // An unknown machine is refused before any request.
    let out = env.run(&["machine", "cancel", "node-z"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        actions(&api).iter().all(|c| !c.contains("node-z")),
        "{:?}",
        api.calls()
    );
}

#[test]
fn a_bulk_cancel_reports_each_machine_and_refuses_wait() {
    let api = MockApi::start();
    api.on(
        "POST",
        &format!("{MACHINES}/bulk/cancel"),
        200,
        json!({"selector": "pool=gpu", "items": [
            {"id": "mch_1", "name": "node-a", "ok": true, "state": "rebooting"},
            {"id": "mch_2", "name": "node-b", "ok": false, "state": "rebooting",
             "code": "machine_state_conflict",
             "message": "machine `node-b` is already rebooting (talos_reboot of its reboot began); it cannot be cancelled"}
        ]}),
    );
    let env = logged_in(&api);
    let out = env.run(&["machine", "cancel", "-l", "pool=gpu"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out.stdout.contains("node-a"), "{}", out.stdout);
    assert!(
        out.stderr.contains("cancel failed on 1 of 2 machines"),
        "{}",
        out.stderr
    );
    let out = env.run(&["-o", "json", "machine", "cancel", "--selector", "pool=gpu"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["items"][0]["ok"], true);
    let body = api
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/orgs/acme/machines/bulk/cancel")
        .unwrap()
        .body;
    assert_eq!(body["selector"], "pool=gpu");

    let out = env.run(&["machine", "cancel", "-l", "pool=gpu", "--wait"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    let out = env.run(&["machine", "cancel"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
}
