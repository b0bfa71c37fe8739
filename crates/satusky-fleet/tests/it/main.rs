//! satusky-fleet against kube-sim, talos-sim and core services over SQLite.
#![allow(clippy::unwrap_used, reason = "test helpers")]

mod cancel;
mod capacity;
#[cfg(feature = "dev")]
mod dev;
mod drain;
mod lifecycle;
mod link;
mod operations;
mod provisioning;
mod restart;
mod support;
