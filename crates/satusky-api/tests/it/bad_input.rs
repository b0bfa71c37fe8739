//! Bad input gets a clear 4xx with its code, and nothing is half-written.

use axum::body::Body;
use axum::http::{Method, Request};
use satusky_api::ApiConfig;
use satusky_core::ServicesConfig;
use serde_json::json;

use crate::support::TestApp;

fn raw_post(
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(body.into()).unwrap()
}

#[tokio::test]
async fn malformed_json_wrong_types_and_unknown_fields_are_invalid_json() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    app.raw(raw_post(
        "/v1/orgs",
        &t,
        Some("application/json"),
        "{\"slug\": ",
    ))
    .await
    .err(400, "invalid_json");
    app.post("/v1/orgs", &t, json!({"slug": 42}))
        .await
        .err(400, "invalid_json");
    let unknown = app
        .post("/v1/orgs", &t, json!({"slug": "acme", "plan": "gold"}))
        .await;
    unknown.err(400, "invalid_json");
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("plan"),
        "names the field: {}",
        unknown.body
    );
    app.raw(raw_post("/v1/orgs", &t, None, "{\"slug\":\"acme\"}"))
        .await
        .err(415, "unsupported_media_type");
    // Nothing was created by any of these.
    assert_eq!(app.get("/v1/orgs", &t).await.ok()["items"], json!([]));
}

#[tokio::test]
async fn oversize_bodies_are_refused() {
    let app = TestApp::with_config(
        ServicesConfig::default(),
        ApiConfig {
            max_body_bytes: 1024,
        },
    )
    .await;
    let t = app.user("ann@example.com").await;
    let big = json!({"slug": "acme", "name": "x".repeat(4096)}).to_string();
    app.raw(raw_post("/v1/orgs", &t, Some("application/json"), big))
        .await
        .err(413, "payload_too_large");
    assert_eq!(app.get("/v1/orgs", &t).await.ok()["items"], json!([]));
}

#[tokio::test]
async fn invalid_names_and_duplicates_are_refused_with_their_codes() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    for slug in [
        "A", "ab", "Acme", "-acme", "acme-", "ac--me", "acme_inc", "ácme",
    ] {
        app.post("/v1/orgs", &t, json!({"slug": slug}))
            .await
            .err(400, "validation_failed");
    }
    app.post("/v1/orgs", &t, json!({"slug": "acme", "name": ""}))
        .await
        .err(400, "validation_failed");
    let signup = |email: &str, password: &str| json!({"email": email, "password": password});
    app.call(
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(signup("not-an-email", "long enough pw")),
    )
    .await
    .err(400, "validation_failed");
    app.call(
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(signup("a@example.com", "short")),
    )
    .await
    .err(400, "validation_failed");
    app.call(
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(signup("ANN@example.com", "long enough pw")),
    )
    .await
    .err(409, "email_taken");
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_format() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    app.get("/v1/nope", &t).await.err(404, "route_not_found");
    app.call(Method::PUT, "/v1/orgs", Some(&t), None)
        .await
        .err(405, "method_not_allowed");
}
