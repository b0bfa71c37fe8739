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

/// One kernel message, as the kernel-log stream sends it.
#[derive(Debug, Clone)]
pub(crate) struct KmsgRecord {
    pub seq: u64,
    /// Microseconds since boot.
    pub clock: u64,
    pub time: chrono::DateTime<Utc>,
    pub facility: String,
    pub level: String,
    pub msg: String,
}

#[derive(Debug)]
struct Inner {
    services: HashMap<String, VecDeque<String>>,
    kmsg: VecDeque<String>,
    records: VecDeque<KmsgRecord>,
    kmsg_seq: u64,
    boot: std::time::Instant,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            services: HashMap::new(),
            kmsg: VecDeque::new(),
            records: VecDeque::new(),
            kmsg_seq: 0,
            boot: std::time::Instant::now(),
        }
    }
}

/// In-memory logs, cleared on every boot like Talos's own buffers.
#[derive(Debug)]
pub(crate) struct LogStore {
    inner: Mutex<Inner>,
    live: broadcast::Sender<LogLine>,
    /// Woken on every kernel message (the kernel-log stream waits on it).
    pub kmsg_notify: tokio::sync::Notify,
}

impl LogStore {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            live: broadcast::channel(1024).0,
            kmsg_notify: tokio::sync::Notify::new(),
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
        {
            let mut inner = self.lock();
            inner.kmsg_seq += 1;
            let now = Utc::now();
            let line = format!(
                "{facility}: {level:>7}: [{}]: {msg}",
                now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            );
            let record = KmsgRecord {
                seq: inner.kmsg_seq,
                clock: inner.boot.elapsed().as_micros() as u64,
                time: now,
                facility: facility.to_owned(),
                level: level.to_owned(),
                msg: msg.to_owned(),
            };
            inner.kmsg.push_back(line.clone());
            inner.records.push_back(record);
            if inner.kmsg.len() > MAX_LINES {
                inner.kmsg.pop_front();
                inner.records.pop_front();
            }
            let _ = self.live.send(LogLine {
                source: String::new(),
                line,
            });
        }
        self.kmsg_notify.notify_waiters();
    }

    /// Kernel messages with a sequence number above `seq`.
    pub fn kmsg_after(&self, seq: u64) -> Vec<KmsgRecord> {
        self.lock()
            .records
            .iter()
            .filter(|r| r.seq > seq)
            .cloned()
            .collect()
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
