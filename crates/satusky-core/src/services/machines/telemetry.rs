//! Machine telemetry: logs (Talos service logs and the kernel ring buffer,
//! once or followed) and the short metrics history (sampled periodically
//! into the store, read back as pages or followed).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use satusky_types::ErrorCode;
use satusky_types::machines::{
    MachineLogLine, MachineLogsQuery, MachineMetrics, MachineMetricsHistoryQuery, MachineState,
};
use satusky_types::page::Page;

use super::{Ctx, Services, talos_target};
use crate::authz::Action;
use crate::bus::Notice;
use crate::fleet::ports::OpsError;
use crate::fleet::streams::{LineStream, LogRequest, LogSource};
use crate::pagination::{PageRequest, paginate};
use crate::store::MachineSampleRecord;
use crate::{Error, Result};

/// Lines returned by a log read that does not follow, when not asked.
const DEFAULT_TAIL: u32 = 100;
/// At most this many lines per log read.
const MAX_TAIL: u32 = 10_000;
/// How long a log read that does not follow may take in all.
const READ_DEADLINE: Duration = Duration::from_secs(15);
/// The lease of the replica that samples the fleet.
const SAMPLER_LEASE: &str = "machine-sampler";
/// Talos calls in flight at once while sampling the fleet.
const SAMPLE_CONCURRENCY: usize = 32;

/// What one sampling pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleReport {
    /// Machines that answered and whose sample was stored.
    pub sampled: usize,
    /// Machines asked that did not answer.
    pub failed: usize,
    /// Samples deleted for being older than the retention.
    pub pruned: u64,
}

/// A followed machine log: the resolved source name and the lines.
pub struct MachineLogFollow {
    pub source: String,
    pub lines: futures::stream::BoxStream<'static, MachineLogLine>,
}

impl std::fmt::Debug for MachineLogFollow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineLogFollow")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// `kernel`, or a Talos service id: lowercase letters, digits, `.`, `_`
/// and `-`, starting with a letter or digit, at most 63 characters.
fn parse_source(source: Option<&str>) -> Result<LogSource> {
    let source = source.unwrap_or("machined");
    if source == "kernel" || source == "dmesg" {
        return Ok(LogSource::Kernel);
    }
    let valid = !source.is_empty()
        && source.len() <= 63
        && source
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && source
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !valid {
        return Err(Error::new(
            ErrorCode::InvalidQuery,
            format!(
                "source `{source}` is not a log name: use `kernel` or a Talos service id such as `machined`, `kubelet` or `containerd`"
            ),
        ));
    }
    Ok(LogSource::Service(source.to_owned()))
}

fn parse_tail(tail: Option<u32>) -> Result<u32> {
    let tail = tail.unwrap_or(DEFAULT_TAIL);
    if tail == 0 || tail > MAX_TAIL {
        return Err(Error::new(
            ErrorCode::InvalidQuery,
            format!("tail must be between 1 and {MAX_TAIL}, got {tail}"),
        ));
    }
    Ok(tail)
}

fn log_error(machine: &str, source: &LogSource, e: &OpsError) -> Error {
    match e {
        OpsError::NotFound(_) => Error::new(
            ErrorCode::MachineLogNotFound,
            format!("machine `{machine}` keeps no log named `{}`", source.name()),
        ),
        _ => Error::new(
            ErrorCode::Unavailable,
            format!(
                "machine `{machine}` did not answer: {}",
                super::ops_message(e)
            ),
        ),
    }
}

impl Services {
    /// Opens a machine log. Only the owning organization reads a machine's
    /// logs (a public machine's other viewers get 403): they show its
    /// workloads.
    async fn open_machine_log(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        q: &MachineLogsQuery,
        follow: bool,
    ) -> Result<(String, LogSource, LineStream)> {
        let source = parse_source(q.source.as_deref())?;
        let tail = parse_tail(q.tail)?;
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let f = self.find_operable(ctx, &a, machine).await?;
        let logs = self.inner.config.machine_logs.as_ref().ok_or_else(|| {
            Error::new(
                ErrorCode::Unavailable,
                "machine logs are not configured on this installation",
            )
        })?;
        let req = LogRequest {
            source: source.clone(),
            tail_lines: Some(tail),
            follow,
        };
        let lines = logs
            .logs(&talos_target(&f.machine), &req)
            .await
            .map_err(|e| log_error(&f.machine.name, &source, &e))?;
        Ok((f.machine.name, source, lines))
    }

