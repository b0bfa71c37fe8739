use axum::extract::State;
use axum::http::StatusCode;
use satusky_types::ErrorBody;
use satusky_types::identity::{ApiToken, CreateTokenRequest, SetTokenEnabledRequest, TokenCreated};
use satusky_types::page::{Page, PageQuery};

use super::{ApiResult, page};
use crate::extract::{Auth, Json, Path, Query};
use crate::router::AppState;

/// List my personal API tokens (never their secrets).
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<ApiToken>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<Page<ApiToken>>> {
    Ok(axum::Json(s.services.list_tokens(&ctx, &page(&q)?).await?))
}

/// Create a personal API token; the secret is shown in this answer only.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])), request_body = CreateTokenRequest,
    responses((status = 201, body = TokenCreated), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<CreateTokenRequest>,
) -> ApiResult<(StatusCode, axum::Json<TokenCreated>)> {
    let created = s
        .services
        .create_token(&ctx, &body.name, body.org.as_deref(), body.expires_in_days)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// One of my tokens, by id or name.
#[utoipa::path(get, path = "/v1/tokens/{token}", tag = "tokens", security(("bearer" = [])),
    params(("token" = String, Path, description = "token id or name")),
    responses((status = 200, body = ApiToken), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(token): Path<String>,
) -> ApiResult<axum::Json<ApiToken>> {
    Ok(axum::Json(s.services.get_token(&ctx, &token).await?))
}

/// Enable or disable one of my tokens.
#[utoipa::path(patch, path = "/v1/tokens/{token}", tag = "tokens", security(("bearer" = [])),
    params(("token" = String, Path, description = "token id or name")), request_body = SetTokenEnabledRequest,
    responses((status = 200, body = ApiToken), (status = 404, body = ErrorBody)))]
pub async fn set_enabled(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(token): Path<String>,
    Json(body): Json<SetTokenEnabledRequest>,
) -> ApiResult<axum::Json<ApiToken>> {
    Ok(axum::Json(
        s.services
            .set_token_enabled(&ctx, &token, body.enabled)
            .await?,
    ))
}

/// Delete one of my tokens.
#[utoipa::path(delete, path = "/v1/tokens/{token}", tag = "tokens", security(("bearer" = [])),
    params(("token" = String, Path, description = "token id or name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(token): Path<String>,
) -> ApiResult<StatusCode> {
    s.services.delete_token(&ctx, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
