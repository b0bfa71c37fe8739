//! The error every service returns: a stable [`ErrorCode`] (which fixes the
//! HTTP status), a message safe to show to the caller, and an optional cause
//! that is only ever logged.

use satusky_types::ErrorCode;

use crate::store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// For `rate_limited`: seconds until a retry may succeed.
    pub retry_after_secs: Option<u64>,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_secs: None,
            source: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// An unexpected failure: the caller sees "internal error", the log sees `source`.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".to_owned(),
            retry_after_secs: None,
            source: Some(source.into()),
        }
    }
}

impl From<StoreError> for Error {
    /// Store errors that reach here unmapped are internal: a service maps the
    /// ones it expects (not found, conflict) to their own codes first.
    fn from(e: StoreError) -> Self {
        Error::internal(e)
    }
}
