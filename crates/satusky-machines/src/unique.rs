//! Per-node unique tokens (reference §7.3), as a [`ProvisionPolicy`] wrapper.
//!
//! Talos ≥ 1.6 sends `node_unique_token`: a hardware fingerprint (SHA-256 over the
//! sorted NIC MAC addresses) and a random token it keeps in META. The first admitted
//! call records both per machine UUID; later calls are decided by them:
//!
//! | Situation | Result |
//! |---|---|
//! | Same token | admitted, even if the join token has since been revoked |
//! | Same fingerprint, different token | `PermissionDenied` (lost META or spoofing) |
//! | Different fingerprint | `AlreadyExists`: a UUID conflict; the machine that was there first keeps its place |
//! | No unique token | the inner policy decides (legacy Talos) |

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::provision::{Admission, ProvisionPolicy, ProvisionRequestInfo, Refusal};

/// A parsed `node_unique_token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueToken {
    /// Hardware fingerprint.
    #[serde(rename = "Fingerprint")]
    pub fingerprint: String,
    /// The secret token.
    #[serde(rename = "Token")]
    pub token: String,
}

impl UniqueToken {
    /// Parses the JSON form; `None` when malformed.
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_str(raw).ok()
    }
}

#[derive(Debug, Clone)]
struct Known {
    unique: UniqueToken,
    admission: Admission,
}

/// Wraps a join-token policy with unique-token checks. Records live in memory; the
/// control plane persists the same pairs in its store.
#[derive(Debug)]
pub struct UniqueTokenPolicy<P> {
    inner: P,
    known: Mutex<HashMap<String, Known>>,
}

impl<P: ProvisionPolicy> UniqueTokenPolicy<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The unique token recorded for `uuid`.
    pub fn recorded(&self, uuid: &str) -> Option<UniqueToken> {
        self.lock().get(uuid).map(|k| k.unique.clone())
    }

    /// Forgets `uuid` (Omni's `ResetNodeUniqueToken`).
    pub fn forget(&self, uuid: &str) {
        self.lock().remove(uuid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl<P: ProvisionPolicy> ProvisionPolicy for UniqueTokenPolicy<P> {
    async fn admit(&self, req: &ProvisionRequestInfo) -> Result<Admission, Refusal> {
        let presented = req
            .node_unique_token
            .as_deref()
            .and_then(UniqueToken::parse);
        let known = self.lock().get(&req.node_uuid).cloned();
        match (presented, known) {
            (Some(p), Some(k)) if p == k.unique => Ok(k.admission),
            (Some(p), Some(k)) if p.fingerprint == k.unique.fingerprint => {
                Err(Refusal::UniqueTokenMismatch)
            }
            (Some(_), Some(_)) => Err(Refusal::UuidConflict),
            (None, Some(_)) => Err(Refusal::UniqueTokenMismatch),
            (presented, None) => {
                let admission = self.inner.admit(req).await?;
                if let Some(unique) = presented {
                    self.lock().insert(
                        req.node_uuid.clone(),
                        Known {
                            unique,
                            admission: admission.clone(),
                        },
                    );
                }
                Ok(admission)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AdmitAll;

    #[async_trait]
    impl ProvisionPolicy for AdmitAll {
        async fn admit(&self, _req: &ProvisionRequestInfo) -> Result<Admission, Refusal> {
            Ok(Admission::default())
        }
    }

    fn req(unique: Option<(&str, &str)>) -> ProvisionRequestInfo {
        ProvisionRequestInfo {
            node_uuid: "uuid-1".into(),
            node_public_key: String::new(),
            join_token: None,
            node_unique_token: unique.map(|(f, t)| {
                serde_json::to_string(&UniqueToken {
                    fingerprint: f.into(),
                    token: t.into(),
                })
                .unwrap()
            }),
            talos_version: None,
            wireguard_over_grpc: false,
            peer_addr: None,
        }
    }

    #[tokio::test]
    async fn same_fingerprint_with_another_token_is_a_mismatch() {
        let p = UniqueTokenPolicy::new(AdmitAll);
        assert!(p.admit(&req(Some(("fp", "t1")))).await.is_ok());
        assert!(p.admit(&req(Some(("fp", "t1")))).await.is_ok());
        assert_eq!(
            p.admit(&req(Some(("fp", "t2")))).await,
            Err(Refusal::UniqueTokenMismatch)
        );
        assert_eq!(
            p.admit(&req(Some(("other", "t1")))).await,
            Err(Refusal::UuidConflict)
        );
        assert_eq!(p.admit(&req(None)).await, Err(Refusal::UniqueTokenMismatch));
        p.forget("uuid-1");
        assert!(p.admit(&req(Some(("fp", "t2")))).await.is_ok());
    }
}
