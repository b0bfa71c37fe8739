//! `machine usage` against a mock API: the periods, machine-hours in all,
//! JSON output, and the machine reference resolved to an id.

use serde_json::json;

use crate::support::{MockApi, logged_in, machine, page};

fn period(name: &str, seconds: u64, reason: Option<&str>) -> serde_json::Value {
    json!({
        "id": format!("u-{name}"), "machine_id": format!("mch_{name}"), "machine_name": name,
        "cpu_cores": 8, "memory_bytes": 17_179_869_184_u64, "gpus": 1,
        "started_at": "2026-11-20T10:00:00Z",
        "ended_at": reason.map(|_| "2026-11-20T13:00:00Z"),
        "end_reason": reason, "seconds": seconds
    })
}

#[test]
fn machine_usage_lists_periods_with_hours_and_a_total() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/orgs/acme/machine-usage",
        200,
        page(
            vec![
                period("node-a", 3 * 3600, Some("released")),
                period("node-b", 5400, None),
            ],
            None,
        ),
    );
    let env = logged_in(&api);
    let out = env.run(&["machine", "usage"]);
    out.ok();
    assert!(out.stdout.contains("node-a"), "{}", out.stdout);
    assert!(out.stdout.contains("3.00"), "{}", out.stdout);
    assert!(out.stdout.contains("1.50"), "{}", out.stdout);
    assert!(out.stdout.contains("held"), "{}", out.stdout);
    assert!(
        out.stderr.contains("2 periods, 4.50 machine-hours in all"),
        "{}",
        out.stderr
    );
    let out = env.run(&["-o", "json", "machine", "usage"]);
    out.ok();
    assert_eq!(out.json()[1]["seconds"], 5400);
    assert!(
        api.calls()
            .iter()
            .all(|c| c.starts_with("GET /v1/orgs/acme/machine-usage?limit=")),
        "{:?}",
        api.calls()
    );
}

#[test]
fn machine_usage_of_one_machine_resolves_its_name_and_sends_since() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/orgs/acme/machines",
        200,
        page(vec![machine("mch_1", "node-a", "joined")], None),
    );
    api.on(
        "GET",
        "/v1/orgs/acme/machine-usage",
        200,
        page(vec![], None),
    );
    let env = logged_in(&api);
    let out = env.run(&["machine", "usage", "node-a", "--since", "24h"]);
    out.ok();
    assert!(out.stderr.contains("No machine usage"), "{}", out.stderr);
    let call = api
        .calls()
        .into_iter()
        .find(|c| c.contains("machine-usage"))
        .unwrap();
    assert!(call.contains("machine=mch_1"), "{call}");
    assert!(call.contains("since=2026-"), "{call}");
    let out = env.run(&["machine", "usage", "--since", "soon"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}
