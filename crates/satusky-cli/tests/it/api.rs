//! Behaviour against a mock API: the requests `1ctl` sends, what it prints,
//! and how it fails.

use serde_json::json;

use crate::support::{
    MockApi, TestEnv, api_token, audit_entry, error_body, me, member, org, page, user,
};

fn logged_in(api: &MockApi, org: Option<&str>) -> TestEnv {
    let env = TestEnv::new();
    env.seed_profile("default", &api.url, "sk_pat_secret", org);
    env
}

#[test]
fn login_with_a_token_verifies_it_and_selects_the_only_org() {
    let api = MockApi::start();
    api.on("GET", "/v1/me", 200, me("token", None));
    api.on("GET", "/v1/orgs", 200, page(vec![org("acme")], None));
    let env = TestEnv::new();
    let out = env.run(&[
        "--api-url",
        &api.url,
        "auth",
        "login",
        "--token",
        "sk_pat_abc",
        "-o",
        "json",
    ]);
    out.ok();
    assert_eq!(out.json()["user"]["email"], "alice@example.com");
    assert_eq!(out.json()["org"], "acme");
    assert_eq!(api.calls(), vec!["GET /v1/me", "GET /v1/orgs?limit=1000"]);
    assert!(
        api.requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer sk_pat_abc"))
    );
    let config = env.config();
    assert_eq!(config["active_profile"], "default");
    assert_eq!(
        config["profiles"]["default"],
        json!({"api_url": api.url, "token": "sk_pat_abc", "org": "acme", "email": "alice@example.com", "user_id": "usr_1"})
    );
}

#[test]
fn login_reads_the_token_from_stdin_or_the_environment() {
    let api = MockApi::start();
    api.on("GET", "/v1/me", 200, me("token", Some("acme")));
    let env = TestEnv::new();
    env.run_stdin(
        &["--api-url", &api.url, "auth", "login", "--token-stdin"],
        "sk_pat_stdin\n",
    )
    .ok();
    assert_eq!(env.config()["profiles"]["default"]["token"], "sk_pat_stdin");
    env.run_with(
        &["--api-url", &api.url, "auth", "login"],
        &[("SATUSKY_TOKEN", "sk_pat_env")],
        None,
    )
    .ok();
    assert_eq!(env.config()["profiles"]["default"]["token"], "sk_pat_env");
    let auth: Vec<_> = api
        .requests()
        .into_iter()
        .map(|r| r.authorization.unwrap())
        .collect();
    assert_eq!(auth, ["Bearer sk_pat_stdin", "Bearer sk_pat_env"]);
}

#[test]
fn login_with_an_org_scoped_token_uses_that_org() {
    let api = MockApi::start();
    api.on("GET", "/v1/me", 200, me("token", Some("scoped")));
    let env = TestEnv::new();
    env.run(&[
        "--api-url",
        &api.url,
        "auth",
        "login",
        "--token",
        "sk_pat_abc",
    ])
    .ok();
    assert_eq!(env.config()["profiles"]["default"]["org"], "scoped");
    assert_eq!(api.calls(), vec!["GET /v1/me"]);
}

#[test]
fn login_with_email_reads_the_password_from_stdin() {
    let api = MockApi::start();
    api.on(
        "POST",
        "/v1/auth/login",
        201,
        json!({"token": "sk_sess_new", "expires_at": "2026-02-02T00:00:00Z", "user": user()}),
    );
    api.on("GET", "/v1/me", 200, me("session", None));
    api.on("GET", "/v1/orgs", 200, page(vec![org("a"), org("b")], None));
    let env = TestEnv::new();
    let out = env.run_with(
        &[
            "--api-url",
            &api.url,
            "auth",
            "login",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        &[],
        Some("hunter2\n"),
    );
    out.ok();
    let reqs = api.requests();
    assert_eq!(
        reqs[0].body,
        json!({"email": "alice@example.com", "password": "hunter2"})
    );
    assert_eq!(reqs[0].authorization, None);
    assert_eq!(reqs[1].authorization.as_deref(), Some("Bearer sk_sess_new"));
    // Two orgs: none is chosen, and the user is told how to choose.
    assert!(env.config()["profiles"]["default"].get("org").is_none());
    assert!(out.stderr.contains("org switch SLUG"), "{}", out.stderr);
    assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"));
}

#[test]
fn login_with_wrong_credentials_exits_1_and_saves_nothing() {
    let api = MockApi::start();
    api.on(
        "POST",
        "/v1/auth/login",
        401,
        error_body("invalid_credentials", "email or password is wrong", "req-7"),
    );
    let env = TestEnv::new();
    let out = env.run_with(
        &[
            "--api-url",
            &api.url,
            "auth",
            "login",
            "--email",
            "a@example.com",
            "--password-stdin",
        ],
        &[],
        Some("nope\n"),
    );
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.snapshot());
    assert!(!env.config_file().exists());
}

