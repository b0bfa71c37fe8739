use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::support::TestApp;

async fn setup() -> (TestApp, String) {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    app.org(&t, "acme").await;
    (app, t)
}

fn deploy_body(image: &str) -> Value {
    json!({"image": image, "create": true, "replicas": 3, "ports": [{"container_port": 8080, "public": true}]})
}

#[tokio::test]
async fn a_first_deploy_creates_the_app_and_release_one() {
    let (app, t) = setup().await;
    let res = app
        .post(
            "/v1/orgs/acme/apps/web/deploy",
            &t,
            deploy_body("nginx:1.27"),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["release"]["number"], 1);
    assert_eq!(res.body["release"]["cause"], "deploy");
    assert_eq!(res.body["release"]["spec"]["replicas"], 3);
    assert_eq!(res.body["app"]["current_release"], 1);
    assert_eq!(
        res.body["app"]["default_domain"],
        "web-acme.apps.satusky.test"
    );
    assert_eq!(res.body["app"]["status"]["phase"], "pending");
    let listed = app.get("/v1/orgs/acme/apps", &t).await.ok();
    assert_eq!(listed["items"][0]["name"], "web");
    // A later deploy keeps what it does not mention.
    let second = app
        .post(
            "/v1/orgs/acme/apps/web/deploy",
            &t,
            json!({"image": "nginx:1.28"}),
        )
        .await
        .ok();
    assert_eq!(second["release"]["number"], 2);
    assert_eq!(second["release"]["spec"]["replicas"], 3);
    assert_eq!(
        second["release"]["spec"]["ports"][0]["container_port"],
        8080
    );
}

#[tokio::test]
async fn an_idempotency_key_makes_retries_safe_and_refuses_a_different_request() {
    let (app, t) = setup().await;
    let send = |body: Value| {
        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/v1/orgs/acme/apps/web/deploy")
            .header("authorization", format!("Bearer {t}"))
            .header("content-type", "application/json")
            .header("idempotency-key", "deploy-42")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        app.raw(req)
    };
    let first = send(deploy_body("nginx:1")).await;
    assert_eq!(first.status, 201);
    let retry = send(deploy_body("nginx:1")).await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.body["replayed"], true);
    assert_eq!(retry.body["release"]["number"], 1);
    send(deploy_body("nginx:2"))
        .await
        .err(422, "idempotency_key_reused");
    let releases = app.get("/v1/orgs/acme/apps/web/releases", &t).await.ok();
    assert_eq!(
        releases["items"].as_array().unwrap().len(),
        1,
        "nothing duplicated"
    );
}

#[tokio::test]
async fn bad_deploys_are_refused_and_write_nothing() {
    let (app, t) = setup().await;
    let bad = [
        json!({"image": "Not An Image", "create": true}),
        json!({"image": "nginx", "create": true, "replicas": 500}),
        json!({"image": "nginx", "create": true, "resources": {"cpu_request": "lots"}}),
        json!({"image": "nginx", "create": true, "ports": [{"container_port": 0}]}),
        json!({"image": "nginx", "create": true, "machine_selector": "pool in gpu"}),
        json!({"image": "nginx", "create": true, "autoscaling": {"min_replicas": 1, "max_replicas": 3}, "vertical_autoscaling": "auto"}),
        json!({"image": "nginx", "create": true, "volumes": [{"name": "data", "size": "1Gi", "mount_path": "relative"}]}),
    ];
    for body in bad {
        app.post("/v1/orgs/acme/apps/web/deploy", &t, body.clone())
            .await
            .err(400, "validation_failed");
    }
    app.post(
        "/v1/orgs/acme/apps/Web/deploy",
        &t,
        json!({"image": "nginx", "create": true}),
    )
    .await
    .err(400, "validation_failed");
    app.post(
        "/v1/orgs/acme/apps/web/deploy",
        &t,
        json!({"image": "nginx", "replicaz": 2}),
    )
    .await
    .err(400, "invalid_json");
    app.post(
        "/v1/orgs/acme/apps/ghost/deploy",
        &t,
        json!({"image": "nginx"}),
    )
    .await
    .err(404, "app_not_found");
    assert_eq!(
        app.get("/v1/orgs/acme/apps", &t).await.ok()["items"],
        json!([])
    );
}

