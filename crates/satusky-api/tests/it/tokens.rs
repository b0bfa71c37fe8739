use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn a_token_is_shown_once_stored_hashed_and_authenticates() {
    let app = TestApp::new().await;
    let s = app.user("ann@example.com").await;
    let created = app
        .post(
            "/v1/tokens",
            &s,
            json!({"name": "ci", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(created.status, 201);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk_pat_"));
    assert!(secret.starts_with(created.body["token"]["prefix"].as_str().unwrap()));
    let listed = app.get("/v1/tokens", &s).await.ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(
        !listed.to_string().contains(&secret),
        "a list must never carry the secret"
    );
    assert!(listed["items"][0]["last_used_at"].is_null());
    let me = app.get("/v1/me", &secret).await.ok();
    assert_eq!(me["auth"], "token");
    let got = app.get("/v1/tokens/ci", &s).await.ok();
    assert!(got["last_used_at"].is_string(), "use is recorded: {got}");
    // The stored form is a hash, not the secret.
    let stored = app
        .services
        .store()
        .get_token_by_hash(&satusky_core::auth::secret_hash(&secret))
        .await
        .unwrap();
    assert!(stored.is_some_and(|(t, _)| t.token_hash != secret));
}

#[tokio::test]
async fn disabled_expired_and_deleted_tokens_are_refused_with_their_codes() {
    let app = TestApp::new().await;
    let s = app.user("ann@example.com").await;
    let secret = |v: serde_json::Value| v["secret"].as_str().unwrap().to_owned();
    let t1 = secret(
        app.post("/v1/tokens", &s, json!({"name": "one"}))
            .await
            .ok(),
    );
    let t2 = secret(
        app.post(
            "/v1/tokens",
            &s,
            json!({"name": "two", "expires_in_days": 1}),
        )
        .await
        .ok(),
    );
    let t3 = secret(
        app.post("/v1/tokens", &s, json!({"name": "three"}))
            .await
            .ok(),
    );

    let off = app
        .patch("/v1/tokens/one", &s, json!({"enabled": false}))
        .await
        .ok();
    assert_eq!(off["enabled"], false);
    app.get("/v1/me", &t1).await.err(401, "token_disabled");
    app.patch("/v1/tokens/one", &s, json!({"enabled": true}))
        .await
        .ok();
    app.get("/v1/me", &t1).await.ok();

    assert_eq!(app.delete("/v1/tokens/three", &s).await.status, 204);
    app.get("/v1/me", &t3).await.err(401, "unauthenticated");
    app.get("/v1/tokens/three", &s)
        .await
        .err(404, "token_not_found");

    app.clock.advance(chrono::Duration::days(2));
    app.get("/v1/me", &t2).await.err(401, "token_expired");
}

#[tokio::test]
async fn token_names_are_unique_per_user_and_validated() {
    let app = TestApp::new().await;
    let a = app.user("ann@example.com").await;
    let b = app.user("bob@example.com").await;
    app.post("/v1/tokens", &a, json!({"name": "ci"})).await.ok();
    app.post("/v1/tokens", &a, json!({"name": "ci"}))
        .await
        .err(409, "token_name_taken");
    app.post("/v1/tokens", &b, json!({"name": "ci"})).await.ok();
    app.post("/v1/tokens", &a, json!({"name": "bad name"}))
        .await
        .err(400, "validation_failed");
    app.post("/v1/tokens", &a, json!({"name": "x", "expires_in_days": 0}))
        .await
        .err(400, "validation_failed");
    // Another user's token is invisible.
    app.get("/v1/tokens/ci", &b).await.ok();
    let a_id = app.get("/v1/tokens/ci", &a).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get(&format!("/v1/tokens/{a_id}"), &b)
        .await
        .err(404, "token_not_found");
    app.delete(&format!("/v1/tokens/{a_id}"), &b)
        .await
        .err(404, "token_not_found");
}

#[tokio::test]
async fn an_org_scoped_token_sees_only_its_org() {
    let app = TestApp::new().await;
    let s = app.user("ann@example.com").await;
    app.org(&s, "one").await;
    app.org(&s, "two").await;
    let t = app
        .post("/v1/tokens", &s, json!({"name": "one-only", "org": "one"}))
        .await
        .ok();
    assert_eq!(t["token"]["org"], "one");
    let secret = t["secret"].as_str().unwrap();
    let orgs = app.get("/v1/orgs", secret).await.ok();
    let slugs: Vec<_> = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["one"]);
    app.get("/v1/orgs/one", secret).await.ok();
    app.get("/v1/orgs/two", secret)
        .await
        .err(404, "org_not_found");
    app.post("/v1/orgs", secret, json!({"slug": "three"}))
        .await
        .err(403, "forbidden");
    app.post("/v1/tokens", secret, json!({"name": "wider"}))
        .await
        .err(403, "forbidden");
    assert_eq!(app.get("/v1/me", secret).await.ok()["token_org"], "one");
    // Tokens for orgs you can't see are refused as not found.
    let b = app.user("bob@example.com").await;
    app.post("/v1/tokens", &b, json!({"name": "sneaky", "org": "one"}))
        .await
        .err(404, "org_not_found");
}
