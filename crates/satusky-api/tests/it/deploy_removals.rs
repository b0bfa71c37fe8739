//! A deploy removes an optional setting sent as `null`, keeps one left out.

use serde_json::{Value, json};

use crate::support::TestApp;

const DEPLOY: &str = "/v1/orgs/acme/apps/web/deploy";

/// An org `acme` with its member's token, and a cluster serving zone `kul-a`.
async fn setup() -> (TestApp, String) {
    let app = TestApp::new().await;
    let op = app.user("op@example.com").await;
    app.grant_admin("op@example.com").await;
    app.post(
        "/v1/clusters",
        &op,
        json!({"name": "kul-1", "region": "kul", "zone": "kul-a", "default": true}),
    )
    .await
    .ok();
    let t = app.user("ann@example.com").await;
    app.org(&t, "acme").await;
    (app, t)
}

/// Release 1 with every optional setting.
fn everything() -> Value {
    json!({
        "image": "nginx:1",
        "create": true,
        "replicas": 1,
        "ports": [{"container_port": 8080, "public": true}],
        "health": {"path": "/healthz"},
        "autoscaling": {"min_replicas": 3, "max_replicas": 6},
        "vertical_autoscaling": "initial",
        "machine_selector": "pool=gpu",
        "disruption_budget": {"min_available": "2"},
        "zone": "kul-a",
    })
}

const FIELDS: [&str; 6] = [
    "health",
    "autoscaling",
    "vertical_autoscaling",
    "machine_selector",
    "disruption_budget",
    "zone",
];

#[tokio::test]
async fn null_removes_each_optional_setting_in_a_new_deploy_release_and_absent_keeps_it() {
    let (app, t) = setup().await;
    let first = app.post(DEPLOY, &t, everything()).await.ok();
    let spec = &first["release"]["spec"];
    for field in FIELDS {
        assert!(!spec[field].is_null(), "{field} set: {spec}");
    }
    // Left out: kept.
    let kept = app.post(DEPLOY, &t, json!({"image": "nginx:2"})).await.ok();
    assert_eq!(kept["release"]["number"], 2);
    for field in FIELDS {
        assert_eq!(kept["release"]["spec"][field], spec[field], "{field} kept");
    }
    // `null`: each removed in its own release, the others kept.
    let mut n = 2;
    let mut removed = Vec::new();
    for field in FIELDS {
        let res = app
            .post(DEPLOY, &t, json!({"image": "nginx:2", field: null}))
            .await;
        assert_eq!(res.status, 201, "{field}: {}", res.body);
        n += 1;
        let release = &res.body["release"];
        assert_eq!(release["number"], n);
        assert_eq!(release["cause"], "deploy");
        removed.push(field);
        for f in FIELDS {
            let value = release["spec"].get(f);
            if removed.contains(&f) {
                assert!(value.is_none(), "{f} removed after {field}: {release}");
            } else {
                assert_eq!(value, Some(&spec[f]), "{f} kept after {field}");
            }
        }
        if field == "autoscaling" {
            // Back to fixed replicas, no fewer than the autoscaler's minimum.
            assert_eq!(release["spec"]["replicas"], 3);
        }
    }
    // Removing what is not there is no error, and still a release.
    let again = app
        .post(
            DEPLOY,
            &t,
            json!({"image": "nginx:2", "health": null, "zone": null}),
        )
        .await
        .ok();
    assert_eq!(again["release"]["number"], n + 1);
    // The app stays where it was placed.
    let got = app.get("/v1/orgs/acme/apps/web", &t).await.ok();
    assert_eq!(got["current_release"], n + 1);
    assert!(got["cluster"].is_string(), "{got}");
}

