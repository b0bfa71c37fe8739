//! `machine`, `cluster`, `logs` and `deploy --dry-run` against a mock API:
//! requests (method, path, query, body), reference resolution by id and by
//! name, bulk results, `--wait`, JSON shapes and exit codes.

use serde_json::{Value, json};

use crate::support::{
    MockApi, TestEnv, error_body, logged_in, machine, machine_event, page, with_operation,
};

const MACHINES: &str = "/v1/orgs/acme/machines";

/// A fleet of two machines: `node-a` (mch_1) and `node-b` (mch_2).
fn fleet() -> MockApi {
    let api = MockApi::start();
    api.on(
        "GET",
        MACHINES,
        200,
        page(
            vec![
                machine("mch_1", "node-a", "joined"),
                machine("mch_2", "node-b", "joined"),
            ],
            None,
        ),
    );
    api
}

/// The requests other than the resolving list, as `METHOD /path?query`.
fn actions(api: &MockApi) -> Vec<String> {
    api.calls()
        .into_iter()
        .filter(|c| !c.starts_with(&format!("GET {MACHINES}?limit=")))
        .collect()
}

fn body_of(api: &MockApi, method: &str, path: &str) -> Value {
    api.requests()
        .into_iter()
        .find(|r| r.method == method && r.path == path)
        .unwrap_or_else(|| panic!("no {method} {path} in {:?}", api.calls()))
        .body
}

#[test]
fn machine_list_is_an_empty_json_array_and_passes_the_selector() {
    let api = MockApi::start();
    api.on("GET", MACHINES, 200, page(vec![], None));
    let env = logged_in(&api);
    let out = env.run(&["-o", "json", "machine", "list"]);
    out.ok();
    assert_eq!(out.json(), json!([]));
    let out = env.run(&["-o", "yaml", "machine", "list"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "[]");
    let out = env.run(&["machine", "list"]);
    out.ok();
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("machine tokens create"),
        "{}",
        out.stderr
    );

    let out = env.run(&[
        "-o",
        "json",
        "machine",
        "query",
        "--selector",
        "pool=gpu,zone in (a,b)",
    ]);
    out.ok();
    assert_eq!(out.json(), json!([]));
    assert_eq!(
        api.calls().last().unwrap(),
        "GET /v1/orgs/acme/machines?selector=pool%3Dgpu%2Czone+in+%28a%2Cb%29&limit=1000"
    );
}

#[test]
fn machine_list_shows_a_table_and_the_machines_in_json() {
    let api = fleet();
    let env = logged_in(&api);
    let out = env.run(&["machine", "list", "-l", "pool=gpu"]);
    out.ok();
    assert!(out.stdout.starts_with("NAME"), "{}", out.stdout);
    assert!(out.stdout.contains("node-a"), "{}", out.stdout);
    assert!(out.stdout.contains("16.0 GiB"), "{}", out.stdout);
    let out = env.run(&["-o", "json", "machine", "ls"]);
    out.ok();
    let list = out.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], "mch_1");
    assert_eq!(list[0]["state"], "joined");
}

