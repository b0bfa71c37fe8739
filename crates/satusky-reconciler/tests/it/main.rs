//! The reconciler against kube-sim: one integration binary.

#![expect(clippy::unwrap_used, reason = "test fixtures panic on setup failure")]

mod apps;
mod drift;
mod e2e;
mod faults;
mod lease;
mod orgs;
mod removals;
mod support;
