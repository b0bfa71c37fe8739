//! The reconciler's one error type. Every variant names the operation that
//! failed; the cause is in `#[source]`, never in the message.
//! [`Error::category`] gives a stable, low-cardinality label for metrics.

use std::time::Duration;

/// What went wrong in one reconcile pass or in the lease loop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the desired state of app {app_id}")]
    ReadDesired {
        app_id: String,
        #[source]
        source: satusky_core::Error,
    },
    #[error("checking whether organization {org_id} still exists")]
    ReadOrg {
        org_id: String,
        #[source]
        source: satusky_core::Error,
    },
    #[error("listing app ids for the resync")]
    ListApps(#[source] satusky_core::Error),
    #[error("recording the status of app {app_id}")]
    RecordStatus {
        app_id: String,
        #[source]
        source: satusky_core::Error,
    },
    #[error("finalizing the deletion of app {app_id}")]
    FinalizeDeletion {
        app_id: String,
        #[source]
        source: satusky_core::Error,
    },
    #[error("the machine selector of app {app_id} is invalid")]
    InvalidSelector {
        app_id: String,
        #[source]
        source: satusky_core::Error,
    },
    #[error("serializing the {kind} of app {app_id}")]
    Serialize {
        kind: &'static str,
        app_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("applying {kind} {namespace}/{name}")]
    Apply {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("deleting {kind} {namespace}/{name}")]
    Delete {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("listing {kind} in {namespace}")]
    List {
        kind: &'static str,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("reading {kind} {namespace}/{name}")]
    Get {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("recording a Kubernetes event on {namespace}/{name}")]
    Event {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{op} timed out after {timeout:?}")]
    Timeout { op: String, timeout: Duration },
    #[error("lost the leader lease; refusing to write")]
    NotLeader,
    #[error("working with lease {namespace}/{name}")]
    Lease {
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("a reconcile pass of {job} panicked")]
    Panicked { job: String },
}

impl Error {
    /// A stable label for metrics: `store`, `render`, `kube`, `timeout`,
    /// `lease` or `panic`.
    pub fn category(&self) -> &'static str {
        match self {
            Error::ReadDesired { .. }
            | Error::ReadOrg { .. }
            | Error::ListApps(_)
            | Error::RecordStatus { .. }
            | Error::FinalizeDeletion { .. } => "store",
            Error::InvalidSelector { .. } | Error::Serialize { .. } => "render",
            Error::Apply { .. }
            | Error::Delete { .. }
            | Error::List { .. }
            | Error::Get { .. }
            | Error::Event { .. } => "kube",
            Error::Timeout { .. } => "timeout",
            Error::NotLeader | Error::Lease { .. } => "lease",
            Error::Panicked { .. } => "panic",
        }
    }

    /// The HTTP status of the Kubernetes API answer behind this error, if any.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Error::Apply { source, .. }
            | Error::Delete { source, .. }
            | Error::List { source, .. }
            | Error::Get { source, .. }
            | Error::Event { source, .. }
            | Error::Lease { source, .. } => api_code(source),
            _ => None,
        }
    }
}

/// The HTTP status of a Kubernetes API error answer.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(r) => Some(r.code),
        _ => None,
    }
}

/// Whether a failed call is worth repeating at once (with a short backoff):
/// conflicts, throttling, server faults and transport errors.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(r) => matches!(r.code, 409 | 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(kube::core::ErrorResponse {
            status: "Failure".into(),
            message: "x".into(),
            reason: "X".into(),
            code,
        })
    }

    #[test]
    fn categories_are_stable_labels() {
        let e = Error::Apply {
            kind: "Deployment",
            namespace: "ns".into(),
            name: "web".into(),
            source: Box::new(api(500)),
        };
        assert_eq!(e.category(), "kube");
        assert_eq!(e.api_code(), Some(500));
        assert_eq!(Error::NotLeader.category(), "lease");
        assert_eq!(
            Error::ListApps(satusky_core::Error::internal("x")).category(),
            "store"
        );
    }

    #[test]
    fn conflicts_throttling_and_server_faults_are_transient() {
        for code in [409, 429, 500, 503, 504] {
            assert!(is_transient(&api(code)), "{code}");
        }
        for code in [400, 403, 404, 422] {
            assert!(!is_transient(&api(code)), "{code}");
        }
    }
}