#[test]
fn logout_ends_the_session_and_forgets_the_token() {
    let api = MockApi::start();
    api.on("POST", "/v1/auth/logout", 204, json!(null));
    let env = TestEnv::new();
    env.seed_profile("default", &api.url, "sk_sess_abc", Some("acme"));
    env.run(&["auth", "logout"]).ok();
    assert_eq!(api.calls(), vec!["POST /v1/auth/logout"]);
    assert_eq!(
        api.requests()[0].authorization.as_deref(),
        Some("Bearer sk_sess_abc")
    );
    assert!(env.config()["profiles"]["default"].get("token").is_none());
    assert_eq!(env.config()["profiles"]["default"]["org"], "acme");
}

#[test]
fn logout_with_a_personal_token_calls_nothing_and_forgets_it() {
    let api = MockApi::start();
    let env = logged_in(&api, None);
    env.run(&["auth", "logout"]).ok();
    assert!(api.calls().is_empty());
    assert!(env.config()["profiles"]["default"].get("token").is_none());
}

#[test]
fn signup_posts_the_account_and_prints_the_user() {
    let api = MockApi::start();
    api.on("POST", "/v1/auth/signup", 201, user());
    let env = TestEnv::new();
    let out = env.run_with(
        &[
            "--api-url",
            &api.url,
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
        &[],
        Some("correct horse\n"),
    );
    out.ok();
    assert_eq!(out.json(), user());
    assert_eq!(
        api.requests()[0].body,
        json!({"email": "alice@example.com", "password": "correct horse", "name": "Alice"})
    );
}

#[test]
fn org_list_follows_every_page() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/orgs?limit=1000",
        200,
        page(vec![org("a")], Some("c1")),
    );
    api.on(
        "GET",
        "/v1/orgs?limit=1000&cursor=c1",
        200,
        page(vec![org("b")], None),
    );
    let env = logged_in(&api, None);
    let out = env.run(&["org", "list", "-o", "json"]);
    out.ok();
    let slugs: Vec<_> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].clone())
        .collect();
    assert_eq!(slugs, vec![json!("a"), json!("b")]);
    // RFC 3339 timestamps, as sent.
    assert_eq!(out.json()[0]["created_at"], "2026-01-02T03:04:05Z");
    let table = env.run(&["org", "list"]);
    insta::assert_snapshot!(table.snapshot());
}

#[test]
fn org_switch_checks_the_org_and_saves_it() {
    let api = MockApi::start();
    api.on("GET", "/v1/orgs/acme", 200, org("acme"));
    let env = logged_in(&api, None);
    env.run(&["org", "switch", "acme"]).ok();
    assert_eq!(env.config()["profiles"]["default"]["org"], "acme");
}

#[test]
fn org_switch_to_an_unknown_org_exits_1_with_a_hint() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/orgs/nope",
        404,
        error_body("org_not_found", "organization `nope` not found", "req-9"),
    );
    let env = logged_in(&api, Some("acme"));
    let out = env.run(&["org", "switch", "nope"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.snapshot());
    assert_eq!(env.config()["profiles"]["default"]["org"], "acme");
}

#[test]
fn org_create_sends_slug_and_name_and_selects_it_when_none_is() {
    let api = MockApi::start();
    api.on("POST", "/v1/orgs", 201, org("acme"));
    let env = logged_in(&api, None);
    let out = env.run(&["org", "create", "acme", "--name", "Acme Inc", "-o", "yaml"]);
    out.ok();
    assert!(out.stdout.contains("slug: acme"), "{}", out.stdout);
    assert_eq!(
        api.requests()[0].body,
        json!({"slug": "acme", "name": "Acme Inc"})
    );
    assert_eq!(env.config()["profiles"]["default"]["org"], "acme");
}

