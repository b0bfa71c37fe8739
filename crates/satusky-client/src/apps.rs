//! `/v1/orgs/{org}/apps`: apps, their releases, configuration, secrets,
//! volumes and events (a page, or a WebSocket that replays then follows).

use std::collections::BTreeMap;
use std::time::Duration;

use satusky_types::Page;
use satusky_types::apps::{
    App, AppEvent, CreateAppRequest, DeleteAppQuery, DeployRequest, Deployed, EventsQuery,
    KeyValueChange, Release, RollbackRequest, ScaleRequest, SecretEntry, Volume,
};
use satusky_types::page::PageQuery;

use crate::ws::JsonStream;
use crate::{ALL_PAGES_LIMIT, Client, ClientError, collect_pages};

/// Header making a deploy safe to retry.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// How many times a deploy with an idempotency key is sent at most when the
/// server cannot be reached, times out or answers 502/503/504.
pub const DEPLOY_ATTEMPTS: u32 = 3;

impl Client {
    /// `GET /v1/orgs/{org}/apps`: one page of apps.
    pub async fn list_apps(&self, org: &str, query: &PageQuery) -> Result<Page<App>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps"]);
        self.send_json(req.query(query), url).await
    }

    /// Every app of an organization, following cursors.
    pub async fn list_all_apps(&self, org: &str) -> Result<Vec<App>, ClientError> {
        collect_pages(|cursor| {
            let query = PageQuery {
                limit: Some(ALL_PAGES_LIMIT),
                cursor,
            };
            async move { self.list_apps(org, &query).await }
        })
        .await
    }

    /// `POST /v1/orgs/{org}/apps`: an app without a release.
    pub async fn create_app(&self, org: &str, body: &CreateAppRequest) -> Result<App, ClientError> {
        let (req, url) = self.post(&["v1", "orgs", org, "apps"]);
        self.send_json(req.json(body), url).await
    }

    /// `GET /v1/orgs/{org}/apps/{app}`: the app and its observed status.
    pub async fn get_app(&self, org: &str, app: &str) -> Result<App, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app]);
        self.send_json(req, url).await
    }

    /// `DELETE /v1/orgs/{org}/apps/{app}[?delete_volumes=true]`: starts the
    /// deletion (202) and returns the app as it is being deleted.
    pub async fn delete_app(
        &self,
        org: &str,
        app: &str,
        delete_volumes: bool,
    ) -> Result<App, ClientError> {
        let (req, url) = self.delete(&["v1", "orgs", org, "apps", app]);
        let req = if delete_volumes {
            req.query(&DeleteAppQuery {
                delete_volumes: true,
            })
        } else {
            req
        };
        self.send_json(req, url).await
    }

    /// `POST /v1/orgs/{org}/apps/{app}/deploy`: a new release.
    ///
    /// With an `idempotency_key` the request is retried (up to
    /// [`DEPLOY_ATTEMPTS`] times, with the same key) when the server cannot
    /// be reached, times out or answers 502, 503 or 504: the server answers a
    /// repeated key with the release it already made (`replayed`). Without a
    /// key it is sent once.
    pub async fn deploy(
        &self,
        org: &str,
        app: &str,
        body: &DeployRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Deployed, ClientError> {
        let attempts = if idempotency_key.is_some() {
            DEPLOY_ATTEMPTS
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            let (mut req, url) = self.post(&["v1", "orgs", org, "apps", app, "deploy"]);
            if let Some(key) = idempotency_key {
                req = req.header(IDEMPOTENCY_KEY_HEADER, key);
            }
            match self.send_json(req.json(body), url).await {
                Err(e) if attempt < attempts && retryable(&e) => {
                    tokio::time::sleep(Duration::from_millis(500) * attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `GET /v1/orgs/{org}/apps/{app}/releases`: one page, newest first.
    pub async fn list_releases(
        &self,
        org: &str,
        app: &str,
        query: &PageQuery,
    ) -> Result<Page<Release>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app, "releases"]);
        self.send_json(req.query(query), url).await
    }

    /// Every release of an app, newest first, following cursors.
    pub async fn list_all_releases(
        &self,
        org: &str,
        app: &str,
    ) -> Result<Vec<Release>, ClientError> {
        collect_pages(|cursor| {
            let query = PageQuery {
                limit: Some(ALL_PAGES_LIMIT),
                cursor,
            };
            async move { self.list_releases(org, app, &query).await }
        })
        .await
    }

    /// `GET /v1/orgs/{org}/apps/{app}/releases/{number}`.
    pub async fn get_release(
        &self,
        org: &str,
        app: &str,
        number: u64,
    ) -> Result<Release, ClientError> {
        let n = number.to_string();
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app, "releases", &n]);
        self.send_json(req, url).await
    }

    /// `POST /v1/orgs/{org}/apps/{app}/rollback`: a new release copying
    /// release `to` (default: the one before the current).
    pub async fn rollback(
        &self,
        org: &str,
        app: &str,
        to: Option<u64>,
    ) -> Result<Deployed, ClientError> {
        let (req, url) = self.post(&["v1", "orgs", org, "apps", app, "rollback"]);
        self.send_json(req.json(&RollbackRequest { to }), url).await
    }

    /// `POST /v1/orgs/{org}/apps/{app}/restart`: a rolling restart, no new release.
    pub async fn restart(&self, org: &str, app: &str) -> Result<App, ClientError> {
        let (req, url) = self.post(&["v1", "orgs", org, "apps", app, "restart"]);
        self.send_json(req, url).await
    }

    /// `POST /v1/orgs/{org}/apps/{app}/scale`: a new release with `replicas`.
    pub async fn scale(
        &self,
        org: &str,
        app: &str,
        replicas: u32,
    ) -> Result<Deployed, ClientError> {
        let (req, url) = self.post(&["v1", "orgs", org, "apps", app, "scale"]);
        self.send_json(req.json(&ScaleRequest { replicas }), url)
            .await
    }

    /// `GET /v1/orgs/{org}/apps/{app}/env`: the plain environment of the
    /// current release.
    pub async fn get_env(
        &self,
        org: &str,
        app: &str,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app, "env"]);
        self.send_json(req, url).await
    }

    /// `PATCH /v1/orgs/{org}/apps/{app}/env`: set and unset variables in one
    /// new release.
    pub async fn change_env(
        &self,
        org: &str,
        app: &str,
        change: &KeyValueChange,
    ) -> Result<Deployed, ClientError> {
        let (req, url) = self.patch(&["v1", "orgs", org, "apps", app, "env"]);
        self.send_json(req.json(change), url).await
    }

    /// `GET /v1/orgs/{org}/apps/{app}/secrets`: the keys, values masked.
    pub async fn list_secrets(
        &self,
        org: &str,
        app: &str,
    ) -> Result<Page<SecretEntry>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app, "secrets"]);
        self.send_json(req, url).await
    }

    /// `PATCH /v1/orgs/{org}/apps/{app}/secrets`: set and unset secrets in
    /// one new release.
    pub async fn change_secrets(
        &self,
        org: &str,
        app: &str,
        change: &KeyValueChange,
    ) -> Result<Deployed, ClientError> {
        let (req, url) = self.patch(&["v1", "orgs", org, "apps", app, "secrets"]);
        self.send_json(req.json(change), url).await
    }

    /// `GET /v1/orgs/{org}/apps/{app}/secrets/{key}`: one secret in plain
    /// text (admins; audited by the server).
    pub async fn reveal_secret(
        &self,
        org: &str,
        app: &str,
        key: &str,
    ) -> Result<SecretEntry, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app, "secrets", key]);
        self.send_json(req, url).await
    }

    /// `GET /v1/orgs/{org}/apps/{app}/volumes`: the volumes of the current release.
    pub async fn list_volumes(&self, org: &str, app: &str) -> Result<Page<Volume>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app, "volumes"]);
        self.send_json(req, url).await
    }

    /// `GET /v1/orgs/{org}/apps/{app}/volumes/{volume}`: one volume with its claim.
    pub async fn get_volume(
        &self,
        org: &str,
        app: &str,
        volume: &str,
    ) -> Result<satusky_types::apps::VolumeInfo, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app, "volumes", volume]);
        self.send_json(req, url).await
    }

    /// `GET /v1/orgs/{org}/apps/{app}/volume-claims`: every claim, detached ones included.
    pub async fn list_volume_claims(
        &self,
        org: &str,
        app: &str,
    ) -> Result<Page<satusky_types::apps::VolumeInfo>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app, "volume-claims"]);
        self.send_json(req, url).await
    }

    /// `POST /v1/orgs/{org}/apps/{app}/volumes/{volume}/detach`: a release without it; data kept.
    pub async fn detach_volume(
        &self,
        org: &str,
        app: &str,
        volume: &str,
    ) -> Result<Deployed, ClientError> {
        let (req, url) = self.post(&["v1", "orgs", org, "apps", app, "volumes", volume, "detach"]);
        self.send_json(req, url).await
    }

    /// `DELETE /v1/orgs/{org}/apps/{app}/volumes/{volume}`: deletes a detached volume and its data.
    pub async fn delete_volume(
        &self,
        org: &str,
        app: &str,
        volume: &str,
    ) -> Result<(), ClientError> {
        let (req, url) = self.delete(&["v1", "orgs", org, "apps", app, "volumes", volume]);
        self.send_empty(req, url).await
    }

    /// `GET /v1/orgs/{org}/apps/{app}/events?from=&limit=`: events with
    /// `seq > from`, oldest first; `next_cursor` is the last `seq`.
    pub async fn list_events(
        &self,
        org: &str,
        app: &str,
        query: &EventsQuery,
    ) -> Result<Page<AppEvent>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app, "events"]);
        self.send_json(req.query(query), url).await
    }

    /// Every event with `seq > from`, following `next_cursor`.
    pub async fn list_all_events(
        &self,
        org: &str,
        app: &str,
        from: u64,
    ) -> Result<Vec<AppEvent>, ClientError> {
        let mut events: Vec<AppEvent> = Vec::new();
        let mut from = from;
        loop {
            let query = EventsQuery {
                from: Some(from),
                limit: Some(ALL_PAGES_LIMIT),
            };
            let page = self.list_events(org, app, &query).await?;
            events.extend(page.items);
            let Some(Ok(next)) = page.next_cursor.as_deref().map(str::parse::<u64>) else {
                return Ok(events);
            };
            if next <= from {
                return Err(ClientError::PaginationLoop {
                    cursor: next.to_string(),
                });
            }
            from = next;
        }
    }

    /// The `seq` of the app's latest event (0 when it has none, or when the
    /// app does not exist yet): what to pass as `from` to see only what
    /// happens next.
    pub async fn last_event_seq(&self, org: &str, app: &str) -> Result<u64, ClientError> {
        match self.list_all_events(org, app, 0).await {
            Ok(events) => Ok(events.last().map_or(0, |e| e.seq)),
            Err(e) if e.code() == Some(satusky_types::ErrorCode::AppNotFound) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/orgs/{org}/apps/{app}/events/ws?from=` as a WebSocket: every
    /// event with `seq > from`, then each new one as it happens. The bearer
    /// token is sent in the `Authorization` header of the upgrade request; a
    /// refusal before the upgrade is the usual [`ClientError::Api`].
    pub async fn events_stream(
        &self,
        org: &str,
        app: &str,
        from: u64,
    ) -> Result<EventStream, ClientError> {
        let mut url = self.url(&["v1", "orgs", org, "apps", app, "events", "ws"]);
        url.query_pairs_mut().append_pair("from", &from.to_string());
        self.connect_ws(url).await
    }
}

/// Whether a failed deploy may be sent again with the same idempotency key.
fn retryable(e: &ClientError) -> bool {
    e.is_connect() || e.is_timeout() || matches!(e.status(), Some(502..=504))
}

/// The events of one app as they arrive over a WebSocket.
pub type EventStream = JsonStream<AppEvent>;
