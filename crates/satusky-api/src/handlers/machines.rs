//! Machines and join tokens. Operations answer 202 with the machine; their
//! progress goes to the machine's events.

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::StatusCode;
use axum::response::Response;
use satusky_core::bus::Notice;
use satusky_core::services::BulkAction;
use satusky_types::ErrorBody;
use satusky_types::machines::{
    BulkRequest, BulkResult, CreateJoinTokenRequest, DecommissionRequest, DrainRequest, JoinToken,
    JoinTokenCreated, LabelsChange, Machine, MachineEvent, MachineEventsQuery, MachineHealth,
    MachineLogLine, MachineLogsQuery, MachineMetrics, MachineMetricsHistoryQuery, MachineQuery,
    PlacementPreview, PlacementQuery, PowerRequest, VisibilityRequest,
};
use satusky_types::page::{Page, PageQuery};
use tokio::sync::broadcast::Receiver;

use super::{ApiResult, page};
use crate::extract::{Auth, Json, Path, Query};
use crate::router::AppState;

type MachinePath = Path<(String, String)>;
type Accepted = (StatusCode, axum::Json<Machine>);

fn accepted(m: Machine) -> Accepted {
    (StatusCode::ACCEPTED, axum::Json(m))
}

// ---- join tokens

/// Join tokens of an organization (never their secrets).
#[utoipa::path(get, path = "/v1/orgs/{org}/join-tokens", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), PageQuery),
    responses((status = 200, body = Page<JoinToken>), (status = 404, body = ErrorBody)))]
