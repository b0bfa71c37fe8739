//! Integration tests for `talos-sim`.

#![allow(
    clippy::unwrap_used,
    clippy::many_single_char_names,
    reason = "test code: a failed unwrap is a failed test"
)]

mod fake_kube;
mod support;

mod api;
mod kube_sim_crosscheck;
mod kubelet;
mod provisioning;
mod server_handshakes;