    /// The last lines of a machine log (`tail`, default 100).
    pub async fn machine_logs(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        q: &MachineLogsQuery,
    ) -> Result<Vec<MachineLogLine>> {
        let (name, source, mut lines) = self.open_machine_log(ctx, org, machine, q, false).await?;
        let mut out = Vec::new();
        let read = async {
            while let Some(line) = lines.next().await {
                out.push(MachineLogLine {
                    source: source.name().to_owned(),
                    line: line.map_err(|e| log_error(&name, &source, &e))?,
                });
            }
            Ok::<_, Error>(())
        };
        match tokio::time::timeout(READ_DEADLINE, read).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(Error::new(
                    ErrorCode::Unavailable,
                    format!(
                        "machine `{name}` did not finish sending its `{}` log within {}s",
                        source.name(),
                        READ_DEADLINE.as_secs()
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// A machine log followed: the last `tail` lines, then lines as they are
    /// written. The stream ends when the machine ends it (reboot, link loss)
    /// or on an error, which it reports as a last line from `satusky`.
    pub async fn follow_machine_logs(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        q: &MachineLogsQuery,
    ) -> Result<MachineLogFollow> {
        let (name, source, lines) = self.open_machine_log(ctx, org, machine, q, true).await?;
        let source_name = source.name().to_owned();
        let src = source_name.clone();
        let lines = lines
            .map(move |l| match l {
                Ok(line) => MachineLogLine {
                    source: src.clone(),
                    line,
                },
                Err(e) => MachineLogLine {
                    source: "satusky".to_owned(),
                    line: format!(
                        "the `{src}` log of machine `{name}` stopped: {}",
                        super::ops_message(&e)
                    ),
                },
            })
            .boxed();
        Ok(MachineLogFollow {
            source: source_name,
            lines,
        })
    }

    // ---- metrics history

    /// Stored samples of a machine, oldest first, paginated; the short history
    /// kept for `machine_sample_retention`.
    pub async fn machine_metrics_history(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        q: &MachineMetricsHistoryQuery,
    ) -> Result<Page<MachineMetrics>> {
        let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
        let after = match &page.after {
            Some(key) => Some(
                key.parse::<i64>()
                    .ok()
                    .and_then(DateTime::<Utc>::from_timestamp_micros)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorCode::InvalidCursor,
                            "the cursor is not one this server issued",
                        )
                    })?,
            ),
            None => q.since_seconds.map(|s| {
                let s = i64::try_from(s).unwrap_or(i64::MAX);
                self.inner.clock.now() - chrono::TimeDelta::try_seconds(s).unwrap_or_default()
            }),
        };
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let f = self.find_machine(ctx, &a, machine).await?;
        let rows = self
            .inner
            .store
            .list_machine_samples(&f.machine.id, after, page.fetch_limit())
            .await?;
        Ok(paginate(
            rows.into_iter().map(|r| r.metrics).collect(),
            &page,
            |m: &MachineMetrics| m.at.timestamp_micros().to_string(),
        ))
    }

    /// Resolves a machine for a metrics stream (authorized like the history)
    /// and returns its id with its samples of the last `recent`.
    pub async fn machine_metrics_stream_start(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        recent: Duration,
    ) -> Result<(String, Vec<MachineMetrics>)> {
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let f = self.find_machine(ctx, &a, machine).await?;
        let since = self.inner.clock.now()
            - chrono::TimeDelta::from_std(recent).unwrap_or(chrono::TimeDelta::MAX);
        let rows = self
            .inner
            .store
            .list_machine_samples(&f.machine.id, Some(since), 1000)
            .await?;
        Ok((f.machine.id, rows.into_iter().map(|r| r.metrics).collect()))
    }

    /// Samples of a machine by id taken after `after`, for a stream that has
    /// already been authorized.
    pub async fn machine_samples_by_id(
        &self,
        machine_id: &str,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<MachineMetrics>> {
        let rows = self
            .inner
            .store
            .list_machine_samples(machine_id, after, 1000)
            .await?;
        Ok(rows.into_iter().map(|r| r.metrics).collect())
    }

    /// Asks every reachable machine with a node for a metrics sample, stores
    /// the answers, announces them on the bus and prunes samples older than
    /// the retention.
    pub async fn sample_machines(&self) -> Result<SampleReport> {
        let Some(ops) = self.inner.config.talos_ops.clone() else {
            return Ok(SampleReport::default());
        };
        let store = &self.inner.store;
        let mut targets = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let rows = store.list_all_machines(&page).await?;
            let last = rows.last().map(|m| m.id.clone());
            targets.extend(
                rows.into_iter()
                    .filter(|m| {
                        m.connected
                            && !m.talos_endpoint.is_empty()
                            && matches!(
                                m.state,
                                MachineState::Joined
                                    | MachineState::Cordoned
                                    | MachineState::Draining
                                    | MachineState::Claimed
                            )
                    })
                    .map(|m| talos_target(&m)),
            );
            let Some(last) = last else { break };
            page.after = Some(last);
        }
        let results: Vec<_> = futures::stream::iter(targets)
            .map(|t| {
                let ops = ops.clone();
                async move {
                    let r = ops.metrics(&t).await;
                    (t.machine_id, r)
                }
            })
            .buffer_unordered(SAMPLE_CONCURRENCY)
            .collect()
            .await;
        let mut report = SampleReport::default();
        let mut samples = Vec::new();
        for (machine_id, r) in results {
            match r {
                Ok(metrics) => samples.push(MachineSampleRecord {
                    machine_id,
                    metrics,
                }),
                Err(e) => {
                    report.failed += 1;
                    tracing::debug!(machine.id = %machine_id, error = %e, "machine metrics sample failed");
                }
            }
        }
        for chunk in samples.chunks(200) {
            match store.insert_machine_samples(chunk).await {
                Ok(()) => {
                    report.sampled += chunk.len();
                    for s in chunk {
                        self.inner.config.bus.publish(Notice::MachineSampled {
                            machine_id: s.machine_id.clone(),
                        });
                    }
                }
                // A machine deleted meanwhile fails its whole batch: store
                // the rest one by one.
                Err(crate::store::StoreError::NotFound) => {
                    for s in chunk {
                        if store
                            .insert_machine_samples(std::slice::from_ref(s))
                            .await
                            .is_ok()
                        {
                            report.sampled += 1;
                            self.inner.config.bus.publish(Notice::MachineSampled {
                                machine_id: s.machine_id.clone(),
                            });
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        let keep = chrono::TimeDelta::from_std(self.inner.config.machine_sample_retention)
            .unwrap_or(chrono::TimeDelta::MAX);
        report.pruned = store
            .prune_machine_samples(self.inner.clock.now() - keep)
            .await?;
        Ok(report)
    }

    /// Whether this replica samples the fleet now: one replica at a time,
    /// through the `machine-sampler` lease, held for three intervals and
    /// renewed on each one.
    async fn sampler_lease(&self, every: Duration) -> bool {
        let now = self.inner.clock.now();
        let term = chrono::TimeDelta::from_std(every * 3).unwrap_or(chrono::TimeDelta::MAX);
        match self
            .inner
            .store
            .acquire_lease(
                SAMPLER_LEASE,
                &self.inner.config.replica_id,
                now,
                now + term,
            )
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "machine sampler lease unavailable");
                false
            }
        }
    }

    /// One pass of [`Services::sample_machines`] when this replica holds (or
    /// takes) the sampler lease for the sampling interval `every`; `None`
    /// when another replica samples.
    pub async fn sample_machines_if_leader(&self, every: Duration) -> Result<Option<SampleReport>> {
        if !self.sampler_lease(every).await {
            return Ok(None);
        }
        self.sample_machines().await.map(Some)
    }

    /// Samples the fleet every `every` until `stop` resolves, while this
    /// replica holds the sampler lease (other replicas stand by).
    pub async fn run_machine_sampler(
        &self,
        every: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {
                    match self.sample_machines_if_leader(every).await {
                        Ok(Some(r)) => tracing::debug!(sampled = r.sampled, failed = r.failed, pruned = r.pruned, "machine metrics sampled"),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "machine metrics sampling failed"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_kernel_or_service_ids() {
        assert_eq!(
            parse_source(None).ok(),
            Some(LogSource::Service("machined".into()))
        );
        assert_eq!(parse_source(Some("kernel")).ok(), Some(LogSource::Kernel));
        assert_eq!(parse_source(Some("dmesg")).ok(), Some(LogSource::Kernel));
        assert_eq!(
            parse_source(Some("ext-tailscale_1.2")).ok(),
            Some(LogSource::Service("ext-tailscale_1.2".into()))
        );
        for bad in ["", "Kubelet", "../etc", "-x", "a b", &"a".repeat(64)] {
            let e = parse_source(Some(bad)).err().map(|e| e.code);
            assert_eq!(e, Some(ErrorCode::InvalidQuery), "{bad:?}");
        }
    }

    #[test]
    fn tails_are_bounded() {
        assert_eq!(parse_tail(None).ok(), Some(DEFAULT_TAIL));
        assert_eq!(parse_tail(Some(1)).ok(), Some(1));
        assert_eq!(parse_tail(Some(MAX_TAIL)).ok(), Some(MAX_TAIL));
        assert!(parse_tail(Some(0)).is_err());
        assert!(parse_tail(Some(MAX_TAIL + 1)).is_err());
    }
}
