//! Every org-scoped endpoint, driven with every role and with outsiders:
//! allowed (2xx), denied (403) or invisible (404) exactly as designed.

use axum::http::Method;
use serde_json::{Value, json};

use satusky_api::ApiConfig;
use satusky_core::ServicesConfig;
use satusky_core::fleet::SigningKey;
use satusky_core::services::AdmitRequest;

use crate::support::TestApp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Actor {
    Owner,
    Admin,
    Member,
    Viewer,
    /// A member of another organization only.
    Outsider,
    /// Owner here, but using a token scoped to another organization.
    ScopedElsewhere,
}

const ACTORS: [Actor; 6] = [
    Actor::Owner,
    Actor::Admin,
    Actor::Member,
    Actor::Viewer,
    Actor::Outsider,
    Actor::ScopedElsewhere,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Min {
    Viewer,
    Member,
    Admin,
    Owner,
}

fn rank(a: Actor) -> u8 {
    match a {
        Actor::Owner | Actor::ScopedElsewhere => 3,
        Actor::Admin => 2,
        Actor::Member => 1,
        Actor::Viewer | Actor::Outsider => 0,
    }
}

fn needed(m: Min) -> u8 {
    match m {
        Min::Viewer => 0,
        Min::Member => 1,
        Min::Admin => 2,
        Min::Owner => 3,
    }
}

struct Endpoint {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    min: Min,
}

fn endpoints() -> Vec<Endpoint> {
    let e = |method, path, body, min| Endpoint {
        method,
        path,
        body,
        min,
    };
    vec![
        e(Method::GET, "/v1/orgs/{org}", None, Min::Viewer),
        e(
            Method::PATCH,
            "/v1/orgs/{org}",
            Some(json!({"name": "Renamed"})),
            Min::Admin,
        ),
        e(
            Method::DELETE,
            "/v1/orgs/{org}?confirm={org}",
            None,
            Min::Owner,
        ),
        e(Method::GET, "/v1/orgs/{org}/members", None, Min::Viewer),
        e(
            Method::POST,
            "/v1/orgs/{org}/members",
            Some(json!({"email": "newbie@example.com", "role": "viewer"})),
            Min::Admin,
        ),
        e(
            Method::PATCH,
            "/v1/orgs/{org}/members/extra@example.com",
            Some(json!({"role": "member"})),
            Min::Admin,
        ),
        e(
            Method::DELETE,
            "/v1/orgs/{org}/members/extra@example.com",
            None,
            Min::Admin,
        ),
        e(Method::GET, "/v1/orgs/{org}/audit", None, Min::Admin),
        e(
            Method::GET,
            "/v1/orgs/{org}/audit/{audit}",
            None,
            Min::Admin,
        ),
        e(Method::GET, "/v1/orgs/{org}/apps", None, Min::Viewer),
        e(
            Method::GET,
            "/v1/orgs/{org}/apps/web/releases",
            None,
            Min::Viewer,
        ),
        e(
            Method::POST,
            "/v1/orgs/{org}/apps/web/deploy",
            Some(json!({"image": "nginx:2"})),
            Min::Member,
        ),
        e(
            Method::PATCH,
            "/v1/orgs/{org}/apps/web/env",
            Some(json!({"set": {"A": "1"}})),
            Min::Member,
        ),
        e(
            Method::GET,
            "/v1/orgs/{org}/apps/web/secrets",
            None,
            Min::Viewer,
        ),
        e(
            Method::GET,
            "/v1/orgs/{org}/apps/web/secrets/API_KEY",
            None,
            Min::Admin,
        ),
        e(Method::DELETE, "/v1/orgs/{org}/apps/web", None, Min::Member),
        e(Method::GET, "/v1/orgs/{org}/join-tokens", None, Min::Viewer),
        e(
            Method::POST,
            "/v1/orgs/{org}/join-tokens",
            Some(json!({"name": "t2"})),
            Min::Admin,
        ),
        e(
            Method::POST,
            "/v1/orgs/{org}/join-tokens/t1/revoke",
            Some(json!({})),
            Min::Admin,
        ),
        e(Method::GET, "/v1/orgs/{org}/machines", None, Min::Viewer),
        e(Method::GET, "/v1/orgs/{org}/machines/m1", None, Min::Viewer),
        e(
            Method::GET,
            "/v1/orgs/{org}/machines/m1/events",
            None,
            Min::Viewer,
        ),
        e(
            Method::GET,
            "/v1/orgs/{org}/machines/m1/metrics/history",
            None,
            Min::Viewer,
        ),
        e(
            Method::GET,
            "/v1/orgs/{org}/machines/m1/health",
            None,
            Min::Viewer,
        ),
        e(
            Method::GET,
            "/v1/orgs/{org}/machine-usage",
            None,
            Min::Viewer,
        ),
        e(
            Method::POST,
            "/v1/orgs/{org}/machines/m1/claim",
            Some(json!({})),
            Min::Member,
        ),
        e(
            Method::PATCH,
            "/v1/orgs/{org}/machines/m1/labels",
            Some(json!({"set": {"pool": "a"}})),
            Min::Member,
        ),
        e(
            Method::POST,
            "/v1/orgs/{org}/machines/bulk/labels",
            Some(json!({"selector": "!pool", "labels": {"set": {"pool": "b"}}})),
            Min::Member,
        ),
        e(
            Method::PUT,
            "/v1/orgs/{org}/machines/m1/visibility",
            Some(json!({"visibility": "public"})),
            Min::Admin,
        ),
        e(
            Method::POST,
            "/v1/orgs/{org}/machines/m1/decommission",
            Some(json!({"force": true})),
            Min::Admin,
        ),
    ]
}

#[tokio::test]
async fn every_org_endpoint_allows_denies_or_hides_exactly_by_role() {
    let app = TestApp::with_config(
        ServicesConfig {
            join_token_key: Some(SigningKey::new([5u8; 32])),
            ..ServicesConfig::default()
        },
        ApiConfig::default(),
    )
    .await;
    let owner = app.user("owner@example.com").await;
    let admin = app.user("admin@example.com").await;
    let member = app.user("member@example.com").await;
    let viewer = app.user("viewer@example.com").await;
    let outsider = app.user("outsider@example.com").await;
    app.user("extra@example.com").await;
    app.user("newbie@example.com").await;
    app.org(&owner, "elsewhere").await;
    app.org(&outsider, "outsiders").await;
    let scoped = app
        .post(
            "/v1/tokens",
            &owner,
            json!({"name": "scoped", "org": "elsewhere"}),
        )
        .await
        .ok()["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut checked = 0;
    for (i, ep) in endpoints().iter().enumerate() {
        for actor in ACTORS {
            // A fresh organization per case, so destructive calls don't interfere.
            let slug = format!("org{i}-{}", format!("{actor:?}").to_lowercase());
            app.org(&owner, &slug).await;
            app.add_member(&owner, &slug, "admin@example.com", "admin")
                .await;
            app.add_member(&owner, &slug, "member@example.com", "member")
                .await;
            app.add_member(&owner, &slug, "viewer@example.com", "viewer")
                .await;
            app.add_member(&owner, &slug, "extra@example.com", "viewer")
                .await;
            app.post(
                &format!("/v1/orgs/{slug}/apps/web/deploy"),
                &owner,
                json!({"image": "nginx:1", "create": true}),
            )
            .await
            .ok();
            app.patch(
                &format!("/v1/orgs/{slug}/apps/web/secrets"),
                &owner,
                json!({"set": {"API_KEY": "k"}}),
            )
            .await
            .ok();
            // A join token `t1` and a machine `m1` it admitted.
            let token = app
                .post(
                    &format!("/v1/orgs/{slug}/join-tokens"),
                    &owner,
                    json!({"name": "t1"}),
                )
                .await
                .ok()["token"]
                .as_str()
                .unwrap()
                .to_owned();
            app.services
                .admit_machine(AdmitRequest {
                    token,
                    uuid: slug.clone(),
                    fingerprint: slug.clone(),
                    hostname: "m1".to_owned(),
                    ..AdmitRequest::default()
                })
                .await
                .unwrap();
            let audit_id = app
                .get(&format!("/v1/orgs/{slug}/audit?limit=1"), &owner)
                .await
                .ok()["items"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let token = match actor {
                Actor::Owner => &owner,
                Actor::Admin => &admin,
                Actor::Member => &member,
                Actor::Viewer => &viewer,
                Actor::Outsider => &outsider,
                Actor::ScopedElsewhere => &scoped,
            };
            let path = ep
                .path
                .replace("{org}", &slug)
                .replace("{audit}", &audit_id);
            let res = app
                .call(ep.method.clone(), &path, Some(token), ep.body.clone())
                .await;
            let invisible = matches!(actor, Actor::Outsider | Actor::ScopedElsewhere);
            let case = format!("{} {} as {actor:?}", ep.method, ep.path);
            if invisible {
                assert_eq!(
                    (res.status.as_u16(), res.code()),
                    (404, "org_not_found"),
                    "{case}: {}",
                    res.body
                );
            } else if rank(actor) >= needed(ep.min) {
                assert!(
                    res.status.is_success(),
                    "{case} should be allowed: {} {}",
                    res.status,
                    res.body
                );
            } else {
                assert_eq!(
                    (res.status.as_u16(), res.code()),
                    (403, "forbidden"),
                    "{case}: {}",
                    res.body
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, endpoints().len() * ACTORS.len());
}

#[tokio::test]
async fn an_org_that_does_not_exist_looks_exactly_like_one_you_cannot_see() {
    let app = TestApp::new().await;
    let a = app.user("a@example.com").await;
    let b = app.user("b@example.com").await;
    app.org(&a, "secret-org").await;
    let hidden = app.get("/v1/orgs/secret-org", &b).await;
    let missing = app.get("/v1/orgs/no-such-org", &b).await;
    assert_eq!(hidden.status, missing.status);
    assert_eq!(hidden.code(), missing.code());
    assert_eq!(
        hidden.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("secret-org", "X"),
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("no-such-org", "X")
    );
}

#[tokio::test]
async fn admins_cannot_grant_or_take_the_owner_role_but_owners_can() {
    let app = TestApp::new().await;
    let owner = app.user("owner@example.com").await;
    let admin = app.user("admin@example.com").await;
    app.user("m@example.com").await;
    app.org(&owner, "acme").await;
    app.add_member(&owner, "acme", "admin@example.com", "admin")
        .await;
    app.add_member(&owner, "acme", "m@example.com", "member")
        .await;
    app.patch(
        "/v1/orgs/acme/members/m@example.com",
        &admin,
        json!({"role": "owner"}),
    )
    .await
    .err(403, "forbidden");
    app.patch(
        "/v1/orgs/acme/members/owner@example.com",
        &admin,
        json!({"role": "viewer"}),
    )
    .await
    .err(403, "forbidden");
    app.delete("/v1/orgs/acme/members/owner@example.com", &admin)
        .await
        .err(403, "forbidden");
    let m = app
        .patch(
            "/v1/orgs/acme/members/m@example.com",
            &owner,
            json!({"role": "owner"}),
        )
        .await
        .ok();
    assert_eq!(m["role"], "owner");
}
