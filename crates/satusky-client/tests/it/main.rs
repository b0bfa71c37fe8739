//! The client against a mock API on 127.0.0.1: the request each method
//! sends, and how answers and failures come back.

// Helpers outside `#[test]` functions panic on broken fixtures, like tests do.
#![expect(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use satusky_client::BulkAction;
use satusky_client::{Client, ClientError};
use satusky_types::ErrorCode;
use satusky_types::apps::{
    CreateAppRequest, DeployRequest, EventsQuery, KeyValueChange, LogsQuery,
};
use satusky_types::clusters::RegisterClusterRequest;
use satusky_types::identity::{
    ChangePasswordRequest, CreateTokenRequest, LoginRequest, SignupRequest, UpdateUserRequest,
};
use satusky_types::machines::{
    BulkRequest, CreateJoinTokenRequest, DecommissionRequest, DrainRequest, LabelsChange,
    MachineEventsQuery, MachineQuery, PowerRequest, Visibility,
};
use satusky_types::orgs::{AuditQuery, CreateOrgRequest, Outcome, Role};
use satusky_types::page::PageQuery;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Seen {
    call: String,
    auth: Option<String>,
    request_id: Option<String>,
    idempotency_key: Option<String>,
    body: Value,
}

type Routes = Vec<(String, u16, Value)>;

#[derive(Default)]
struct Mock {
    routes: Routes,
    seen: Vec<Seen>,
    delay: Option<Duration>,
}

struct MockApi {
    url: String,
    state: Arc<Mutex<Mock>>,
}

