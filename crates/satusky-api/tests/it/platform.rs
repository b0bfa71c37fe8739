use axum::http::Method;

use crate::support::TestApp;

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::new().await;
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await.status,
        200
    );
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None).await.status,
        200
    );
    app.call(Method::GET, "/v1/me", None, None).await;
    let metrics = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body.as_str().unwrap_or_default().to_owned();
    assert!(text.contains("satusky_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/v1/me\""), "{text}");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::new().await;
    let res = app.call(Method::GET, "/healthz", None, None).await;
    let id = res.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36);
    let err = app.call(Method::GET, "/v1/me", None, None).await;
    assert_eq!(
        err.headers["x-request-id"].to_str().unwrap(),
        err.body["error"]["request_id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot() {
    let app = TestApp::new().await;
    let doc = app.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    insta::assert_json_snapshot!("openapi", doc.body);
}
