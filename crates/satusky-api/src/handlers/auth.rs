use axum::extract::State;
use axum::http::StatusCode;
use satusky_types::ErrorBody;
use satusky_types::identity::{
    ChangePasswordRequest, LoginRequest, Me, Revoked, SessionCreated, SignupRequest,
    UpdateUserRequest, User,
};

use super::ApiResult;
use crate::extract::{Auth, ClientAddr, Json};
use crate::router::AppState;

/// Create an account.
#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = User), (status = 400, body = ErrorBody),
        (status = 403, description = "signup disabled", body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn signup(
    State(s): State<AppState>,
    Json(body): Json<SignupRequest>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    let user = s
        .services
        .signup(&body.email, &body.password, body.name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// Log in with email and password; returns a session token.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 201, body = SessionCreated), (status = 401, body = ErrorBody),
        (status = 429, description = "too many failed logins", body = ErrorBody)))]
pub async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<LoginRequest>,
) -> ApiResult<(StatusCode, axum::Json<SessionCreated>)> {
    let session = s.services.login(&body.email, &body.password, &addr).await?;
    Ok((StatusCode::CREATED, axum::Json(session)))
}

/// End the calling session.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(s): State<AppState>, Auth(ctx): Auth) -> ApiResult<StatusCode> {
    s.services.logout(&ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of the caller, this one included.
#[utoipa::path(post, path = "/v1/auth/revoke-all", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Revoked), (status = 401, body = ErrorBody)))]
pub async fn revoke_all(
    State(s): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<axum::Json<Revoked>> {
    Ok(axum::Json(s.services.revoke_all_sessions(&ctx).await?))
}

/// Who am I, and how am I authenticated.
#[utoipa::path(get, path = "/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(s): State<AppState>, Auth(ctx): Auth) -> ApiResult<axum::Json<Me>> {
    Ok(axum::Json(s.services.me(&ctx).await?))
}

/// Update my profile.
#[utoipa::path(patch, path = "/v1/me", tag = "auth", security(("bearer" = [])), request_body = UpdateUserRequest,
    responses((status = 200, body = User), (status = 400, body = ErrorBody)))]
pub async fn update_me(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<UpdateUserRequest>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(s.services.update_me(&ctx, &body.name).await?))
}

/// Change my password; every other session ends.
#[utoipa::path(post, path = "/v1/me/password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn change_password(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Json(body): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    s.services
        .change_password(&ctx, &body.current_password, &body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