#[test]
fn org_create_with_a_taken_slug_exits_1() {
    let api = MockApi::start();
    api.on(
        "POST",
        "/v1/orgs",
        409,
        error_body("org_slug_taken", "slug `acme` is taken", "req-3"),
    );
    let env = logged_in(&api, None);
    let out = env.run(&["org", "create", "acme"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.snapshot());
}

#[test]
fn org_delete_without_a_terminal_needs_yes() {
    let api = MockApi::start();
    api.on("DELETE", "/v1/orgs/acme", 204, json!(null));
    let env = logged_in(&api, Some("acme"));
    let out = env.run(&["org", "delete", "acme"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!(out.snapshot());
    assert!(api.calls().is_empty());

    let out = env.run(&["org", "delete", "acme", "--yes", "-o", "json"]);
    out.ok();
    assert_eq!(
        out.json(),
        json!({"kind": "org", "id": "acme", "action": "deleted"})
    );
    assert_eq!(api.calls(), vec!["DELETE /v1/orgs/acme?confirm=acme"]);
    assert!(env.config()["profiles"]["default"].get("org").is_none());
}

#[test]
fn team_commands_use_the_profile_org_or_the_flag() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/orgs/acme/members",
        200,
        page(vec![member("bob@example.com", "member")], None),
    );
    api.on(
        "POST",
        "/v1/orgs/other/members",
        201,
        member("bob@example.com", "admin"),
    );
    api.on(
        "PATCH",
        "/v1/orgs/acme/members/bob+x@example.com",
        200,
        member("bob+x@example.com", "viewer"),
    );
    api.on("DELETE", "/v1/orgs/acme/members/usr_2", 204, json!(null));
    let env = logged_in(&api, Some("acme"));
    let out = env.run(&["org", "team", "list", "-o", "json"]);
    out.ok();
    assert_eq!(out.json()[0]["email"], "bob@example.com");
    env.run(&[
        "org",
        "team",
        "add",
        "bob@example.com",
        "--role",
        "Admin",
        "--org",
        "other",
    ])
    .ok();
    env.run(&[
        "org",
        "team",
        "role",
        "bob+x@example.com",
        "--role",
        "viewer",
    ])
    .ok();
    env.run(&["org", "team", "remove", "usr_2"]).ok();
    assert_eq!(
        api.calls(),
        vec![
            "GET /v1/orgs/acme/members?limit=1000",
            "POST /v1/orgs/other/members",
            "PATCH /v1/orgs/acme/members/bob+x@example.com",
            "DELETE /v1/orgs/acme/members/usr_2",
        ]
    );
    let reqs = api.requests();
    assert_eq!(
        reqs[1].body,
        json!({"email": "bob@example.com", "role": "admin"})
    );
    assert_eq!(reqs[2].body, json!({"role": "viewer"}));
}

#[test]
fn the_last_owner_cannot_be_removed() {
    let api = MockApi::start();
    api.on(
        "DELETE",
        "/v1/orgs/acme/members/alice@example.com",
        409,
        error_body("last_owner", "the last owner cannot be removed", "req-4"),
    );
    let env = logged_in(&api, Some("acme"));
    let out = env.run(&["org", "team", "remove", "alice@example.com"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("hint: make another member owner first"),
        "{}",
        out.stderr
    );
}

#[test]
fn token_create_prints_the_secret_once_and_list_never_does() {
    let api = MockApi::start();
    api.on(
        "POST",
        "/v1/tokens",
        201,
        json!({"token": api_token("ci"), "secret": "sk_pat_ab12SECRET"}),
    );
    api.on("GET", "/v1/tokens", 200, page(vec![api_token("ci")], None));
    let env = logged_in(&api, Some("acme"));

    let out = env.run(&["token", "create", "ci", "--org", "acme", "--expires", "30"]);
    out.ok();
    assert_eq!(out.stdout, "sk_pat_ab12SECRET\n");
    assert!(out.stderr.contains("will not be shown again"));
    assert_eq!(
        api.requests()[0].body,
        json!({"name": "ci", "org": "acme", "expires_in_days": 30})
    );

    let out = env.run(&["token", "create", "ci", "-o", "json"]);
    out.ok();
    assert_eq!(out.json()["secret"], "sk_pat_ab12SECRET");
    assert_eq!(
        api.requests()[1].body,
        json!({"name": "ci", "org": null, "expires_in_days": null})
    );

    for format in ["json", "yaml", "table"] {
        let out = env.run(&["token", "list", "-o", format]);
        out.ok();
        assert!(
            !out.stdout.contains("SECRET") && !out.stdout.contains("secret"),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn token_enable_disable_and_delete_address_the_token_by_name() {
    let api = MockApi::start();
    api.on("PATCH", "/v1/tokens/ci", 200, api_token("ci"));
    api.on("DELETE", "/v1/tokens/ci", 204, json!(null));
    let env = logged_in(&api, None);
    env.run(&["token", "disable", "ci"]).ok();
    env.run(&["token", "enable", "ci"]).ok();
    let out = env.run(&["token", "delete", "ci", "-o", "json"]);
    out.ok();
    assert_eq!(out.json()["action"], "deleted");
    let reqs = api.requests();
    assert_eq!(reqs[0].body, json!({"enabled": false}));
    assert_eq!(reqs[1].body, json!({"enabled": true}));
    assert_eq!(api.calls()[2], "DELETE /v1/tokens/ci");
}

#[test]
fn an_unknown_token_exits_1_with_a_hint() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/tokens/nope",
        404,
        error_body("token_not_found", "no token `nope`", "req-5"),
    );
    let env = logged_in(&api, None);
    let out = env.run(&["token", "get", "nope"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("hint: run `1ctl token list`"),
        "{}",
        out.stderr
    );
}

#[test]
fn audit_list_sends_its_filters_and_tells_about_more_pages() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/orgs/acme/audit",
        200,
        page(vec![audit_entry("a1")], Some("next1")),
    );
    let env = logged_in(&api, Some("acme"));
    let out = env.run(&[
        "audit",
        "list",
        "--actor",
        "alice@example.com",
        "--action",
        "org.",
        "--outcome",
        "Denied",
        "--since",
        "2026-01-01T00:00:00Z",
        "--limit",
        "5",
        "-o",
        "json",
    ]);
    out.ok();
    assert_eq!(out.json()[0]["id"], "a1");
    assert!(out.stderr.contains("--cursor next1"), "{}", out.stderr);
    assert_eq!(
        api.calls(),
        vec![
            "GET /v1/orgs/acme/audit?limit=5&actor=alice%40example.com&action=org.&outcome=denied&since=2026-01-01T00%3A00%3A00Z"
        ]
    );
}

#[test]
fn audit_list_all_follows_cursors() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/orgs/acme/audit?limit=20",
        200,
        page(vec![audit_entry("a1")], Some("c")),
    );
    api.on(
        "GET",
        "/v1/orgs/acme/audit?limit=20&cursor=c",
        200,
        page(vec![audit_entry("a2")], None),
    );
    api.on("GET", "/v1/orgs/acme/audit/a2", 200, audit_entry("a2"));
    let env = logged_in(&api, Some("acme"));
    let out = env.run(&["audit", "list", "--all", "-o", "json"]);
    out.ok();
    assert_eq!(out.json().as_array().unwrap().len(), 2);
    let out = env.run(&["audit", "get", "a2", "--org", "acme"]);
    out.ok();
    insta::assert_snapshot!(out.snapshot());
}

