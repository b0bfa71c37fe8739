//! Typed HTTP client for the Satusky API.
//!
//! One [`Client`] holds the base URL, the optional bearer token and a
//! [`reqwest::Client`] with a 30 s timeout. Every route has one typed async
//! method, grouped by area in the modules below (`auth`, `tokens`, `orgs`,
//! `audit`, `apps`, `logs`, `machines`, `clusters`, `health`); each takes and returns the wire types of
//! [`satusky_types`], which are the contract with the server. Every failure is
//! a [`ClientError`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), satusky_client::ClientError> {
//! use satusky_client::{Client, collect_pages};
//! use satusky_types::page::PageQuery;
//!
//! let client = Client::new("http://127.0.0.1:8080", Some("sk_pat_…".to_owned()))?;
//! let me = client.me().await?;
//! let orgs = collect_pages(|cursor| {
//!     let query = PageQuery { limit: Some(100), cursor };
//!     let client = &client;
//!     async move { client.list_orgs(&query).await }
//! })
//! .await?;
//! # let _ = (me, orgs);
//! # Ok(())
//! # }
//! ```

mod apps;
mod audit;
mod auth;
mod clusters;
mod error;
mod health;
mod logs;
mod machines;
mod orgs;
mod tokens;
mod ws;

use std::future::Future;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, header};
use satusky_types::{ErrorBody, Page};
use serde::de::DeserializeOwned;
use url::{Host, Url};

pub use apps::{DEPLOY_ATTEMPTS, EventStream, IDEMPOTENCY_KEY_HEADER};
pub use error::ClientError;
pub use logs::LogStream;
pub use machines::{BulkAction, MachineEventStream, MachineLogStream, MachineMetricsStream};
pub use ws::JsonStream;

/// Every route this client calls, as `(method, path template)`. Tests hold
/// it against the methods (each is called, each call is listed) and against
/// the server's OpenAPI document, so client and server cannot drift apart.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/auth/signup"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/revoke-all"),
    ("GET", "/v1/me"),
    ("PATCH", "/v1/me"),
    ("POST", "/v1/me/password"),
    ("GET", "/v1/tokens"),
    ("POST", "/v1/tokens"),
    ("GET", "/v1/tokens/{token}"),
    ("PATCH", "/v1/tokens/{token}"),
    ("DELETE", "/v1/tokens/{token}"),
    ("GET", "/v1/orgs"),
    ("POST", "/v1/orgs"),
    ("GET", "/v1/orgs/{org}"),
    ("PATCH", "/v1/orgs/{org}"),
    ("DELETE", "/v1/orgs/{org}"),
    ("GET", "/v1/orgs/{org}/members"),
    ("POST", "/v1/orgs/{org}/members"),
    ("PATCH", "/v1/orgs/{org}/members/{user}"),
    ("DELETE", "/v1/orgs/{org}/members/{user}"),
    ("GET", "/v1/orgs/{org}/audit"),
    ("GET", "/v1/orgs/{org}/audit/{id}"),
    ("GET", "/v1/orgs/{org}/apps"),
    ("POST", "/v1/orgs/{org}/apps"),
    ("GET", "/v1/orgs/{org}/apps/{app}"),
    ("DELETE", "/v1/orgs/{org}/apps/{app}"),
    ("POST", "/v1/orgs/{org}/apps/{app}/deploy"),
    ("GET", "/v1/orgs/{org}/apps/{app}/releases"),
    ("GET", "/v1/orgs/{org}/apps/{app}/releases/{number}"),
    ("POST", "/v1/orgs/{org}/apps/{app}/rollback"),
    ("POST", "/v1/orgs/{org}/apps/{app}/restart"),
    ("POST", "/v1/orgs/{org}/apps/{app}/scale"),
    ("GET", "/v1/orgs/{org}/apps/{app}/env"),
    ("PATCH", "/v1/orgs/{org}/apps/{app}/env"),
    ("GET", "/v1/orgs/{org}/apps/{app}/secrets"),
    ("PATCH", "/v1/orgs/{org}/apps/{app}/secrets"),
    ("GET", "/v1/orgs/{org}/apps/{app}/secrets/{key}"),
    ("GET", "/v1/orgs/{org}/apps/{app}/volumes"),
    ("GET", "/v1/orgs/{org}/apps/{app}/volumes/{volume}"),
    ("DELETE", "/v1/orgs/{org}/apps/{app}/volumes/{volume}"),
    ("POST", "/v1/orgs/{org}/apps/{app}/volumes/{volume}/detach"),
    ("GET", "/v1/orgs/{org}/apps/{app}/volume-claims"),
    ("GET", "/v1/orgs/{org}/apps/{app}/events"),
    // A WebSocket upgrade (`Client::events_stream`).
    ("GET", "/v1/orgs/{org}/apps/{app}/events/ws"),
    ("GET", "/v1/orgs/{org}/apps/{app}/logs"),
    // A WebSocket upgrade (`Client::app_logs_stream`).
    ("GET", "/v1/orgs/{org}/apps/{app}/logs/ws"),
    ("GET", "/v1/orgs/{org}/join-tokens"),
    ("POST", "/v1/orgs/{org}/join-tokens"),
    ("POST", "/v1/orgs/{org}/join-tokens/{token}/revoke"),
    ("GET", "/v1/orgs/{org}/machines"),
    ("GET", "/v1/orgs/{org}/placement"),
    ("GET", "/v1/orgs/{org}/machine-usage"),
    ("POST", "/v1/orgs/{org}/machines/bulk/{action}"),
    ("GET", "/v1/orgs/{org}/machines/{machine}"),
    ("POST", "/v1/orgs/{org}/machines/{machine}/claim"),
    ("POST", "/v1/orgs/{org}/machines/{machine}/release"),
    ("PATCH", "/v1/orgs/{org}/machines/{machine}/labels"),
    ("PUT", "/v1/orgs/{org}/machines/{machine}/visibility"),
    ("GET", "/v1/orgs/{org}/machines/{machine}/events"),
    // A WebSocket upgrade (`Client::machine_events_stream`).
    ("GET", "/v1/orgs/{org}/machines/{machine}/events/ws"),
    ("GET", "/v1/orgs/{org}/machines/{machine}/metrics"),
    ("GET", "/v1/orgs/{org}/machines/{machine}/metrics/history"),
    // A WebSocket upgrade (`Client::machine_metrics_stream`).
    ("GET", "/v1/orgs/{org}/machines/{machine}/metrics/ws"),
    ("GET", "/v1/orgs/{org}/machines/{machine}/health"),
    ("GET", "/v1/orgs/{org}/machines/{machine}/logs"),
    // A WebSocket upgrade (`Client::machine_logs_stream`).
    ("GET", "/v1/orgs/{org}/machines/{machine}/logs/ws"),
    ("POST", "/v1/orgs/{org}/machines/{machine}/cordon"),
    ("POST", "/v1/orgs/{org}/machines/{machine}/uncordon"),
    ("POST", "/v1/orgs/{org}/machines/{machine}/drain"),
    ("POST", "/v1/orgs/{org}/machines/{machine}/reboot"),
    ("POST", "/v1/orgs/{org}/machines/{machine}/shutdown"),
    ("POST", "/v1/orgs/{org}/machines/{machine}/decommission"),
    ("POST", "/v1/orgs/{org}/machines/{machine}/cancel"),
    ("GET", "/v1/clusters"),
    ("POST", "/v1/clusters"),
    ("DELETE", "/v1/clusters/{name}"),
    ("GET", "/v1/zones"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/openapi.json"),
];

