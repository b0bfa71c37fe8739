//! The registry of `SATUSKY_*` environment variables. Every variable the
//! platform or `1ctl` reads is a documented constant here; nothing else reads
//! the environment directly.

/// Base URL of the Satusky API for `1ctl` (e.g. `http://127.0.0.1:8080`).
pub const SATUSKY_API_URL: &str = "SATUSKY_API_URL";
/// API token (session or personal token) for `1ctl`; overrides the profile's.
pub const SATUSKY_TOKEN: &str = "SATUSKY_TOKEN";
/// `1ctl` profile to use for one invocation.
pub const SATUSKY_PROFILE: &str = "SATUSKY_PROFILE";
/// Directory holding `1ctl` configuration (defaults to the user's config dir).
pub const SATUSKY_CONFIG_DIR: &str = "SATUSKY_CONFIG_DIR";
/// Address `satusky serve` listens on.
pub const SATUSKY_LISTEN: &str = "SATUSKY_LISTEN";
/// Data directory of the control plane (SQLite file, generated keys).
pub const SATUSKY_DATA_DIR: &str = "SATUSKY_DATA_DIR";
/// Database URL: `sqlite://PATH` or `postgres://…`. Defaults to SQLite in the data dir.
pub const SATUSKY_DATABASE_URL: &str = "SATUSKY_DATABASE_URL";
/// Set to `false` to refuse self-service signup.
pub const SATUSKY_SIGNUP_ENABLED: &str = "SATUSKY_SIGNUP_ENABLED";
/// Maximum accepted request body in bytes.
pub const SATUSKY_MAX_BODY_BYTES: &str = "SATUSKY_MAX_BODY_BYTES";
/// Session lifetime in hours.
pub const SATUSKY_SESSION_TTL_HOURS: &str = "SATUSKY_SESSION_TTL_HOURS";
/// `tracing` filter directive, e.g. `info,satusky=debug`.
pub const SATUSKY_LOG: &str = "SATUSKY_LOG";
/// Log format: `text` or `json`.
pub const SATUSKY_LOG_FORMAT: &str = "SATUSKY_LOG_FORMAT";
/// NATS URL for cross-replica coordination; unset means an in-process bus.
pub const SATUSKY_NATS_URL: &str = "SATUSKY_NATS_URL";
/// Base64 of the 32-byte key that seals secrets at rest.
pub const SATUSKY_SECRET_KEY: &str = "SATUSKY_SECRET_KEY";
/// File holding the base64 secret key (alternative to `SATUSKY_SECRET_KEY`).
pub const SATUSKY_SECRET_KEY_FILE: &str = "SATUSKY_SECRET_KEY_FILE";
/// Parent domain of generated app domains.
pub const SATUSKY_APPS_DOMAIN: &str = "SATUSKY_APPS_DOMAIN";
/// Address of the SideroLink provisioning server; unset: no machines.
pub const SATUSKY_SIDEROLINK_LISTEN: &str = "SATUSKY_SIDEROLINK_LISTEN";
/// SideroLink URL advertised to machines in their kernel arguments.
pub const SATUSKY_SIDEROLINK_URL: &str = "SATUSKY_SIDEROLINK_URL";
/// Address of the Talos event sink.
pub const SATUSKY_MACHINE_EVENTS_LISTEN: &str = "SATUSKY_MACHINE_EVENTS_LISTEN";
/// Registered cluster machines join.
pub const SATUSKY_MACHINES_CLUSTER: &str = "SATUSKY_MACHINES_CLUSTER";
/// PEM CA of machines' Talos API certificates.
pub const SATUSKY_TALOS_CA: &str = "SATUSKY_TALOS_CA";
/// PEM client certificate for the Talos API.
pub const SATUSKY_TALOS_CERT: &str = "SATUSKY_TALOS_CERT";
/// PEM key of the Talos client certificate.
pub const SATUSKY_TALOS_KEY: &str = "SATUSKY_TALOS_KEY";
/// UDP address of the SideroLink WireGuard endpoint.
pub const SATUSKY_SIDEROLINK_WIREGUARD_LISTEN: &str = "SATUSKY_SIDEROLINK_WIREGUARD_LISTEN";
/// WireGuard `host:port` machines are told (comma-separated, most preferred first).
pub const SATUSKY_SIDEROLINK_WIREGUARD_ENDPOINT: &str = "SATUSKY_SIDEROLINK_WIREGUARD_ENDPOINT";
/// File holding the server's WireGuard private key.
pub const SATUSKY_SIDEROLINK_WIREGUARD_KEY_FILE: &str = "SATUSKY_SIDEROLINK_WIREGUARD_KEY_FILE";
/// Seconds between metrics samples of each joined machine (0: no sampling).
pub const SATUSKY_MACHINE_SAMPLE_SECONDS: &str = "SATUSKY_MACHINE_SAMPLE_SECONDS";
/// Minutes of machine metrics history kept.
pub const SATUSKY_MACHINE_HISTORY_MINUTES: &str = "SATUSKY_MACHINE_HISTORY_MINUTES";
/// Minutes between sweeps deleting expired sessions (0: never).
pub const SATUSKY_SESSION_PURGE_MINUTES: &str = "SATUSKY_SESSION_PURGE_MINUTES";
/// This process's name in machine-operation leases (default: hostname plus a
/// per-process random suffix).
pub const SATUSKY_REPLICA_ID: &str = "SATUSKY_REPLICA_ID";
/// Seconds a machine-operation lease lasts unless renewed.
pub const SATUSKY_MACHINE_OP_LEASE_TTL_SECONDS: &str = "SATUSKY_MACHINE_OP_LEASE_TTL_SECONDS";
/// Seconds a reset machine may take to answer in maintenance mode.
pub const SATUSKY_MACHINE_RESET_TIMEOUT_SECONDS: &str = "SATUSKY_MACHINE_RESET_TIMEOUT_SECONDS";
/// Seconds a rebooted machine's node may take to become Ready.
pub const SATUSKY_NODE_READY_TIMEOUT_SECONDS: &str = "SATUSKY_NODE_READY_TIMEOUT_SECONDS";
/// NATS URL used by the test suites; when set, the NATS bus tests run and must pass.
pub const SATUSKY_TEST_NATS_URL: &str = "SATUSKY_TEST_NATS_URL";
/// PostgreSQL URL used by the test suites; when set, PostgreSQL tests run and must pass.
pub const SATUSKY_TEST_POSTGRES_URL: &str = "SATUSKY_TEST_POSTGRES_URL";

