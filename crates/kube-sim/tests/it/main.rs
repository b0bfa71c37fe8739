//! Integration tests: the real kubectl binary and kube-rs against kube-sim.

mod api;
mod apply;
mod cluster;
mod kube_rs;
mod kubectl;
mod nodes;
mod support;
