use axum::extract::State;
use satusky_core::store::AuditFilter;
use satusky_types::ErrorBody;
use satusky_types::orgs::{AuditEntry, AuditQuery};
use satusky_types::page::Page;

use super::ApiResult;
use crate::extract::{Auth, Path, Query};
use crate::router::AppState;

/// The organization's audit log, newest first (admin).
#[utoipa::path(get, path = "/v1/orgs/{org}/audit", tag = "audit", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Page<AuditEntry>>> {
    let page = satusky_core::pagination::PageRequest::parse(q.limit, q.cursor.as_deref())?;
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        outcome: q.outcome,
        since: q.since,
        until: q.until,
    };
    Ok(axum::Json(
        s.services.list_audit(&ctx, &org, &filter, &page).await?,
    ))
}

/// One audit entry (admin).
#[utoipa::path(get, path = "/v1/orgs/{org}/audit/{id}", tag = "audit", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("id" = String, Path, description = "entry id")),
    responses((status = 200, body = AuditEntry), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<axum::Json<AuditEntry>> {
    Ok(axum::Json(s.services.get_audit(&ctx, &org, &id).await?))
}
