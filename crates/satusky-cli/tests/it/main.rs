//! Integration tests of `1ctl`: the real binary, run with a temporary
//! configuration directory, against a mock API or (in `e2e`) the real server.

// Helpers outside `#[test]` functions panic on broken fixtures, like tests do.
#![expect(clippy::unwrap_used)]

mod api;
mod apps;
mod deploy_removals;
mod e2e;
mod help;
mod machine_cancel;
mod machines;
mod profiles;
mod support;
mod usage;
