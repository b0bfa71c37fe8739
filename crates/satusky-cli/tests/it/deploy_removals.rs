//! `1ctl deploy --no-…`: each removal flag sends its setting as `null`,
//! conflicts with the flags that set it, and wins over satusky.toml.

use serde_json::{Value, json};

use crate::support::{MockApi, app, deployed, logged_in, release, status};

const APP: &str = "/v1/orgs/acme/apps/web";

/// A mock where `web` exists with release 1, which has every optional setting.
fn app_with_everything() -> MockApi {
    let api = MockApi::start();
    api.on("GET", APP, 200, app("web", 1, status("available", 1, 3, 3)));
    let mut current = release(1, "deploy");
    let spec = &mut current["spec"];
    spec["health"] = json!({"path": "/healthz", "initial_delay_seconds": 0});
    spec["autoscaling"] = json!({"min_replicas": 3, "max_replicas": 6, "cpu_percent": 80});
    spec["vertical_autoscaling"] = json!("initial");
    spec["machine_selector"] = json!("pool=gpu");
    spec["disruption_budget"] = json!({"min_available": "2"});
    spec["zone"] = json!("kul-a");
    api.on("GET", &format!("{APP}/releases/1"), 200, current);
    api.on(
        "POST",
        &format!("{APP}/deploy"),
        201,
        deployed(2, "deploy", false),
    );
    api
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

#[test]
fn each_removal_flag_sends_its_setting_as_null() {
    let api = app_with_everything();
    let env = logged_in(&api);
    env.run(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:2",
        "--no-health-check",
        "--no-hpa",
        "--no-vpa",
        "--no-pdb",
        "--no-zone",
        "--no-machine-selector",
    ])
    .ok();
    let body = deploy_body(&api);
    assert_eq!(
        body,
        json!({
            "image": "nginx:2",
            "create": true,
            "health": null,
            "autoscaling": null,
            "vertical_autoscaling": null,
            "disruption_budget": null,
            "zone": null,
            "machine_selector": null,
        })
    );
    // `null`, not left out: the server would keep a missing key.
    for key in ["health", "autoscaling", "zone"] {
        assert!(body.get(key).is_some(), "{key}");
    }
}

#[test]
fn one_removal_flag_leaves_the_other_settings_out() {
    let api = app_with_everything();
    let env = logged_in(&api);
    env.run(&[
        "deploy",
        "--name",
        "web",
        "--image",
        "nginx:2",
        "--no-hpa",
        "--replicas",
        "2",
    ])
    .ok();
    assert_eq!(
        deploy_body(&api),
        json!({"image": "nginx:2", "create": true, "autoscaling": null, "replicas": 2})
    );
}

#[test]
fn a_removal_flag_with_a_flag_that_sets_the_same_thing_is_a_usage_error() {
    let api = app_with_everything();
    let env = logged_in(&api);
    for clash in [
        &["--no-hpa", "--hpa"][..],
        &["--no-hpa", "--hpa-max", "5"],
        &["--no-hpa", "--hpa-min", "2"],
        &["--no-hpa", "--hpa-cpu", "50"],
        &["--no-health-check", "--health-path", "/up"],
        &["--no-pdb", "--pdb-min-available", "1"],
        &["--no-pdb", "--pdb-max-unavailable", "1"],
        &["--no-zone", "--zone", "kul-a"],
        &["--no-machine-selector", "--machine-selector", "pool=gpu"],
        &["--no-machine-selector", "--machine-label", "pool=gpu"],
        &["--no-machine-selector", "--machine-label-any", "pool=gpu"],
        &["--no-machine-selector", "--machine-tag", "gpu"],
    ] {
        let mut args = vec!["deploy", "--name", "web", "--image", "nginx:2"];
        args.extend_from_slice(clash);
        let out = env.run(&args);
        assert_eq!(out.code, 2, "{clash:?}: {}", out.snapshot());
        assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
    }
    assert!(api.calls().iter().all(|c| !c.starts_with("POST")));
}

#[test]
fn removal_flags_win_over_satusky_toml() {
    let api = app_with_everything();
    let env = logged_in(&api);
    env.write(
        "satusky.toml",
        "[app]\nname = \"web\"\nimage = \"nginx:2\"\nzone = \"kul-b\"\nmachine_selector = \"pool=cpu\"\n\
         [checks]\nhealth_path = \"/up\"\n\
         [hpa]\nenabled = true\nmin_replicas = 2\nmax_replicas = 4\n\
         [vpa]\nmode = \"auto\"\n\
         [pdb]\nmin_available = 1\n",
    );
    env.run(&[
        "deploy",
        "--no-health-check",
        "--no-hpa",
        "--no-pdb",
        "--no-zone",
        "--no-machine-selector",
    ])
    .ok();
    let body = deploy_body(&api);
    for key in [
        "health",
        "autoscaling",
        "disruption_budget",
        "zone",
        "machine_selector",
    ] {
        assert_eq!(body.get(key), Some(&Value::Null), "{key}: {body}");
    }
    // With the autoscaler removed, [vpa] mode `auto` is no longer refused.
    assert_eq!(body["vertical_autoscaling"], "auto");
}

#[test]
fn vpa_auto_over_a_kept_autoscaler_is_refused_with_a_hint_to_remove_it() {
    let api = app_with_everything();
    let env = logged_in(&api);
    env.write(
        "satusky.toml",
        "[app]\nname = \"web\"\nimage = \"nginx:2\"\n[vpa]\nmode = \"auto\"\n",
    );
    let out = env.run(&["deploy"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(out.stderr.contains("hint: pass --no-hpa"), "{}", out.stderr);
    assert!(api.calls().iter().all(|c| !c.starts_with("POST")));
}
