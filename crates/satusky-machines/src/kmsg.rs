//! The kernel-log receiver: Talos's `talos.logging.kernel=tcp://…` stream, one JSON
//! object per line, tagged with the connection's source address (the machine's
//! identity inside the tunnel), as `siderolink pkg/logreceiver` does.

use std::future::Future;
use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::provision::ServeError;

/// One kernel message.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelLogRecord {
    /// The sending machine's address.
    pub peer: SocketAddr,
    /// `msg`.
    pub msg: String,
    /// `talos-time`.
    pub time: Option<DateTime<Utc>>,
    /// `talos-level`.
    pub level: String,
    /// `facility`.
    pub facility: String,
    /// `seq`.
    pub seq: Option<u64>,
    /// `clock`.
    pub clock: Option<u64>,
    /// `priority`.
    pub priority: String,
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number(v: &Value, key: &str) -> Option<u64> {
    match &v[key] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Parses one line; `None` for anything that is not a JSON object.
pub fn parse_line(peer: SocketAddr, line: &str) -> Option<KernelLogRecord> {
    let v: Value = serde_json::from_str(line).ok()?;
    if !v.is_object() {
        return None;
    }
    Some(KernelLogRecord {
        peer,
        msg: text(&v, "msg"),
        time: v["talos-time"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        level: text(&v, "talos-level"),
        facility: text(&v, "facility"),
        seq: number(&v, "seq"),
        clock: number(&v, "clock"),
        priority: text(&v, "priority"),
    })
}

/// Receives kernel logs and forwards them into a channel.
#[derive(Debug, Clone)]
pub struct KmsgReceiver {
    tx: mpsc::Sender<KernelLogRecord>,
}

impl KmsgReceiver {
    /// A receiver forwarding into `tx`.
    pub fn new(tx: mpsc::Sender<KernelLogRecord>) -> Self {
        Self { tx }
    }

    /// Accepts connections on `listener` until `shutdown` resolves. Bind it only on the
    /// server's overlay address: the source address is the only authentication.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = listener.accept() => {
                    let (stream, peer) = accepted.map_err(ServeError::Accept)?;
                    tokio::spawn(self.clone().connection(stream, peer));
                }
            }
        }
    }

    async fn connection(self, stream: TcpStream, peer: SocketAddr) {
        let mut lines = BufReader::new(stream).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => {
                    let Some(record) = parse_line(peer, &line) else {
                        tracing::debug!(peer = %peer, "skipping malformed kernel log line");
                        continue;
                    };
                    if self.tx.send(record).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(peer = %peer, error = %e, "kernel log connection failed");
                    return;
                }
            }
        }
    }
}