#[test]
fn an_expired_login_exits_1_and_says_to_log_in() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/me",
        401,
        error_body("unauthenticated", "missing or unknown credentials", "req-1"),
    );
    let env = logged_in(&api, None);
    let out = env.run(&["auth", "status"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.snapshot());
}

#[test]
fn a_server_error_exits_3_and_gives_the_request_id() {
    let api = MockApi::start();
    api.on(
        "GET",
        "/v1/me",
        500,
        error_body("internal", "internal error", "req-boom-42"),
    );
    let env = logged_in(&api, None);
    let out = env.run(&["user", "me", "-o", "json"]);
    assert_eq!(out.code, 3);
    assert_eq!(out.stdout, "");
    insta::assert_snapshot!(out.snapshot());
}

#[test]
fn an_answer_that_is_not_a_satusky_error_exits_3() {
    let api = MockApi::start();
    api.on("GET", "/v1/me", 502, json!("bad gateway"));
    let env = logged_in(&api, None);
    let out = env.run(&["user", "me"]);
    assert_eq!(out.code, 3);
    let stderr = out.stderr.replace(&api.url, "[URL]");
    insta::assert_snapshot!(stderr);
}

#[test]
fn user_update_and_password_send_their_bodies() {
    let api = MockApi::start();
    api.on("PATCH", "/v1/me", 200, user());
    api.on("POST", "/v1/me/password", 204, json!(null));
    let env = logged_in(&api, None);
    env.run(&["user", "update", "--name", "Alice B"]).ok();
    env.run_stdin(
        &["user", "password", "--password-stdin"],
        "old-pw\nnew-pw\n",
    )
    .ok();
    let reqs = api.requests();
    assert_eq!(reqs[0].body, json!({"name": "Alice B"}));
    assert_eq!(
        reqs[1].body,
        json!({"current_password": "old-pw", "new_password": "new-pw"})
    );
    let out = env.run_stdin(&["user", "password", "--password-stdin"], "only-one\n");
    assert_eq!(out.code, 2);
}

#[test]
fn user_me_renders_a_table_for_people() {
    let api = MockApi::start();
    api.on("GET", "/v1/me", 200, me("session", None));
    let env = logged_in(&api, None);
    let out = env.run(&["user", "me"]);
    insta::assert_snapshot!(out.snapshot());
}
