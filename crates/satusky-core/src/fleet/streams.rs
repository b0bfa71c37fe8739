//! The port through which machine logs are read: Talos service logs
//! (`MachineService/Logs`) and the kernel ring buffer (`MachineService/Dmesg`),
//! once or followed. Kept apart from [`super::ports::TalosOps`] because its
//! calls are long-lived streams rather than bounded request/response calls.

use futures::stream::BoxStream;

use super::ports::{OpsError, TalosTarget};

/// Which log of a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// A Talos service (`machined`, `kubelet`, `containerd`, `etcd`, …).
    Service(String),
    /// The kernel ring buffer (dmesg).
    Kernel,
}

impl LogSource {
    /// The source's name in API answers: the service id, or `kernel`.
    pub fn name(&self) -> &str {
        match self {
            LogSource::Service(id) => id,
            LogSource::Kernel => "kernel",
        }
    }
}

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    pub source: LogSource,
    /// Start with the last N lines; `None` reads everything kept.
    pub tail_lines: Option<u32>,
    /// Keep streaming lines as they are written.
    pub follow: bool,
}

/// Lines without their trailing newline. A stream that ends without an
/// error ended on the machine's side (not following, or the machine went
/// away); an `Err` item ends it too.
pub type LineStream = BoxStream<'static, Result<String, OpsError>>;

/// Machine logs through the Talos API.
#[async_trait::async_trait]
pub trait MachineLogs: Send + Sync + std::fmt::Debug + 'static {
    /// Opens the log. Fails before returning a stream when the machine does
    /// not answer (`Unreachable`) or has no such log (`NotFound`).
    async fn logs(&self, m: &TalosTarget, req: &LogRequest) -> Result<LineStream, OpsError>;
}
