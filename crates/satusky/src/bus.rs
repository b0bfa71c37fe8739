//! The NATS bus: change notices shared by every control-plane replica.
//!
//! Each replica publishes notices as JSON on one subject and subscribes to
//! it; received notices (its own included) are fanned out to local
//! subscribers. Notices are hints, so if NATS is briefly unreachable the
//! periodic resync catches up.

use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt as _;
use satusky_core::bus::{Bus, Notice};
use tokio::sync::broadcast;

#[derive(Debug)]
pub struct NatsBus {
    client: async_nats::Client,
    subject: String,
    local: broadcast::Sender<Notice>,
}

impl NatsBus {
    pub async fn connect(url: &str, subject: &str) -> anyhow::Result<Arc<Self>> {
        let client = async_nats::connect(url)
            .await
            .with_context(|| format!("connecting to NATS at {url}"))?;
        let mut sub = client
            .subscribe(subject.to_owned())
            .await
            .context("subscribing to the notice subject")?;
        let (local, _) = broadcast::channel(4096);
        let fanout = local.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                match serde_json::from_slice::<Notice>(&msg.payload) {
                    Ok(n) => {
                        let _ = fanout.send(n);
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed notice"),
                }
            }
        });
        Ok(Arc::new(Self {
            client,
            subject: subject.to_owned(),
            local,
        }))
    }
}

impl Bus for NatsBus {
    fn publish(&self, notice: Notice) {
        let Ok(payload) = serde_json::to_vec(&notice) else {
            return;
        };
        let client = self.client.clone();
        let subject = self.subject.clone();
        tokio::spawn(async move {
            // Notices are few and latency matters more than batching: flush each.
            let sent = match client.publish(subject, payload.into()).await {
                Ok(()) => client.flush().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not publish a notice; the resync will catch up");
            }
        });
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.local.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs when `SATUSKY_TEST_NATS_URL` is set (CI starts nats-server); set but
    /// unreachable fails.
    #[expect(
        clippy::disallowed_methods,
        reason = "the test registry variable is read here only"
    )]
    fn nats_url() -> Option<String> {
        std::env::var(satusky_types::env::SATUSKY_TEST_NATS_URL).ok()
    }

    #[tokio::test]
    async fn a_notice_published_on_one_replica_reaches_the_others() {
        let Some(url) = nats_url() else {
            eprintln!("SATUSKY_TEST_NATS_URL not set: NATS bus test skipped");
            return;
        };
        let subject = format!("satusky.test.{}", uuid_like());
        let a = NatsBus::connect(&url, &subject).await.unwrap();
        let b = NatsBus::connect(&url, &subject).await.unwrap();
        let mut on_b = b.subscribe();
        let mut on_a = a.subscribe();
        // A subscription is live once the server has processed it; a replica's
        // own publish after it proves that (one connection keeps its order).
        for (bus, rx) in [(&a, &mut on_a), (&b, &mut on_b)] {
            let probe = Notice::AppChanged {
                app_id: format!("probe-{}", uuid_like()),
            };
            bus.publish(probe.clone());
            next_matching(rx, &probe).await;
        }
        let notice = Notice::AppChanged {
            app_id: "app-1".into(),
        };
        a.publish(notice.clone());
        next_matching(&mut on_b, &notice).await;
        next_matching(&mut on_a, &notice).await;
    }

    /// Waits (at most 5 s) until `want` arrives, skipping probes from the warm-up.
    async fn next_matching(rx: &mut broadcast::Receiver<Notice>, want: &Notice) {
        let wait = async {
            loop {
                let got = rx.recv().await.unwrap();
                if got == *want {
                    return;
                }
                assert!(
                    matches!(&got, Notice::AppChanged { app_id } if app_id.starts_with("probe-")),
                    "unexpected {got:?}"
                );
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), wait)
            .await
            .expect("the notice arrives");
    }

    fn uuid_like() -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{nanos}")
    }
}
