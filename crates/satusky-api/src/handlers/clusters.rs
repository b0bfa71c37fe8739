use axum::extract::State;
use axum::http::StatusCode;
use satusky_types::ErrorBody;
use satusky_types::clusters::{Cluster, RegisterClusterRequest, Zone};
use satusky_types::page::{Page, PageQuery};

use super::{ApiResult, page};
use crate::extract::{Auth, Json, Path, Query};
use crate::router::AppState;

/// Registered clusters (platform administrators).
#[utoipa::path(get, path = "/v1/clusters", tag = "clusters", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<Cluster>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<Cluster>>> {
    Ok(axum::Json(
        s.services.list_clusters(&ctx, &page(&q)?).await?,
    ))
}

/// Register a cluster; its kubeconfig is sealed at rest (platform administrators).
#[utoipa::path(post, path = "/v1/clusters", tag = "clusters", security(("bearer" = [])), request_body = RegisterClusterRequest,
    responses((status = 201, body = Cluster), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn register(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<RegisterClusterRequest>,
) -> ApiResult<(StatusCode, axum::Json<Cluster>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.services.register_cluster(&ctx, &body).await?),
    ))
}

/// Remove a cluster from the registry (platform administrators).
#[utoipa::path(delete, path = "/v1/clusters/{name}", tag = "clusters", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.services.delete_cluster(&ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Zones apps can be placed in (`deploy --zone`).
#[utoipa::path(get, path = "/v1/zones", tag = "clusters", security(("bearer" = [])),
    responses((status = 200, body = Page<Zone>)))]
pub async fn zones(
    State(s): State<AppState>,
    Auth(_ctx): Auth,
) -> ApiResult<axum::Json<Page<Zone>>> {
    Ok(axum::Json(Page {
        items: s.services.zones().await?,
        next_cursor: None,
    }))
}