#[tokio::test]
async fn removing_autoscaling_takes_the_requests_replicas_and_allows_scaling_again() {
    let (app, t) = setup().await;
    app.post(DEPLOY, &t, everything()).await.ok();
    app.post("/v1/orgs/acme/apps/web/scale", &t, json!({"replicas": 2}))
        .await
        .err(400, "validation_failed");
    let fixed = app
        .post(
            DEPLOY,
            &t,
            json!({"image": "nginx:1", "autoscaling": null, "replicas": 1}),
        )
        .await
        .ok();
    assert_eq!(fixed["release"]["spec"]["replicas"], 1);
    assert!(fixed["release"]["spec"].get("autoscaling").is_none());
    let scaled = app
        .post("/v1/orgs/acme/apps/web/scale", &t, json!({"replicas": 2}))
        .await
        .ok();
    assert_eq!(scaled["release"]["spec"]["replicas"], 2);
}

#[tokio::test]
async fn a_removal_validates_like_any_release_and_a_refused_one_writes_nothing() {
    let (app, t) = setup().await;
    app.post(DEPLOY, &t, everything()).await.ok();
    for (body, says) in [
        // The autoscaler is removed, but the replicas asked are too many.
        (
            json!({"image": "nginx:1", "autoscaling": null, "replicas": 500}),
            "replicas",
        ),
        // The autoscaler is kept: `auto` would fight it.
        (
            json!({"image": "nginx:1", "vertical_autoscaling": "auto"}),
            "vertical autoscaling",
        ),
        // A removal next to a bad value.
        (
            json!({"image": "nginx:1", "health": null, "machine_selector": "pool in gpu"}),
            "",
        ),
    ] {
        let res = app.post(DEPLOY, &t, body.clone()).await;
        assert_eq!(res.status, 400, "{body}: {}", res.body);
        assert_eq!(res.body["error"]["code"], "validation_failed");
        let message = res.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // Not a setting: a wrong type is refused as bad JSON, not taken as a removal.
    app.post(DEPLOY, &t, json!({"image": "nginx:1", "health": "none"}))
        .await
        .err(400, "invalid_json");
    let releases = app.get("/v1/orgs/acme/apps/web/releases", &t).await.ok();
    assert_eq!(releases["items"].as_array().unwrap().len(), 1);
    // Removing the autoscaler and asking `auto` in the same deploy is fine.
    let vpa = app
        .post(
            DEPLOY,
            &t,
            json!({"image": "nginx:1", "autoscaling": null, "vertical_autoscaling": "auto"}),
        )
        .await
        .ok();
    assert_eq!(vpa["release"]["spec"]["vertical_autoscaling"], "auto");
}

#[tokio::test]
async fn an_idempotency_key_replays_a_removal_and_refuses_the_same_key_without_it() {
    let (app, t) = setup().await;
    app.post(DEPLOY, &t, everything()).await.ok();
    let send = |body: Value| {
        let req = axum::http::Request::builder()
            .method("POST")
            .uri(DEPLOY)
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", "application/json")
            .header("idempotency-key", "remove-hpa")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        app.raw(req)
    };
    let body = json!({"image": "nginx:1", "autoscaling": null});
    let first = send(body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let retry = send(body).await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.body["replayed"], true);
    assert_eq!(retry.body["release"]["number"], 2);
    // The same key for the request that keeps the autoscaler is another request.
    send(json!({"image": "nginx:1"}))
        .await
        .err(422, "idempotency_key_reused");
    let releases = app.get("/v1/orgs/acme/apps/web/releases", &t).await.ok();
    assert_eq!(releases["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn another_organization_cannot_remove_anything() {
    let (app, t) = setup().await;
    app.post(DEPLOY, &t, everything()).await.ok();
    let eve = app.user("eve@example.com").await;
    app.org(&eve, "evil").await;
    app.post(
        DEPLOY,
        &eve,
        json!({"image": "nginx:1", "autoscaling": null}),
    )
    .await
    .err(404, "org_not_found");
    // A viewer of acme may not either.
    let vic = app.user("vic@example.com").await;
    app.add_member(&t, "acme", "vic@example.com", "viewer")
        .await;
    app.post(DEPLOY, &vic, json!({"image": "nginx:1", "health": null}))
        .await
        .err(403, "forbidden");
    let got = app.get("/v1/orgs/acme/apps/web", &t).await.ok();
    assert_eq!(got["current_release"], 1);
}
