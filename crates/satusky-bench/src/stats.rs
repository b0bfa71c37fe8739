//! Latency samples and their summary.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub name: String,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests_per_sec: f64,
}

impl Summary {
    pub fn from_samples(name: &str, mut samples: Vec<Duration>, wall: Duration) -> Self {
        samples.sort();
        let pct = |p: f64| {
            let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
            samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Self {
            name: name.to_owned(),
            samples: samples.len(),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            requests_per_sec: samples.len() as f64 / wall.as_secs_f64().max(1e-9),
        }
    }
}

/// Runs `op` `n` times after `warmup` runs, with `concurrency` callers.
pub async fn measure<F, Fut>(
    name: &str,
    n: usize,
    warmup: usize,
    concurrency: usize,
    op: F,
) -> anyhow::Result<Summary>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    for _ in 0..warmup {
        op().await?;
    }
    let per_worker = n.div_ceil(concurrency.max(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let t = Instant::now();
                op().await?;
                out.push(t.elapsed());
            }
            anyhow::Ok(out)
        }));
    }
    let mut samples = Vec::with_capacity(n);
    for t in tasks {
        samples.extend(t.await??);
    }
    Ok(Summary::from_samples(name, samples, start.elapsed()))
}
