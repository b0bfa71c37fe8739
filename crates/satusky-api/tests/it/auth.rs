use axum::http::Method;
use satusky_api::ApiConfig;
use satusky_core::ServicesConfig;
use serde_json::json;

use crate::support::{PASSWORD, TestApp};

#[tokio::test]
async fn signup_login_me_and_logout_round_trip() {
    let app = TestApp::new().await;
    let user = app
        .call(
            Method::POST,
            "/v1/auth/signup",
            None,
            Some(json!({"email": "Ann@Example.com", "password": PASSWORD, "name": "Ann"})),
        )
        .await;
    assert_eq!(user.status, 201);
    assert_eq!(user.body["email"], "ann@example.com");
    assert!(user.body.get("password_hash").is_none());
    let token = app.login("ANN@example.com").await;
    assert!(token.starts_with("sk_sess_"));
    let me = app.get("/v1/me", &token).await.ok();
    assert_eq!(me["user"]["name"], "Ann");
    assert_eq!(me["auth"], "session");
    assert_eq!(
        app.call(Method::POST, "/v1/auth/logout", Some(&token), None)
            .await
            .status,
        204
    );
    app.get("/v1/me", &token).await.err(401, "unauthenticated");
}

#[tokio::test]
async fn wrong_password_and_unknown_account_answer_the_same() {
    let app = TestApp::new().await;
    app.user("ann@example.com").await;
    let wrong = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"email": "ann@example.com", "password": "nope nope nope"})),
        )
        .await;
    let unknown = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"email": "bob@example.com", "password": "nope nope nope"})),
        )
        .await;
    wrong.err(401, "invalid_credentials");
    unknown.err(401, "invalid_credentials");
    assert_eq!(
        wrong.body["error"]["message"],
        unknown.body["error"]["message"]
    );
}

#[tokio::test]
async fn failed_logins_are_limited_per_account_with_retry_after() {
    let app = TestApp::new().await;
    app.user("ann@example.com").await;
    let bad = json!({"email": "ann@example.com", "password": "wrong password!"});
    for _ in 0..5 {
        app.call(Method::POST, "/v1/auth/login", None, Some(bad.clone()))
            .await
            .err(401, "invalid_credentials");
    }
    let limited = app
        .call(Method::POST, "/v1/auth/login", None, Some(bad.clone()))
        .await;
    limited.err(429, "rate_limited");
    assert!(limited.headers.get("retry-after").is_some());
    // Even the right password is refused while limited...
    let good = json!({"email": "ann@example.com", "password": PASSWORD});
    app.call(Method::POST, "/v1/auth/login", None, Some(good.clone()))
        .await
        .err(429, "rate_limited");
    // ...and accepted once the window has passed.
    app.clock.advance(chrono::Duration::minutes(16));
    app.call(Method::POST, "/v1/auth/login", None, Some(good))
        .await
        .ok();
}

#[tokio::test]
async fn failed_logins_are_limited_per_address_across_accounts() {
    let app = TestApp::new().await;
    for i in 0..20 {
        let bad = json!({"email": format!("u{i}@example.com"), "password": "wrong password!"});
        app.call(Method::POST, "/v1/auth/login", None, Some(bad))
            .await
            .err(401, "invalid_credentials");
    }
    let bad = json!({"email": "fresh@example.com", "password": "wrong password!"});
    app.call(Method::POST, "/v1/auth/login", None, Some(bad))
        .await
        .err(429, "rate_limited");
}

#[tokio::test]
async fn sessions_expire() {
    let app = TestApp::new().await;
    let token = app.user("ann@example.com").await;
    app.clock.advance(chrono::Duration::days(8));
    app.get("/v1/me", &token).await.err(401, "token_expired");
}

#[tokio::test]
async fn revoke_all_ends_every_session() {
    let app = TestApp::new().await;
    let a = app.user("ann@example.com").await;
    let b = app.login("ann@example.com").await;
    let res = app
        .call(Method::POST, "/v1/auth/revoke-all", Some(&a), None)
        .await
        .ok();
    assert_eq!(res["revoked"], 2);
    app.get("/v1/me", &a).await.err(401, "unauthenticated");
    app.get("/v1/me", &b).await.err(401, "unauthenticated");
}

