use axum::extract::State;
use axum::http::StatusCode;
use satusky_types::ErrorBody;
use satusky_types::orgs::{CreateOrgRequest, DeleteOrgQuery, Org, RenameOrgRequest};
use satusky_types::page::{Page, PageQuery};

use super::{ApiResult, page};
use crate::extract::{Auth, Json, Path, Query};
use crate::router::AppState;

/// The organizations I belong to.
#[utoipa::path(get, path = "/v1/orgs", tag = "orgs", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<Org>)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<Org>>> {
    Ok(axum::Json(s.services.list_orgs(&ctx, &page(&q)?).await?))
}

/// Create an organization; I become its owner.
#[utoipa::path(post, path = "/v1/orgs", tag = "orgs", security(("bearer" = [])), request_body = CreateOrgRequest,
    responses((status = 201, body = Org), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<CreateOrgRequest>,
) -> ApiResult<(StatusCode, axum::Json<Org>)> {
    let org = s
        .services
        .create_org(&ctx, &body.slug, body.name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(org)))
}

/// One organization I belong to.
#[utoipa::path(get, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")),
    responses((status = 200, body = Org), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
) -> ApiResult<axum::Json<Org>> {
    Ok(axum::Json(s.services.get_org(&ctx, &org).await?))
}

/// Rename an organization (admin).
#[utoipa::path(patch, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")), request_body = RenameOrgRequest,
    responses((status = 200, body = Org), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rename(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Json(body): Json<RenameOrgRequest>,
) -> ApiResult<axum::Json<Org>> {
    Ok(axum::Json(
        s.services.rename_org(&ctx, &org, &body.name).await?,
    ))
}

/// Delete an organization and everything in it (owner; `confirm` must repeat the slug).
///
/// Deletes its apps, memberships and machine records, and in every cluster its namespace with
/// everything in it: the apps' workloads, services and volumes (PersistentVolumeClaims: their
/// data is lost). The answer comes once the store has changed; each cluster's reconciler then
/// deletes the namespace, and Kubernetes its contents, asynchronously. The namespace name is never
/// given to another organization.
#[utoipa::path(delete, path = "/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), DeleteOrgQuery),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Query(q): Query<DeleteOrgQuery>,
) -> ApiResult<StatusCode> {
    s.services
        .delete_org(&ctx, &org, q.confirm.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
