//! Profiles, the configuration file and where each setting comes from.
//! Nothing here needs a server.

use serde_json::json;

use crate::support::{MockApi, TestEnv, me, page};

#[test]
fn the_first_profile_created_becomes_active() {
    let env = TestEnv::new();
    let out = env.run(&[
        "profile",
        "create",
        "prod",
        "--api-url",
        "https://api.example.com",
        "-o",
        "json",
    ]);
    out.ok();
    assert_eq!(
        out.json(),
        json!({"name": "prod", "active": true, "api_url": "https://api.example.com", "logged_in": false})
    );
    env.run(&[
        "profile",
        "create",
        "local",
        "--api-url",
        "http://127.0.0.1:9",
    ])
    .ok();
    let list = env.run(&["profile", "list", "-o", "json"]);
    list.ok();
    let names: Vec<_> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].clone(), p["active"].clone()))
        .collect();
    assert_eq!(
        names,
        vec![(json!("local"), json!(false)), (json!("prod"), json!(true))]
    );
}

#[test]
fn profile_use_switches_the_active_profile_and_delete_refuses_it() {
    let env = TestEnv::new();
    env.run(&["profile", "create", "a"]).ok();
    env.run(&["profile", "create", "b"]).ok();
    env.run(&["profile", "use", "b"]).ok();
    assert_eq!(env.config()["active_profile"], "b");
    let current = env.run(&["profile", "current", "-o", "json"]);
    assert_eq!(current.json()["name"], "b");

    let refused = env.run(&["profile", "delete", "b"]);
    assert_eq!(refused.code, 1);
    insta::assert_snapshot!(refused.snapshot());

    env.run(&["profile", "delete", "a"]).ok();
    assert!(env.config()["profiles"].get("a").is_none());
}

