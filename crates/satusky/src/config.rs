//! Typed configuration: flattened clap groups, each field with a flag, an
//! environment variable from `satusky_types::env`, a doc comment and a default.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use satusky_types::env;

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter (tracing env-filter syntax), e.g. `info,satusky_api=debug`.
    #[arg(long = "log", env = env::SATUSKY_LOG, default_value = "info", global = true)]
    pub filter: String,
    /// Log format: `text` or `json`.
    #[arg(long = "log-format", env = env::SATUSKY_LOG_FORMAT, default_value = "text", global = true)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init_tracing(args: &LogArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr);
    match args.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Data directory: holds the SQLite database and generated keys.
    #[arg(long, env = env::SATUSKY_DATA_DIR, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://PATH` or `postgres://USER:PASS@HOST/DB`.
    /// Defaults to SQLite in the data directory.
    #[arg(long, env = env::SATUSKY_DATABASE_URL, global = true)]
    pub database_url: Option<String>,
}

impl StoreArgs {
    pub fn data_dir(&self, default_leaf: &str) -> anyhow::Result<PathBuf> {
        let dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => dirs::data_dir()
                .or_else(dirs::home_dir)
                .context("no data directory could be determined; pass --data-dir")?
                .join("satusky")
                .join(default_leaf),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        Ok(dir)
    }

    pub fn database_url(&self) -> anyhow::Result<String> {
        match &self.database_url {
            Some(url) => Ok(url.clone()),
            None => Ok(format!(
                "sqlite://{}",
                self.data_dir("server")?.join("satusky.db").display()
            )),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Allow self-service signup.
    #[arg(long, env = env::SATUSKY_SIGNUP_ENABLED, default_value_t = true, action = clap::ArgAction::Set)]
    pub signup_enabled: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = env::SATUSKY_MAX_BODY_BYTES, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Session lifetime, in hours.
    #[arg(long, env = env::SATUSKY_SESSION_TTL_HOURS, default_value_t = 24 * 7)]
    pub session_ttl_hours: u32,
    /// Parent domain of generated app domains (`<app>-<org>.<domain>`).
    #[arg(long, env = env::SATUSKY_APPS_DOMAIN, default_value = "apps.satusky.test")]
    pub apps_domain: String,
    /// Base64 of the 32-byte key that seals secrets at rest. Without a key
    /// (or key file), secret operations are refused.
    #[arg(long, env = env::SATUSKY_SECRET_KEY, hide_env_values = true)]
    pub secret_key: Option<String>,
    /// NATS URL for notices shared across replicas; unset means in-process.
    #[arg(long, env = env::SATUSKY_NATS_URL)]
    pub nats_url: Option<String>,
    /// File holding the base64 secret key.
    #[arg(long, env = env::SATUSKY_SECRET_KEY_FILE, conflicts_with = "secret_key")]
    pub secret_key_file: Option<PathBuf>,
    /// Minutes between sweeps deleting expired sessions and failed logins
    /// past their window (0: never). Every replica sweeps; the deletes are
    /// idempotent, so no lease is needed.
    #[arg(long, env = env::SATUSKY_SESSION_PURGE_MINUTES, default_value_t = DEFAULT_SESSION_PURGE_MINUTES)]
    pub session_purge_minutes: u32,
}

/// Hourly.
pub const DEFAULT_SESSION_PURGE_MINUTES: u32 = 60;

impl ApiArgs {
    pub fn for_dev(secret_key_file: PathBuf) -> Self {
        Self {
            signup_enabled: true,
            max_body_bytes: 1024 * 1024,
            session_ttl_hours: 24 * 7,
            apps_domain: "apps.satusky.test".to_owned(),
            secret_key: None,
            nats_url: None,
            secret_key_file: Some(secret_key_file),
            session_purge_minutes: DEFAULT_SESSION_PURGE_MINUTES,
        }
    }

    /// How often expired sessions are purged; `None` when never.
    pub fn session_purge_every(&self) -> Option<std::time::Duration> {
        (self.session_purge_minutes > 0)
            .then(|| std::time::Duration::from_mins(u64::from(self.session_purge_minutes)))
    }

    /// The configured secret key's base64 text, if any.
    pub fn secret_key_material(&self) -> anyhow::Result<Option<String>> {
        Ok(match (&self.secret_key, &self.secret_key_file) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(path)) => {
                Some(std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the secret key file {}", path.display())
                })?)
            }
            (None, None) => None,
        })
    }

    /// The configured secret key, if any.
    pub fn secret_box(&self) -> anyhow::Result<Option<satusky_core::crypto::SecretBox>> {
        let Some(key) = self.secret_key_material()? else {
            return Ok(None);
        };
        Ok(Some(
            satusky_core::crypto::SecretBox::from_base64(&key)
                .map_err(|e| anyhow::anyhow!("{}", e.message))?,
        ))
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = env::SATUSKY_LISTEN, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub machines: MachineArgs,
}

