//! Service logs and the kernel ring buffer of one boot.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::Utc;
use tokio::sync::broadcast;

const MAX_LINES: usize = 2000;

/// A log line of a service (`""` is the kernel log).
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub source: String,
    pub line: String,
}

#[derive(Debug, Default)]
struct Inner {
    services: HashMap<String, VecDeque<String>>,
    kmsg: VecDeque<String>,
    kmsg_seq: u64,
}

/// In-memory logs, cleared on every boot like Talos's own buffers.
#[derive(Debug)]
pub(crate) struct LogStore {
    inner: Mutex<Inner>,
    live: broadcast::Sender<LogLine>,
}

impl LogStore {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            live: broadcast::channel(1024).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn clear(&self) {
        *self.lock() = Inner::default();
    }

    /// Appends a line to a service log, talosctl-style: `<time> <message>`.
    pub fn service(&self, service: &str, msg: &str) {
        let line = format!(
            "{} {msg}",
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
        let mut inner = self.lock();
        let buf = inner.services.entry(service.to_owned()).or_default();
        buf.push_back(line.clone());
        if buf.len() > MAX_LINES {
            buf.pop_front();
        }
        let _ = self.live.send(LogLine {
            source: service.to_owned(),
            line,
        });
    }

    /// Appends a kernel message, formatted like `talosctl dmesg`.
    pub fn kernel(&self, facility: &str, level: &str, msg: &str) {
        let mut inner = self.lock();
        inner.kmsg_seq += 1;
        let line = format!(
            "{facility}: {level:>7}: [{}]: {msg}",
            Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
        inner.kmsg.push_back(line.clone());
        if inner.kmsg.len() > MAX_LINES {
            inner.kmsg.pop_front();
        }
        let _ = self.live.send(LogLine {
            source: String::new(),
            line,
        });
    }

    /// Whether a service log exists.
    pub fn has_service(&self, service: &str) -> bool {
        self.lock().services.contains_key(service)
    }

    /// Lines of a service (or the kernel, for `""`) and a subscription to new ones.
    pub fn snapshot_and_subscribe(
        &self,
        source: &str,
    ) -> (Vec<String>, broadcast::Receiver<LogLine>) {
        let inner = self.lock();
        let lines = if source.is_empty() {
            inner.kmsg.iter().cloned().collect()
        } else {
            inner
                .services
                .get(source)
                .map(|b| b.iter().cloned().collect())
                .unwrap_or_default()
        };
        (lines, self.live.subscribe())
    }
}