/// Every variable, for documentation and `--help` output.
pub const ALL: &[(&str, &str)] = &[
    (SATUSKY_API_URL, "API base URL for 1ctl"),
    (SATUSKY_TOKEN, "API token for 1ctl"),
    (SATUSKY_PROFILE, "1ctl profile for one invocation"),
    (SATUSKY_CONFIG_DIR, "1ctl configuration directory"),
    (SATUSKY_LISTEN, "listen address of satusky serve"),
    (SATUSKY_DATA_DIR, "control-plane data directory"),
    (
        SATUSKY_DATABASE_URL,
        "sqlite:// or postgres:// database URL",
    ),
    (SATUSKY_SIGNUP_ENABLED, "allow self-service signup"),
    (SATUSKY_MAX_BODY_BYTES, "request body size limit"),
    (SATUSKY_SESSION_TTL_HOURS, "session lifetime in hours"),
    (SATUSKY_LOG, "tracing filter"),
    (SATUSKY_LOG_FORMAT, "text or json logs"),
    (SATUSKY_NATS_URL, "NATS URL for coordination"),
    (SATUSKY_SECRET_KEY, "base64 key sealing secrets at rest"),
    (SATUSKY_SECRET_KEY_FILE, "file holding the secret key"),
    (
        SATUSKY_APPS_DOMAIN,
        "parent domain of generated app domains",
    ),
    (
        SATUSKY_SIDEROLINK_WIREGUARD_LISTEN,
        "UDP address of the SideroLink WireGuard endpoint",
    ),
    (
        SATUSKY_SIDEROLINK_WIREGUARD_ENDPOINT,
        "WireGuard host:port told to machines (comma-separated)",
    ),
    (
        SATUSKY_SIDEROLINK_WIREGUARD_KEY_FILE,
        "file holding the server's WireGuard private key",
    ),
    (
        SATUSKY_MACHINE_SAMPLE_SECONDS,
        "seconds between machine metrics samples (0: none)",
    ),
    (
        SATUSKY_MACHINE_HISTORY_MINUTES,
        "minutes of machine metrics history kept",
    ),
    (
        SATUSKY_SESSION_PURGE_MINUTES,
        "minutes between expired-session sweeps (0: never)",
    ),
    (
        SATUSKY_REPLICA_ID,
        "name of this process in machine-operation leases",
    ),
    (
        SATUSKY_MACHINE_OP_LEASE_TTL_SECONDS,
        "seconds a machine-operation lease lasts unless renewed",
    ),
    (
        SATUSKY_MACHINE_RESET_TIMEOUT_SECONDS,
        "seconds a reset machine may take to reach maintenance mode",
    ),
    (
        SATUSKY_NODE_READY_TIMEOUT_SECONDS,
        "seconds a rebooted machine's node may take to become Ready",
    ),
    (
        SATUSKY_TEST_POSTGRES_URL,
        "PostgreSQL URL for the test suites",
    ),
];