/// Bring-your-own machines: the SideroLink server and the Talos client.
/// Without `--siderolink-listen`, machine operations answer 503.
#[derive(Debug, Clone, Args)]
pub struct MachineArgs {
    /// Serve SideroLink provisioning (`sidero.link.ProvisionService`) here.
    #[arg(long, env = env::SATUSKY_SIDEROLINK_LISTEN)]
    pub siderolink_listen: Option<SocketAddr>,
    /// The SideroLink URL machines dial (`siderolink.api=`); default: `grpc://<listen>`.
    #[arg(long, env = env::SATUSKY_SIDEROLINK_URL)]
    pub siderolink_url: Option<String>,
    /// Serve the SideroLink WireGuard endpoint here (UDP; with `--siderolink-listen`).
    #[arg(long, env = env::SATUSKY_SIDEROLINK_WIREGUARD_LISTEN, default_value = "0.0.0.0:51821")]
    pub siderolink_wireguard_listen: SocketAddr,
    /// WireGuard `host:port` machines are told (repeat it, most preferred first);
    /// default: the listen address, or else the SideroLink URL's host with its port.
    #[arg(long, env = env::SATUSKY_SIDEROLINK_WIREGUARD_ENDPOINT, value_delimiter = ',')]
    pub siderolink_wireguard_endpoint: Vec<String>,
    /// The server's WireGuard private key (base64, as `wg genkey` writes it),
    /// created there on first start; default: `siderolink-wireguard.key` in the
    /// data directory.
    #[arg(long, env = env::SATUSKY_SIDEROLINK_WIREGUARD_KEY_FILE)]
    pub siderolink_wireguard_key_file: Option<PathBuf>,
    /// Serve the Talos event sink here (the server's overlay address in production).
    #[arg(long, env = env::SATUSKY_MACHINE_EVENTS_LISTEN, default_value = "[::]:8090")]
    pub machine_events_listen: SocketAddr,
    /// Registered cluster the machines join as nodes (default: the default cluster).
    #[arg(long, env = env::SATUSKY_MACHINES_CLUSTER)]
    pub machines_cluster: Option<String>,
    /// PEM CA of the machines' Talos API certificates.
    #[arg(long, env = env::SATUSKY_TALOS_CA)]
    pub talos_ca: Option<PathBuf>,
    /// PEM client certificate for the Talos API (`os:operator` or `os:admin`).
    #[arg(long, env = env::SATUSKY_TALOS_CERT)]
    pub talos_cert: Option<PathBuf>,
    /// PEM key of that certificate.
    #[arg(long, env = env::SATUSKY_TALOS_KEY)]
    pub talos_key: Option<PathBuf>,
    /// Seconds between metrics samples of each joined machine, kept as its
    /// short history (0: no sampling). One replica samples at a time.
    #[arg(long, env = env::SATUSKY_MACHINE_SAMPLE_SECONDS, default_value_t = 15)]
    pub machine_sample_seconds: u32,
    /// Minutes of machine metrics history kept.
    #[arg(long, env = env::SATUSKY_MACHINE_HISTORY_MINUTES, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub machine_history_minutes: u32,
    /// This process's name in machine-operation leases. Default:
    /// `<hostname>-<random>`, unique per process, so a restarted replica
    /// takes its old operations over only once their leases expire
    /// (`--machine-op-lease-ttl-seconds`). A stable value (a StatefulSet pod
    /// name) lets it resume them at once, but two live processes must never
    /// share one: both would run the same operation.
    #[arg(long, env = env::SATUSKY_REPLICA_ID, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub replica_id: Option<String>,
    /// Seconds a machine-operation lease lasts unless renewed (every third of
    /// it); another replica takes a dead one's operations over after it.
    #[arg(long, env = env::SATUSKY_MACHINE_OP_LEASE_TTL_SECONDS, default_value_t = 30, value_parser = clap::value_parser!(u32).range(3..))]
    pub machine_op_lease_ttl_seconds: u32,
    /// Seconds a decommissioned (reset) machine may take to answer in
    /// maintenance mode.
    #[arg(long, env = env::SATUSKY_MACHINE_RESET_TIMEOUT_SECONDS, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub machine_reset_timeout_seconds: u32,
    /// Seconds a rebooted machine's node may take to become Ready.
    #[arg(long, env = env::SATUSKY_NODE_READY_TIMEOUT_SECONDS, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub node_ready_timeout_seconds: u32,
}

impl MachineArgs {
    /// Sets the machine-operation settings of `config`.
    pub fn apply(&self, config: &mut satusky_core::ServicesConfig) {
        let secs = |s: u32| std::time::Duration::from_secs(u64::from(s));
        config.replica_id = self.replica_id.clone().unwrap_or_else(default_replica_id);
        config.machine_op_lease_ttl = secs(self.machine_op_lease_ttl_seconds);
        config.machine_reset_timeout = secs(self.machine_reset_timeout_seconds);
        config.node_ready_timeout = secs(self.node_ready_timeout_seconds);
    }
}

