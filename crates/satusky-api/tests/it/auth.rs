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
