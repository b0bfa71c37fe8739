//! Credentials: argon2id password hashes, bearer secrets and who a request
//! is acting as.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use crate::Error;

/// Prefix of session bearer secrets.
pub const SESSION_PREFIX: &str = "sk_sess_";
/// Prefix of personal API token secrets.
pub const TOKEN_PREFIX: &str = "sk_pat_";

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id recommendation: m=19 MiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(e.to_string()))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash computed when no user matched, so that a login for an unknown
/// account costs the same time as one with a wrong password.
pub fn dummy_verify(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let h = DUMMY.get_or_init(|| hash_password("dummy-password-for-timing").unwrap_or_default());
    let _ = verify_password(password, h);
}

/// A new bearer secret: the prefix and 32 random bytes, base64url.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Secrets are high-entropy, so a plain SHA-256 is the right stored form.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Who is calling, established from a bearer secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub credential: Credential,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session {
        id: String,
        expires_at: DateTime<Utc>,
    },
    Token {
        id: String,
        org_id: Option<String>,
        expires_at: Option<DateTime<Utc>>,
    },
}

impl Principal {
    /// The organization a personal token is limited to, if any.
    pub fn token_org(&self) -> Option<&str> {
        match &self.credential {
            Credential::Token { org_id, .. } => org_id.as_deref(),
            Credential::Session { .. } => None,
        }
    }

    /// Whether this principal may see the organization at all.
    pub fn can_reach_org(&self, org_id: &str) -> bool {
        self.token_org().is_none_or(|scoped| scoped == org_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("anything", "not-a-hash"));
    }

    #[test]
    fn secrets_are_unique_prefixed_and_hashed_stably() {
        let a = new_secret(TOKEN_PREFIX);
        let b = new_secret(TOKEN_PREFIX);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_ne!(a, b);
        assert_eq!(secret_hash(&a), secret_hash(&a));
        assert_ne!(secret_hash(&a), secret_hash(&b));
        assert_eq!(secret_hash(&a).len(), 64);
    }
}