#[tokio::test]
async fn scale_env_secrets_and_rollback_each_make_a_release() {
    let (app, t) = setup().await;
    app.post("/v1/orgs/acme/apps/web/deploy", &t, deploy_body("nginx:1"))
        .await
        .ok();
    app.post(
        "/v1/orgs/acme/apps/web/deploy",
        &t,
        json!({"image": "nginx:2"}),
    )
    .await
    .ok();
    let scaled = app
        .post("/v1/orgs/acme/apps/web/scale", &t, json!({"replicas": 5}))
        .await
        .ok();
    assert_eq!(
        (
            scaled["release"]["number"].as_u64(),
            scaled["release"]["cause"].as_str()
        ),
        (Some(3), Some("scale"))
    );
    let env = app
        .patch(
            "/v1/orgs/acme/apps/web/env",
            &t,
            json!({"set": {"MODE": "prod", "LOG": "info"}}),
        )
        .await
        .ok();
    assert_eq!(env["release"]["spec"]["env"]["MODE"], "prod");
    app.patch("/v1/orgs/acme/apps/web/env", &t, json!({"unset": ["NOPE"]}))
        .await
        .err(404, "config_key_not_found");
    let sec = app
        .patch(
            "/v1/orgs/acme/apps/web/secrets",
            &t,
            json!({"set": {"DB_PASSWORD": "hunter2"}}),
        )
        .await
        .ok();
    assert_eq!(sec["release"]["cause"], "secret");
    assert_eq!(sec["release"]["spec"]["secret_version"], 1);
    assert!(
        !sec.to_string().contains("hunter2"),
        "no secret value in a deploy answer"
    );
    let rolled = app
        .post("/v1/orgs/acme/apps/web/rollback", &t, json!({"to": 1}))
        .await
        .ok();
    assert_eq!(rolled["release"]["number"], 6);
    assert_eq!(rolled["release"]["cause"], "rollback");
    assert_eq!(rolled["release"]["rollback_of"], 1);
    assert_eq!(rolled["release"]["spec"]["image"], "nginx:1");
    assert_eq!(rolled["release"]["spec"]["replicas"], 3);
    let releases = app
        .get("/v1/orgs/acme/apps/web/releases?limit=4", &t)
        .await
        .ok();
    let causes: Vec<_> = releases["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cause"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        causes,
        ["rollback", "secret", "config", "scale"],
        "newest first"
    );
    let cursor = releases["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("/v1/orgs/acme/apps/web/releases?limit=4&cursor={cursor}"),
            &t,
        )
        .await
        .ok();
    let numbers: Vec<_> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    assert_eq!(
        app.get("/v1/orgs/acme/apps/web/releases/2", &t).await.ok()["spec"]["image"],
        "nginx:2"
    );
    app.get("/v1/orgs/acme/apps/web/releases/99", &t)
        .await
        .err(404, "release_not_found");
    assert_eq!(
        app.get("/v1/orgs/acme/apps/web/env", &t).await.ok(),
        json!({}),
        "rollback restored release 1's env"
    );
}

#[tokio::test]
async fn secrets_are_masked_revealed_only_to_admins_and_audited() {
    let (app, t) = setup().await;
    app.user("mia@example.com").await;
    app.add_member(&t, "acme", "mia@example.com", "member")
        .await;
    let mia = app.login("mia@example.com").await;
    app.post("/v1/orgs/acme/apps/web/deploy", &t, deploy_body("nginx:1"))
        .await
        .ok();
    app.patch(
        "/v1/orgs/acme/apps/web/secrets",
        &mia,
        json!({"set": {"API_KEY": "s3cr3t", "OTHER": "x"}}),
    )
    .await
    .ok();
    let listed = app.get("/v1/orgs/acme/apps/web/secrets", &mia).await.ok();
    assert!(!listed.to_string().contains("s3cr3t"));
    assert_eq!(listed["items"][0]["value"], "********");
    app.get("/v1/orgs/acme/apps/web/secrets/API_KEY", &mia)
        .await
        .err(403, "forbidden");
    let one = app
        .get("/v1/orgs/acme/apps/web/secrets/API_KEY", &t)
        .await
        .ok();
    assert_eq!(one["value"], "s3cr3t");
    app.get("/v1/orgs/acme/apps/web/secrets/NOPE", &t)
        .await
        .err(404, "secret_not_found");
    let removed = app
        .patch(
            "/v1/orgs/acme/apps/web/secrets",
            &t,
            json!({"unset": ["OTHER"]}),
        )
        .await
        .ok();
    assert_eq!(removed["release"]["spec"]["secret_version"], 2);
    assert_eq!(
        app.get("/v1/orgs/acme/apps/web/secrets", &t).await.ok()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let audit = app
        .get("/v1/orgs/acme/audit?action=app.secret.", &t)
        .await
        .ok();
    let outcomes: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        outcomes.contains(&("app.secret.reveal".to_owned(), "success".to_owned())),
        "{outcomes:?}"
    );
    // Rolling back to release 2 brings the old secret set back with it.
    let back = app
        .post("/v1/orgs/acme/apps/web/rollback", &t, json!({"to": 2}))
        .await
        .ok();
    assert_eq!(back["release"]["spec"]["secret_version"], 1);
}

