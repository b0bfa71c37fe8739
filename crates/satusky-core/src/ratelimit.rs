//! Failed-login limiting: a sliding window of failures per key (an account
//! or an address). In memory, per control-plane replica.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: usize,
    window: Duration,
    entries: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
}

impl FailureLimiter {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(retry_after)` when the key has used up its failures in the window.
    pub fn check(&self, key: &str, now: DateTime<Utc>) -> Option<Duration> {
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let q = map.get_mut(key)?;
        while q.front().is_some_and(|t| *t + self.window <= now) {
            q.pop_front();
        }
        if q.len() >= self.max_failures {
            q.front().map(|oldest| *oldest + self.window - now)
        } else {
            None
        }
    }

    pub fn record_failure(&self, key: &str, now: DateTime<Utc>) {
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bound memory: forget keys whose failures have all expired.
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| *t + window > now));
        }
        let q = map.entry(key.to_owned()).or_default();
        q.push_back(now);
        while q.len() > self.max_failures {
            q.pop_front();
        }
    }

    pub fn reset(&self, key: &str) {
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_and_recovers_after_the_window() {
        let l = FailureLimiter::new(3, Duration::minutes(10));
        let t0 = Utc::now();
        for i in 0..3 {
            assert!(l.check("k", t0).is_none(), "attempt {i}");
            l.record_failure("k", t0);
        }
        let retry = l.check("k", t0 + Duration::minutes(1)).expect("blocked");
        assert_eq!(retry, Duration::minutes(9));
        assert!(l.check("other", t0).is_none());
        assert!(l.check("k", t0 + Duration::minutes(10)).is_none());
        l.record_failure("k", t0);
        l.reset("k");
        assert!(l.check("k", t0).is_none());
    }
}
