//! SideroLink join tokens.
//!
//! Shapes, after Omni's `client/pkg/jointoken` design (our own implementation):
//!
//! | Shape | Form | Check |
//! |---|---|---|
//! | plain | 43 random base62 characters (≈256 bits) | equality with a registered key |
//! | signed | `v1:` + base64(JSON `{"extra_data": {..}, "signature": base64(..)}`) | HMAC-SHA256 over the JSON of `extra_data`, keyed with the plain token |
//!
//! Satusky puts two bindings into `extra_data`: [`TOKEN_ID_KEY`] names the registered
//! key that signed the token (absent: the default token), and [`EXPIRES_AT_KEY`] an
//! optional RFC 3339 expiry. Any other entries (tenant, pool, machine request, …) are
//! returned to the caller after verification. Revocation and the key's own expiry are
//! kept by [`JoinTokenRegistry`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::RwLock;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::provision::{Admission, ProvisionPolicy, ProvisionRequestInfo, Refusal};

/// `extra_data` key naming the registered token that signed a `v1:` token.
pub const TOKEN_ID_KEY: &str = "satusky.dev/token-id";
/// `extra_data` key with the token's expiry, RFC 3339.
pub const EXPIRES_AT_KEY: &str = "satusky.dev/expires-at";

const V1_PREFIX: &str = "v1:";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

type HmacSha256 = Hmac<Sha256>;

/// Why a join token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinTokenError {
    /// The request carried no join token.
    #[error("no join token")]
    Missing,
    /// The token is neither a plain token nor a well-formed `v1:` token.
    #[error("malformed join token")]
    Malformed,
    /// No registered key matches the token.
    #[error("unknown join token")]
    Unknown,
    /// The HMAC does not verify.
    #[error("join token signature does not verify")]
    BadSignature,
    /// The token or its key has expired.
    #[error("join token {token_id} expired at {expired_at}")]
    Expired {
        /// Registered token id.
        token_id: String,
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
    /// The key has been revoked.
    #[error("join token {token_id} is revoked")]
    Revoked {
        /// Registered token id.
        token_id: String,
    },
    /// The named token does not exist in the registry.
    #[error("no registered join token named {token_id}")]
    NoSuchToken {
        /// Registered token id.
        token_id: String,
    },
}

/// The secret of a join token: the plain token string, also the HMAC key of the
/// signed tokens derived from it. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinTokenKey(String);

impl JoinTokenKey {
    /// A fresh random key: 43 base62 characters.
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let s: String = (0..43)
            .map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())]))
            .collect();
        Self(s)
    }

    /// Wraps an existing plain token (e.g. loaded from the store).
    pub fn from_plain(plain: impl Into<String>) -> Self {
        Self(plain.into())
    }

    /// The plain token; treat as a secret.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Signs `extra_data` into a `v1:` token.
    pub fn sign(&self, extra_data: &BTreeMap<String, String>) -> String {
        let signature = self.mac(extra_data);
        let body = SignedBody {
            extra_data: extra_data.clone(),
            signature: STANDARD.encode(signature),
        };
        // Serialising a map of strings cannot fail.
        let json = serde_json::to_vec(&body).unwrap_or_default();
        format!("{V1_PREFIX}{}", STANDARD.encode(json))
    }

    fn mac(&self, extra_data: &BTreeMap<String, String>) -> Vec<u8> {
        let mut mac = self.hmac();
        mac.update(&extra_data_message(extra_data));
        mac.finalize().into_bytes().to_vec()
    }

    fn hmac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        <HmacSha256 as Mac>::new_from_slice(self.0.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    fn verify_signature(
        &self,
        extra_data: &BTreeMap<String, String>,
        signature: &[u8],
    ) -> Result<(), JoinTokenError> {
        let mut mac = self.hmac();
        mac.update(&extra_data_message(extra_data));
        mac.verify_slice(signature)
            .map_err(|_| JoinTokenError::BadSignature)
    }

    fn matches_plain(&self, candidate: &str) -> bool {
        let a = self.0.as_bytes();
        let b = candidate.as_bytes();
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for JoinTokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinTokenKey(<redacted>)")
    }
}

