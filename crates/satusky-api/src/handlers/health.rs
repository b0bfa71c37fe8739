use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::ApiResult;
use crate::router::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store answers.
pub async fn readyz(State(state): State<AppState>) -> ApiResult<&'static str> {
    state.services.ready().await?;
    Ok("ready")
}

/// Prometheus metrics of the control plane.
pub async fn metrics() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::handle().render(),
    )
}

/// The OpenAPI 3 document, generated from the code.
pub async fn openapi() -> impl IntoResponse {
    axum::Json(crate::openapi::document())
}