pub async fn list_join_tokens(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<JoinToken>>> {
    Ok(axum::Json(
        s.services.list_join_tokens(&ctx, &org, &page(&q)?).await?,
    ))
}

/// Create a join token; the token and the kernel arguments to boot Talos
/// with are shown in this answer only.
#[utoipa::path(post, path = "/v1/orgs/{org}/join-tokens", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")), request_body = CreateJoinTokenRequest,
    responses((status = 201, body = JoinTokenCreated), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_join_token(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Json(body): Json<CreateJoinTokenRequest>,
) -> ApiResult<(StatusCode, axum::Json<JoinTokenCreated>)> {
    let created = s.services.create_join_token(&ctx, &org, &body).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Revoke a join token (by id or name); machines it admitted stay.
#[utoipa::path(post, path = "/v1/orgs/{org}/join-tokens/{token}/revoke", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("token" = String, Path, description = "token id or name")),
    responses((status = 200, body = JoinToken), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_join_token(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, token)): Path<(String, String)>,
) -> ApiResult<axum::Json<JoinToken>> {
    Ok(axum::Json(
        s.services.revoke_join_token(&ctx, &org, &token).await?,
    ))
}

// ---- the fleet

/// Machines: the organization's own, plus other organizations' public ones
/// (`operable: false`); `selector` filters by labels (user and system).
#[utoipa::path(get, path = "/v1/orgs/{org}/machines", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), MachineQuery),
    responses((status = 200, body = Page<Machine>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Query(q): Query<MachineQuery>,
) -> ApiResult<axum::Json<Page<Machine>>> {
    Ok(axum::Json(s.services.list_machines(&ctx, &org, &q).await?))
}

/// One machine, by name or id.
#[utoipa::path(get, path = "/v1/orgs/{org}/machines/{machine}", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path, description = "machine name or id")),
    responses((status = 200, body = Machine), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
) -> ApiResult<axum::Json<Machine>> {
    Ok(axum::Json(
        s.services.get_machine(&ctx, &org, &machine).await?,
    ))
}

/// Claim a discovered machine; the caller becomes its owner.
#[utoipa::path(post, path = "/v1/orgs/{org}/machines/{machine}/claim", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)),
    responses((status = 200, body = Machine), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn claim(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
) -> ApiResult<axum::Json<Machine>> {
    Ok(axum::Json(
        s.services.claim_machine(&ctx, &org, &machine).await?,
    ))
}

/// Release a claimed machine back to `discovered`.
#[utoipa::path(post, path = "/v1/orgs/{org}/machines/{machine}/release", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)),
    responses((status = 200, body = Machine), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn release(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
) -> ApiResult<axum::Json<Machine>> {
    Ok(axum::Json(
        s.services.release_machine(&ctx, &org, &machine).await?,
    ))
}

/// Set and remove user labels (keys without the `satusky.com/` prefix;
/// system labels are read-only). Pushed to the node at once.
#[utoipa::path(patch, path = "/v1/orgs/{org}/machines/{machine}/labels", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)), request_body = LabelsChange,
    responses((status = 200, body = Machine), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn labels(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Json(body): Json<LabelsChange>,
) -> ApiResult<axum::Json<Machine>> {
    Ok(axum::Json(
        s.services
            .change_machine_labels(&ctx, &org, &machine, &body)
            .await?,
    ))
}

/// Who may see the machine: `owner`, `organization` or `public`.
#[utoipa::path(put, path = "/v1/orgs/{org}/machines/{machine}/visibility", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)), request_body = VisibilityRequest,
    responses((status = 200, body = Machine), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn visibility(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Json(body): Json<VisibilityRequest>,
) -> ApiResult<axum::Json<Machine>> {
    Ok(axum::Json(
        s.services
            .set_machine_visibility(&ctx, &org, &machine, body.visibility)
            .await?,
    ))
}

/// The machine's events with `seq > from`, oldest first; `next_cursor` is
/// the last `seq`, to pass back as `from`.
#[utoipa::path(get, path = "/v1/orgs/{org}/machines/{machine}/events", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path), MachineEventsQuery),
    responses((status = 200, body = Page<MachineEvent>), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Query(q): Query<MachineEventsQuery>,
) -> ApiResult<axum::Json<Page<MachineEvent>>> {
    let limit = q.limit.unwrap_or(100);
    let (_, items) = s
        .services
        .machine_events(&ctx, &org, &machine, q.from.unwrap_or(0), limit)
        .await?;
    let next_cursor = (items.len() as u64 == u64::from(limit.clamp(1, 1000)))
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(axum::Json(Page { items, next_cursor }))
}

/// The machine's events as a WebSocket stream: first every event with
/// `seq > from`, then each new one as it happens (operation progress
/// included). Each message is one `MachineEvent` as JSON text.
#[utoipa::path(get, path = "/v1/orgs/{org}/machines/{machine}/events/ws", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path), MachineEventsQuery),
    responses((status = 101, description = "Switching Protocols: a WebSocket follows; each text message is one `MachineEvent` as JSON"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn events_ws(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Query(q): Query<MachineEventsQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    // Authorize and resolve before upgrading, so refusals are ordinary HTTP errors.
    let from = q.from.unwrap_or(0);
    let (machine_id, first) = s
        .services
        .machine_events(&ctx, &org, &machine, from, 1000)
        .await?;
    let services = s.services.clone();
    let read = move |last: u64| {
        let (services, machine_id) = (services.clone(), machine_id.clone());
        async move { services.machine_events_by_id(&machine_id, last, 1000).await }
    };
    Ok(ws.on_upgrade(move |socket| {
        super::ws::replay_and_follow(
            socket,
            super::ws::Follow {
                first,
                cursor: from,
                advance: |e: &MachineEvent, last| last.max(e.seq),
                // Machine events are not announced on the bus: polled.
                notices: None::<(Receiver<Notice>, fn(&Notice, &u64) -> bool)>,
                read,
                poll: EVENT_POLL,
            },
            "machine events",
        )
    }))
}

/// How often a machine event stream looks for new events.
const EVENT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// A live telemetry sample from Talos.
#[utoipa::path(get, path = "/v1/orgs/{org}/machines/{machine}/metrics", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)),
    responses((status = 200, body = MachineMetrics), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn metrics(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
) -> ApiResult<axum::Json<MachineMetrics>> {
    Ok(axum::Json(
        s.services.machine_metrics(&ctx, &org, &machine).await?,
    ))
}

/// The machine's health, evaluated now from its link, Talos (services) and
/// its Kubernetes node (Ready and pressure conditions), with a verdict.
#[utoipa::path(get, path = "/v1/orgs/{org}/machines/{machine}/health", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)),
    responses((status = 200, body = MachineHealth), (status = 404, body = ErrorBody)))]
pub async fn health(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
) -> ApiResult<axum::Json<MachineHealth>> {
    Ok(axum::Json(
        s.services.machine_health(&ctx, &org, &machine).await?,
    ))
}

/// Placement preview: the visible machines a selector matches, each with
/// its room (allocatable minus what its pods request) and how many replicas
/// of the request fit there now. Nothing is deployed.
#[utoipa::path(get, path = "/v1/orgs/{org}/placement", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), PlacementQuery),
    responses((status = 200, body = PlacementPreview), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn placement(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Query(q): Query<PlacementQuery>,
) -> ApiResult<axum::Json<PlacementPreview>> {
    Ok(axum::Json(
        s.services.placement_preview(&ctx, &org, &q).await?,
    ))
}

/// The machine's short metrics history (samples taken by the control plane
/// every few seconds and kept for a while), oldest first, paginated.
#[utoipa::path(get, path = "/v1/orgs/{org}/machines/{machine}/metrics/history", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path), MachineMetricsHistoryQuery),
    responses((status = 200, body = Page<MachineMetrics>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn metrics_history(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Query(q): Query<MachineMetricsHistoryQuery>,
) -> ApiResult<axum::Json<Page<MachineMetrics>>> {
    Ok(axum::Json(
        s.services
            .machine_metrics_history(&ctx, &org, &machine, &q)
            .await?,
    ))
}

/// How much history a metrics stream starts with.
const METRICS_STREAM_RECENT: std::time::Duration = std::time::Duration::from_mins(5);
/// How often a metrics stream looks in the store without a bus notice.
const METRICS_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// The machine's metrics as a WebSocket stream, one JSON `MachineMetrics`
/// per text message: the samples of the last five minutes, then each new
/// sample as the control plane takes it.
#[utoipa::path(get, path = "/v1/orgs/{org}/machines/{machine}/metrics/ws", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)),
    responses((status = 101, description = "Switching Protocols: a WebSocket follows; each text message is one `MachineMetrics` as JSON"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn metrics_ws(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    // Subscribe before reading, so no sample falls between the two.
    let notices = s.services.config().bus.subscribe();
    let (machine_id, first) = s
        .services
        .machine_metrics_stream_start(&ctx, &org, &machine, METRICS_STREAM_RECENT)
        .await?;
    let services = s.services.clone();
    let id = machine_id.clone();
    let mine = move |n: &Notice, _: &Option<chrono::DateTime<chrono::Utc>>| matches!(n, Notice::MachineSampled { machine_id } if *machine_id == id);
    let read = move |after: Option<chrono::DateTime<chrono::Utc>>| {
        let (services, machine_id) = (services.clone(), machine_id.clone());
        async move { services.machine_samples_by_id(&machine_id, after).await }
    };
    Ok(ws.on_upgrade(move |socket| {
        super::ws::replay_and_follow(
            socket,
            super::ws::Follow {
                first,
                cursor: None,
                advance: |m: &MachineMetrics, _| Some(m.at),
                notices: Some((notices, mine)),
                read,
                poll: METRICS_POLL,
            },
            "machine metrics",
        )
    }))
}

/// The last lines of a machine log: a Talos service (`machined`, `kubelet`,
/// …) or `kernel`. Only the owning organization reads machine logs.
#[utoipa::path(get, path = "/v1/orgs/{org}/machines/{machine}/logs", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path), MachineLogsQuery),
    responses((status = 200, body = Page<MachineLogLine>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn logs(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Query(q): Query<MachineLogsQuery>,
) -> ApiResult<axum::Json<Page<MachineLogLine>>> {
    let items = s.services.machine_logs(&ctx, &org, &machine, &q).await?;
    Ok(axum::Json(Page {
        items,
        next_cursor: None,
    }))
}

/// A machine log followed over WebSocket, one JSON `MachineLogLine` per text
/// message: the last `tail` lines, then lines as they are written. A line
/// from source `satusky` says why the stream stopped.
#[utoipa::path(get, path = "/v1/orgs/{org}/machines/{machine}/logs/ws", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path), MachineLogsQuery),
    responses((status = 101, description = "Switching Protocols: a WebSocket follows; each text message is one `MachineLogLine` as JSON"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn logs_ws(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Query(q): Query<MachineLogsQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let follow = s
        .services
        .follow_machine_logs(&ctx, &org, &machine, &q)
        .await?;
    Ok(ws.on_upgrade(move |socket| super::ws::forward(socket, follow.lines)))
}

// ---- operations

/// Cordon the machine's node.
#[utoipa::path(post, path = "/v1/orgs/{org}/machines/{machine}/cordon", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)),
    responses((status = 202, body = Machine), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn cordon(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
) -> ApiResult<Accepted> {
    Ok(accepted(
        s.services.cordon_machine(&ctx, &org, &machine).await?,
    ))
}

/// Uncordon the machine's node, if Satusky cordoned it.
#[utoipa::path(post, path = "/v1/orgs/{org}/machines/{machine}/uncordon", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)),
    responses((status = 202, body = Machine), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn uncordon(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
) -> ApiResult<Accepted> {
    Ok(accepted(
        s.services.uncordon_machine(&ctx, &org, &machine).await?,
    ))
}

/// Cordon and drain the node (honouring disruption budgets, bounded by the timeout).
#[utoipa::path(post, path = "/v1/orgs/{org}/machines/{machine}/drain", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)), request_body = DrainRequest,
    responses((status = 202, body = Machine), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn drain(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Json(body): Json<DrainRequest>,
) -> ApiResult<Accepted> {
    Ok(accepted(
        s.services
            .drain_machine(&ctx, &org, &machine, &body)
            .await?,
    ))
}

/// Reboot through Talos; drains first unless `force`.
#[utoipa::path(post, path = "/v1/orgs/{org}/machines/{machine}/reboot", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)), request_body = PowerRequest,
    responses((status = 202, body = Machine), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn reboot(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Json(body): Json<PowerRequest>,
) -> ApiResult<Accepted> {
    Ok(accepted(
        s.services
            .reboot_machine(&ctx, &org, &machine, &body)
            .await?,
    ))
}

/// Shut down through Talos; drains first unless `force`.
#[utoipa::path(post, path = "/v1/orgs/{org}/machines/{machine}/shutdown", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)), request_body = PowerRequest,
    responses((status = 202, body = Machine), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn shutdown(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Json(body): Json<PowerRequest>,
) -> ApiResult<Accepted> {
    Ok(accepted(
        s.services
            .shutdown_machine(&ctx, &org, &machine, &body)
            .await?,
    ))
}

/// Decommission: drain, reset through Talos, remove node and link; the
/// record stays. `force` removes an unreachable machine and marks it
/// `needs_wipe`.
#[utoipa::path(post, path = "/v1/orgs/{org}/machines/{machine}/decommission", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)), request_body = DecommissionRequest,
    responses((status = 202, body = Machine), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn decommission(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
    Json(body): Json<DecommissionRequest>,
) -> ApiResult<Accepted> {
    Ok(accepted(
        s.services
            .decommission_machine(&ctx, &org, &machine, &body)
            .await?,
    ))
}

/// Cancel the running operation before its first irreversible step (a Talos
/// reboot, shutdown or reset, or the node's removal): the replica running it
/// stops (a drain at once), uncordons only a node it cordoned and puts the
/// machine back where the operation began. 409 once such a step began, or
/// when nothing runs.
#[utoipa::path(post, path = "/v1/orgs/{org}/machines/{machine}/cancel", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("machine" = String, Path)),
    responses((status = 202, body = Machine), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, machine)): MachinePath,
) -> ApiResult<Accepted> {
    Ok(accepted(
        s.services
            .cancel_machine_operation(&ctx, &org, &machine)
            .await?,
    ))
}

/// Run `cordon`, `uncordon`, `drain`, `labels` or `cancel` on every operable
/// machine the selector matches (`cancel`: those running an operation); the
/// answer lists the outcome per machine.
#[utoipa::path(post, path = "/v1/orgs/{org}/machines/bulk/{action}", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), ("action" = String, Path, description = "cordon, uncordon, drain, labels or cancel")),
    request_body = BulkRequest,
    responses((status = 200, body = BulkResult), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn bulk(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, action)): Path<(String, String)>,
    Json(body): Json<BulkRequest>,
) -> ApiResult<axum::Json<BulkResult>> {
    let action = action.parse::<BulkAction>()?;
    Ok(axum::Json(
        s.services.bulk_machines(&ctx, &org, action, &body).await?,
    ))
}