fn extra_data_message(extra_data: &BTreeMap<String, String>) -> Vec<u8> {
    // A BTreeMap serialises with sorted keys, as Go's encoding/json does for maps.
    serde_json::to_vec(extra_data).unwrap_or_default()
}

#[derive(Serialize, Deserialize)]
struct SignedBody {
    extra_data: BTreeMap<String, String>,
    signature: String,
}

/// A join token as presented by a machine, parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedJoinToken {
    /// A plain shared token.
    Plain(String),
    /// A signed `v1:` token.
    Signed {
        /// The signed bindings.
        extra_data: BTreeMap<String, String>,
        /// The raw HMAC.
        signature: Vec<u8>,
    },
}

impl ParsedJoinToken {
    /// Parses a token string.
    pub fn parse(token: &str) -> Result<Self, JoinTokenError> {
        if token.is_empty() {
            return Err(JoinTokenError::Missing);
        }
        let Some(rest) = token.strip_prefix(V1_PREFIX) else {
            if token.contains(':') {
                return Err(JoinTokenError::Malformed);
            }
            return Ok(Self::Plain(token.to_owned()));
        };
        let json = STANDARD
            .decode(rest)
            .map_err(|_| JoinTokenError::Malformed)?;
        let body: SignedBody =
            serde_json::from_slice(&json).map_err(|_| JoinTokenError::Malformed)?;
        let signature = STANDARD
            .decode(body.signature)
            .map_err(|_| JoinTokenError::Malformed)?;
        Ok(Self::Signed {
            extra_data: body.extra_data,
            signature,
        })
    }

    /// The registered token id this token names (`None`: the default token).
    pub fn token_id(&self) -> Option<&str> {
        match self {
            Self::Plain(_) => None,
            Self::Signed { extra_data, .. } => extra_data.get(TOKEN_ID_KEY).map(String::as_str),
        }
    }
}

/// What a verified token admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The registered token that admitted it.
    pub token_id: String,
    /// Bindings from `extra_data` other than the token id and the expiry.
    pub bindings: BTreeMap<String, String>,
}

/// The state of a registered token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Usable.
    Active,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
}

#[derive(Debug)]
struct TokenRecord {
    key: JoinTokenKey,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
    use_count: u64,
}

#[derive(Debug, Default)]
struct RegistryInner {
    tokens: HashMap<String, TokenRecord>,
    default_id: Option<String>,
}

/// An in-memory set of named join tokens with expiry, revocation and a default token.
/// It implements [`ProvisionPolicy`]; the control plane will back the same checks with
/// its store.
#[derive(Debug, Default)]
pub struct JoinTokenRegistry {
    inner: RwLock<RegistryInner>,
}

