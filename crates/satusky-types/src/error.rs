//! The one HTTP error format, shared by server and client:
//! `{"error": {"code": "org_not_found", "message": "…", "request_id": "…"}}`.

use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes. Clients match on these, never on
/// messages. Adding a code is fine; renaming one is a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // 400
    /// The body is not valid JSON, or has the wrong shape.
    InvalidJson,
    /// A field failed validation (name rules, lengths, ranges).
    ValidationFailed,
    /// A query-string parameter is malformed or unknown.
    InvalidQuery,
    /// A pagination cursor was not produced by this server.
    InvalidCursor,
    /// Deleting requires an explicit confirmation.
    ConfirmationRequired,
    // 401
    /// No credentials, or credentials that are not recognised.
    Unauthenticated,
    /// Email and password do not match.
    InvalidCredentials,
    /// The current password given to a password change is wrong.
    InvalidCurrentPassword,
    /// The token has expired.
    TokenExpired,
    /// The token has been disabled by its owner.
    TokenDisabled,
    /// A machine join token that is malformed, not signed by this platform or unknown.
    JoinTokenInvalid,
    /// The machine join token has expired.
    JoinTokenExpired,
    /// The machine join token has been revoked.
    JoinTokenRevoked,
    // 403
    /// Authenticated, visible, but the role does not allow the action.
    Forbidden,
    /// Self-service signup is turned off on this installation.
    SignupDisabled,
    /// The machine was removed by force; it must be wiped before it may join again.
    MachineIdentityRevoked,
    // 404
    /// No such route.
    RouteNotFound,
    OrgNotFound,
    UserNotFound,
    MemberNotFound,
    TokenNotFound,
    AuditEntryNotFound,
    AppNotFound,
    ReleaseNotFound,
    SecretNotFound,
    ConfigKeyNotFound,
    ClusterNotFound,
    VolumeNotFound,
    MachineNotFound,
    JoinTokenNotFound,
    /// The machine keeps no log of that name.
    MachineLogNotFound,
    // 405
    MethodNotAllowed,
    // 409
    EmailTaken,
    OrgSlugTaken,
    MemberExists,
    TokenNameTaken,
    /// The last owner of an organization cannot be removed or demoted.
    LastOwner,
    AppExists,
    /// The app is being deleted; no more changes.
    AppDeleting,
    /// The app has no release yet (deploy first).
    NoRelease,
    /// An `Idempotency-Key` was reused for a different request.
    IdempotencyKeyReused,
    ClusterNameTaken,
    JoinTokenNameTaken,
    /// The machine's state does not allow the action now (the message says why).
    MachineStateConflict,
    /// The machine is busy with another operation.
    MachineBusy,
    /// A concurrent change won; retry.
    Conflict,
    /// The volume is mounted by the current release.
    VolumeAttached,
    // 413
    PayloadTooLarge,
    // 415
    UnsupportedMediaType,
    // 429
    RateLimited,
    // 500
    Internal,
    // 503
    Unavailable,
    /// A code this client does not know yet (sent by a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The HTTP status this code is always sent with.
    pub fn http_status(self) -> u16 {
        use ErrorCode as C;
        match self {
            C::InvalidJson
            | C::ValidationFailed
            | C::InvalidQuery
            | C::InvalidCursor
            | C::ConfirmationRequired => 400,
            C::Unauthenticated
            | C::InvalidCredentials
            | C::TokenExpired
            | C::TokenDisabled
            | C::JoinTokenInvalid
            | C::JoinTokenExpired
            | C::JoinTokenRevoked => 401,
            C::Forbidden
            | C::SignupDisabled
            | C::InvalidCurrentPassword
            | C::MachineIdentityRevoked => 403,
            C::RouteNotFound
            | C::OrgNotFound
            | C::UserNotFound
            | C::MemberNotFound
            | C::TokenNotFound
            | C::AuditEntryNotFound
            | C::AppNotFound
            | C::ReleaseNotFound
            | C::SecretNotFound
            | C::ConfigKeyNotFound
            | C::ClusterNotFound
            | C::VolumeNotFound
            | C::MachineNotFound
            | C::JoinTokenNotFound
            | C::MachineLogNotFound => 404,
            C::MethodNotAllowed => 405,
            C::EmailTaken
            | C::OrgSlugTaken
            | C::MemberExists
            | C::TokenNameTaken
            | C::LastOwner
            | C::AppExists
            | C::AppDeleting
            | C::NoRelease
            | C::ClusterNameTaken
            | C::JoinTokenNameTaken
            | C::MachineStateConflict
            | C::MachineBusy
            | C::Conflict
            | C::VolumeAttached => 409,
            C::IdempotencyKeyReused => 422,
            C::PayloadTooLarge => 413,
            C::UnsupportedMediaType => 415,
            C::RateLimited => 429,
            C::Internal | C::Unknown => 500,
            C::Unavailable => 503,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// The body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
}