/// Every request gives up after this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Header carrying the request id, echoed by the server.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The largest page the server hands out; used by the `*_all` helpers.
pub const ALL_PAGES_LIMIT: u32 = satusky_types::page::MAX_LIMIT;

/// A client of one Satusky API server, optionally authenticated.
///
/// Cloning is cheap: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    request_id: Option<String>,
    timeout: Duration,
}

impl Client {
    /// A client of the API at `base_url`, sending `token` as
    /// `Authorization: Bearer` when present.
    ///
    /// `base_url` must be `https://`, except for loopback hosts
    /// (`localhost`, `127.0.0.0/8`, `[::1]`) which may use `http://`.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self, ClientError> {
        Self::with_timeout(base_url, token, DEFAULT_TIMEOUT)
    }

    /// Like [`Client::new`], with another request timeout.
    pub fn with_timeout(
        base_url: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let base = parse_base_url(base_url)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("satusky-client/", env!("CARGO_PKG_VERSION")))
            // The API never redirects; following one could send the token
            // somewhere else, or downgrade to plain http.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| ClientError::Setup { source })?;
        Ok(Self {
            http,
            base,
            token: token.filter(|t| !t.is_empty()),
            request_id: None,
            timeout,
        })
    }

    /// Send this `x-request-id` with every request, so the server's logs and
    /// audit entries can be correlated with the caller's.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// The same server with another token (or none).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// The validated base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The bearer token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The URL of a route: the base URL followed by `segments`, each
    /// percent-encoded as one path segment (an email or a `/` in an id can
    /// never change the route).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str]) -> (RequestBuilder, Url) {
        let url = self.url(segments);
        let mut req = self
            .http
            .request(method, url.clone())
            .header(header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(id) = &self.request_id {
            req = req.header(REQUEST_ID_HEADER, id);
        }
        (req, url)
    }

    /// Sends a request and decodes a JSON answer.
    async fn send_json<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        url: Url,
    ) -> Result<T, ClientError> {
        let resp = self.execute(req, &url).await?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.to_string(),
                source,
            })?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
            url: url.to_string(),
            status,
            source,
        })
    }

    /// Sends a request whose answer has no body worth decoding.
    async fn send_empty(&self, req: RequestBuilder, url: Url) -> Result<(), ClientError> {
        self.execute(req, &url).await.map(drop)
    }

    /// Sends a request; a non-2xx answer becomes [`ClientError::Api`] (or
    /// [`ClientError::UnexpectedStatus`] when it carries no Satusky error body).
    async fn execute(&self, req: RequestBuilder, url: &Url) -> Result<Response, ClientError> {
        let resp = req.send().await.map_err(|source| ClientError::Transport {
            url: url.to_string(),
            source,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let request_id = resp
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.unwrap_or_default();
        Err(error::from_status(status.as_u16(), request_id, &bytes))
    }

    fn get(&self, segments: &[&str]) -> (RequestBuilder, Url) {
        self.request(Method::GET, segments)
    }

    fn post(&self, segments: &[&str]) -> (RequestBuilder, Url) {
        self.request(Method::POST, segments)
    }

    fn patch(&self, segments: &[&str]) -> (RequestBuilder, Url) {
        self.request(Method::PATCH, segments)
    }

    fn put(&self, segments: &[&str]) -> (RequestBuilder, Url) {
        self.request(Method::PUT, segments)
    }

    fn delete(&self, segments: &[&str]) -> (RequestBuilder, Url) {
        self.request(Method::DELETE, segments)
    }
}

/// Parses and checks an API base URL: `https://`, or `http://` to a loopback
/// host only, with no credentials, query or fragment.
pub fn parse_base_url(raw: &str) -> Result<Url, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidBaseUrl {
        url: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(invalid(
                "plain http is only allowed to localhost or a loopback address; use https://",
            ));
        }
        other => {
            return Err(invalid(&format!(
                "unsupported scheme `{other}`; use https://"
            )));
        }
    }
    if url.host().is_none() {
        return Err(invalid("the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("credentials do not belong in the URL; use a token"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the URL must not have a query or fragment"));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Follows `next_cursor` from the first page to the last and returns every
/// item. `fetch` gets the cursor of the page to load (`None` for the first).
///
/// Stops with [`ClientError::PaginationLoop`] if the server hands back a
/// cursor it already gave, rather than looping forever.
pub async fn collect_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, ClientError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, ClientError>>,
{
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    loop {
        let page = fetch(cursor.take()).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(next) if !next.is_empty() => {
                if !seen.insert(next.clone()) {
                    return Err(ClientError::PaginationLoop { cursor: next });
                }
                cursor = Some(next);
            }
            _ => return Ok(items),
        }
    }
}

