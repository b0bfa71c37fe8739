use std::collections::BTreeMap;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use satusky_core::bus::Notice;
use satusky_types::ErrorBody;
use satusky_types::apps::{
    App, AppEvent, CreateAppRequest, DeleteAppQuery, DeployRequest, Deployed, EventsQuery,
    KeyValueChange, Release, RollbackRequest, ScaleRequest, SecretEntry, Volume,
};
use satusky_types::page::{Page, PageQuery};

use super::{ApiResult, page};
use crate::error::ApiError;
use crate::extract::{Auth, Json, Path, Query};
use crate::router::AppState;

type AppPath = Path<(String, String)>;

fn created(d: Deployed) -> (StatusCode, axum::Json<Deployed>) {
    let status = if d.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, axum::Json(d))
}

/// Apps of an organization.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), PageQuery),
    responses((status = 200, body = Page<App>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<App>>> {
    Ok(axum::Json(
        s.services.list_apps(&ctx, &org, &page(&q)?).await?,
    ))
}

/// Create an app (no release yet).
#[utoipa::path(post, path = "/v1/orgs/{org}/apps", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")), request_body = CreateAppRequest,
    responses((status = 201, body = App), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Json(body): Json<CreateAppRequest>,
) -> ApiResult<(StatusCode, axum::Json<App>)> {
    let app = s
        .services
        .create_app(&ctx, &org, &body.name, body.environment.as_deref())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(app)))
}

/// One app with its observed status (per-replica detail included).
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = App), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
) -> ApiResult<axum::Json<App>> {
    Ok(axum::Json(s.services.get_app(&ctx, &org, &app).await?))
}

/// Delete an app and every object it owns; volumes only with `delete_volumes=true`.
#[utoipa::path(delete, path = "/v1/orgs/{org}/apps/{app}", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), DeleteAppQuery),
    responses((status = 202, body = App), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    Query(q): Query<DeleteAppQuery>,
) -> ApiResult<(StatusCode, axum::Json<App>)> {
    let app = s
        .services
        .delete_app(&ctx, &org, &app, q.delete_volumes)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(app)))
}

/// Deploy an image: a new release. `Idempotency-Key` makes retries safe.
///
/// Settings left out keep their current value; `health`, `autoscaling`,
/// `vertical_autoscaling`, `machine_selector`, `disruption_budget` and `zone`
/// sent as `null` are removed.
#[utoipa::path(post, path = "/v1/orgs/{org}/apps/{app}/deploy", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "retry-safe key for this deploy")),
    request_body = DeployRequest,
    responses((status = 201, body = Deployed), (status = 200, description = "replayed", body = Deployed),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn deploy(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    headers: HeaderMap,
    Json(body): Json<DeployRequest>,
) -> ApiResult<(StatusCode, axum::Json<Deployed>)> {
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::new(
                satusky_types::ErrorCode::ValidationFailed,
                "Idempotency-Key must be ASCII",
            )
        })?),
        None => None,
    };
    Ok(created(
        s.services.deploy(&ctx, &org, &app, &body, key).await?,
    ))
}

/// Releases, newest first.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/releases", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), PageQuery),
    responses((status = 200, body = Page<Release>), (status = 404, body = ErrorBody)))]
pub async fn releases(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<Release>>> {
    Ok(axum::Json(
        s.services
            .list_releases(&ctx, &org, &app, &page(&q)?)
            .await?,
    ))
}

/// One release.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/releases/{number}", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), ("number" = u64, Path)),
    responses((status = 200, body = Release), (status = 404, body = ErrorBody)))]
pub async fn release(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app, number)): Path<(String, String, u64)>,
) -> ApiResult<axum::Json<Release>> {
    Ok(axum::Json(
        s.services.get_release(&ctx, &org, &app, number).await?,
    ))
}