impl JoinTokenRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a new random key under `id` and returns it. The first token becomes
    /// the default.
    pub fn create(&self, id: &str, expires_at: Option<DateTime<Utc>>) -> JoinTokenKey {
        let key = JoinTokenKey::generate();
        self.insert(id, key.clone(), expires_at);
        key
    }

    /// Registers an existing key under `id`. The first token becomes the default.
    pub fn insert(&self, id: &str, key: JoinTokenKey, expires_at: Option<DateTime<Utc>>) {
        let mut inner = self.write();
        inner.tokens.insert(
            id.to_owned(),
            TokenRecord {
                key,
                expires_at,
                revoked: false,
                use_count: 0,
            },
        );
        if inner.default_id.is_none() {
            inner.default_id = Some(id.to_owned());
        }
    }

    /// Makes `id` the default token.
    pub fn set_default(&self, id: &str) -> Result<(), JoinTokenError> {
        let mut inner = self.write();
        if !inner.tokens.contains_key(id) {
            return Err(JoinTokenError::NoSuchToken {
                token_id: id.to_owned(),
            });
        }
        inner.default_id = Some(id.to_owned());
        Ok(())
    }

    /// Revokes (or, with `revoked = false`, un-revokes) `id`.
    pub fn set_revoked(&self, id: &str, revoked: bool) -> Result<(), JoinTokenError> {
        let mut inner = self.write();
        let record = inner
            .tokens
            .get_mut(id)
            .ok_or_else(|| JoinTokenError::NoSuchToken {
                token_id: id.to_owned(),
            })?;
        record.revoked = revoked;
        Ok(())
    }

    /// Revokes `id`.
    pub fn revoke(&self, id: &str) -> Result<(), JoinTokenError> {
        self.set_revoked(id, true)
    }

    /// Issues a signed `v1:` token for registered key `id`, carrying `bindings` and an
    /// optional expiry of its own.
    pub fn issue(
        &self,
        id: &str,
        bindings: BTreeMap<String, String>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<String, JoinTokenError> {
        let inner = self.read();
        let record = inner
            .tokens
            .get(id)
            .ok_or_else(|| JoinTokenError::NoSuchToken {
                token_id: id.to_owned(),
            })?;
        let mut extra = bindings;
        extra.insert(TOKEN_ID_KEY.to_owned(), id.to_owned());
        if let Some(at) = expires_at {
            extra.insert(
                EXPIRES_AT_KEY.to_owned(),
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        }
        Ok(record.key.sign(&extra))
    }

    /// The state of `id` at `now`.
    pub fn state(&self, id: &str, now: DateTime<Utc>) -> Option<TokenState> {
        let inner = self.read();
        inner.tokens.get(id).map(|r| record_state(r, now))
    }

    /// How many successful verifications `id` has seen.
    pub fn use_count(&self, id: &str) -> Option<u64> {
        self.read().tokens.get(id).map(|r| r.use_count)
    }

    /// Verifies a presented token at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedToken, JoinTokenError> {
        let parsed = ParsedJoinToken::parse(token)?;
        let mut inner = self.write();
        let (token_id, mut bindings) = match &parsed {
            ParsedJoinToken::Plain(plain) => {
                let id = inner
                    .tokens
                    .iter()
                    .find(|(_, r)| r.key.matches_plain(plain))
                    .map(|(id, _)| id.clone())
                    .ok_or(JoinTokenError::Unknown)?;
                (id, BTreeMap::new())
            }
            ParsedJoinToken::Signed {
                extra_data,
                signature,
            } => {
                let id = match parsed.token_id() {
                    Some(id) => id.to_owned(),
                    None => inner.default_id.clone().ok_or(JoinTokenError::Unknown)?,
                };
                let record = inner.tokens.get(&id).ok_or(JoinTokenError::Unknown)?;
                record.key.verify_signature(extra_data, signature)?;
                if let Some(raw) = extra_data.get(EXPIRES_AT_KEY) {
                    let at = DateTime::parse_from_rfc3339(raw)
                        .map_err(|_| JoinTokenError::Malformed)?
                        .with_timezone(&Utc);
                    if now >= at {
                        return Err(JoinTokenError::Expired {
                            token_id: id,
                            expired_at: at,
                        });
                    }
                }
                (id, extra_data.clone())
            }
        };
        let record = inner
            .tokens
            .get_mut(&token_id)
            .ok_or(JoinTokenError::Unknown)?;
        if record.revoked {
            return Err(JoinTokenError::Revoked { token_id });
        }
        if let Some(at) = record.expires_at.filter(|at| now >= *at) {
            return Err(JoinTokenError::Expired {
                token_id,
                expired_at: at,
            });
        }
        record.use_count += 1;
        bindings.remove(TOKEN_ID_KEY);
        bindings.remove(EXPIRES_AT_KEY);
        Ok(VerifiedToken { token_id, bindings })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, RegistryInner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, RegistryInner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn record_state(r: &TokenRecord, now: DateTime<Utc>) -> TokenState {
    if r.revoked {
        TokenState::Revoked
    } else if r.expires_at.is_some_and(|at| now >= at) {
        TokenState::Expired
    } else {
        TokenState::Active
    }
}

impl From<JoinTokenError> for Refusal {
    fn from(e: JoinTokenError) -> Self {
        match e {
            JoinTokenError::Missing => Refusal::MissingToken,
            JoinTokenError::Expired { .. } => Refusal::ExpiredToken,
            JoinTokenError::Revoked { .. } => Refusal::RevokedToken,
            JoinTokenError::Malformed
            | JoinTokenError::Unknown
            | JoinTokenError::BadSignature
            | JoinTokenError::NoSuchToken { .. } => Refusal::InvalidToken,
        }
    }
}

#[async_trait]
impl ProvisionPolicy for JoinTokenRegistry {
    async fn admit(&self, req: &ProvisionRequestInfo) -> Result<Admission, Refusal> {
        let token = req.join_token.as_deref().unwrap_or_default();
        let verified = self.verify(token, Utc::now())?;
        Ok(Admission {
            token_id: Some(verified.token_id),
            bindings: verified.bindings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn signed_token_round_trips_with_its_bindings() {
        let reg = JoinTokenRegistry::new();
        reg.create("default", None);
        let mut b = BTreeMap::new();
        b.insert("satusky.dev/pool".to_owned(), "gpu".to_owned());
        let tok = reg.issue("default", b.clone(), None).unwrap();
        assert!(tok.starts_with("v1:"));
        let v = reg.verify(&tok, Utc::now()).unwrap();
        assert_eq!(v.token_id, "default");
        assert_eq!(v.bindings, b);
        assert_eq!(reg.use_count("default"), Some(1));
    }

    #[test]
    fn tampered_bindings_fail_the_signature() {
        let reg = JoinTokenRegistry::new();
        let key = reg.create("t", None);
        let mut b = BTreeMap::new();
        b.insert("pool".to_owned(), "a".to_owned());
        b.insert(TOKEN_ID_KEY.to_owned(), "t".to_owned());
        let sig = key.mac(&b);
        b.insert("pool".to_owned(), "b".to_owned());
        let body = SignedBody {
            extra_data: b,
            signature: STANDARD.encode(sig),
        };
        let forged = format!("v1:{}", STANDARD.encode(serde_json::to_vec(&body).unwrap()));
        assert_eq!(
            reg.verify(&forged, Utc::now()),
            Err(JoinTokenError::BadSignature)
        );
    }

    #[test]
    fn plain_tokens_match_by_equality() {
        let reg = JoinTokenRegistry::new();
        let key = reg.create("plain", None);
        assert_eq!(
            reg.verify(key.expose(), Utc::now()).unwrap().token_id,
            "plain"
        );
        assert_eq!(reg.verify("nope", Utc::now()), Err(JoinTokenError::Unknown));
        assert_eq!(reg.verify("", Utc::now()), Err(JoinTokenError::Missing));
    }

    #[test]
    fn expired_and_revoked_tokens_are_refused() {
        let now = Utc::now();
        let reg = JoinTokenRegistry::new();
        reg.create("old", Some(now - Duration::seconds(1)));
        reg.create("live", None);
        let t_old = reg.issue("old", BTreeMap::new(), None).unwrap();
        assert!(matches!(
            reg.verify(&t_old, now),
            Err(JoinTokenError::Expired { .. })
        ));
        let short = reg
            .issue("live", BTreeMap::new(), Some(now - Duration::seconds(5)))
            .unwrap();
        assert!(matches!(
            reg.verify(&short, now),
            Err(JoinTokenError::Expired { .. })
        ));
        let t_live = reg.issue("live", BTreeMap::new(), None).unwrap();
        reg.revoke("live").unwrap();
        assert_eq!(
            reg.verify(&t_live, now),
            Err(JoinTokenError::Revoked {
                token_id: "live".into()
            })
        );
        assert_eq!(reg.state("live", now), Some(TokenState::Revoked));
        reg.set_revoked("live", false).unwrap();
        assert!(reg.verify(&t_live, now).is_ok());
    }

    #[test]
    fn key_debug_output_is_redacted() {
        let key = JoinTokenKey::generate();
        assert_eq!(key.expose().len(), 43);
        assert!(!format!("{key:?}").contains(key.expose()));
    }
}
