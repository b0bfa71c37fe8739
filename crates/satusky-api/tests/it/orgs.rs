use std::collections::HashSet;

use axum::http::Method;
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn creating_an_org_makes_me_owner_with_a_namespace() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    let org = app
        .post("/v1/orgs", &t, json!({"slug": "acme", "name": "Acme Inc"}))
        .await;
    assert_eq!(org.status, 201);
    assert_eq!(org.body["role"], "owner");
    assert_eq!(org.body["namespace"], "org-acme");
    assert_eq!(org.body["name"], "Acme Inc");
    app.post("/v1/orgs", &t, json!({"slug": "acme"}))
        .await
        .err(409, "org_slug_taken");
    let renamed = app
        .patch("/v1/orgs/acme", &t, json!({"name": "Acme GmbH"}))
        .await
        .ok();
    assert_eq!(renamed["name"], "Acme GmbH");
}

#[tokio::test]
async fn a_deleted_orgs_namespace_is_never_reused() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    app.org(&t, "acme").await;
    app.delete("/v1/orgs/acme", &t)
        .await
        .err(400, "confirmation_required");
    app.delete("/v1/orgs/acme?confirm=wrong", &t)
        .await
        .err(400, "confirmation_required");
    app.get("/v1/orgs/acme", &t).await.ok();
    assert_eq!(
        app.delete("/v1/orgs/acme?confirm=acme", &t).await.status,
        204
    );
    app.get("/v1/orgs/acme", &t).await.err(404, "org_not_found");
    let again = app.org(&t, "acme").await;
    assert_eq!(again["namespace"], "org-acme-2");
}

#[tokio::test]
async fn deleting_an_org_takes_memberships_and_scoped_tokens_with_it() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    let b = app.user("bob@example.com").await;
    app.org(&t, "acme").await;
    app.add_member(&t, "acme", "bob@example.com", "admin").await;
    let scoped = app
        .post("/v1/tokens", &t, json!({"name": "acme-ci", "org": "acme"}))
        .await
        .ok();
    app.delete("/v1/orgs/acme?confirm=acme", &t).await;
    assert_eq!(app.get("/v1/orgs", &b).await.ok()["items"], json!([]));
    app.get("/v1/me", scoped["secret"].as_str().unwrap())
        .await
        .err(401, "unauthenticated");
}

#[tokio::test]
async fn members_are_added_by_email_and_roles_change() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.org(&t, "acme").await;
    app.post(
        "/v1/orgs/acme/members",
        &t,
        json!({"email": "nobody@example.com", "role": "member"}),
    )
    .await
    .err(404, "user_not_found");
    let m = app
        .post(
            "/v1/orgs/acme/members",
            &t,
            json!({"email": "BOB@example.com", "role": "member"}),
        )
        .await;
    assert_eq!(m.status, 201);
    app.post(
        "/v1/orgs/acme/members",
        &t,
        json!({"email": "bob@example.com", "role": "member"}),
    )
    .await
    .err(409, "member_exists");
    app.post(
        "/v1/orgs/acme/members",
        &t,
        json!({"email": "x@example.com", "role": "emperor"}),
    )
    .await
    .err(400, "invalid_json");
    let members = app.get("/v1/orgs/acme/members", &bob).await.ok();
    assert_eq!(members["items"].as_array().unwrap().len(), 2);
    let changed = app
        .patch(
            "/v1/orgs/acme/members/bob@example.com",
            &t,
            json!({"role": "admin"}),
        )
        .await
        .ok();
    assert_eq!(changed["role"], "admin");
    app.patch(
        "/v1/orgs/acme/members/ghost@example.com",
        &t,
        json!({"role": "admin"}),
    )
    .await
    .err(404, "member_not_found");
}

#[tokio::test]
async fn the_last_owner_can_be_neither_removed_nor_demoted() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    app.user("bob@example.com").await;
    app.org(&t, "acme").await;
    app.patch(
        "/v1/orgs/acme/members/ann@example.com",
        &t,
        json!({"role": "admin"}),
    )
    .await
    .err(409, "last_owner");
    app.delete("/v1/orgs/acme/members/ann@example.com", &t)
        .await
        .err(409, "last_owner");
    app.add_member(&t, "acme", "bob@example.com", "owner").await;
    app.patch(
        "/v1/orgs/acme/members/ann@example.com",
        &t,
        json!({"role": "admin"}),
    )
    .await
    .ok();
    let bob = app.login("bob@example.com").await;
    app.delete("/v1/orgs/acme/members/bob@example.com", &bob)
        .await
        .err(409, "last_owner");
}

