//! The kernel-log stream (`talos.logging.kernel=tcp://…`, `KmsgLogDeliveryController`):
//! one JSON object per line with `msg`, `talos-time`, `talos-level`, `facility`,
//! `seq`, `clock` and `priority`, sent inside the tunnel while the link is up.

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::logs::KmsgRecord;
use crate::machine::Shared;

fn json_line(r: &KmsgRecord) -> String {
    let mut line = serde_json::json!({
        "msg": r.msg,
        "talos-time": r.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "talos-level": r.level,
        "facility": r.facility,
        "seq": r.seq,
        "clock": r.clock,
        "priority": r.level,
    })
    .to_string();
    line.push('\n');
    line
}

/// Streams kernel messages to `addr` (`host:port`) until `cancel` flips.
pub(crate) async fn stream_loop(
    shared: Arc<Shared>,
    addr: String,
    mut cancel: watch::Receiver<bool>,
) {
    let mut sent: u64 = 0;
    let mut conn: Option<tokio::net::TcpStream> = None;
    loop {
        let notified = shared.logs.kmsg_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if *cancel.borrow() {
            return;
        }
        let up = shared.lock().link_up;
        let pending = if up {
            shared.logs.kmsg_after(sent)
        } else {
            Vec::new()
        };
        let mut failed = false;
        for r in pending {
            if conn.is_none() {
                conn = crate::net::tcp_from(&addr, shared.source_ip).await.ok();
            }
            let Some(c) = conn.as_mut() else {
                failed = true;
                break;
            };
            if c.write_all(json_line(&r).as_bytes()).await.is_err() {
                conn = None;
                failed = true;
                break;
            }
            sent = r.seq;
        }
        let wait = if failed {
            shared.config.timings.sink_retry
        } else {
            // Link state changes are not signalled; poll for them.
            shared.config.timings.sink_retry * 2
        };
        tokio::select! {
            () = &mut notified, if !failed => {}
            () = tokio::time::sleep(wait) => {}
            _ = cancel.changed() => {}
        }
    }
}
