use axum::extract::State;
use axum::http::StatusCode;
use satusky_types::ErrorBody;
use satusky_types::orgs::{AddMemberRequest, ChangeRoleRequest, Member};
use satusky_types::page::{Page, PageQuery};

use super::{ApiResult, page};
use crate::extract::{Auth, Json, Path, Query};
use crate::router::AppState;

/// Members of an organization.
#[utoipa::path(get, path = "/v1/orgs/{org}/members", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), PageQuery),
    responses((status = 200, body = Page<Member>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<Member>>> {
    Ok(axum::Json(
        s.services.list_members(&ctx, &org, &page(&q)?).await?,
    ))
}

/// Add an existing user by email (admin; owner to add an owner).
#[utoipa::path(post, path = "/v1/orgs/{org}/members", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug")), request_body = AddMemberRequest,
    responses((status = 201, body = Member), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(org): Path<String>,
    Json(body): Json<AddMemberRequest>,
) -> ApiResult<(StatusCode, axum::Json<Member>)> {
    let m = s
        .services
        .add_member(&ctx, &org, &body.email, body.role)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(m)))
}

/// Change a member's role. The last owner cannot be demoted.
#[utoipa::path(patch, path = "/v1/orgs/{org}/members/{user}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("user" = String, Path, description = "user id or email")),
    request_body = ChangeRoleRequest,
    responses((status = 200, body = Member), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn change_role(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, user)): Path<(String, String)>,
    Json(body): Json<ChangeRoleRequest>,
) -> ApiResult<axum::Json<Member>> {
    Ok(axum::Json(
        s.services
            .change_member_role(&ctx, &org, &user, body.role)
            .await?,
    ))
}

/// Remove a member (or leave). The last owner cannot be removed.
#[utoipa::path(delete, path = "/v1/orgs/{org}/members/{user}", tag = "members", security(("bearer" = [])),
    params(("org" = String, Path, description = "organization slug"), ("user" = String, Path, description = "user id or email")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.services.remove_member(&ctx, &org, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