#[tokio::test]
async fn a_removed_members_old_session_no_longer_sees_the_org() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.org(&t, "acme").await;
    app.add_member(&t, "acme", "bob@example.com", "admin").await;
    app.get("/v1/orgs/acme", &bob).await.ok();
    assert_eq!(
        app.delete("/v1/orgs/acme/members/bob@example.com", &t)
            .await
            .status,
        204
    );
    app.get("/v1/orgs/acme", &bob)
        .await
        .err(404, "org_not_found");
    app.get("/v1/orgs/acme/members", &bob)
        .await
        .err(404, "org_not_found");
    app.patch("/v1/orgs/acme", &bob, json!({"name": "pwned"}))
        .await
        .err(404, "org_not_found");
}

#[tokio::test]
async fn anyone_may_leave() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    let v = app.user("vic@example.com").await;
    app.org(&t, "acme").await;
    app.add_member(&t, "acme", "vic@example.com", "viewer")
        .await;
    assert_eq!(
        app.delete("/v1/orgs/acme/members/vic@example.com", &v)
            .await
            .status,
        204
    );
    app.get("/v1/orgs/acme", &v).await.err(404, "org_not_found");
}

#[tokio::test]
async fn org_lists_paginate_without_gaps_or_duplicates() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    for i in 0..7 {
        app.org(&t, &format!("org-{i}")).await;
    }
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/orgs?limit=3&cursor={c}"),
            None => "/v1/orgs?limit=3".to_owned(),
        };
        let page = app.get(&path, &t).await.ok();
        pages += 1;
        for o in page["items"].as_array().unwrap() {
            assert!(
                seen.insert(o["slug"].as_str().unwrap().to_owned()),
                "duplicate {o}"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (7, 3));
    app.get("/v1/orgs?limit=0", &t)
        .await
        .err(400, "invalid_query");
    app.get("/v1/orgs?limit=5000", &t)
        .await
        .err(400, "invalid_query");
    app.get("/v1/orgs?cursor=forged", &t)
        .await
        .err(400, "invalid_cursor");
    app.get("/v1/orgs?bogus=1", &t)
        .await
        .err(400, "invalid_query");
}

#[tokio::test]
async fn every_mutation_is_audited_with_actor_outcome_and_request_id() {
    let app = TestApp::new().await;
    let t = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.org(&t, "acme").await;
    app.add_member(&t, "acme", "bob@example.com", "member")
        .await;
    // A denied attempt by bob, and a failed one by ann.
    app.patch("/v1/orgs/acme", &bob, json!({"name": "nope"}))
        .await
        .err(403, "forbidden");
    app.delete("/v1/orgs/acme/members/ann@example.com", &t)
        .await
        .err(409, "last_owner");
    let req = axum::http::Request::builder()
        .method(Method::PATCH)
        .uri("/v1/orgs/acme")
        .header("authorization", format!("Bearer {t}"))
        .header("content-type", "application/json")
        .header("x-request-id", "req-rename-42")
        .body(axum::body::Body::from(
            json!({"name": "Acme 2"}).to_string(),
        ))
        .unwrap();
    let res = app.raw(req).await;
    assert_eq!(res.headers["x-request-id"], "req-rename-42");

    let log = app.get("/v1/orgs/acme/audit", &t).await.ok();
    let rows: Vec<(String, String, String)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
                e["actor_email"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("org.rename", "success", "ann@example.com"),
        ("org.member.remove", "failure", "ann@example.com"),
        ("org.rename", "denied", "bob@example.com"),
        ("org.member.add", "success", "ann@example.com"),
        ("org.create", "success", "ann@example.com"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(rows, expected, "newest first");
    assert_eq!(log["items"][0]["request_id"], "req-rename-42");

    let denied = app.get("/v1/orgs/acme/audit?outcome=denied", &t).await.ok();
    assert_eq!(denied["items"].as_array().unwrap().len(), 1);
    let by_bob = app
        .get("/v1/orgs/acme/audit?actor=bob@example.com", &t)
        .await
        .ok();
    assert_eq!(by_bob["items"].as_array().unwrap().len(), 1);
    let members = app
        .get("/v1/orgs/acme/audit?action=org.member.", &t)
        .await
        .ok();
    assert_eq!(members["items"].as_array().unwrap().len(), 2);
    let id = log["items"][0]["id"].as_str().unwrap();
    let one = app.get(&format!("/v1/orgs/acme/audit/{id}"), &t).await.ok();
    assert_eq!(one["action"], "org.rename");
    app.get("/v1/orgs/acme/audit?outcome=meh", &t)
        .await
        .err(400, "invalid_query");
    app.get(
        "/v1/orgs/acme/audit?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z",
        &t,
    )
    .await
    .err(400, "invalid_query");
    let future = app
        .get("/v1/orgs/acme/audit?since=2999-01-01T00:00:00Z", &t)
        .await
        .ok();
    assert_eq!(future["items"], json!([]));
}
