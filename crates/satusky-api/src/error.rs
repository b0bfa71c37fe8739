//! One error type for every handler, and the middleware that renders it.
//!
//! A handler returns [`ApiError`]. Its `IntoResponse` only sets the status
//! and stores the error as a response extension; [`render_errors`] then
//! writes the JSON body with the request id and logs the cause of a 5xx.
//! Errors produced by axum or tower layers themselves (no route, wrong
//! method, body too large) are rewritten into the same format there too.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use satusky_types::{ErrorBody, ErrorCode, ErrorDetail};

use crate::extract::RequestId;

#[derive(Debug)]
pub struct ApiError(pub satusky_core::Error);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(satusky_core::Error::new(code, message))
    }
}

impl From<satusky_core::Error> for ApiError {
    fn from(e: satusky_core::Error) -> Self {
        Self(e)
    }
}

/// What [`render_errors`] needs to write the body; carried as an extension.
#[derive(Debug, Clone)]
struct ErrorInfo {
    code: ErrorCode,
    message: String,
    cause: Option<String>,
    retry_after_secs: Option<u64>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let cause = std::error::Error::source(&self.0).map(|s| {
            let mut chain = s.to_string();
            let mut next = s.source();
            while let Some(e) = next {
                chain.push_str(": ");
                chain.push_str(&e.to_string());
                next = e.source();
            }
            chain
        });
        let info = ErrorInfo {
            code: self.0.code,
            message: self.0.message,
            cause,
            retry_after_secs: self.0.retry_after_secs,
        };
        let mut res = status.into_response();
        res.extensions_mut().insert(info);
        res
    }
}

fn default_info(status: StatusCode) -> Option<ErrorInfo> {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::RouteNotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "method not allowed on this route",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            (ErrorCode::PayloadTooLarge, "the request body is too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::UnsupportedMediaType,
            "send the body as application/json",
        ),
        s if s.is_server_error() => (ErrorCode::Internal, "internal error"),
        _ => return None,
    };
    Some(ErrorInfo {
        code,
        message: message.to_owned(),
        cause: None,
        retry_after_secs: None,
    })
}

/// Renders every error response as `{"error":{code,message,request_id}}`.
pub async fn render_errors(req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let res = next.run(req).await;
    let status = res.status();
    if status.is_success() || status.is_redirection() || status.is_informational() {
        return res;
    }
    let info = match res.extensions().get::<ErrorInfo>() {
        Some(info) => info.clone(),
        None => match default_info(status) {
            Some(info) => info,
            None => return res,
        },
    };
    if status.is_server_error() {
        tracing::error!(request.id = %request_id, code = %info.code, cause = info.cause.as_deref().unwrap_or("-"), "request failed");
    } else {
        tracing::debug!(request.id = %request_id, code = %info.code, "request refused");
    }
    let body = ErrorBody {
        error: ErrorDetail {
            code: info.code,
            message: info.message,
            request_id,
        },
    };
    let mut out = (status, axum::Json(body)).into_response();
    if let Some(secs) = info.retry_after_secs
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        out.headers_mut().insert(header::RETRY_AFTER, v);
    }
    out
}
