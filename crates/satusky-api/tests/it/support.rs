//! `TestApp`: a router over a fresh SQLite store per test, with a manual clock.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use satusky_api::{ApiConfig, AppState, router};
use satusky_core::clock::ManualClock;
use satusky_core::{Services, ServicesConfig};
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub router: axum::Router,
    pub services: Services,
    pub clock: ManualClock,
    _dir: tempfile::TempDir,
}

pub struct Res {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Res {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }

    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            self.status.is_success(),
            "expected success, got {} {}",
            self.status,
            self.body
        );
        self.body
    }

    #[track_caller]
    pub fn err(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "body: {}",
            self.body
        );
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(
            self.body["error"]["request_id"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(ServicesConfig::default(), ApiConfig::default()).await
    }

    /// Serves the router on a loopback port (for WebSockets); returns `host:port`.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router.clone();
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr.to_string()
    }

    /// Makes an existing account a platform administrator.
    pub async fn grant_admin(&self, email: &str) {
        self.services
            .grant_platform_admin(email, true)
            .await
            .unwrap();
    }

    pub async fn with_config(services_config: ServicesConfig, api: ApiConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = satusky_store::connect(&url).await.unwrap();
        let clock = ManualClock::new(chrono::Utc::now());
        let services_config = ServicesConfig {
            secret_box: Some(satusky_core::crypto::SecretBox::new(&[7u8; 32])),
            ..services_config
        };
        let services = Services::new(store, Arc::new(clock.clone()), services_config);
        let router = router(AppState {
            services: services.clone(),
            config: api,
        });
        Self {
            router,
            services,
            clock,
            _dir: dir,
        }
    }

    pub async fn raw(&self, req: Request<Body>) -> Res {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Res {
            status,
            body,
            headers,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Res {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.raw(req).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Res {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Res {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Res {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Res {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Signs up and logs in; returns a session token.
    pub async fn user(&self, email: &str) -> String {
        self.call(
            Method::POST,
            "/v1/auth/signup",
            None,
            Some(json!({"email": email, "password": PASSWORD})),
        )
        .await
        .ok();
        self.login(email).await
    }

    pub async fn login(&self, email: &str) -> String {
        let body = self
            .call(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await
            .ok();
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn org(&self, token: &str, slug: &str) -> Value {
        self.post("/v1/orgs", token, json!({"slug": slug}))
            .await
            .ok()
    }

    pub async fn add_member(&self, owner: &str, slug: &str, email: &str, role: &str) {
        self.post(
            &format!("/v1/orgs/{slug}/members"),
            owner,
            json!({"email": email, "role": role}),
        )
        .await
        .ok();
    }
}
