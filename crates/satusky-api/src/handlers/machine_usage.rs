//! Machine usage: the periods during which the organization held each
//! machine (billing history), kept after the machines are gone.

use axum::extract::State;
use satusky_types::ErrorBody;
use satusky_types::machines::{MachineUsage, MachineUsageQuery};
use satusky_types::page::Page;

use super::ApiResult;
use crate::extract::{Auth, Path, Query};
use crate::router::AppState;

/// The organization's machine usage periods, newest first; `seconds` counts
/// each period's time within `[since, until)` (until now while it is open).
#[utoipa::path(get, path = "/v1/orgs/{org}/machine-usage", tag = "machines", security(("bearer" = [])),
    params(("org" = String, Path), MachineUsageQuery),
    responses((status = 200, body = Page<MachineUsage>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Query(q): Query<MachineUsageQuery>,
) -> ApiResult<axum::Json<Page<MachineUsage>>> {
    Ok(axum::Json(s.services.machine_usage(&ctx, &org, &q).await?))
}
