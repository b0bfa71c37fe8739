//! Publishes runtime events to the SideroLink event sink, like Talos's
//! `EventsSinkController`: plaintext gRPC, one `Publish` per event, the whole backlog
//! on first connect, resume after the last acknowledged id, drain before shutdown.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use satusky_proto::events::EventRequest;
use satusky_proto::events::event_sink_service_client::EventSinkServiceClient;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};

use crate::machine::Shared;

async fn connect(addr: &str, source: Option<IpAddr>) -> Option<EventSinkServiceClient<Channel>> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    crate::net::connect_from(endpoint, source)
        .await
        .ok()
        .map(EventSinkServiceClient::new)
}

fn link_up(shared: &Shared) -> bool {
    shared.lock().link_up
}

/// Publishes until `cancel` flips, then drains what is left (the caller bounds the
/// drain with a timeout).
pub(crate) async fn publish_loop(
    shared: Arc<Shared>,
    addr: String,
    mut cancel: watch::Receiver<bool>,
) {
    let mut last_acked: Option<String> = None;
    let mut client: Option<EventSinkServiceClient<Channel>> = None;
    loop {
        let cancelled = *cancel.borrow();
        let notified = shared.events.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        let pending = if cancelled || link_up(&shared) {
            shared.events.after(last_acked.as_deref())
        } else {
            Vec::new()
        };
        if pending.is_empty() && cancelled {
            return;
        }
        let mut failed = false;
        for ev in pending {
            if client.is_none() {
                client = connect(&addr, shared.source_ip).await;
            }
            let Some(c) = client.as_mut() else {
                failed = true;
                break;
            };
            let req = EventRequest {
                data: Some(prost_types::Any {
                    type_url: format!("{}{}", satusky_proto::SINK_TYPE_URL_PREFIX, ev.name),
                    value: ev.value,
                }),
                id: ev.id.clone(),
                actor_id: ev.actor_id,
            };
            match c.publish(req).await {
                Ok(_) => last_acked = Some(ev.id),
                Err(status) => {
                    tracing::debug!(machine.id = %shared.uuid, error = %status, "event publish failed");
                    client = None;
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            if cancelled {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(shared.config.timings.sink_retry) => {}
                _ = cancel.changed() => {}
            }
            continue;
        }
        if cancelled {
            continue;
        }
        tokio::select! {
            () = &mut notified => {}
            _ = cancel.changed() => {}
            // Link state changes are not signalled; poll for them.
            () = tokio::time::sleep(shared.config.timings.sink_retry) => {}
        }
    }
}
