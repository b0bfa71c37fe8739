//! Sealing secrets at rest: XChaCha20-Poly1305 with a 256-bit platform key
//! and a random 192-bit nonce per seal. The sealed form is `v1 || nonce ||
//! ciphertext+tag`; the associated data binds a value to what it belongs to
//! (e.g. an app id), so a sealed blob cannot be moved to another owner.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;

use crate::{Error, Result};

const VERSION: u8 = 1;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key>)")
    }
}

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// A key from its base64 form (32 bytes).
    pub fn from_base64(key: &str) -> Result<Self> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| Error::validation("the secret key is not valid base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::validation("the secret key must be 32 bytes"))?;
        Ok(Self::new(&key))
    }

    /// A fresh random key, base64.
    pub fn generate_key() -> String {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        STANDARD.encode(k)
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| Error::internal("sealing failed"))?;
        let mut out = Vec::with_capacity(1 + 24 + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < 1 + 24 + 16 || sealed[0] != VERSION {
            return Err(Error::internal("sealed value is malformed"));
        }
        let (nonce, ct) = sealed[1..].split_at(24);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| Error::internal("sealed value does not open with this key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_owner() {
        let b = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let sealed = b.seal(b"hunter2", b"app:1").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(b.open(&sealed, b"app:1").unwrap(), b"hunter2");
        assert!(b.open(&sealed, b"app:2").is_err(), "bound to its owner");
        let other = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        assert!(other.open(&sealed, b"app:1").is_err());
        assert_ne!(
            b.seal(b"x", b"").unwrap(),
            b.seal(b"x", b"").unwrap(),
            "fresh nonce each time"
        );
        assert!(SecretBox::from_base64("c2hvcnQ=").is_err());
    }
}
