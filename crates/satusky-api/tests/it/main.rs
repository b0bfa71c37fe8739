#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

//! Integration tests of the API: the real router over a real SQLite store,
//! driven with `oneshot` requests.

mod support;

mod apps;
mod auth;
mod bad_input;
mod clusters;
mod deploy_removals;
mod machine_telemetry;
mod machines;
mod matrix;
mod orgs;
mod platform;
mod session_purge;
mod tokens;
