//! Integration tests for `satusky-machines`, against simulated machines from
//! `talos-sim`.

#![allow(
    clippy::unwrap_used,
    clippy::many_single_char_names,
    reason = "test code: a failed unwrap is a failed test"
)]

mod provisioning;
mod sink;
mod support;
mod talos_client;
mod wireguard;
