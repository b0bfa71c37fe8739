//! Fleet-wide settings.

use std::time::Duration;

/// How long simulated operations take. The defaults follow a real kubelet (10 s
/// heartbeats, 40 s leases) and quick boots; [`Timings::fast`] is for tests.
#[derive(Debug, Clone)]
pub struct Timings {
    /// Time from power-on to services running.
    pub boot: Duration,
    /// Time a machine stays down while rebooting.
    pub reboot: Duration,
    /// Lease renewal and node status heartbeat period.
    pub heartbeat: Duration,
    /// `leaseDurationSeconds` of the node Lease.
    pub lease_duration_secs: i32,
    /// Wait between failed `Provision` attempts.
    pub provision_retry: Duration,
    /// Deadline of one `Provision` call (Talos: 30 s).
    pub provision_timeout: Duration,
    /// Wait between failed event sink publishes.
    pub sink_retry: Duration,
    /// Period of background log lines.
    pub log_interval: Duration,
    /// WireGuard persistent keepalive towards the SideroLink server (Talos: 25 s).
    pub wireguard_keepalive: Duration,
    /// With no WireGuard handshake for this long, the machine provisions again
    /// (Talos: 275 s). Keep it above 180 s with real WireGuard timers: a
    /// keepalive-only session re-keys only when it expires.
    pub wireguard_reprovision_after: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            boot: Duration::from_millis(500),
            reboot: Duration::from_secs(2),
            heartbeat: Duration::from_secs(10),
            lease_duration_secs: 40,
            provision_retry: Duration::from_secs(5),
            provision_timeout: Duration::from_secs(30),
            sink_retry: Duration::from_secs(1),
            log_interval: Duration::from_secs(10),
            wireguard_keepalive: Duration::from_secs(25),
            wireguard_reprovision_after: Duration::from_secs(275),
        }
    }
}

impl Timings {
    /// Millisecond-scale timings for tests.
    pub fn fast() -> Self {
        Self {
            boot: Duration::from_millis(20),
            reboot: Duration::from_millis(100),
            heartbeat: Duration::from_millis(200),
            lease_duration_secs: 40,
            provision_retry: Duration::from_millis(200),
            provision_timeout: Duration::from_secs(5),
            sink_retry: Duration::from_millis(100),
            log_interval: Duration::from_millis(200),
            wireguard_keepalive: Duration::from_millis(200),
            wireguard_reprovision_after: Duration::from_secs(275),
        }
    }
}

/// A parsed `siderolink.api` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiderolinkApi {
    /// gRPC endpoint URL (`http://` for plaintext, `https://` for TLS).
    pub endpoint: String,
    /// `jointoken=` query parameter.
    pub join_token: Option<String>,
    /// `grpc_tunnel=true|y`.
    pub grpc_tunnel: bool,
}

impl SiderolinkApi {
    /// Parses a `siderolink.api` URL (`internal/pkg/endpoint/endpoint.go` rules): no
    /// scheme means `grpc://`; `grpc://` is plaintext, any other scheme is TLS;
    /// `https` without a port gets `:443`.
    pub fn parse(url: &str) -> Self {
        let (scheme, rest) = url.split_once("://").unwrap_or(("grpc", url));
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let mut join_token = None;
        let mut grpc_tunnel = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "jointoken" => join_token = Some(v.to_owned()),
                "grpc_tunnel" => grpc_tunnel = matches!(v, "true" | "y"),
                _ => {}
            }
        }
        let has_port = authority.rsplit_once(':').is_some_and(|(h, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':')
        });
        let endpoint = if scheme == "grpc" || scheme == "http" {
            format!("http://{authority}")
        } else if has_port {
            format!("https://{authority}")
        } else {
            format!("https://{authority}:443")
        };
        Self {
            endpoint,
            join_token,
            grpc_tunnel,
        }
    }
}

/// Settings shared by every machine of a fleet.
#[derive(Clone)]
pub struct SimConfig {
    /// SideroLink provisioning API; `None`: no SideroLink, the API is served at once.
    pub siderolink: Option<SiderolinkApi>,
    /// Event sink `host:port` (plaintext gRPC, like `talos.events.sink`).
    pub event_sink: Option<String>,
    /// Kernel-log receiver `host:port` (from `talos.logging.kernel=tcp://host:port`).
    pub kernel_log: Option<String>,
    /// Kubernetes API client for node registration; `None`: no kubelet.
    pub kube: Option<kube::Client>,
    /// Talos version reported by `Version` and sent in `Provision`.
    pub talos_version: String,
    /// Kubelet version reported in `nodeInfo`.
    pub kubelet_version: String,
    /// Timings.
    pub timings: Timings,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("siderolink", &self.siderolink.as_ref().map(|s| &s.endpoint))
            .field("event_sink", &self.event_sink)
            .field("kernel_log", &self.kernel_log)
            .field("kube", &self.kube.is_some())
            .field("talos_version", &self.talos_version)
            .field("timings", &self.timings)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siderolink_urls_follow_talos_rules() {
        let a = SiderolinkApi::parse("grpc://127.0.0.1:8090?jointoken=abc&grpc_tunnel=y");
        assert_eq!(a.endpoint, "http://127.0.0.1:8090");
        assert_eq!(a.join_token.as_deref(), Some("abc"));
        assert!(a.grpc_tunnel);
        assert_eq!(
            SiderolinkApi::parse("https://link.example.com").endpoint,
            "https://link.example.com:443"
        );
        assert_eq!(
            SiderolinkApi::parse("10.0.0.1:4000").endpoint,
            "http://10.0.0.1:4000"
        );
    }
}