#[test]
fn unknown_profiles_are_refused() {
    let env = TestEnv::new();
    let out = env.run(&["profile", "use", "nope"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: profile `nope` does not exist"),
        "{}",
        out.stderr
    );
    let out = env.run(&["-p", "nope", "org", "list"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("hint: create it with `1ctl profile create nope`"),
        "{}",
        out.stderr
    );
}

#[test]
fn invalid_profile_names_are_usage_errors() {
    let env = TestEnv::new();
    let out = env.run(&["profile", "create", "../evil"]);
    assert_eq!(out.code, 2, "{}", out.snapshot());
    assert!(!env.config_file().exists());
}

#[test]
fn profile_create_refuses_plain_http_to_remote_hosts() {
    let env = TestEnv::new();
    let out = env.run(&[
        "profile",
        "create",
        "x",
        "--api-url",
        "http://api.example.com",
    ]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.snapshot());
}

#[cfg(unix)]
#[test]
fn the_config_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.run(&["profile", "create", "prod"]).ok();
    let file = std::fs::metadata(env.config_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    let dir = std::fs::metadata(env.config_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!((file, dir), (0o600, 0o700));
    // Rewriting keeps the mode and leaves no temporary file behind.
    env.run(&["profile", "create", "dev"]).ok();
    let file = std::fs::metadata(env.config_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(file, 0o600);
    assert_eq!(std::fs::read_dir(env.config_dir()).unwrap().count(), 1);
}

#[test]
fn api_url_resolves_flag_then_env_then_file_then_default() {
    let env = TestEnv::new();
    let current = |args: &[&str], envs: &[(&str, &str)]| {
        let mut all = vec!["profile", "current", "-o", "json"];
        all.extend_from_slice(args);
        let out = env.run_with(&all, envs, None);
        out.ok();
        let v = out.json();
        (
            v["api_url"].as_str().unwrap().to_owned(),
            v["api_url_source"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        current(&[], &[]),
        ("http://127.0.0.1:8080".into(), "default".into())
    );

    env.run(&[
        "profile",
        "create",
        "p",
        "--api-url",
        "https://file.example.com",
    ])
    .ok();
    assert_eq!(
        current(&[], &[]),
        ("https://file.example.com".into(), "profile".into())
    );

    let from_env = [("SATUSKY_API_URL", "https://env.example.com")];
    assert_eq!(
        current(&[], &from_env),
        ("https://env.example.com".into(), "env".into())
    );
    assert_eq!(
        current(&["--api-url", "https://flag.example.com"], &from_env),
        ("https://flag.example.com".into(), "flag".into())
    );
}

#[test]
fn profile_resolves_flag_then_env_then_active() {
    let env = TestEnv::new();
    for name in ["one", "two", "three"] {
        env.run(&["profile", "create", name]).ok();
    }
    let name = |args: &[&str], envs: &[(&str, &str)]| {
        let mut all = vec!["profile", "current", "-o", "json"];
        all.extend_from_slice(args);
        let v = env.run_with(&all, envs, None).json();
        (
            v["name"].as_str().unwrap().to_owned(),
            v["name_source"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(name(&[], &[]), ("one".into(), "profile".into()));
    assert_eq!(
        name(&[], &[("SATUSKY_PROFILE", "two")]),
        ("two".into(), "env".into())
    );
    assert_eq!(
        name(&["-p", "three"], &[("SATUSKY_PROFILE", "two")]),
        ("three".into(), "flag".into())
    );
    // Choosing a profile for one run persists nothing.
    assert_eq!(env.config()["active_profile"], "one");
}

#[test]
fn the_token_from_the_environment_overrides_the_profile() {
    let api = MockApi::start();
    api.on("GET", "/v1/me", 200, me("token", None));
    let env = TestEnv::new();
    env.seed_profile("default", &api.url, "sk_pat_file", None);
    env.run(&["user", "me", "-o", "json"]).ok();
    env.run_with(
        &["user", "me", "-o", "json"],
        &[("SATUSKY_TOKEN", "sk_pat_env")],
        None,
    )
    .ok();
    let auth: Vec<_> = api
        .requests()
        .into_iter()
        .map(|r| r.authorization.unwrap_or_default())
        .collect();
    assert_eq!(auth, vec!["Bearer sk_pat_file", "Bearer sk_pat_env"]);
}

#[test]
fn json_and_yaml_print_empty_lists_as_empty_lists() {
    let env = TestEnv::new();
    let out = env.run(&["profile", "list", "-o", "json"]);
    out.ok();
    assert_eq!(out.json(), json!([]));
    let out = env.run(&["profile", "list", "-o", "YAML"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "[]");
    // Table mode says so on stderr, and stdout stays empty.
    let out = env.run(&["profile", "list"]);
    out.ok();
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("No profiles yet"));

    let api = MockApi::start();
    api.on("GET", "/v1/orgs", 200, page(vec![], None));
    env.seed_profile("default", &api.url, "sk_pat_x", None);
    let out = env.run(&["org", "list", "-o", "json"]);
    out.ok();
    assert_eq!(out.json(), json!([]));
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new();
    for args in [
        &[][..],
        &["bogus"],
        &["org", "switch"],
        &["-o", "xml", "profile", "list"],
        &["org", "team", "add", "bob@example.com", "--role", "emperor"],
        &["token", "create", "ci", "--expires", "0"],
        &["audit", "list", "--since", "yesterday"],
        &["auth", "login", "--token", "t", "--email", "a@b.c"],
        // Tokens are not arguments outside `auth login`: use SATUSKY_TOKEN.
        &["org", "list", "--token", "t"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.snapshot());
        assert_eq!(out.stdout, "", "{args:?}");
    }
}

#[test]
fn a_command_without_an_organization_says_how_to_choose_one() {
    let env = TestEnv::new();
    env.seed_profile("default", "http://127.0.0.1:9", "sk_pat_x", None);
    let out = env.run(&["org", "team", "list"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.snapshot());
}

#[test]
fn commands_needing_a_login_say_so() {
    let env = TestEnv::new();
    let out = env.run(&["org", "list"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.snapshot());
}

#[test]
fn an_unreachable_api_exits_3_with_a_clear_message() {
    // Bind then drop a listener, so the port is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = TestEnv::new();
    env.seed_profile(
        "default",
        &format!("http://127.0.0.1:{port}"),
        "sk_pat_x",
        None,
    );
    let out = env.run(&["org", "list", "-o", "json"]);
    assert_eq!(out.code, 3);
    assert_eq!(out.stdout, "");
    let stderr = out.stderr.replace(&port.to_string(), "[PORT]");
    insta::assert_snapshot!(stderr);
}
