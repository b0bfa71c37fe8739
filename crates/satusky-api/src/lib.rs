//! The Satusky HTTP API.
//!
//! [`router`] lists every route. Handlers parse and validate through our own
//! extractors ([`extract`]), call one service of `satusky-core`, and shape the
//! result into a DTO of `satusky-types`. Every failure becomes one JSON error
//! format, rendered with the request id by [`error::render_errors`].

pub mod error;
pub mod extract;
mod handlers;
pub mod openapi;
mod router;
mod telemetry;

pub use router::{ApiConfig, AppState, router};
