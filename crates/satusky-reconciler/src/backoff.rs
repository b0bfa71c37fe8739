//! Per-app exponential backoff: capped, jittered, reset on success.

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng as _;

use crate::config::BackoffConfig;

/// The un-jittered delay after `failures` consecutive failures (1, 2, …):
/// `initial * 2^(failures-1)`, capped at `max`.
pub fn base_delay(initial: Duration, max: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    initial.saturating_mul(1u32 << exp).min(max)
}

/// "Equal jitter": uniformly in `[base/2, base]`, so retries of many apps
/// spread out but never come back sooner than half the base delay.
pub fn jittered(base: Duration) -> Duration {
    let half = base / 2;
    let extra = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(extra)
}

#[derive(Debug)]
pub struct Backoff {
    cfg: BackoffConfig,
    failures: HashMap<String, u32>,
}

impl Backoff {
    pub fn new(cfg: BackoffConfig) -> Self {
        Self {
            cfg,
            failures: HashMap::new(),
        }
    }

    /// Records a failure of `key` and returns how long to wait before the next try.
    pub fn failed(&mut self, key: &str) -> Duration {
        let n = self.failures.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        jittered(base_delay(self.cfg.initial, self.cfg.max, *n))
    }

    pub fn succeeded(&mut self, key: &str) {
        self.failures.remove(key);
    }

    pub fn failures(&self, key: &str) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(2));
        assert_eq!(base_delay(i, m, 1), Duration::from_millis(100));
        assert_eq!(base_delay(i, m, 2), Duration::from_millis(200));
        assert_eq!(base_delay(i, m, 4), Duration::from_millis(800));
        assert_eq!(base_delay(i, m, 6), m);
        assert_eq!(base_delay(i, m, 1000), m);
    }

    #[test]
    fn jitter_stays_between_half_and_the_whole_delay() {
        for _ in 0..200 {
            let d = jittered(Duration::from_secs(1));
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
        }
    }

    #[test]
    fn success_resets_the_count() {
        let mut b = Backoff::new(BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            ..BackoffConfig::default()
        });
        b.failed("a");
        b.failed("a");
        let third = b.failed("a");
        assert!(third >= Duration::from_millis(200), "{third:?}");
        assert_eq!(b.failures("a"), 3);
        b.succeeded("a");
        assert_eq!(b.failures("a"), 0);
        assert!(b.failed("a") <= Duration::from_millis(100));
    }
}