/// `<hostname>-<8 random hex digits>`: readable in lease records (which host
/// holds an operation) and unique per process, so two processes on one host
/// never share leases.
pub fn default_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host = host.trim();
    let host = if host.is_empty() { "satusky" } else { host };
    format!("{host}-{:08x}", rand::random::<u32>())
}

#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Make an existing account a platform administrator (manages clusters).
    Grant {
        email: String,
        /// Take the role away instead.
        #[arg(long)]
        revoke: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// Port of the API on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Data directory of the dev platform; state is kept between runs.
    #[arg(long, env = env::SATUSKY_DATA_DIR)]
    pub data_dir: Option<PathBuf>,
    /// Number of simulated Talos machines.
    #[arg(long, default_value_t = 3)]
    pub machines: u32,
    /// Minutes between sweeps deleting expired sessions and old failed logins (0: never).
    #[arg(long, env = env::SATUSKY_SESSION_PURGE_MINUTES, default_value_t = DEFAULT_SESSION_PURGE_MINUTES)]
    pub session_purge_minutes: u32,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    #[derive(Debug, Parser)]
    struct Dev {
        #[command(flatten)]
        args: DevArgs,
    }

    fn serve(flags: &[&str]) -> Result<ServeArgs, clap::Error> {
        Serve::try_parse_from(std::iter::once("serve").chain(flags.iter().copied())).map(|s| s.args)
    }

    fn configured(args: &ServeArgs) -> satusky_core::ServicesConfig {
        let mut config = satusky_core::ServicesConfig::default();
        args.machines.apply(&mut config);
        config
    }

    #[test]
    fn machine_operation_settings_default_to_the_services_defaults() {
        let args = serve(&[]).unwrap();
        let config = configured(&args);
        let defaults = satusky_core::ServicesConfig::default();
        assert_eq!(config.machine_op_lease_ttl, defaults.machine_op_lease_ttl);
        assert_eq!(config.machine_reset_timeout, defaults.machine_reset_timeout);
        assert_eq!(config.node_ready_timeout, defaults.node_ready_timeout);
    }

    #[test]
    fn the_default_replica_id_names_the_host_and_differs_per_process() {
        let args = serve(&[]).unwrap();
        assert_eq!(args.machines.replica_id, None);
        let (a, b) = (configured(&args).replica_id, configured(&args).replica_id);
        assert_ne!(a, b, "two processes on one host must not share leases");
        let (host, suffix) = a.rsplit_once('-').unwrap();
        assert!(!host.is_empty());
        assert_eq!(suffix.len(), 8);
        assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
    }

    #[test]
    fn machine_operation_flags_set_the_services_config() {
        let args = serve(&[
            "--replica-id",
            "satusky-0",
            "--machine-op-lease-ttl-seconds",
            "12",
            "--machine-reset-timeout-seconds",
            "90",
            "--node-ready-timeout-seconds",
            "45",
        ])
        .unwrap();
        let config = configured(&args);
        assert_eq!(config.replica_id, "satusky-0");
        assert_eq!(config.machine_op_lease_ttl, Duration::from_secs(12));
        assert_eq!(config.machine_reset_timeout, Duration::from_secs(90));
        assert_eq!(config.node_ready_timeout, Duration::from_secs(45));
    }

    #[test]
    fn machine_operation_flags_refuse_values_that_cannot_work() {
        for flags in [
            &["--replica-id", ""][..],
            &["--machine-op-lease-ttl-seconds", "2"],
            &["--machine-reset-timeout-seconds", "0"],
            &["--node-ready-timeout-seconds", "0"],
            &["--node-ready-timeout-seconds", "soon"],
        ] {
            assert!(serve(flags).is_err(), "{flags:?} was accepted");
        }
    }

    #[test]
    fn sessions_are_purged_hourly_unless_told_otherwise() {
        let hourly = Some(Duration::from_hours(1));
        assert_eq!(serve(&[]).unwrap().api.session_purge_every(), hourly);
        let every_5 = serve(&["--session-purge-minutes", "5"]).unwrap();
        assert_eq!(
            every_5.api.session_purge_every(),
            Some(Duration::from_mins(5))
        );
        let never = serve(&["--session-purge-minutes", "0"]).unwrap();
        assert_eq!(never.api.session_purge_every(), None);
        let dev = Dev::try_parse_from(["dev", "--session-purge-minutes", "7"]).unwrap();
        assert_eq!(dev.args.session_purge_minutes, 7);
        assert_eq!(
            ApiArgs::for_dev(PathBuf::from("k")).session_purge_every(),
            hourly
        );
    }
}
