//! The domain of Satusky: what users, organizations, memberships, tokens and
//! audit entries are, the rules that govern them, and the ports through which
//! the domain reaches the outside world ([`store::Store`], [`clock::Clock`]).
//!
//! Services here hold the platform's meaning. Handlers in `satusky-api` parse
//! and shape; the store in `satusky-store` persists. This crate depends on
//! neither axum, sqlx, kube nor tonic (CI checks it).

pub mod apps;
pub mod auth;
pub mod authz;
pub mod bus;
pub mod clock;
pub mod conditions;
pub mod crypto;
pub mod error;
pub mod fleet;
pub mod ids;
pub mod machines;
pub mod pagination;
pub mod ratelimit;
pub mod selector;
pub mod services;
pub mod store;
pub mod validate;

pub use error::{Error, Result};
pub use services::{Ctx, Services, ServicesConfig};