#[tokio::test]
async fn restart_delete_and_their_refusals() {
    let (app, t) = setup().await;
    app.post("/v1/orgs/acme/apps", &t, json!({"name": "empty"}))
        .await
        .ok();
    app.post("/v1/orgs/acme/apps/empty/restart", &t, json!({}))
        .await
        .err(409, "no_release");
    app.post("/v1/orgs/acme/apps/empty/scale", &t, json!({"replicas": 2}))
        .await
        .err(409, "no_release");
    app.post("/v1/orgs/acme/apps", &t, json!({"name": "empty"}))
        .await
        .err(409, "app_exists");
    app.post("/v1/orgs/acme/apps/web/deploy", &t, deploy_body("nginx:1"))
        .await
        .ok();
    let gen_before = app.get("/v1/orgs/acme/apps/web", &t).await.ok()["generation"]
        .as_u64()
        .unwrap();
    let restarted = app
        .call(
            axum::http::Method::POST,
            "/v1/orgs/acme/apps/web/restart",
            Some(&t),
            None,
        )
        .await;
    assert_eq!(restarted.status, 202);
    assert_eq!(
        restarted.body["generation"].as_u64().unwrap(),
        gen_before + 1
    );
    let deleting = app.delete("/v1/orgs/acme/apps/web", &t).await;
    assert_eq!(deleting.status, 202);
    app.post(
        "/v1/orgs/acme/apps/web/deploy",
        &t,
        json!({"image": "nginx:2"}),
    )
    .await
    .err(409, "app_deleting");
}

#[tokio::test]
async fn autoscaled_apps_are_not_scaled_by_hand() {
    let (app, t) = setup().await;
    let body = json!({"image": "nginx:1", "create": true, "resources": {"cpu_request": "100m"}, "autoscaling": {"min_replicas": 2, "max_replicas": 5}});
    app.post("/v1/orgs/acme/apps/web/deploy", &t, body)
        .await
        .ok();
    app.post("/v1/orgs/acme/apps/web/scale", &t, json!({"replicas": 3}))
        .await
        .err(400, "validation_failed");
}

#[tokio::test]
async fn another_organization_sees_none_of_it() {
    let (app, t) = setup().await;
    let eve = app.user("eve@example.com").await;
    app.org(&eve, "evil").await;
    app.post("/v1/orgs/acme/apps/web/deploy", &t, deploy_body("nginx:1"))
        .await
        .ok();
    for path in [
        "/v1/orgs/acme/apps",
        "/v1/orgs/acme/apps/web",
        "/v1/orgs/acme/apps/web/releases",
        "/v1/orgs/acme/apps/web/secrets",
        "/v1/orgs/acme/apps/web/events",
    ] {
        app.get(path, &eve).await.err(404, "org_not_found");
    }
    app.post("/v1/orgs/acme/apps/web/scale", &eve, json!({"replicas": 0}))
        .await
        .err(404, "org_not_found");
    // Her own org has no app of that name.
    app.get("/v1/orgs/evil/apps/web", &eve)
        .await
        .err(404, "app_not_found");
}

#[tokio::test]
async fn events_list_and_stream_replay_from_an_offset_then_follow() {
    let (app, t) = setup().await;
    app.post("/v1/orgs/acme/apps/web/deploy", &t, deploy_body("nginx:1"))
        .await
        .ok();
    app.post("/v1/orgs/acme/apps/web/scale", &t, json!({"replicas": 2}))
        .await
        .ok();
    let events = app.get("/v1/orgs/acme/apps/web/events", &t).await.ok();
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["seq"], 1);
    assert_eq!(items[0]["kind"], "release.created");
    let after = app
        .get("/v1/orgs/acme/apps/web/events?from=1", &t)
        .await
        .ok();
    assert_eq!(after["items"][0]["seq"], 2);

    let addr = app.serve().await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/v1/orgs/acme/apps/web/events/ws?from=0"),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {t}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut next = async || -> Value {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        serde_json::from_str(msg.to_text().unwrap()).unwrap()
    };
    assert_eq!(next().await["seq"], 1, "the start is never lost");
    assert_eq!(next().await["seq"], 2);
    app.post(
        "/v1/orgs/acme/apps/web/deploy",
        &t,
        json!({"image": "nginx:3"}),
    )
    .await
    .ok();
    let live = next().await;
    assert_eq!(
        (live["seq"].as_u64(), live["release"].as_u64()),
        (Some(3), Some(3))
    );
    // Unauthenticated upgrades are refused as plain HTTP.
    let anon =
        tokio_tungstenite::connect_async(format!("ws://{addr}/v1/orgs/acme/apps/web/events/ws"))
            .await;
    assert!(anon.is_err());
}
