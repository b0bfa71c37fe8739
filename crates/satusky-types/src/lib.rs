//! Wire types shared by the Satusky API server, the typed client and `1ctl`.
//!
//! This crate is the one contract between server and client: every request and
//! response body, the stable [`ErrorCode`]s, and the registry of `SATUSKY_*`
//! environment variables. It depends on serde (and, behind the `openapi`
//! feature, on utoipa for schema generation) and nothing else of Satusky.

pub mod apps;
pub mod clusters;
pub mod env;
pub mod error;
pub mod identity;
pub mod machines;
pub mod orgs;
pub mod page;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use page::Page;

/// Timestamps on the wire are RFC 3339 UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
