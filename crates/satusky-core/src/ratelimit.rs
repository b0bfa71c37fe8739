//! Failed-login limiting: a sliding window of failures per key (an account
//! or a client address), kept in the store so that every control-plane
//! replica counts the same failures and a restart forgets none.
//!
//! Keys are stored as their SHA-256 (hex): the limiter needs equality only,
//! and the store then keeps no attempted email (nor a password typed into
//! the email field), and no key longer than 64 characters.

use chrono::{DateTime, Duration, Utc};

use crate::auth;
use crate::store::{LoginFailureKind, Store, StoreResult};

/// The limit of one kind of key: at most `max_failures` failures within
/// `window`; the next attempt is refused until the oldest of them is older
/// than the window.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: usize,
    window: Duration,
}

impl FailureLimiter {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures,
            window,
        }
    }

    /// `Some(retry_after)` when the key has used up its failures in the window.
    pub async fn check(
        &self,
        store: &dyn Store,
        kind: LoginFailureKind,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Duration>> {
        if self.max_failures == 0 {
            return Ok(None);
        }
        let limit = u32::try_from(self.max_failures).unwrap_or(u32::MAX);
        let latest = store
            .login_failures_since(kind, &stored_key(key), now - self.window, limit)
            .await?;
        Ok(retry_after(&latest, self.max_failures, self.window, now))
    }

    pub async fn record_failure(
        &self,
        store: &dyn Store,
        kind: LoginFailureKind,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        store
            .record_login_failure(kind, &stored_key(key), now)
            .await
    }

    /// Forgets the key's failures (a successful login).
    /// Records `attempt` as a failure of `key` before its password is
    /// checked, then counts again: when the attempts of every replica
    /// together now exceed the limit (concurrent attempts that all passed
    /// [`FailureLimiter::check`]), the attempt is taken back and refused
    /// with the wait. `None`: it may proceed, and stays counted as a failure
    /// unless [`FailureLimiter::release`] takes it back.
    pub async fn reserve(
        &self,
        store: &dyn Store,
        kind: LoginFailureKind,
        key: &str,
        attempt: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Duration>> {
        if self.max_failures == 0 {
            return Ok(None);
        }
        let key = stored_key(key);
        store.record_login_attempt(kind, &key, now, attempt).await?;
        let limit = u32::try_from(self.max_failures.saturating_add(1)).unwrap_or(u32::MAX);
        let mut latest = store
            .login_failures_since(kind, &key, now - self.window, limit)
            .await?;
        if latest.len() <= self.max_failures {
            return Ok(None);
        }
        store.forget_login_attempt(kind, &key, attempt).await?;
        // The wait as the others' failures make it (ours is the newest).
        if let Some(i) = latest.iter().position(|t| *t == now) {
            latest.remove(i);
        }
        Ok(
            retry_after(&latest, self.max_failures, self.window, now)
                .or(Some(Duration::seconds(1))),
        )
    }

    /// Takes back an attempt [`FailureLimiter::reserve`] recorded.
    pub async fn release(
        &self,
        store: &dyn Store,
        kind: LoginFailureKind,
        key: &str,
        attempt: &str,
    ) -> StoreResult<()> {
        if self.max_failures == 0 {
            return Ok(());
        }
        store
            .forget_login_attempt(kind, &stored_key(key), attempt)
            .await?;
        Ok(())
    }

    pub async fn reset(
        &self,
        store: &dyn Store,
        kind: LoginFailureKind,
        key: &str,
    ) -> StoreResult<()> {
        store.clear_login_failures(kind, &stored_key(key)).await?;
        Ok(())
    }
}

/// The key as stored: SHA-256 (hex).
fn stored_key(key: &str) -> String {
    auth::secret_hash(key)
}

/// When `latest` (a key's failures in the window, newest first, at most
/// `max_failures`) has used up the limit, how long until the limit-th newest
/// leaves the window and an attempt is allowed again.
fn retry_after(
    latest: &[DateTime<Utc>],
    max_failures: usize,
    window: Duration,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if latest.len() < max_failures {
        return None;
    }
    let limit_th = latest.get(max_failures.checked_sub(1)?)?;
    Some(*limit_th + window - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_the_limit_nothing_is_refused() {
        let t0 = Utc::now();
        let window = Duration::minutes(10);
        assert_eq!(retry_after(&[], 3, window, t0), None);
        assert_eq!(retry_after(&[t0, t0], 3, window, t0), None);
    }

    #[test]
    fn at_the_limit_the_wait_ends_when_the_limit_th_newest_leaves_the_window() {
        let t0 = Utc::now();
        let window = Duration::minutes(10);
        let latest = [
            t0 + Duration::minutes(3),
            t0 + Duration::minutes(2),
            t0 + Duration::minutes(1),
        ];
        let now = t0 + Duration::minutes(4);
        assert_eq!(
            retry_after(&latest, 3, window, now),
            Some(Duration::minutes(7))
        );
        // With a lower limit, the newer failure decides.
        assert_eq!(
            retry_after(&latest, 2, window, now),
            Some(Duration::minutes(8))
        );
    }

    #[test]
    fn keys_are_stored_hashed() {
        let k = stored_key("ann@example.com");
        assert_eq!(k.len(), 64);
        assert!(!k.contains("ann"));
        assert_eq!(k, stored_key("ann@example.com"));
        assert_ne!(k, stored_key("bob@example.com"));
    }
}
