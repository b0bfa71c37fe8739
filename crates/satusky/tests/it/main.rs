#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failure")]

//! End-to-end tests with the real binaries: `satusky dev` (API, SQLite,
//! embedded kube-sim, reconciler), `1ctl`, and `kubectl` as an independent
//! look at the cluster.

mod dev;
mod machine_telemetry;
mod orgs;
mod serve;
mod support;
mod tour;