/// Roll back: copy an earlier release into a new one.
#[utoipa::path(post, path = "/v1/orgs/{org}/apps/{app}/rollback", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path)), request_body = RollbackRequest,
    responses((status = 201, body = Deployed), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rollback(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    Json(body): Json<RollbackRequest>,
) -> ApiResult<(StatusCode, axum::Json<Deployed>)> {
    Ok(created(
        s.services.rollback(&ctx, &org, &app, body.to).await?,
    ))
}

/// Restart every replica (a rolling restart, no new release).
#[utoipa::path(post, path = "/v1/orgs/{org}/apps/{app}/restart", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path)),
    responses((status = 202, body = App), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn restart(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
) -> ApiResult<(StatusCode, axum::Json<App>)> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(s.services.restart(&ctx, &org, &app).await?),
    ))
}

/// Set the number of replicas: a new release.
#[utoipa::path(post, path = "/v1/orgs/{org}/apps/{app}/scale", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path)), request_body = ScaleRequest,
    responses((status = 201, body = Deployed), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn scale(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    Json(body): Json<ScaleRequest>,
) -> ApiResult<(StatusCode, axum::Json<Deployed>)> {
    Ok(created(
        s.services.scale(&ctx, &org, &app, body.replicas).await?,
    ))
}

/// The plain environment of the current release.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/env", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = BTreeMap<String, String>), (status = 404, body = ErrorBody)))]
pub async fn env(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
) -> ApiResult<axum::Json<BTreeMap<String, String>>> {
    Ok(axum::Json(s.services.app_env(&ctx, &org, &app).await?))
}

/// Set and unset environment variables: a new release.
#[utoipa::path(patch, path = "/v1/orgs/{org}/apps/{app}/env", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path)), request_body = KeyValueChange,
    responses((status = 201, body = Deployed), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn change_env(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    Json(body): Json<KeyValueChange>,
) -> ApiResult<(StatusCode, axum::Json<Deployed>)> {
    Ok(created(
        s.services.change_env(&ctx, &org, &app, &body).await?,
    ))
}

/// Secret keys, values masked.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/secrets", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = Page<SecretEntry>), (status = 404, body = ErrorBody)))]
pub async fn secrets(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
) -> ApiResult<axum::Json<Page<SecretEntry>>> {
    let items = s.services.list_secrets(&ctx, &org, &app).await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Set and unset secrets (sealed at rest): a new release.
#[utoipa::path(patch, path = "/v1/orgs/{org}/apps/{app}/secrets", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path)), request_body = KeyValueChange,
    responses((status = 201, body = Deployed), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn change_secrets(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    Json(body): Json<KeyValueChange>,
) -> ApiResult<(StatusCode, axum::Json<Deployed>)> {
    Ok(created(
        s.services.change_secrets(&ctx, &org, &app, &body).await?,
    ))
}

/// One secret in plain text (admins; audited).
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/secrets/{key}", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), ("key" = String, Path)),
    responses((status = 200, body = SecretEntry), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reveal_secret(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app, key)): Path<(String, String, String)>,
) -> ApiResult<axum::Json<SecretEntry>> {
    Ok(axum::Json(
        s.services.reveal_secret(&ctx, &org, &app, &key).await?,
    ))
}

/// Volumes of the current release.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/volumes", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = Page<Volume>), (status = 404, body = ErrorBody)))]
pub async fn volumes(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
) -> ApiResult<axum::Json<Page<Volume>>> {
    let items = s.services.app_volumes(&ctx, &org, &app).await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// The app's events with `seq > from`, oldest first; `next_cursor` is the
/// last `seq`, to pass back as `from`.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/events", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), EventsQuery),
    responses((status = 200, body = Page<AppEvent>), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    Query(q): Query<EventsQuery>,
) -> ApiResult<axum::Json<Page<AppEvent>>> {
    let limit = q.limit.unwrap_or(100);
    let (_, items) = s
        .services
        .app_events(&ctx, &org, &app, q.from.unwrap_or(0), limit)
        .await?;
    let next_cursor = (items.len() as u64 == u64::from(limit.clamp(1, 1000)))
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(axum::Json(Page { items, next_cursor }))
}

/// The app's events as a WebSocket stream: first every event with
/// `seq > from` (so the start is never lost), then each new one as it
/// happens. Each message is one `AppEvent` as JSON text.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/events/ws", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), EventsQuery),
    responses((status = 101, description = "Switching Protocols: a WebSocket follows; each text message is one `AppEvent` as JSON"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn events_ws(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    Query(q): Query<EventsQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    // Authorize and resolve before upgrading, so refusals are ordinary HTTP errors.
    let from = q.from.unwrap_or(0);
    let (app_id, first) = s.services.app_events(&ctx, &org, &app, from, 1000).await?;
    let services = s.services.clone();
    let notices = services.bus().subscribe();
    let id = app_id.clone();
    let mine = move |n: &Notice, last: &u64| matches!(n, Notice::AppEvent { app_id, seq } if *app_id == id && *seq > *last);
    let read = move |last: u64| {
        let (services, app_id) = (services.clone(), app_id.clone());
        async move { services.app_events_by_id(&app_id, last, 1000).await }
    };
    Ok(ws.on_upgrade(move |socket| {
        super::ws::replay_and_follow(
            socket,
            super::ws::Follow {
                first,
                cursor: from,
                advance: |e: &AppEvent, last| last.max(e.seq),
                notices: Some((notices, mine)),
                read,
                poll: std::time::Duration::from_secs(2),
            },
            "app events",
        )
    }))
}

fn log_options(q: satusky_types::apps::LogsQuery) -> satusky_core::apps::LogOptions {
    satusky_core::apps::LogOptions {
        tail: q.tail,
        since_seconds: q.since_seconds,
        pod: q.pod,
    }
}

/// The last lines of the app's replicas (the pod log subresource).
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/logs", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), satusky_types::apps::LogsQuery),
    responses((status = 200, body = Page<satusky_types::apps::LogLine>), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn logs(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    Query(q): Query<satusky_types::apps::LogsQuery>,
) -> ApiResult<axum::Json<Page<satusky_types::apps::LogLine>>> {
    let items = s
        .services
        .app_logs(&ctx, &org, &app, &log_options(q))
        .await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// The app's log lines as a WebSocket stream, one JSON `LogLine` per text
/// message, as they are written.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/logs/ws", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), satusky_types::apps::LogsQuery),
    responses((status = 101, description = "Switching Protocols: a WebSocket follows; each text message is one `LogLine` as JSON"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn logs_ws(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
    Query(q): Query<satusky_types::apps::LogsQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let lines = s
        .services
        .follow_app_logs(&ctx, &org, &app, &log_options(q))
        .await?;
    Ok(ws.on_upgrade(move |socket| super::ws::forward(socket, lines)))
}

/// One volume: spec and claim (phase, capacity), attached or detached.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/volumes/{volume}", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), ("volume" = String, Path)),
    responses((status = 200, body = satusky_types::apps::VolumeInfo), (status = 404, body = ErrorBody)))]
pub async fn volume(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app, volume)): Path<(String, String, String)>,
) -> ApiResult<axum::Json<satusky_types::apps::VolumeInfo>> {
    Ok(axum::Json(
        s.services.volume_info(&ctx, &org, &app, &volume).await?,
    ))
}

/// Every volume claim of the app, detached ones included.
#[utoipa::path(get, path = "/v1/orgs/{org}/apps/{app}/volume-claims", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = Page<satusky_types::apps::VolumeInfo>), (status = 404, body = ErrorBody)))]
pub async fn volume_claims(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app)): AppPath,
) -> ApiResult<axum::Json<Page<satusky_types::apps::VolumeInfo>>> {
    let items = s.services.volume_infos(&ctx, &org, &app).await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Stop mounting a volume (a new release); its data stays until deleted.
#[utoipa::path(post, path = "/v1/orgs/{org}/apps/{app}/volumes/{volume}/detach", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), ("volume" = String, Path)),
    responses((status = 201, body = Deployed), (status = 404, body = ErrorBody)))]
pub async fn detach_volume(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app, volume)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, axum::Json<Deployed>)> {
    Ok(created(
        s.services.detach_volume(&ctx, &org, &app, &volume).await?,
    ))
}

/// Delete a detached volume and its data (refused while mounted).
#[utoipa::path(delete, path = "/v1/orgs/{org}/apps/{app}/volumes/{volume}", tag = "apps", security(("bearer" = [])),
    params(("org" = String, Path), ("app" = String, Path), ("volume" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_volume(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, app, volume)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    s.services.delete_volume(&ctx, &org, &app, &volume).await?;
    Ok(StatusCode::NO_CONTENT)
}
