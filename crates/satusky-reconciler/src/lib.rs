//! Satusky's reconciler: reads each app's desired state from the services,
//! server-side applies the Kubernetes objects that run it (field manager
//! `satusky`, ownership labels), deletes the labelled objects it no longer
//! needs, and writes the observed status back. Level-triggered and
//! idempotent; writes only while holding a Lease. See the crate README.

pub mod backoff;
pub mod config;
mod controller;
pub mod error;
pub mod kinds;
mod kube_io;
pub mod labels;
mod lease;
pub mod render;
pub mod source;
mod stats;
pub mod status;

pub use config::{BackoffConfig, LeaseConfig, PlanQuota, ReconcilerConfig};
pub use controller::Reconciler;
pub use error::Error;
pub use source::AppSource;
pub use stats::{Stats, StatsSnapshot};
