//! Handlers: parse, call one service, shape the answer. No SQL, no business rules.

pub mod apps;
pub mod audit;
pub mod auth;
pub mod clusters;
pub mod health;
pub mod machine_usage;
pub mod machines;
pub mod members;
pub mod orgs;
pub mod tokens;
mod ws;

use satusky_core::pagination::PageRequest;
use satusky_types::page::PageQuery;

use crate::error::ApiError;

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn page(q: &PageQuery) -> ApiResult<PageRequest> {
    Ok(PageRequest::parse(q.limit, q.cursor.as_deref())?)
}