/// Decodes an error body as the server sends it, if it is one.
pub fn decode_error_body(bytes: &[u8]) -> Option<ErrorBody> {
    serde_json::from_slice(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_urls_are_accepted() {
        assert!(parse_base_url("https://api.example.com").is_ok());
        assert!(parse_base_url("https://api.example.com/prefix/").is_ok());
    }

    #[test]
    fn plain_http_is_accepted_only_for_loopback() {
        for ok in [
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:8080",
            "http://api.localhost",
        ] {
            assert!(parse_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com",
            "http://10.0.0.1",
            "http://localhost.example.com",
            "ftp://localhost",
            "localhost:8080",
            "https://user:pw@example.com",
            "https://example.com/?a=b",
        ] {
            let err = parse_base_url(bad).expect_err(bad);
            assert!(matches!(err, ClientError::InvalidBaseUrl { .. }), "{bad}");
        }
    }

    #[test]
    fn segments_are_encoded_one_by_one() {
        let c = Client::new("https://api.example.com/base/", None).unwrap();
        let url = c.url(&["v1", "orgs", "a/b", "members", "x+y@example.com"]);
        assert_eq!(
            url.as_str(),
            "https://api.example.com/base/v1/orgs/a%2Fb/members/x+y@example.com"
        );
        let c = Client::new("https://api.example.com", None).unwrap();
        assert_eq!(
            c.url(&["v1", "me"]).as_str(),
            "https://api.example.com/v1/me"
        );
    }

    #[tokio::test]
    async fn collect_pages_follows_cursors_and_stops_on_a_loop() {
        let pages = collect_pages(|cursor| async move {
            Ok(match cursor.as_deref() {
                None => Page {
                    items: vec![1, 2],
                    next_cursor: Some("a".into()),
                },
                Some("a") => Page {
                    items: vec![3],
                    next_cursor: Some("b".into()),
                },
                _ => Page {
                    items: vec![4],
                    next_cursor: None,
                },
            })
        })
        .await
        .unwrap();
        assert_eq!(pages, vec![1, 2, 3, 4]);

        let err = collect_pages(|_| async move {
            Ok(Page {
                items: vec![0],
                next_cursor: Some("same".to_owned()),
            })
        })
        .await
        .unwrap_err();
        assert!(matches!(err, ClientError::PaginationLoop { .. }));
    }
}