#[test]
fn every_subcommand_resolves_a_machine_by_id_or_by_name() {
    let api = fleet();
    for action in ["cordon", "uncordon", "claim", "release"] {
        api.on(
            "POST",
            &format!("{MACHINES}/mch_1/{action}"),
            202,
            machine("mch_1", "node-a", "cordoned"),
        );
    }
    api.on(
        "PATCH",
        &format!("{MACHINES}/mch_1/labels"),
        200,
        machine("mch_1", "node-a", "joined"),
    );
    api.on(
        "PUT",
        &format!("{MACHINES}/mch_1/visibility"),
        200,
        machine("mch_1", "node-a", "joined"),
    );
    api.on(
        "GET",
        &format!("{MACHINES}/mch_1/health"),
        200,
        json!({
            "machine": "node-a", "state": "joined", "verdict": "healthy",
            "conditions": [{"type": "NodeReady", "status": "True", "reason": "KubeletReady",
                            "last_transition_time": "2026-11-21T10:00:00Z"}],
            "services": [{"id": "kubelet", "state": "Running", "healthy": true}],
            "node_name": "node-a", "unschedulable": false,
            "checked_at": "2026-11-21T10:00:00Z"
        }),
    );
    let env = logged_in(&api);
    for reference in ["mch_1", "node-a"] {
        for args in [
            vec!["machine", "get", reference],
            vec!["machine", "inspect", reference],
            vec!["machine", "status", reference],
            vec!["machine", "cordon", reference],
            vec!["machine", "uncordon", reference],
            vec!["machine", "claim", reference],
            vec!["machine", "release", reference],
            vec!["machine", "labels", "list", reference],
            vec![
                "machine",
                "labels",
                "set",
                reference,
                "satusky.com/tier=a",
                "ssd=true",
            ],
            vec!["machine", "labels", "unset", reference, "old"],
            vec!["machine", "visibility", reference, "Public"],
        ] {
            let mut full = vec!["-o", "json"];
            full.extend(args.iter().copied());
            env.run(&full).ok();
        }
    }
    let calls = actions(&api);
    // Each action went to the id, whichever reference was given.
    assert!(calls.iter().all(|c| c.contains("/mch_1/")), "{calls:?}");
    assert_eq!(calls.len(), 2 * 9, "{calls:?}");
    assert_eq!(
        body_of(&api, "PATCH", "/v1/orgs/acme/machines/mch_1/labels"),
        json!({"set": {"tier": "a", "ssd": "true"}, "unset": []})
    );
    let unsets: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.body)
        .collect();
    assert_eq!(unsets[1], json!({"set": {}, "unset": ["old"]}));
    assert_eq!(
        body_of(&api, "PUT", "/v1/orgs/acme/machines/mch_1/visibility"),
        json!({"visibility": "public"})
    );

    // JSON shapes.
    let out = env.run(&["-o", "json", "machine", "labels", "list", "node-a"]);
    assert_eq!(
        out.json(),
        json!([
            {"key": "pool", "value": "gpu", "kind": "user"},
            {"key": "arch", "value": "amd64", "kind": "system"},
            {"key": "zone", "value": "kul-1", "kind": "system"}
        ])
    );
    let out = env.run(&["-o", "json", "machine", "status", "node-a"]);
    assert_eq!(
        out.json(),
        json!({
            "id": "mch_1", "name": "node-a", "state": "joined", "connected": true, "node_name": "node-a",
            "verdict": "healthy",
            "conditions": [{"type": "NodeReady", "status": "True", "reason": "KubeletReady",
                            "last_transition_time": "2026-11-21T10:00:00Z"}],
            "services": [{"id": "kubelet", "state": "Running", "healthy": true}]
        })
    );
    let out = env.run(&["machine", "status", "node-a"]);
    assert!(out.stdout.contains("healthy"), "{}", out.stdout);
    assert!(
        out.stdout.contains("NodeReady=True (KubeletReady)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("kubelet Running"), "{}", out.stdout);
    // Inspect merges the record with its live health.
    let out = env.run(&["-o", "json", "machine", "inspect", "node-a"]);
    assert_eq!(out.json()["hardware"]["cpu_cores"], 8);
    assert_eq!(out.json()["health"]["verdict"], "healthy");
    let out = env.run(&["machine", "inspect", "node-a"]);
    assert!(
        out.stdout.contains("NodeReady=True (KubeletReady)"),
        "{}",
        out.stdout
    );
    let out = env.run(&["-o", "json", "machine", "get", "node-a"]);
    assert_eq!(out.json()["hardware"]["cpu_cores"], 8);
}

#[test]
fn an_unknown_or_ambiguous_machine_is_refused_before_any_action() {
    let api = MockApi::start();
    let mut foreign = machine("mch_9", "node-a", "joined");
    foreign["org"] = json!("other");
    foreign["visibility"] = json!("public");
    foreign["operable"] = json!(false);
    api.on(
        "GET",
        MACHINES,
        200,
        page(vec![machine("mch_1", "node-a", "joined"), foreign], None),
    );
    let env = logged_in(&api);
    let out = env.run(&["machine", "cordon", "node-a"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("`node-a` names 2 machines: mch_1 (org acme), mch_9 (org other)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: give the machine's id"),
        "{}",
        out.stderr
    );
    // By id it is unambiguous.
    api.on(
        "POST",
        &format!("{MACHINES}/mch_9/cordon"),
        403,
        error_body(
            "forbidden",
            "machine `node-a` belongs to another organization",
            "req-3",
        ),
    );
    let out = env.run(&["machine", "cordon", "mch_9"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr.contains("belongs to another organization"),
        "{}",
        out.stderr
    );

    let out = env.run(&["machine", "reboot", "nope"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out.stderr.contains("no machine `nope`"), "{}", out.stderr);
    assert!(out.stderr.contains("machine list"), "{}", out.stderr);
    assert!(
        api.calls().iter().all(|c| !c.contains("reboot")),
        "{:?}",
        api.calls()
    );
}

#[test]
fn bulk_actions_print_one_row_per_machine_and_exit_1_when_any_failed() {
    let api = MockApi::start();
    api.on(
        "POST",
        &format!("{MACHINES}/bulk/cordon"),
        200,
        json!({"selector": "pool=gpu", "items": [
            {"id": "mch_1", "name": "node-a", "ok": true, "state": "cordoned"},
            {"id": "mch_2", "name": "node-b", "ok": false, "code": "machine_busy", "message": "machine is busy with drain"}
        ]}),
    );
    api.on(
        "POST",
        &format!("{MACHINES}/bulk/uncordon"),
        200,
        json!({"selector": "pool=gpu", "items": [{"id": "mch_1", "name": "node-a", "ok": true, "state": "joined"}]}),
    );
    api.on(
        "POST",
        &format!("{MACHINES}/bulk/labels"),
        200,
        json!({"selector": "pool=gpu", "items": []}),
    );
    api.on(
        "POST",
        &format!("{MACHINES}/bulk/drain"),
        200,
        json!({"selector": "pool=gpu", "items": [{"id": "mch_1", "name": "node-a", "ok": true, "state": "draining"}]}),
    );
    let env = logged_in(&api);

    let out = env.run(&["machine", "cordon", "--selector", "pool=gpu"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(out.stdout.contains("node-b"), "{}", out.stdout);
    assert!(out.stdout.contains("failed"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("machine is busy with drain (machine_busy)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("cordon failed on 1 of 2 machines"),
        "{}",
        out.stderr
    );

    let out = env.run(&["-o", "json", "machine", "cordon", "-l", "pool=gpu"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["items"][1]["ok"], false);
    assert_eq!(out.json()["selector"], "pool=gpu");

    let out = env.run(&["-o", "json", "machine", "uncordon", "-l", "pool=gpu"]);
    out.ok();
    assert_eq!(out.json()["items"][0]["state"], "joined");

    let out = env.run(&[
        "-o",
        "json",
        "machine",
        "labels",
        "set",
        "--selector",
        "pool=gpu",
        "tier=a",
    ]);
    out.ok();
    assert_eq!(out.json()["items"], json!([]));

    let out = env.run(&[
        "machine",
        "drain",
        "-l",
        "pool=gpu",
        "--timeout",
        "2m",
        "--delete-emptydir-data",
    ]);
    out.ok();

    assert_eq!(
        body_of(&api, "POST", "/v1/orgs/acme/machines/bulk/labels"),
        json!({"selector": "pool=gpu", "labels": {"set": {"tier": "a"}, "unset": []},
            "drain": {"timeout_seconds": null, "delete_emptydir_data": false}})
    );
    assert_eq!(
        body_of(&api, "POST", "/v1/orgs/acme/machines/bulk/drain"),
        json!({"selector": "pool=gpu", "labels": {"set": {}, "unset": []},
            "drain": {"timeout_seconds": 120, "delete_emptydir_data": true}})
    );
    // No machine was resolved one by one.
    assert!(
        api.calls().iter().all(|c| !c.starts_with("GET")),
        "{:?}",
        api.calls()
    );

    // A machine and a selector together is a usage error.
    let out = env.run(&["machine", "cordon", "node-a", "--selector", "pool=gpu"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
}

/// A fleet where `node-a` has one past event and each drain is accepted.
fn drain_fleet(final_state: Value) -> MockApi {
    let api = fleet();
    api.on(
        "GET",
        &format!("{MACHINES}/mch_1/events"),
        200,
        page(
            vec![machine_event(7, "machine.joined", "node joined")],
            None,
        ),
    );
    let running = with_operation(
        machine("mch_1", "node-a", "draining"),
        "drain",
        "running",
        1,
        None,
    );
    api.on(
        "POST",
        &format!("{MACHINES}/mch_1/drain"),
        202,
        running.clone(),
    );
    api.on_seq(
        "GET",
        &format!("{MACHINES}/mch_1"),
        vec![(200, running), (200, final_state)],
    );
    api.ws_on(
        "/v1/orgs/acme/machines/mch_1/events/ws",
        vec![
            machine_event(8, "operation.started", "drain started"),
            machine_event(9, "drain.progress", "3 evicted, 1 remaining"),
        ],
    );
    api
}

#[test]
fn drain_wait_exits_0_when_the_operation_completes() {
    let done = with_operation(
        machine("mch_1", "node-a", "cordoned"),
        "drain",
        "completed",
        2,
        Some(
            json!({"phase": "completed", "evicted": 4, "remaining": 0, "started_at": "2026-01-02T03:04:05Z"}),
        ),
    );
    let api = drain_fleet(done);
    let env = logged_in(&api);
    let out = env.run(&[
        "-o",
        "json",
        "machine",
        "drain",
        "node-a",
        "--timeout",
        "90s",
        "--wait",
    ]);
    out.ok();
    assert_eq!(out.json()["operation"]["phase"], "completed");
    assert!(out.stderr.contains("drain.progress"), "{}", out.stderr);
    assert!(
        out.stderr.contains("drain of `node-a` completed"),
        "{}",
        out.stderr
    );
    assert_eq!(
        body_of(&api, "POST", "/v1/orgs/acme/machines/mch_1/drain"),
        json!({"timeout_seconds": 90, "delete_emptydir_data": false})
    );
    // The events are followed from the last one before the drain.
    let ws: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "WS")
        .collect();
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0].path, "/v1/orgs/acme/machines/mch_1/events/ws");
    assert_eq!(ws[0].query.as_deref(), Some("from=7"));
}

#[test]
fn drain_wait_exits_1_naming_what_blocks_it() {
    let failed = with_operation(
        machine("mch_1", "node-a", "cordoned"),
        "drain",
        "failed",
        1,
        Some(json!({"phase": "timed_out", "evicted": 3, "remaining": 1,
            "blockers": [{"namespace": "org-acme", "pod": "web-7d9-x2", "reason": "evicting would violate PodDisruptionBudget web-pdb"}],
            "started_at": "2026-01-02T03:04:05Z"})),
    );
    let mut failed = failed;
    failed["operation"]["message"] = json!("drain timed out after 90s with 1 pod left");
    let api = drain_fleet(failed);
    let env = logged_in(&api);
    let out = env.run(&["machine", "drain", "mch_1", "--wait"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("error: drain of `node-a` failed: drain timed out after 90s"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: blocked by org-acme/web-7d9-x2: evicting would violate PodDisruptionBudget web-pdb"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn an_operation_without_wait_returns_at_once() {
    let api = fleet();
    let rebooting = with_operation(
        machine("mch_1", "node-a", "rebooting"),
        "reboot",
        "running",
        0,
        None,
    );
    api.on(
        "POST",
        &format!("{MACHINES}/mch_1/reboot"),
        202,
        rebooting.clone(),
    );
    api.on(
        "POST",
        &format!("{MACHINES}/mch_1/shutdown"),
        202,
        rebooting.clone(),
    );
    api.on(
        "POST",
        &format!("{MACHINES}/mch_1/decommission"),
        202,
        rebooting,
    );
    let env = logged_in(&api);
    let out = env.run(&["-o", "json", "machine", "reboot", "node-a", "--force"]);
    out.ok();
    assert_eq!(out.json()["operation"]["kind"], "reboot");
    env.run(&["machine", "shutdown", "node-a"]).ok();
    assert_eq!(
        body_of(&api, "POST", "/v1/orgs/acme/machines/mch_1/reboot"),
        json!({"force": true})
    );
    assert_eq!(
        body_of(&api, "POST", "/v1/orgs/acme/machines/mch_1/shutdown"),
        json!({"force": false})
    );

    // Decommission asks first; without a terminal it needs --yes.
    let out = env.run(&["machine", "decommission", "node-a"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    assert!(api.calls().iter().all(|c| !c.contains("decommission")));
    env.run(&[
        "machine",
        "decommission",
        "node-a",
        "--wipe-user-disks",
        "--yes",
    ])
    .ok();
    assert_eq!(
        body_of(&api, "POST", "/v1/orgs/acme/machines/mch_1/decommission"),
        json!({"force": false, "wipe_user_disks": true})
    );
}

#[test]
fn a_busy_machine_is_refused_with_a_hint() {
    let api = fleet();
    api.on(
        "POST",
        &format!("{MACHINES}/mch_2/drain"),
        409,
        error_body(
            "machine_busy",
            "machine `node-b` is busy with reboot",
            "req-9",
        ),
    );
    let env = logged_in(&api);
    let out = env.run(&["machine", "drain", "node-b"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr.contains("busy with reboot (machine_busy)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("machine status"), "{}", out.stderr);
}

#[test]
fn metrics_and_events_of_a_machine() {
    let api = fleet();
    api.on(
        "GET",
        &format!("{MACHINES}/mch_2/metrics"),
        200,
        json!({"at": "2026-01-02T03:04:05Z", "cpu_percent": 12.5, "memory_used_bytes": 1_073_741_824_u64,
            "memory_total_bytes": 17_179_869_184_u64, "load1": 0.5, "net_rx_bytes_per_sec": 1024.0,
            "net_tx_bytes_per_sec": 2048.0, "disk_read_bytes_per_sec": 0.0, "disk_write_bytes_per_sec": 4096.0}),
    );
    api.on(
        "GET",
        &format!("{MACHINES}/mch_2/events"),
        200,
        page(
            vec![
                machine_event(1, "machine.discovered", "discovered"),
                machine_event(2, "machine.claimed", "claimed by alice"),
            ],
            None,
        ),
    );
    api.ws_on(
        "/v1/orgs/acme/machines/mch_2/events/ws",
        vec![machine_event(3, "machine.cordoned", "cordoned")],
    );
    let env = logged_in(&api);
    let out = env.run(&["-o", "json", "machine", "metrics", "node-b"]);
    out.ok();
    assert_eq!(out.json()["cpu_percent"], 12.5);
    let out = env.run(&["machine", "metrics", "node-b"]);
    out.ok();
    assert!(out.stdout.contains("1.0 GiB / 16.0 GiB"), "{}", out.stdout);

    let out = env.run(&["-o", "json", "machine", "events", "node-b", "--from", "0"]);
    out.ok();
    assert_eq!(out.json().as_array().unwrap().len(), 2);
    assert!(
        api.calls()
            .contains(&"GET /v1/orgs/acme/machines/mch_2/events?from=0&limit=1000".to_owned())
    );

    let out = env.run(&[
        "-o", "json", "machine", "events", "node-b", "--follow", "--from", "2",
    ]);
    out.ok();
    let line: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(line["kind"], "machine.cordoned");
    let ws: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "WS")
        .collect();
    assert_eq!(ws[0].query.as_deref(), Some("from=2"));
    assert_eq!(ws[0].authorization.as_deref(), Some("Bearer sk_pat_secret"));
}

fn join_token(name: &str, revoked: bool) -> Value {
    json!({"id": "jt_1", "name": name, "org": "acme", "expires_at": "2026-01-03T03:04:05Z",
        "revoked": revoked, "created_at": "2026-01-02T03:04:05Z"})
}

#[test]
fn join_tokens_are_shown_once_with_the_kernel_arguments() {
    let api = MockApi::start();
    api.on(
        "POST",
        "/v1/orgs/acme/join-tokens",
        201,
        json!({"join_token": join_token("rack-1", false), "token": "sk_join_s3cret",
            "kernel_args": ["siderolink.api=https://satusky.test:8099?jointoken=sk_join_s3cret", "talos.events.sink=[fdae::1]:8090"]}),
    );
    api.on(
        "GET",
        "/v1/orgs/acme/join-tokens",
        200,
        page(vec![join_token("rack-1", false)], None),
    );
    api.on(
        "POST",
        "/v1/orgs/acme/join-tokens/rack-1/revoke",
        200,
        join_token("rack-1", true),
    );
    let env = logged_in(&api);

    let out = env.run(&["machine", "tokens", "create", "rack-1", "--expires", "48"]);
    out.ok();
    let lines: Vec<_> = out.stdout.lines().collect();
    assert_eq!(lines[0], "sk_join_s3cret");
    assert!(lines[1].starts_with("siderolink.api="), "{}", out.stdout);
    assert!(lines[1].contains(" talos.events.sink="), "{}", out.stdout);
    assert!(
        out.stderr.contains("will not be shown again"),
        "{}",
        out.stderr
    );
    assert_eq!(
        body_of(&api, "POST", "/v1/orgs/acme/join-tokens"),
        json!({"name": "rack-1", "expires_in_hours": 48})
    );
    let out = env.run(&["-o", "json", "machine", "tokens", "create", "rack-1"]);
    out.ok();
    assert_eq!(out.json()["token"], "sk_join_s3cret");
    assert_eq!(out.json()["join_token"]["name"], "rack-1");

    // Listings never carry a secret.
    let out = env.run(&["-o", "json", "machine", "tokens", "list"]);
    out.ok();
    assert_eq!(out.json(), json!([join_token("rack-1", false)]));
    assert!(!out.stdout.contains("sk_join"));

    let out = env.run(&["-o", "json", "machine", "tokens", "revoke", "rack-1"]);
    out.ok();
    assert_eq!(out.json()["revoked"], true);

    let out = env.run(&["machine", "tokens", "create", "x", "--expires", "0"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
}

#[test]
fn cluster_zones_for_everyone_and_list_for_platform_admins() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/zones",
        200,
        page(
            vec![json!({"zone": "kul-1", "region": "kul", "clusters": 2, "healthy": true})],
            None,
        ),
    );
    api.on(
        "GET",
        "/v1/clusters",
        403,
        error_body("forbidden", "platform administrators only", "req-5"),
    );
    let env = logged_in(&api);
    let out = env.run(&["-o", "json", "cluster", "zones"]);
    out.ok();
    assert_eq!(
        out.json(),
        json!([{"zone": "kul-1", "region": "kul", "clusters": 2, "healthy": true}])
    );
    let out = env.run(&["cluster", "zones"]);
    assert!(out.stdout.starts_with("ZONE"), "{}", out.stdout);
    let out = env.run(&["cluster", "list"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr
            .contains("platform administrators only (forbidden)"),
        "{}",
        out.stderr
    );
}

#[test]
fn logs_pass_tail_since_and_pod_and_print_json_lines() {
    let api = MockApi::start();
    let app_logs = "/v1/orgs/acme/apps/web/logs";
    api.on(
        "GET",
        app_logs,
        200,
        page(
            vec![
                json!({"pod": "web-1", "line": "GET / 200"}),
                json!({"pod": "web-2", "line": "GET /healthz 200"}),
            ],
            None,
        ),
    );
    api.ws_on(
        "/v1/orgs/acme/apps/web/logs/ws",
        vec![
            json!({"pod": "web-1", "line": "started"}),
            json!({"pod": "web-1", "line": "ready"}),
        ],
    );
    let env = logged_in(&api);
    let out = env.run(&[
        "logs", "web", "--tail", "50", "--since", "10m", "--pod", "web-1",
    ]);
    out.ok();
    assert_eq!(
        api.calls().last().unwrap(),
        "GET /v1/orgs/acme/apps/web/logs?tail=50&since_seconds=600&pod=web-1"
    );
    let out = env.run(&["logs", "--app", "web"]);
    out.ok();
    assert_eq!(out.stdout, "[web-1] GET / 200\n[web-2] GET /healthz 200\n");
    assert_eq!(
        api.calls().last().unwrap(),
        "GET /v1/orgs/acme/apps/web/logs"
    );
    let out = env.run(&["-o", "json", "logs", "web"]);
    assert_eq!(
        out.json()[1],
        json!({"pod": "web-2", "line": "GET /healthz 200"})
    );

    for args in [
        &["-o", "json", "logs", "web", "--follow", "-n", "5"][..],
        &["-o", "json", "logs", "stream", "web", "--tail", "5"][..],
    ] {
        let out = env.run(args);
        out.ok();
        let lines: Vec<Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[1], json!({"pod": "web-1", "line": "ready"}));
    }
    let ws: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "WS")
        .collect();
    assert_eq!(ws.len(), 2);
    assert!(
        ws.iter().all(|r| r.query.as_deref() == Some("tail=5")),
        "{ws:?}"
    );
}

#[test]
fn logs_without_a_cluster_exit_3_and_an_unknown_app_exits_1() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/orgs/acme/apps/web/logs",
        503,
        error_body("unavailable", "no cluster is reachable", "req-503"),
    );
    api.on(
        "GET",
        "/v1/orgs/acme/apps/nope/logs",
        404,
        error_body("app_not_found", "app `nope` not found", "req-404"),
    );
    let env = logged_in(&api);
    let out = env.run(&["logs", "web"]);
    assert_eq!(out.code, 3, "{}", out.snapshot());
    assert!(
        out.stderr.contains("no cluster is reachable (unavailable)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("req-503"), "{}", out.stderr);
    let out = env.run(&["logs", "nope"]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
}

#[test]
fn deploy_dry_run_shows_matching_machines_with_their_room_and_deploys_nothing() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/orgs/acme/apps/web",
        404,
        error_body("app_not_found", "app `web` not found", "req-1"),
    );
    let room = |name: &str, fits: u32, schedulable: bool| {
        json!({
            "id": format!("mch_{name}"), "name": name, "state": "joined", "node_name": name,
            "schedulable": schedulable, "reason": if schedulable { Value::Null } else { json!("cordoned") },
            "cpu_allocatable_millis": 4000, "cpu_requested_millis": 1000,
            "memory_allocatable_bytes": 8_589_934_592_u64, "memory_requested_bytes": 1_073_741_824_u64,
            "pods_allocatable": 110, "pods": 3, "fits": fits
        })
    };
    api.on(
        "GET",
        "/v1/orgs/acme/placement",
        200,
        json!({
            "selector": "gpu,region in (kul,bki)", "cpu_request": "500m", "memory_request": "128Mi",
            "replicas": 3, "fits": 6, "enough": true,
            "machines": [room("node-a", 6, true), room("node-b", 0, false)]
        }),
    );
    let env = logged_in(&api);
    let out = env.run(&[
        "-o",
        "json",
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:1",
        "--replicas",
        "3",
        "--cpu-request",
        "500m",
        "--machine-tag",
        "gpu & (region=kul | region=bki)",
        "--dry-run",
    ]);
    out.ok();
    let d = out.json();
    assert_eq!(d["machine_selector"], "gpu,region in (kul,bki)");
    assert_eq!(d["request"]["image"], "nginx:1");
    assert_eq!(d["placement"]["machines"][0]["name"], "node-a");
    assert_eq!(d["placement"]["fits"], 6);
    assert!(
        out.stderr.contains("nothing was deployed"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Room for 6 replicas"), "{}", out.stderr);
    assert_eq!(
        api.calls(),
        [
            "GET /v1/orgs/acme/apps/web",
            "GET /v1/orgs/acme/placement?selector=gpu%2Cregion+in+%28kul%2Cbki%29&cpu=500m&memory=256Mi&replicas=3",
        ]
    );
    let out = env.run(&["deploy", "--name", "web", "--image", "nginx:1", "--dry-run"]);
    out.ok();
    assert!(out.stdout.contains("node-a"), "{}", out.stdout);
    assert!(out.stdout.contains("no (cordoned)"), "{}", out.stdout);
    assert!(out.stderr.contains("No machine selector"), "{}", out.stderr);
    assert!(
        api.calls().iter().all(|c| !c.starts_with("POST")),
        "{:?}",
        api.calls()
    );
}

#[test]
fn a_wait_without_an_event_stream_polls_and_times_out_with_the_last_state() {
    let api = fleet();
    api.on(
        "GET",
        &format!("{MACHINES}/mch_1/events"),
        200,
        page(vec![], None),
    );
    let rebooting = with_operation(
        machine("mch_1", "node-a", "draining"),
        "reboot",
        "running",
        1,
        Some(json!({"phase": "running", "evicted": 0, "remaining": 1,
            "blockers": [{"namespace": "org-acme", "pod": "db-0", "reason": "PodDisruptionBudget db-pdb allows no disruption"}],
            "started_at": "2026-01-02T03:04:05Z"})),
    );
    api.on(
        "POST",
        &format!("{MACHINES}/mch_1/reboot"),
        202,
        rebooting.clone(),
    );
    api.on("GET", &format!("{MACHINES}/mch_1"), 200, rebooting);
    // No WebSocket route for this machine: the upgrade is refused.
    let env = logged_in(&api);
    let out = env.run(&[
        "machine",
        "reboot",
        "node-a",
        "--wait",
        "--wait-timeout",
        "1s",
    ]);
    assert_eq!(out.code, 1, "{}", out.snapshot());
    assert!(
        out.stderr.contains("polling the machine instead"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("error: timed out after 1 s waiting for reboot of `node-a`; last seen: reboot 1/3 (drain_node), running"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "hint: blocked by org-acme/db-0: PodDisruptionBudget db-pdb allows no disruption"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn decommission_wait_exits_0_once_the_machine_is_decommissioned() {
    let api = fleet();
    api.on(
        "GET",
        &format!("{MACHINES}/mch_2/events"),
        200,
        page(vec![machine_event(3, "machine.cordoned", "cordoned")], None),
    );
    let running = with_operation(
        machine("mch_2", "node-b", "decommissioning"),
        "decommission",
        "running",
        0,
        None,
    );
    let done = with_operation(
        machine("mch_2", "node-b", "decommissioned"),
        "decommission",
        "completed",
        3,
        None,
    );
    api.on(
        "POST",
        &format!("{MACHINES}/mch_2/decommission"),
        202,
        running,
    );
    api.on("GET", &format!("{MACHINES}/mch_2"), 200, done);
    api.ws_on(
        "/v1/orgs/acme/machines/mch_2/events/ws",
        vec![machine_event(4, "talos.reset", "machine reset")],
    );
    let env = logged_in(&api);
    let out = env.run(&["-o", "json", "machine", "decommission", "mch_2", "-y", "-w"]);
    out.ok();
    assert_eq!(out.json()["state"], "decommissioned");
    assert!(out.stderr.contains("talos.reset"), "{}", out.stderr);
    let ws: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "WS")
        .collect();
    assert_eq!(ws[0].query.as_deref(), Some("from=3"));
}

#[test]
fn following_logs_of_an_unreachable_api_exits_3_saying_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = TestEnv::new();
    env.seed_profile(
        "default",
        &format!("http://127.0.0.1:{port}"),
        "sk_pat_secret",
        Some("acme"),
    );
    let out = env.run(&["logs", "web", "--follow"]);
    assert_eq!(out.code, 3, "{}", out.snapshot());
    assert!(
        out.stderr.contains("could not connect to the Satusky API"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("is the server running?"),
        "{}",
        out.stderr
    );
}