impl MockApi {
    async fn start(routes: &[(&str, u16, Value)]) -> Self {
        let state = Arc::new(Mutex::new(Mock {
            routes: routes
                .iter()
                .map(|(r, s, b)| ((*r).to_owned(), *s, b.clone()))
                .collect(),
            ..Mock::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    fn client(&self, token: Option<&str>) -> Client {
        Client::new(&self.url, token.map(str::to_owned)).unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn calls(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.call).collect()
    }
}

async fn handle(
    State(state): State<Arc<Mutex<Mock>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let call = format!(
        "{method} {}",
        uri.path_and_query().map_or("", |p| p.as_str())
    );
    let (found, delay) = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            call: call.clone(),
            auth: header("authorization"),
            request_id: header("x-request-id"),
            idempotency_key: header("idempotency-key"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let path_only = format!("{method} {}", uri.path());
        let found = s
            .routes
            .iter()
            .find(|(r, ..)| *r == call)
            .or_else(|| s.routes.iter().find(|(r, ..)| *r == path_only))
            .map(|(_, status, body)| (*status, body.clone()));
        (found, s.delay)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    match found {
        Some((status, Value::Null)) => StatusCode::from_u16(status).unwrap().into_response(),
        Some((status, Value::String(text))) => {
            (StatusCode::from_u16(status).unwrap(), text).into_response()
        }
        Some((status, body)) => {
            (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
        }
        None => StatusCode::IM_A_TEAPOT.into_response(),
    }
}

fn err(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "request_id": "req-1"}})
}

fn user() -> Value {
    json!({"id": "u1", "email": "a@example.com", "name": "A", "created_at": "2026-01-02T03:04:05Z"})
}

fn org(slug: &str) -> Value {
    json!({"id": "o1", "slug": slug, "name": slug, "namespace": format!("org-{slug}"), "role": "owner", "created_at": "2026-01-02T03:04:05Z"})
}

fn member() -> Value {
    json!({"user_id": "u2", "email": "b@example.com", "name": "B", "role": "admin", "joined_at": "2026-01-02T03:04:05Z"})
}

fn token() -> Value {
    json!({"id": "t1", "name": "ci", "prefix": "sk_pat_ab", "enabled": true, "created_at": "2026-01-02T03:04:05Z"})
}

fn audit() -> Value {
    json!({"id": "a1", "org_id": "o1", "action": "org.create", "target": "org:acme", "request_id": "r", "outcome": "success", "at": "2026-01-02T03:04:05Z"})
}

#[tokio::test]
async fn identity_methods_send_the_documented_requests() {
    let api = MockApi::start(&[
        ("POST /v1/auth/signup", 201, user()),
        (
            "POST /v1/auth/login",
            201,
            json!({"token": "sk_sess_1", "expires_at": "2026-01-09T00:00:00Z", "user": user()}),
        ),
        ("POST /v1/auth/logout", 204, Value::Null),
        ("POST /v1/auth/revoke-all", 200, json!({"revoked": 3})),
        (
            "GET /v1/me",
            200,
            json!({"user": user(), "auth": "session"}),
        ),
        ("PATCH /v1/me", 200, user()),
        ("POST /v1/me/password", 204, Value::Null),
    ])
    .await;
    let anon = api.client(None);
    let signup = SignupRequest {
        email: "a@example.com".into(),
        password: "pw".into(),
        name: None,
    };
    assert_eq!(anon.signup(&signup).await.unwrap().email, "a@example.com");
    let login = LoginRequest {
        email: "a@example.com".into(),
        password: "pw".into(),
    };
    assert_eq!(anon.login(&login).await.unwrap().token, "sk_sess_1");

    let c = api.client(Some("sk_sess_1"));
    c.logout().await.unwrap();
    assert_eq!(c.revoke_all_sessions().await.unwrap().revoked, 3);
    assert_eq!(c.me().await.unwrap().auth, "session");
    c.update_me(&UpdateUserRequest { name: "B".into() })
        .await
        .unwrap();
    let change = ChangePasswordRequest {
        current_password: "a".into(),
        new_password: "b".into(),
    };
    c.change_password(&change).await.unwrap();

    let seen = api.seen();
    assert_eq!(
        api.calls(),
        vec![
            "POST /v1/auth/signup",
            "POST /v1/auth/login",
            "POST /v1/auth/logout",
            "POST /v1/auth/revoke-all",
            "GET /v1/me",
            "PATCH /v1/me",
            "POST /v1/me/password",
        ]
    );
    assert_eq!(seen[0].auth, None);
    assert_eq!(
        seen[0].body,
        json!({"email": "a@example.com", "password": "pw", "name": null})
    );
    assert!(
        seen[2..]
            .iter()
            .all(|s| s.auth.as_deref() == Some("Bearer sk_sess_1"))
    );
    assert_eq!(seen[5].body, json!({"name": "B"}));
    assert_eq!(
        seen[6].body,
        json!({"current_password": "a", "new_password": "b"})
    );
}

#[tokio::test]
async fn org_member_token_and_audit_methods_send_the_documented_requests() {
    let page = |item: Value| json!({"items": [item]});
    let api = MockApi::start(&[
        ("GET /v1/orgs", 200, page(org("acme"))),
        ("POST /v1/orgs", 201, org("acme")),
        ("GET /v1/orgs/acme", 200, org("acme")),
        ("PATCH /v1/orgs/acme", 200, org("acme")),
        ("DELETE /v1/orgs/acme", 204, Value::Null),
        ("GET /v1/orgs/acme/members", 200, page(member())),
        ("POST /v1/orgs/acme/members", 201, member()),
        ("PATCH /v1/orgs/acme/members/b@example.com", 200, member()),
        ("DELETE /v1/orgs/acme/members/u2", 204, Value::Null),
        ("GET /v1/tokens", 200, page(token())),
        (
            "POST /v1/tokens",
            201,
            json!({"token": token(), "secret": "sk_pat_s"}),
        ),
        ("GET /v1/tokens/ci", 200, token()),
        ("PATCH /v1/tokens/ci", 200, token()),
        ("DELETE /v1/tokens/ci", 204, Value::Null),
        ("GET /v1/orgs/acme/audit", 200, page(audit())),
        ("GET /v1/orgs/acme/audit/a1", 200, audit()),
    ])
    .await;
    let c = api.client(Some("sk_pat_x"));
    let q = PageQuery {
        limit: Some(10),
        cursor: Some("c1".into()),
    };
    assert_eq!(c.list_orgs(&q).await.unwrap().items.len(), 1);
    c.create_org(&CreateOrgRequest {
        slug: "acme".into(),
        name: Some("Acme".into()),
    })
    .await
    .unwrap();
    c.get_org("acme").await.unwrap();
    c.rename_org("acme", "Acme 2").await.unwrap();
    c.delete_org("acme", "acme").await.unwrap();
    c.list_members("acme", &PageQuery::default()).await.unwrap();
    c.add_member("acme", "b@example.com", Role::Admin)
        .await
        .unwrap();
    c.change_member_role("acme", "b@example.com", Role::Viewer)
        .await
        .unwrap();
    c.remove_member("acme", "u2").await.unwrap();
    c.list_tokens(&PageQuery::default()).await.unwrap();
    let create = CreateTokenRequest {
        name: "ci".into(),
        org: Some("acme".into()),
        expires_in_days: Some(7),
    };
    assert_eq!(c.create_token(&create).await.unwrap().secret, "sk_pat_s");
    c.get_token("ci").await.unwrap();
    c.set_token_enabled("ci", false).await.unwrap();
    c.delete_token("ci").await.unwrap();
    let since: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let aq = AuditQuery {
        outcome: Some(Outcome::Denied),
        action: Some("org.".into()),
        since: Some(since),
        ..AuditQuery::default()
    };
    c.list_audit("acme", &aq).await.unwrap();
    c.get_audit_entry("acme", "a1").await.unwrap();

    assert_eq!(
        api.calls(),
        vec![
            "GET /v1/orgs?limit=10&cursor=c1",
            "POST /v1/orgs",
            "GET /v1/orgs/acme",
            "PATCH /v1/orgs/acme",
            "DELETE /v1/orgs/acme?confirm=acme",
            "GET /v1/orgs/acme/members",
            "POST /v1/orgs/acme/members",
            "PATCH /v1/orgs/acme/members/b@example.com",
            "DELETE /v1/orgs/acme/members/u2",
            "GET /v1/tokens",
            "POST /v1/tokens",
            "GET /v1/tokens/ci",
            "PATCH /v1/tokens/ci",
            "DELETE /v1/tokens/ci",
            "GET /v1/orgs/acme/audit?action=org.&outcome=denied&since=2026-01-01T00%3A00%3A00Z",
            "GET /v1/orgs/acme/audit/a1",
        ]
    );
    let bodies: Vec<Value> = api.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(bodies[1], json!({"slug": "acme", "name": "Acme"}));
    assert_eq!(bodies[3], json!({"name": "Acme 2"}));
    assert_eq!(
        bodies[6],
        json!({"email": "b@example.com", "role": "admin"})
    );
    assert_eq!(bodies[7], json!({"role": "viewer"}));
    assert_eq!(
        bodies[10],
        json!({"name": "ci", "org": "acme", "expires_in_days": 7})
    );
    assert_eq!(bodies[12], json!({"enabled": false}));
}

/// Whether `path` (without query) fits `template`, where `{…}` is one segment.
fn fits(template: &str, path: &str) -> bool {
    let t: Vec<_> = template.split('/').collect();
    let p: Vec<_> = path.split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

#[tokio::test]
async fn every_listed_route_has_a_method_and_every_method_is_listed() {
    let api = MockApi::start(&[]).await;
    let anon = api.client(None);
    let c = api.client(Some("t"));
    let q = PageQuery::default();
    let _ = anon
        .signup(&SignupRequest {
            email: "e".into(),
            password: "p".into(),
            name: None,
        })
        .await;
    let _ = anon
        .login(&LoginRequest {
            email: "e".into(),
            password: "p".into(),
        })
        .await;
    let _ = c.logout().await;
    let _ = c.revoke_all_sessions().await;
    let _ = c.me().await;
    let _ = c.update_me(&UpdateUserRequest { name: "n".into() }).await;
    let _ = c
        .change_password(&ChangePasswordRequest {
            current_password: "a".into(),
            new_password: "b".into(),
        })
        .await;
    let _ = c.list_tokens(&q).await;
    let _ = c
        .create_token(&CreateTokenRequest {
            name: "n".into(),
            org: None,
            expires_in_days: None,
        })
        .await;
    let _ = c.get_token("t").await;
    let _ = c.set_token_enabled("t", true).await;
    let _ = c.delete_token("t").await;
    let _ = c.list_orgs(&q).await;
    let _ = c
        .create_org(&CreateOrgRequest {
            slug: "s".into(),
            name: None,
        })
        .await;
    let _ = c.get_org("s").await;
    let _ = c.rename_org("s", "n").await;
    let _ = c.delete_org("s", "s").await;
    let _ = c.list_members("s", &q).await;
    let _ = c.add_member("s", "e", Role::Member).await;
    let _ = c.change_member_role("s", "u", Role::Admin).await;
    let _ = c.remove_member("s", "u").await;
    let _ = c.list_audit("s", &AuditQuery::default()).await;
    let _ = c.get_audit_entry("s", "a").await;
    let _ = c.healthz().await;
    let _ = c.readyz().await;
    let _ = c.openapi().await;
    let _ = c.list_apps("s", &q).await;
    let _ = c
        .create_app(
            "s",
            &CreateAppRequest {
                name: "a".into(),
                environment: None,
            },
        )
        .await;
    let _ = c.get_app("s", "a").await;
    let _ = c.delete_app("s", "a", false).await;
    let _ = c.deploy("s", "a", &DeployRequest::default(), None).await;
    let _ = c.list_releases("s", "a", &q).await;
    let _ = c.get_release("s", "a", 1).await;
    let _ = c.rollback("s", "a", None).await;
    let _ = c.restart("s", "a").await;
    let _ = c.scale("s", "a", 1).await;
    let _ = c.get_env("s", "a").await;
    let _ = c.change_env("s", "a", &KeyValueChange::default()).await;
    let _ = c.list_secrets("s", "a").await;
    let _ = c.change_secrets("s", "a", &KeyValueChange::default()).await;
    let _ = c.reveal_secret("s", "a", "K").await;
    let _ = c.list_volumes("s", "a").await;
    let _ = c.list_events("s", "a", &EventsQuery::default()).await;
    let _ = c.events_stream("s", "a", 0).await;
    let _ = c.app_logs("s", "a", &LogsQuery::default()).await;
    let _ = c.app_logs_stream("s", "a", &LogsQuery::default()).await;
    let _ = c.list_join_tokens("s", &q).await;
    let _ = c
        .create_join_token(
            "s",
            &CreateJoinTokenRequest {
                name: "n".into(),
                expires_in_hours: None,
            },
        )
        .await;
    let _ = c.revoke_join_token("s", "t").await;
    let _ = c.list_machines("s", &MachineQuery::default()).await;
    let _ = c.get_machine("s", "m").await;
    let _ = c.claim_machine("s", "m").await;
    let _ = c.release_machine("s", "m").await;
    let _ = c
        .change_machine_labels("s", "m", &LabelsChange::default())
        .await;
    let _ = c.set_machine_visibility("s", "m", Visibility::Public).await;
    let _ = c
        .list_machine_events("s", "m", &MachineEventsQuery::default())
        .await;
    let _ = c.machine_events_stream("s", "m", 0).await;
    let _ = c.machine_metrics("s", "m").await;
    let _ = c
        .machine_metrics_history(
            "s",
            "m",
            &satusky_types::machines::MachineMetricsHistoryQuery::default(),
        )
        .await;
    let _ = c.machine_metrics_stream("s", "m").await;
    let logs = satusky_types::machines::MachineLogsQuery::default();
    let _ = c.machine_logs("s", "m", &logs).await;
    let _ = c.machine_logs_stream("s", "m", &logs).await;
    let _ = c.machine_health("s", "m").await;
    let _ = c
        .placement_preview("s", &satusky_types::machines::PlacementQuery::default())
        .await;
    let _ = c
        .machine_usage("s", &satusky_types::machines::MachineUsageQuery::default())
        .await;
    let _ = c.cancel_machine_operation("s", "m").await;
    let _ = c.cordon_machine("s", "m").await;
    let _ = c.uncordon_machine("s", "m").await;
    let _ = c.drain_machine("s", "m", &DrainRequest::default()).await;
    let _ = c.reboot_machine("s", "m", &PowerRequest::default()).await;
    let _ = c.shutdown_machine("s", "m", &PowerRequest::default()).await;
    let _ = c
        .decommission_machine("s", "m", &DecommissionRequest::default())
        .await;
    let _ = c
        .bulk_machines("s", BulkAction::Cordon, &BulkRequest::default())
        .await;
    let _ = c.list_clusters(&q).await;
    let _ = c
        .register_cluster(&RegisterClusterRequest {
            name: "c".into(),
            region: "r".into(),
            zone: "z".into(),
            kubeconfig: None,
            default: false,
            priority: 0,
        })
        .await;
    let _ = c.delete_cluster("c").await;
    let _ = c.list_zones().await;
    let _ = c.get_volume("o", "a", "data").await;
    let _ = c.list_volume_claims("o", "a").await;
    let _ = c.detach_volume("o", "a", "data").await;
    let _ = c.delete_volume("o", "a", "data").await;

    let calls: Vec<(String, String)> = api
        .calls()
        .into_iter()
        .map(|c| {
            let (method, rest) = c.split_once(' ').unwrap();
            let path = rest.split('?').next().unwrap();
            (method.to_owned(), path.to_owned())
        })
        .collect();
    for (method, path) in &calls {
        assert!(
            satusky_client::ROUTES
                .iter()
                .any(|(m, t)| m == method && fits(t, path)),
            "{method} {path} is not in ROUTES"
        );
    }
    for (m, t) in satusky_client::ROUTES {
        assert!(
            calls
                .iter()
                .any(|(method, path)| m == method && fits(t, path)),
            "no method calls {m} {t}"
        );
    }
}

#[tokio::test]
async fn ids_with_slashes_cannot_change_the_route() {
    let api = MockApi::start(&[("GET /v1/tokens/a%2F..%2Fb", 200, token())]).await;
    api.client(Some("t")).get_token("a/../b").await.unwrap();
    assert_eq!(api.calls(), vec!["GET /v1/tokens/a%2F..%2Fb"]);
}

#[tokio::test]
async fn list_all_follows_next_cursor_to_the_last_page() {
    let api = MockApi::start(&[
        (
            "GET /v1/orgs?limit=1000",
            200,
            json!({"items": [org("a")], "next_cursor": "x"}),
        ),
        (
            "GET /v1/orgs?limit=1000&cursor=x",
            200,
            json!({"items": [org("b")], "next_cursor": "y"}),
        ),
        (
            "GET /v1/orgs?limit=1000&cursor=y",
            200,
            json!({"items": []}),
        ),
    ])
    .await;
    let orgs = api.client(Some("t")).list_all_orgs().await.unwrap();
    let slugs: Vec<_> = orgs.iter().map(|o| o.slug.as_str()).collect();
    assert_eq!(slugs, ["a", "b"]);
    assert_eq!(api.calls().len(), 3);
}

#[tokio::test]
async fn error_bodies_become_api_errors_with_their_code() {
    let api = MockApi::start(&[
        (
            "GET /v1/orgs/nope",
            404,
            err("org_not_found", "no such organization"),
        ),
        (
            "DELETE /v1/orgs/acme",
            400,
            err("confirmation_required", "repeat the slug"),
        ),
        ("GET /v1/me", 401, err("unauthenticated", "log in")),
    ])
    .await;
    let c = api.client(Some("t"));
    let e = c.get_org("nope").await.unwrap_err();
    assert!(matches!(e, ClientError::Api { status: 404, .. }), "{e:?}");
    assert_eq!(e.code(), Some(ErrorCode::OrgNotFound));
    assert_eq!(e.request_id(), Some("req-1"));
    assert_eq!(e.to_string(), "no such organization");
    let e = c.delete_org("acme", "wrong").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ConfirmationRequired));
    assert_eq!(c.me().await.unwrap_err().status(), Some(401));
}

#[tokio::test]
async fn answers_that_are_not_satusky_errors_are_kept_apart() {
    let api = MockApi::start(&[
        (
            "GET /v1/me",
            502,
            Value::String("<html>bad gateway</html>".into()),
        ),
        ("GET /v1/orgs", 200, Value::String("not json".into())),
    ])
    .await;
    let c = api.client(Some("t"));
    let e = c.me().await.unwrap_err();
    assert!(
        matches!(e, ClientError::UnexpectedStatus { status: 502, .. }),
        "{e:?}"
    );
    let e = c.list_orgs(&PageQuery::default()).await.unwrap_err();
    assert!(
        matches!(e, ClientError::Decode { status: 200, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_request_id_is_passed_through_and_anonymous_calls_send_no_token() {
    let api = MockApi::start(&[
        ("GET /healthz", 200, json!("ok")),
        ("GET /readyz", 200, Value::Null),
    ])
    .await;
    let c = api.client(None).with_request_id("trace-123");
    c.healthz().await.unwrap();
    c.readyz().await.unwrap();
    let seen = api.seen();
    assert_eq!(seen[0].request_id.as_deref(), Some("trace-123"));
    assert_eq!(seen[0].auth, None);
    // An empty token is no token.
    let c = Client::new(&api.url, Some(String::new())).unwrap();
    assert_eq!(c.token(), None);
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let api =
        MockApi::start(&[("GET /v1/me", 200, json!({"user": user(), "auth": "token"}))]).await;
    api.state.lock().unwrap().delay = Some(Duration::from_secs(5));
    let c = Client::with_timeout(&api.url, Some("t".into()), Duration::from_millis(200)).unwrap();
    let e = c.me().await.unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Client::new(&format!("http://127.0.0.1:{port}"), None).unwrap();
    let e = c.healthz().await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    assert_eq!(e.status(), None);
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_any_request() {
    let e = Client::new("http://api.example.com", None).unwrap_err();
    assert!(matches!(e, ClientError::InvalidBaseUrl { .. }));
    assert!(e.to_string().contains("use https://"), "{e}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let api = MockApi::start(&[("GET /v1/me", 302, Value::Null)]).await;
    let e = api.client(Some("t")).me().await.unwrap_err();
    assert!(
        matches!(e, ClientError::UnexpectedStatus { status: 302, .. }),
        "{e:?}"
    );
    assert_eq!(api.calls().len(), 1);
}

fn app(name: &str) -> Value {
    json!({
        "id": "app_1", "name": name, "environment": "production", "org": "acme",
        "generation": 1, "current_release": 1, "default_domain": format!("{name}-acme.apps.test"),
        "status": {"phase": "pending", "observed_generation": 0, "desired_replicas": 1,
            "ready_replicas": 0, "updated_replicas": 0},
        "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"
    })
}

fn release(n: u64, cause: &str) -> Value {
    json!({"number": n, "spec": {"image": "nginx:1", "replicas": 1}, "cause": cause,
        "created_at": "2026-01-02T03:04:05Z"})
}

fn deployed(n: u64, cause: &str, replayed: bool) -> Value {
    json!({"app": app("web"), "release": release(n, cause), "replayed": replayed})
}

fn event(seq: u64, kind: &str) -> Value {
    json!({"seq": seq, "kind": kind, "message": format!("event {seq}"), "release": 1,
        "at": "2026-01-02T03:04:05Z"})
}

#[tokio::test]
async fn app_methods_send_the_documented_requests() {
    let page = |items: Vec<Value>| json!({"items": items});
    let api = MockApi::start(&[
        ("GET /v1/orgs/acme/apps", 200, page(vec![app("web")])),
        ("POST /v1/orgs/acme/apps", 201, app("web")),
        ("GET /v1/orgs/acme/apps/web", 200, app("web")),
        ("DELETE /v1/orgs/acme/apps/web", 202, app("web")),
        (
            "POST /v1/orgs/acme/apps/web/deploy",
            201,
            deployed(1, "deploy", false),
        ),
        (
            "GET /v1/orgs/acme/apps/web/releases",
            200,
            page(vec![release(1, "deploy")]),
        ),
        (
            "GET /v1/orgs/acme/apps/web/releases/1",
            200,
            release(1, "deploy"),
        ),
        (
            "POST /v1/orgs/acme/apps/web/rollback",
            201,
            deployed(3, "rollback", false),
        ),
        ("POST /v1/orgs/acme/apps/web/restart", 202, app("web")),
        (
            "POST /v1/orgs/acme/apps/web/scale",
            201,
            deployed(2, "scale", false),
        ),
        ("GET /v1/orgs/acme/apps/web/env", 200, json!({"A": "1"})),
        (
            "PATCH /v1/orgs/acme/apps/web/env",
            201,
            deployed(4, "config", false),
        ),
        (
            "GET /v1/orgs/acme/apps/web/secrets",
            200,
            page(vec![json!({"key": "K", "value": "********", "version": 1})]),
        ),
        (
            "PATCH /v1/orgs/acme/apps/web/secrets",
            201,
            deployed(5, "secret", false),
        ),
        (
            "GET /v1/orgs/acme/apps/web/secrets/K",
            200,
            json!({"key": "K", "value": "v", "version": 1}),
        ),
        (
            "GET /v1/orgs/acme/apps/web/volumes",
            200,
            page(vec![
                json!({"name": "data", "size": "1Gi", "mount_path": "/data"}),
            ]),
        ),
        (
            "GET /v1/orgs/acme/apps/web/events",
            200,
            page(vec![event(1, "release.created")]),
        ),
    ])
    .await;
    let c = api.client(Some("sk_pat_x"));
    assert_eq!(c.list_all_apps("acme").await.unwrap()[0].name, "web");
    c.create_app(
        "acme",
        &CreateAppRequest {
            name: "web".into(),
            environment: Some("staging".into()),
        },
    )
    .await
    .unwrap();
    c.get_app("acme", "web").await.unwrap();
    c.delete_app("acme", "web", true).await.unwrap();
    c.delete_app("acme", "web", false).await.unwrap();
    let req = DeployRequest {
        image: "nginx:1".into(),
        replicas: Some(2),
        create: true,
        ..DeployRequest::default()
    };
    let d = c.deploy("acme", "web", &req, Some("key-1")).await.unwrap();
    assert_eq!(d.release.number, 1);
    c.list_releases("acme", "web", &PageQuery::default())
        .await
        .unwrap();
    assert_eq!(c.get_release("acme", "web", 1).await.unwrap().number, 1);
    c.rollback("acme", "web", Some(1)).await.unwrap();
    c.rollback("acme", "web", None).await.unwrap();
    c.restart("acme", "web").await.unwrap();
    c.scale("acme", "web", 3).await.unwrap();
    assert_eq!(c.get_env("acme", "web").await.unwrap()["A"], "1");
    let change = KeyValueChange {
        set: [("A".to_owned(), "2".to_owned())].into(),
        unset: vec!["B".into()],
    };
    c.change_env("acme", "web", &change).await.unwrap();
    assert_eq!(
        c.list_secrets("acme", "web").await.unwrap().items[0].value,
        "********"
    );
    c.change_secrets("acme", "web", &change).await.unwrap();
    assert_eq!(
        c.reveal_secret("acme", "web", "K").await.unwrap().value,
        "v"
    );
    c.list_volumes("acme", "web").await.unwrap();
    let q = EventsQuery {
        from: Some(7),
        limit: Some(10),
    };
    c.list_events("acme", "web", &q).await.unwrap();

    assert_eq!(
        api.calls(),
        vec![
            "GET /v1/orgs/acme/apps?limit=1000",
            "POST /v1/orgs/acme/apps",
            "GET /v1/orgs/acme/apps/web",
            "DELETE /v1/orgs/acme/apps/web?delete_volumes=true",
            "DELETE /v1/orgs/acme/apps/web",
            "POST /v1/orgs/acme/apps/web/deploy",
            "GET /v1/orgs/acme/apps/web/releases",
            "GET /v1/orgs/acme/apps/web/releases/1",
            "POST /v1/orgs/acme/apps/web/rollback",
            "POST /v1/orgs/acme/apps/web/rollback",
            "POST /v1/orgs/acme/apps/web/restart",
            "POST /v1/orgs/acme/apps/web/scale",
            "GET /v1/orgs/acme/apps/web/env",
            "PATCH /v1/orgs/acme/apps/web/env",
            "GET /v1/orgs/acme/apps/web/secrets",
            "PATCH /v1/orgs/acme/apps/web/secrets",
            "GET /v1/orgs/acme/apps/web/secrets/K",
            "GET /v1/orgs/acme/apps/web/volumes",
            "GET /v1/orgs/acme/apps/web/events?from=7&limit=10",
        ]
    );
    let seen = api.seen();
    assert_eq!(
        seen[1].body,
        json!({"name": "web", "environment": "staging"})
    );
    assert_eq!(seen[5].idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(
        seen[5].body,
        json!({"image": "nginx:1", "replicas": 2, "create": true})
    );
    assert_eq!(seen[8].body, json!({"to": 1}));
    assert_eq!(seen[9].body, json!({"to": null}));
    assert_eq!(seen[11].body, json!({"replicas": 3}));
    assert_eq!(seen[13].body, json!({"set": {"A": "2"}, "unset": ["B"]}));
    assert_eq!(seen[15].body, json!({"set": {"A": "2"}, "unset": ["B"]}));
    assert!(
        seen.iter()
            .all(|s| s.auth.as_deref() == Some("Bearer sk_pat_x"))
    );
}

#[tokio::test]
async fn a_deploy_is_retried_with_the_same_key_when_the_gateway_fails() {
    let api = MockApi::start(&[("POST /v1/orgs/acme/apps/web/deploy", 503, Value::Null)]).await;
    let c = api.client(Some("t"));
    let req = DeployRequest {
        image: "nginx:1".into(),
        ..DeployRequest::default()
    };
    let e = c.deploy("acme", "web", &req, Some("k1")).await.unwrap_err();
    assert_eq!(e.status(), Some(503));
    let keys: Vec<_> = api.seen().into_iter().map(|s| s.idempotency_key).collect();
    assert_eq!(keys, vec![Some("k1".to_owned()); 3]);

    // Without a key a deploy is never sent twice.
    let api = MockApi::start(&[("POST /v1/orgs/acme/apps/web/deploy", 503, Value::Null)]).await;
    let e = api
        .client(Some("t"))
        .deploy("acme", "web", &req, None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert_eq!(api.calls().len(), 1);
}

#[tokio::test]
async fn every_event_is_read_following_the_cursor() {
    let api = MockApi::start(&[
        (
            "GET /v1/orgs/acme/apps/web/events?from=0&limit=1000",
            200,
            json!({"items": [event(1, "a"), event(2, "b")], "next_cursor": "2"}),
        ),
        (
            "GET /v1/orgs/acme/apps/web/events?from=2&limit=1000",
            200,
            json!({"items": [event(3, "c")]}),
        ),
        (
            "GET /v1/orgs/acme/apps/new/events",
            404,
            err("app_not_found", "no app"),
        ),
    ])
    .await;
    let c = api.client(Some("t"));
    assert_eq!(c.last_event_seq("acme", "web").await.unwrap(), 3);
    assert_eq!(c.last_event_seq("acme", "new").await.unwrap(), 0);
}

/// Upgrade requests seen: URI and `Authorization` header.
type Upgrades = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A WebSocket server sending `events` as text, recording the upgrade's headers.
async fn ws_server(events: Vec<Value>) -> (String, Upgrades) {
    use axum::extract::ws::{Message, WebSocketUpgrade};
    let seen: Upgrades = Arc::default();
    let recorded = seen.clone();
    let handler = move |ws: WebSocketUpgrade, uri: Uri, headers: HeaderMap| {
        let events = events.clone();
        let seen = recorded.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            seen.lock().unwrap().push((uri.to_string(), auth));
            ws.on_upgrade(move |mut socket| async move {
                for e in events {
                    let _ = socket.send(Message::Text(e.to_string().into())).await;
                }
                let _ = socket.send(Message::Close(None)).await;
            })
        }
    };
    let app = axum::Router::new()
        .route(
            "/v1/orgs/{org}/apps/{app}/events/ws",
            axum::routing::get(handler),
        )
        .fallback(|| async { StatusCode::NOT_FOUND });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn the_event_stream_sends_the_token_and_yields_each_event() {
    let (url, seen) = ws_server(vec![
        event(4, "release.created"),
        event(5, "rollout.complete"),
    ])
    .await;
    let c = Client::new(&url, Some("sk_pat_ws".into())).unwrap();
    let mut stream = c.events_stream("acme", "web", 3).await.unwrap();
    let mut kinds = Vec::new();
    while let Some(e) = stream.next().await {
        kinds.push(e.unwrap().kind);
    }
    assert_eq!(kinds, ["release.created", "rollout.complete"]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![(
            "/v1/orgs/acme/apps/web/events/ws?from=3".to_owned(),
            Some("Bearer sk_pat_ws".to_owned())
        )]
    );

    // A refusal before the upgrade is the server's error.
    let api = MockApi::start(&[(
        "GET /v1/orgs/acme/apps/nope/events/ws",
        404,
        err("app_not_found", "no such app"),
    )])
    .await;
    let e = api
        .client(Some("t"))
        .events_stream("acme", "nope", 0)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::AppNotFound), "{e:?}");
    assert_eq!(e.request_id(), Some("req-1"));
}

fn machine(id: &str, name: &str) -> Value {
    json!({
        "id": id, "name": name, "uuid": "u-1", "org": "acme", "state": "joined",
        "visibility": "organization", "labels": {"pool": "gpu"}, "system_labels": {"arch": "amd64"},
        "hardware": {"arch": "amd64", "cpu_cores": 8, "memory_bytes": 17_179_869_184_u64},
        "zone": "kul-1", "link": {"connected": true, "address": "fdae::1"},
        "operable": true, "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"
    })
}

#[tokio::test]
async fn machine_and_cluster_methods_send_the_documented_requests() {
    let m = machine("mch_1", "node-a");
    let api = MockApi::start(&[
        ("GET /v1/orgs/acme/machines", 200, json!({"items": [m.clone()]})),
        ("GET /v1/orgs/acme/machines/node-a", 200, m.clone()),
        ("PATCH /v1/orgs/acme/machines/mch_1/labels", 200, m.clone()),
        ("PUT /v1/orgs/acme/machines/mch_1/visibility", 200, m.clone()),
        ("POST /v1/orgs/acme/machines/mch_1/drain", 202, m.clone()),
        ("POST /v1/orgs/acme/machines/mch_1/reboot", 202, m.clone()),
        ("POST /v1/orgs/acme/machines/mch_1/decommission", 202, m.clone()),
        (
            "POST /v1/orgs/acme/machines/bulk/labels",
            200,
            json!({"selector": "pool=gpu", "items": [{"id": "mch_1", "name": "node-a", "ok": true, "state": "joined"}]}),
        ),
        (
            "GET /v1/orgs/acme/machines/mch_1/events",
            200,
            json!({"items": [{"seq": 1, "kind": "k", "message": "m", "at": "2026-01-02T03:04:05Z"}]}),
        ),
        (
            "POST /v1/orgs/acme/join-tokens",
            201,
            json!({"join_token": {"id": "jt_1", "name": "rack", "org": "acme", "expires_at": "2026-01-02T03:04:05Z", "revoked": false, "created_at": "2026-01-02T03:04:05Z"},
                "token": "sk_join_x", "kernel_args": ["siderolink.api=x"]}),
        ),
        ("GET /v1/zones", 200, json!({"items": [{"zone": "kul-1", "region": "kul", "clusters": 1, "healthy": true}]})),
        ("GET /v1/orgs/acme/apps/web/logs", 200, json!({"items": [{"pod": "web-1", "line": "hi"}]})),
    ])
    .await;
    let c = api.client(Some("t"));
    let all = c
        .list_all_machines("acme", Some("pool=gpu,zone in (a,b)"))
        .await
        .unwrap();
    assert_eq!(all[0].name, "node-a");
    c.get_machine("acme", "node-a").await.unwrap();
    c.change_machine_labels(
        "acme",
        "mch_1",
        &LabelsChange {
            set: [("pool".to_owned(), "cpu".to_owned())].into(),
            unset: vec!["old".into()],
        },
    )
    .await
    .unwrap();
    c.set_machine_visibility("acme", "mch_1", Visibility::Public)
        .await
        .unwrap();
    c.drain_machine(
        "acme",
        "mch_1",
        &DrainRequest {
            timeout_seconds: Some(60),
            delete_emptydir_data: true,
        },
    )
    .await
    .unwrap();
    c.reboot_machine("acme", "mch_1", &PowerRequest { force: true })
        .await
        .unwrap();
    c.decommission_machine(
        "acme",
        "mch_1",
        &DecommissionRequest {
            force: false,
            wipe_user_disks: true,
        },
    )
    .await
    .unwrap();
    let r = c
        .bulk_machines(
            "acme",
            BulkAction::Labels,
            &BulkRequest {
                selector: "pool=gpu".into(),
                labels: LabelsChange {
                    set: [("tier".to_owned(), "a".to_owned())].into(),
                    unset: vec![],
                },
                ..BulkRequest::default()
            },
        )
        .await
        .unwrap();
    assert!(r.items[0].ok);
    assert_eq!(c.last_machine_event_seq("acme", "mch_1").await.unwrap(), 1);
    let created = c
        .create_join_token(
            "acme",
            &CreateJoinTokenRequest {
                name: "rack".into(),
                expires_in_hours: Some(48),
            },
        )
        .await
        .unwrap();
    assert_eq!(created.token, "sk_join_x");
    assert_eq!(c.list_zones().await.unwrap()[0].zone, "kul-1");
    let logs = c
        .app_logs(
            "acme",
            "web",
            &LogsQuery {
                tail: Some(10),
                since_seconds: Some(600),
                pod: Some("web-1".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(logs.items[0].line, "hi");

    let seen = api.seen();
    let calls: Vec<_> = seen.iter().map(|s| s.call.as_str()).collect();
    assert_eq!(
        calls,
        [
            "GET /v1/orgs/acme/machines?selector=pool%3Dgpu%2Czone+in+%28a%2Cb%29&limit=1000",
            "GET /v1/orgs/acme/machines/node-a",
            "PATCH /v1/orgs/acme/machines/mch_1/labels",
            "PUT /v1/orgs/acme/machines/mch_1/visibility",
            "POST /v1/orgs/acme/machines/mch_1/drain",
            "POST /v1/orgs/acme/machines/mch_1/reboot",
            "POST /v1/orgs/acme/machines/mch_1/decommission",
            "POST /v1/orgs/acme/machines/bulk/labels",
            "GET /v1/orgs/acme/machines/mch_1/events?from=0&limit=1000",
            "POST /v1/orgs/acme/join-tokens",
            "GET /v1/zones",
            "GET /v1/orgs/acme/apps/web/logs?tail=10&since_seconds=600&pod=web-1",
        ]
    );
    assert_eq!(
        seen[2].body,
        json!({"set": {"pool": "cpu"}, "unset": ["old"]})
    );
    assert_eq!(seen[3].body, json!({"visibility": "public"}));
    assert_eq!(
        seen[4].body,
        json!({"timeout_seconds": 60, "delete_emptydir_data": true})
    );
    assert_eq!(seen[5].body, json!({"force": true}));
    assert_eq!(
        seen[6].body,
        json!({"force": false, "wipe_user_disks": true})
    );
    assert_eq!(
        seen[7].body,
        json!({"selector": "pool=gpu", "labels": {"set": {"tier": "a"}, "unset": []},
            "drain": {"timeout_seconds": null, "delete_emptydir_data": false}})
    );
    assert_eq!(
        seen[9].body,
        json!({"name": "rack", "expires_in_hours": 48})
    );
}
