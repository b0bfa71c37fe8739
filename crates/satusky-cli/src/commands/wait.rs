//! `deploy --wait`: follow the app's events over the WebSocket (from the
//! last event before the deploy) and read the app's status after each event
//! and every 2 s, until the new release is available (success), degraded
//! (exit 1 with the reason) or the timeout passes (exit 1 with what was seen
//! last). Without a WebSocket (a proxy that refuses the upgrade) it polls.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use satusky_client::{Client, ClientError, EventStream};
use satusky_types::apps::{App, AppEvent, AppPhase, AppStatus, Deployed};
use tokio::time::Instant;

use crate::app_views::{phase, phase_with_reason};
use crate::error::CliError;

const POLL: Duration = Duration::from_secs(2);

/// What the status says about release `n`.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Available,
    Failed(String),
    Waiting(String),
}

pub fn verdict(app: &App, n: u64, generation: u64) -> Verdict {
    let s = &app.status;
    if let Some(cur) = app.current_release
        && cur > n
    {
        return Verdict::Failed(format!(
            "release {n} was replaced by release {cur} before it became available"
        ));
    }
    let ours = s.observed_release == Some(n);
    match s.phase {
        AppPhase::Available if ours => Verdict::Available,
        AppPhase::Degraded if ours || s.observed_generation >= generation => {
            Verdict::Failed(reason(s))
        }
        AppPhase::Deleting => Verdict::Failed("the app is being deleted".to_owned()),
        _ => Verdict::Waiting(progress(s, n)),
    }
}

/// `CrashLoopBackOff: back-off restarting failed container`, from the
/// status or else from the first replica with a reason.
pub fn reason(s: &AppStatus) -> String {
    let replica = s.replicas.iter().find(|r| r.reason.is_some());
    match (&s.reason, &s.message) {
        (Some(r), Some(m)) => format!("{r}: {m}"),
        (Some(r), None) => match replica {
            Some(p) => format!("{r} (pod {})", p.pod),
            None => r.clone(),
        },
        (None, m) => match replica {
            Some(p) => format!(
                "{} (pod {}){}",
                p.reason.as_deref().unwrap_or_default(),
                p.pod,
                m.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
            ),
            None => m
                .clone()
                .unwrap_or_else(|| "the app is not healthy".to_owned()),
        },
    }
}

fn progress(s: &AppStatus, n: u64) -> String {
    let mut text = format!("{}/{} replicas ready", s.ready_replicas, s.desired_replicas);
    if s.observed_release == Some(n) {
        let _ = write!(text, ", {}", phase_with_reason(s));
    } else {
        let _ = write!(
            text,
            ", waiting for release {n} to be picked up ({})",
            phase(s.phase)
        );
    }
    if let Some(r) = s.replicas.iter().find_map(|r| r.reason.as_deref()) {
        let _ = write!(text, " [{r}]");
    }
    text
}

/// Shows progress on stderr: a spinner on a terminal, plain lines otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    last: String,
}

impl Progress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            last: String::new(),
        }
    }

    pub fn status(&mut self, text: &str) {
        if text == self.last {
            return;
        }
        text.clone_into(&mut self.last);
        match &self.bar {
            Some(bar) => bar.set_message(text.to_owned()),
            None => eprintln!("{text}"),
        }
    }

    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

async fn next_event(stream: &mut Option<EventStream>) -> Option<Result<AppEvent, ClientError>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Waits for release `deployed.release` of the app to become available.
pub async fn rollout(
    client: &Client,
    org: &str,
    deployed: &Deployed,
    from: u64,
    timeout: Duration,
    prefix: &str,
) -> Result<(), CliError> {
    let name = deployed.app.name.as_str();
    let n = deployed.release.number;
    let generation = deployed.app.generation;
    let deadline = Instant::now() + timeout;
    let mut progress = Progress::new();
    progress.status(&format!("release {n}: waiting for the rollout"));
    let mut stream = match client.events_stream(org, name, from).await {
        Ok(s) => Some(s),
        Err(e) => {
            progress.line(&format!(
                "no event stream ({e}); polling the app's status instead"
            ));
            None
        }
    };
    let mut app = match client.get_app(org, name).await {
        Ok(app) => app,
        Err(e) => {
            progress.finish();
            return Err(e.into());
        }
    };
    let result = loop {
        match verdict(&app, n, generation) {
            Verdict::Available => break Ok(()),
            Verdict::Failed(why) => {
                break Err(CliError::refused(format!(
                    "release {n} of `{name}` failed: {why}"
                ))
                .hint(format!(
                    "`{prefix} app status {name}` shows each replica; `{prefix} app rollback {name}` goes back to the previous release"
                )));
            }
            Verdict::Waiting(text) => progress.status(&format!("release {n}: {text}")),
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                let s = &app.status;
                break Err(CliError::refused(format!(
                    "timed out after {} s waiting for release {n} of `{name}`; last seen: {}, {}/{} replicas ready{}",
                    timeout.as_secs(),
                    phase(s.phase),
                    s.ready_replicas,
                    s.desired_replicas,
                    if s.reason.is_some() || s.replicas.iter().any(|r| r.reason.is_some()) {
                        format!(" ({})", reason(s))
                    } else {
                        String::new()
                    }
                ))
                .hint(format!("`{prefix} app events {name}` shows what happened; --timeout waits longer")));
            }
            event = next_event(&mut stream) => match event {
                Some(Ok(e)) => progress.line(&format!("  {}  {}", e.kind, e.message)),
                Some(Err(e)) => {
                    progress.line(&format!("event stream lost ({e}); polling the app's status instead"));
                    stream = None;
                }
                None => stream = None,
            },
            () = tokio::time::sleep(POLL) => {}
        }
        app = match client.get_app(org, name).await {
            Ok(app) => app,
            Err(e) => break Err(e.into()),
        };
    };
    progress.finish();
    if let Some(s) = stream {
        s.close().await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use satusky_types::apps::ReplicaStatus;

    fn app(phase: AppPhase, observed: Option<u64>, current: u64) -> App {
        serde_json::from_value(serde_json::json!({
            "id": "a", "name": "web", "environment": "production", "org": "acme",
            "generation": 3, "current_release": current, "default_domain": "web.example",
            "status": {"phase": phase, "observed_generation": 3, "observed_release": observed,
                "desired_replicas": 2, "ready_replicas": 1, "updated_replicas": 1},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            verdict(&app(AppPhase::Available, Some(2), 2), 2, 3),
            Verdict::Available
        );
        // The previous release being available is not success.
        assert!(matches!(
            verdict(&app(AppPhase::Available, Some(1), 2), 2, 4),
            Verdict::Waiting(_)
        ));
        assert!(matches!(
            verdict(&app(AppPhase::Available, Some(3), 3), 2, 3),
            Verdict::Failed(_)
        ));
        let mut degraded = app(AppPhase::Degraded, Some(2), 2);
        degraded.status.replicas.push(ReplicaStatus {
            pod: "web-1".into(),
            node: None,
            phase: "Running".into(),
            ready: false,
            restarts: 4,
            reason: Some("CrashLoopBackOff".into()),
            release: Some(2),
        });
        assert_eq!(
            verdict(&degraded, 2, 3),
            Verdict::Failed("CrashLoopBackOff (pod web-1)".into())
        );
        degraded.status.reason = Some("CrashLoopBackOff".into());
        degraded.status.message = Some("back-off restarting".into());
        assert_eq!(
            verdict(&degraded, 2, 3),
            Verdict::Failed("CrashLoopBackOff: back-off restarting".into())
        );
    }
}