#[tokio::test]
async fn password_change_keeps_this_session_and_ends_the_others() {
    let app = TestApp::new().await;
    let a = app.user("ann@example.com").await;
    let b = app.login("ann@example.com").await;
    app.post(
        "/v1/me/password",
        &a,
        json!({"current_password": "wrong one!!", "new_password": "a brand new secret"}),
    )
    .await
    .err(403, "invalid_current_password");
    app.post(
        "/v1/me/password",
        &a,
        json!({"current_password": PASSWORD, "new_password": "short"}),
    )
    .await
    .err(400, "validation_failed");
    let res = app
        .post(
            "/v1/me/password",
            &a,
            json!({"current_password": PASSWORD, "new_password": "a brand new secret"}),
        )
        .await;
    assert_eq!(res.status, 204);
    app.get("/v1/me", &a).await.ok();
    app.get("/v1/me", &b).await.err(401, "unauthenticated");
    let old = json!({"email": "ann@example.com", "password": PASSWORD});
    app.call(Method::POST, "/v1/auth/login", None, Some(old))
        .await
        .err(401, "invalid_credentials");
    let new = json!({"email": "ann@example.com", "password": "a brand new secret"});
    app.call(Method::POST, "/v1/auth/login", None, Some(new))
        .await
        .ok();
}

#[tokio::test]
async fn signup_can_be_disabled() {
    let config = ServicesConfig {
        signup_enabled: false,
        ..ServicesConfig::default()
    };
    let app = TestApp::with_config(config, ApiConfig::default()).await;
    app.call(
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(json!({"email": "a@example.com", "password": PASSWORD})),
    )
    .await
    .err(403, "signup_disabled");
}

#[tokio::test]
async fn update_my_name() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    let u = app
        .patch("/v1/me", &t, json!({"name": "  Ann Lee "}))
        .await
        .ok();
    assert_eq!(u["name"], "Ann Lee");
    app.patch("/v1/me", &t, json!({"name": "   "}))
        .await
        .err(400, "validation_failed");
}

#[tokio::test]
async fn missing_or_garbage_credentials_are_unauthenticated() {
    let app = TestApp::new().await;
    app.call(Method::GET, "/v1/me", None, None)
        .await
        .err(401, "unauthenticated");
    app.get("/v1/me", "sk_sess_garbage")
        .await
        .err(401, "unauthenticated");
    app.get("/v1/me", "nonsense")
        .await
        .err(401, "unauthenticated");
}

// ---- failed-login limits shared through the store (every replica counts
// the same failures)

/// Another control-plane replica: its own `Services` over the app's store.
fn replica(app: &TestApp) -> satusky_core::Services {
    satusky_core::Services::new(
        app.services.store().clone(),
        std::sync::Arc::new(app.clock.clone()),
        ServicesConfig::default(),
    )
}

/// The error code of a login through `services` directly, or `"ok"`.
async fn login_code(
    services: &satusky_core::Services,
    email: &str,
    password: &str,
    address: &str,
) -> (String, Option<u64>) {
    match services.login(email, password, address).await {
        Ok(_) => ("ok".to_owned(), None),
        Err(e) => (e.code.to_string(), e.retry_after_secs),
    }
}

#[tokio::test]
async fn failed_logins_spread_over_two_replicas_hit_one_account_limit() {
    let app = TestApp::new().await;
    app.user("ann@example.com").await;
    let (a, b) = (app.services.clone(), replica(&app));
    // Five failures, alternating replicas and addresses.
    for i in 0..5 {
        let (replica, address) = if i % 2 == 0 {
            (&a, "198.51.100.1")
        } else {
            (&b, "198.51.100.2")
        };
        let answer = login_code(replica, "ann@example.com", "wrong password!", address).await;
        assert_eq!(
            answer,
            ("invalid_credentials".to_owned(), None),
            "failure {i}"
        );
    }
    // Both replicas refuse the next attempt, even with the right password...
    for replica in [&a, &b] {
        let answer = login_code(replica, "ann@example.com", PASSWORD, "198.51.100.3").await;
        assert_eq!(answer, ("rate_limited".to_owned(), Some(15 * 60)));
    }
    // ...and so does a replica started afterwards (a restart forgets nothing).
    let restarted = replica(&app);
    let answer = login_code(&restarted, "ann@example.com", PASSWORD, "198.51.100.3").await;
    assert_eq!(answer.0, "rate_limited");
    // Once the window has passed, any replica lets the owner in.
    app.clock.advance(chrono::Duration::minutes(15));
    let answer = login_code(&b, "ANN@example.com", PASSWORD, "198.51.100.3").await;
    assert_eq!(answer.0, "ok");
}

#[tokio::test]
async fn failed_logins_spread_over_two_replicas_hit_one_address_limit() {
    let app = TestApp::new().await;
    let (a, b) = (app.services.clone(), replica(&app));
    for i in 0..20 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let email = format!("u{i}@example.com");
        let answer = login_code(replica, &email, "wrong password!", "203.0.113.7").await;
        assert_eq!(answer.0, "invalid_credentials", "failure {i}");
    }
    for replica in [&a, &b] {
        let answer = login_code(replica, "fresh@example.com", "x", "203.0.113.7").await;
        assert_eq!(answer.0, "rate_limited");
    }
    // Another address is not limited.
    let answer = login_code(&a, "fresh@example.com", "x", "203.0.113.8").await;
    assert_eq!(answer.0, "invalid_credentials");
}

