//! Signed machine join tokens: `sjt1.<base64url(JSON claims)>.<base64url(HMAC-SHA256)>`.
//!
//! The claims name the token record (`tid`), its organization (`org`, an id)
//! and its expiry (`exp`, Unix seconds). The HMAC key is the platform's
//! 32-byte join-token key, so the provisioning server can check a token
//! offline ([`verify`]); full verification also needs the record to exist,
//! not be revoked and not be expired (`Services::verify_join_token`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The platform's 32-byte key that signs join tokens. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// A key from its base64 form (32 bytes).
    pub fn from_base64(key: &str) -> crate::Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .map_err(|_| crate::Error::validation("the join-token key is not valid base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| crate::Error::validation("the join-token key must be 32 bytes"))?;
        Ok(Self(key))
    }

    /// A key derived from another secret (e.g. the secret-box key), so that
    /// an installation needs to configure only one.
    pub fn derive(secret: &[u8], purpose: &str) -> Self {
        Self(hmac_sha256(secret, purpose.as_bytes()))
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// First segment of every token.
pub const PREFIX: &str = "sjt1";

/// What a token says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The join token record's id.
    pub tid: String,
    /// The organization's id.
    pub org: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

/// Why a token string does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the join token is malformed")]
    Malformed,
    #[error("the join token is not signed by this platform")]
    BadSignature,
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Signs claims into a token string.
pub fn sign(key: &SigningKey, claims: &Claims) -> String {
    // Serialising three plain fields cannot fail.
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let signed = format!("{PREFIX}.{payload}");
    let mac = hmac_sha256(&key.0, signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// Checks the shape and signature of a token and returns its claims. Expiry,
/// revocation and the record's existence are the caller's to check.
pub fn verify(key: &SigningKey, token: &str) -> Result<Claims, TokenError> {
    let token = token.trim();
    let (signed, mac) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (prefix, payload) = signed.split_once('.').ok_or(TokenError::Malformed)?;
    if prefix != PREFIX || payload.contains('.') {
        return Err(TokenError::Malformed);
    }
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| TokenError::Malformed)?;
    if !constant_time_eq(&mac, &hmac_sha256(&key.0, signed.as_bytes())) {
        return Err(TokenError::BadSignature);
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (RFC 4231 test case 6).
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn tokens_verify_only_with_their_key_and_untouched() {
        let key = SigningKey::new([3u8; 32]);
        let other = SigningKey::new([4u8; 32]);
        let claims = Claims {
            tid: "t1".to_owned(),
            org: "o1".to_owned(),
            exp: 1_900_000_000,
        };
        let token = sign(&key, &claims);
        assert!(token.starts_with("sjt1."));
        assert_eq!(verify(&key, &token), Ok(claims.clone()));
        assert_eq!(verify(&other, &token), Err(TokenError::BadSignature));
        let forged = sign(
            &other,
            &Claims {
                org: "o2".to_owned(),
                ..claims
            },
        );
        let (_, forged_payload) = forged.split_once('.').unwrap();
        let (forged_payload, _) = forged_payload.split_once('.').unwrap();
        let (head, _) = token.split_once('.').unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        let (_, mac) = rest.split_once('.').unwrap();
        let swapped = format!("{head}.{forged_payload}.{mac}");
        assert_eq!(verify(&key, &swapped), Err(TokenError::BadSignature));
        for bad in ["", "sjt1", "sjt1.x", "sjt2.a.b", "sjt1.a.b.c", "sjt1.a.!!"] {
            assert_eq!(verify(&key, bad), Err(TokenError::Malformed), "{bad}");
        }
    }
}