#[tokio::test]
async fn retry_after_counts_down_to_when_the_oldest_failure_leaves_the_window() {
    let app = TestApp::new().await;
    app.user("ann@example.com").await;
    let bad = json!({"email": "ann@example.com", "password": "wrong password!"});
    for _ in 0..5 {
        app.call(Method::POST, "/v1/auth/login", None, Some(bad.clone()))
            .await
            .err(401, "invalid_credentials");
        app.clock.advance(chrono::Duration::minutes(1));
    }
    // The failures were at minutes 0..4; now is minute 5: the first of them
    // leaves the 15-minute window in 10 minutes.
    let limited = app
        .call(Method::POST, "/v1/auth/login", None, Some(bad.clone()))
        .await;
    limited.err(429, "rate_limited");
    assert_eq!(limited.headers["retry-after"], "600");
    app.clock.advance(chrono::Duration::minutes(10));
    app.call(Method::POST, "/v1/auth/login", None, Some(bad))
        .await
        .err(401, "invalid_credentials");
}

#[tokio::test]
async fn a_successful_login_clears_the_failures_of_its_account() {
    let app = TestApp::new().await;
    app.user("ann@example.com").await;
    let bad = json!({"email": "ann@example.com", "password": "wrong password!"});
    for _ in 0..4 {
        app.call(Method::POST, "/v1/auth/login", None, Some(bad.clone()))
            .await
            .err(401, "invalid_credentials");
    }
    app.login("ann@example.com").await;
    // Five more failures are allowed before the limit, not one.
    for _ in 0..5 {
        app.call(Method::POST, "/v1/auth/login", None, Some(bad.clone()))
            .await
            .err(401, "invalid_credentials");
    }
    app.call(Method::POST, "/v1/auth/login", None, Some(bad))
        .await
        .err(429, "rate_limited");
}

#[tokio::test]
async fn the_periodic_sweep_prunes_failed_logins_older_than_the_window() {
    let app = TestApp::new().await;
    let wrong = |email: &str| json!({"email": email, "password": "wrong password!"});
    for email in ["a@example.com", "b@example.com"] {
        app.call(Method::POST, "/v1/auth/login", None, Some(wrong(email)))
            .await
            .err(401, "invalid_credentials");
    }
    // Still in the window: nothing to prune.
    assert_eq!(app.services.prune_login_failures().await.unwrap(), 0);
    app.clock.advance(chrono::Duration::minutes(15));
    app.call(
        Method::POST,
        "/v1/auth/login",
        None,
        Some(wrong("c@example.com")),
    )
    .await
    .err(401, "invalid_credentials");
    // Two failures, each of an account and of the address.
    assert_eq!(app.services.prune_login_failures().await.unwrap(), 4);
    assert_eq!(app.services.prune_login_failures().await.unwrap(), 0);
}

#[tokio::test]
async fn concurrent_failed_logins_on_two_replicas_cannot_all_pass_the_limit() {
    let app = TestApp::new().await;
    app.user("cat@example.com").await;
    let (a, b) = (app.services.clone(), replica(&app));
    // Twelve wrong passwords at once, half on each replica, from many
    // addresses: every attempt is counted before its password is checked, so
    // at most the account limit (5) of them get as far as the check.
    let attempts = (0..12).map(|i| {
        let services = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            login_code(
                &services,
                "cat@example.com",
                "wrong password!",
                &format!("203.0.113.{i}"),
            )
            .await
        })
    });
    let mut checked = 0;
    let mut limited = 0;
    for a in futures::future::join_all(attempts).await {
        match a.unwrap().0.as_str() {
            "invalid_credentials" => checked += 1,
            "rate_limited" => limited += 1,
            other => panic!("unexpected answer {other}"),
        }
    }
    assert!(checked <= 5, "{checked} attempts passed a limit of 5");
    assert_eq!(checked + limited, 12);
    // What was refused left no failure behind: the account is at its limit,
    // not past it, so the wait ends with the window of the recorded ones.
    let (code, retry) = login_code(&a, "cat@example.com", PASSWORD, "203.0.113.200").await;
    if checked == 5 {
        assert_eq!((code.as_str(), retry), ("rate_limited", Some(15 * 60)));
    } else {
        assert_eq!(code, "ok", "below the limit the owner still gets in");
    }
}

#[tokio::test]
async fn a_successful_login_leaves_no_failure_behind_for_its_address() {
    let app = TestApp::new().await;
    app.user("dan@example.com").await;
    let services = app.services.clone();
    // Twenty successful logins from one address (the address limit is 20
    // failures): none of them counts against it.
    for _ in 0..21 {
        let (code, _) = login_code(&services, "dan@example.com", PASSWORD, "192.0.2.9").await;
        assert_eq!(code, "ok");
    }
    let (code, _) = login_code(&services, "nobody@example.com", "x", "192.0.2.9").await;
    assert_eq!(code, "invalid_credentials");
}
