//! The command line: every command, flag and environment variable of `1ctl`.
//! Help text and the README are written from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use satusky_types::env;
use satusky_types::orgs::{Outcome, Role};

/// The default API URL when neither flag, environment nor profile sets one.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8080";

/// 1ctl: the command-line client of Satusky.
#[derive(Debug, Parser)]
#[command(
    name = "1ctl",
    version,
    propagate_version = true,
    max_term_width = 100,
    arg_required_else_help = true,
    after_help = "Settings resolve from the flag, then the environment, then the profile file, then the default.\nExit codes: 0 success, 1 request refused, 2 usage error, 3 unexpected failure."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

const GLOBAL: &str = "Global options";

/// Flags accepted by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Base URL of the Satusky API [default: the profile's, else http://127.0.0.1:8080]
    #[arg(long, global = true, help_heading = GLOBAL, env = env::SATUSKY_API_URL, value_name = "URL")]
    pub api_url: Option<String>,

    /// Profile to use for this invocation [default: the active profile]
    #[arg(short = 'p', long, global = true, help_heading = GLOBAL, env = env::SATUSKY_PROFILE, value_name = "NAME")]
    pub profile: Option<String>,

    /// Output format: `table` for people, `json` or `yaml` for programs
    #[arg(short = 'o', long, global = true, help_heading = GLOBAL, value_enum, ignore_case = true, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Directory of the configuration file [default: the user's config dir/satusky]
    #[arg(long, global = true, help_heading = GLOBAL, env = env::SATUSKY_CONFIG_DIR, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
}

/// Settings read from the environment only, never from arguments: a token
/// on the command line would land in shell history and process lists. Parsed
/// by clap from an empty argument list, so only the variables count.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
pub struct EnvOnly {
    /// SATUSKY_TOKEN: overrides the profile's token.
    #[arg(long, env = env::SATUSKY_TOKEN, hide_env_values = true)]
    pub token: Option<String>,
    /// NO_COLOR: any non-empty value turns colours off.
    #[arg(long, env = "NO_COLOR")]
    pub no_color: Option<String>,
}

impl EnvOnly {
    pub fn read() -> Result<Self, clap::Error> {
        Self::try_parse_from(std::iter::empty::<String>())
    }

    pub fn no_color(&self) -> bool {
        self.no_color.as_deref().is_some_and(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign up, log in and out, show who you are logged in as
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Manage profiles: named API endpoints with their credentials
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Manage organizations and their members
    #[command(subcommand, visible_alias = "organization")]
    Org(OrgCommand),
    /// Show and change your account
    #[command(subcommand)]
    User(UserCommand),
    /// Manage your personal API tokens
    #[command(subcommand, visible_alias = "tokens")]
    Token(TokenCommand),
    /// Read an organization's audit log
    Audit(AuditArgs),
    /// Write a commented satusky.toml for the app in this directory
    Init(InitArgs),
    /// Deploy an image: a new release of the app (created by its first deploy)
    Deploy(Box<DeployArgs>),
    /// Deployed apps: status, releases, rollback, scaling, events
    App(AppArgs),
    /// An app's plain environment variables (each change is a new release)
    #[command(visible_alias = "env")]
    Config(ConfigArgs),
    /// An app's secrets, sealed at rest (each change is a new release)
    #[command(visible_alias = "secrets")]
    Secret(SecretArgs),
    /// An app's persistent volumes
    #[command(visible_alias = "volume")]
    Volumes(VolumesArgs),
    /// An app's container logs: the last lines, or followed as they are written
    Logs(LogsArgs),
    /// Bring-your-own machines: join tokens, claiming, labels, operations, telemetry
    #[command(visible_alias = "machines")]
    Machine(MachineArgs),
    /// Clusters and the zones apps can be placed in
    #[command(subcommand, visible_alias = "clusters")]
    Cluster(ClusterCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log in with a token or with email and password, and save it in the profile
    Login(LoginArgs),
    /// Log out: end the session on the server and forget the token
    Logout(LogoutArgs),
    /// Show the user and organization of the current profile
    Status,
    /// Create an account
    Signup(SignupArgs),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// A personal token (sk_pat_…) or session token (sk_sess_…) [default: SATUSKY_TOKEN]
    #[arg(long, value_name = "TOKEN", conflicts_with_all = ["email", "password_stdin", "token_stdin"])]
    pub token: Option<String>,
    /// Read the token from the first line of standard input (keeps it out of process lists)
    #[arg(long, conflicts_with_all = ["email", "password_stdin"])]
    pub token_stdin: bool,
    /// Log in with this email; the password is prompted for, or read with --password-stdin
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// Read the password from the first line of standard input
    #[arg(long, requires = "email")]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// End every session of your user, on every device
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct SignupArgs {
    /// Email of the new account
    #[arg(long, value_name = "EMAIL")]
    pub email: String,
    /// Display name
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// List profiles
    #[command(visible_alias = "ls")]
    List,
    /// Create a profile; its API URL is the one given with --api-url (or SATUSKY_API_URL)
    Create {
        /// Profile name: letters, digits, `-` and `_`
        name: String,
    },
    /// Make a profile the active one
    Use { name: String },
    /// Show the profile in use and where each setting comes from
    Current,
    /// Delete a profile (not the active one)
    #[command(visible_alias = "rm")]
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// List your organizations
    #[command(visible_alias = "ls")]
    List,
    /// Show the organization the profile uses
    Current,
    /// Use another organization in this profile
    Switch {
        /// Organization slug
        slug: String,
    },
    /// Create an organization; you become its owner
    Create {
        /// URL-safe name: lowercase letters, digits and `-`, 3 to 40 characters
        slug: String,
        /// Display name [default: the slug]
        #[arg(long)]
        name: Option<String>,
    },
    /// Change an organization's display name
    Rename {
        slug: String,
        /// New display name
        #[arg(long)]
        name: String,
    },
    /// Delete an organization: its apps, volumes and namespace in every cluster
    #[command(visible_alias = "rm")]
    Delete {
        slug: String,
        /// Do not ask to type the slug again
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Manage the members of an organization
    #[command(visible_alias = "members")]
    Team(TeamArgs),
}

#[derive(Debug, Args)]
pub struct TeamArgs {
    /// Organization slug [default: the profile's organization]
    #[arg(long, global = true, value_name = "SLUG")]
    pub org: Option<String>,
    #[command(subcommand)]
    pub command: TeamCommand,
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// List members
    #[command(visible_alias = "ls")]
    List,
    /// Add a user, by the email of an existing account
    Add {
        email: String,
        /// owner, admin, member or viewer
        #[arg(long, default_value = "member", value_parser = parse_role)]
        role: Role,
    },
    /// Change a member's role
    Role {
        /// User id or email
        user: String,
        /// owner, admin, member or viewer
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Remove a member
    #[command(visible_alias = "rm")]
    Remove {
        /// User id or email
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Show your account and how you are authenticated
    #[command(visible_alias = "info")]
    Me,
    /// Change your display name
    Update {
        #[arg(long)]
        name: String,
    },
    /// Change your password (prompted for, or two lines on stdin: current, then new)
    Password {
        /// Read the current password, then the new one, from two lines of standard input
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List your tokens (never their secrets)
    #[command(visible_alias = "ls")]
    List,
    /// Create a token and print its secret, once
    Create {
        /// A name unique among your tokens
        name: String,
        /// Limit the token to one organization
        #[arg(long, value_name = "SLUG")]
        org: Option<String>,
        /// Lifetime in days, 1 to 3650 [default: no expiry]
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires: Option<u32>,
    },
    /// Show one token
    Get {
        /// Token id or name
        token: String,
    },
    /// Allow a disabled token again
    Enable {
        /// Token id or name
        token: String,
    },
    /// Refuse a token until it is enabled again
    Disable {
        /// Token id or name
        token: String,
    },
    /// Delete a token for good
    #[command(visible_alias = "rm")]
    Delete {
        /// Token id or name
        token: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Organization slug [default: the profile's organization]
    #[arg(long, global = true, value_name = "SLUG")]
    pub org: Option<String>,
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries, newest first
    #[command(visible_alias = "ls")]
    List(AuditListArgs),
    /// Show one audit entry
    Get {
        /// Audit entry id
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// Only entries by this actor (user id or email)
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action, or actions starting with it when it ends in `.` (e.g. `org.member.`)
    #[arg(long)]
    pub action: Option<String>,
    /// success, denied or failure
    #[arg(long, value_parser = parse_outcome)]
    pub outcome: Option<Outcome>,
    /// Only entries at or after this time (RFC 3339, e.g. 2026-01-31T00:00:00Z)
    #[arg(long, value_parser = parse_time)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only entries before this time (RFC 3339)
    #[arg(long, value_parser = parse_time)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Entries per page, 1 to 1000
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Continue from the cursor printed by a previous page
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Follow every page instead of stopping after one
    #[arg(long)]
    pub all: bool,
}

/// Which app and organization an app command acts on.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Organization slug [default: the profile's organization]
    #[arg(long, global = true, value_name = "SLUG")]
    pub org: Option<String>,
    /// App name [default: the APP argument, else [app].name of satusky.toml]
    #[arg(long = "app", global = true, value_name = "APP")]
    pub app: Option<String>,
    /// The satusky.toml to read [app].name from: NAME for satusky.NAME.toml, or a PATH ending in .toml
    #[arg(long, global = true, value_name = "NAME|PATH")]
    pub config: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// App name [default: the directory's name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Image to deploy, written as [app].image
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Container port
    #[arg(long, default_value_t = 8080, value_name = "PORT")]
    pub port: u16,
    /// Write satusky.NAME.toml instead, seeded from satusky.toml when there is one
    #[arg(long, value_name = "NAME")]
    pub config: Option<String>,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

const DEPLOY_APP: &str = "App";
const DEPLOY_RES: &str = "Resources";
const DEPLOY_ROLL: &str = "Rollout";
const DEPLOY_STORAGE: &str = "Storage";
const DEPLOY_SCALE: &str = "Autoscaling and disruption budget";
const DEPLOY_PLACE: &str = "Placement";
const DEPLOY_WAIT: &str = "Waiting";

/// `1ctl deploy`. Each setting is taken from the flag when it is given on
/// the command line, else from satusky.toml, else it keeps the app's current
/// value (on a first deploy: the default shown).
#[derive(Debug, Args)]
#[command(
    after_help = "Each setting comes from the flag when it is given on the command line, then satusky.toml, then the app's current release; a first deploy uses the defaults shown.\nsatusky.toml cannot remove a setting: --no-hpa, --no-vpa, --no-health-check, --no-pdb, --no-zone and --no-machine-selector do, and win over the file.\n--machine-label SEL (all must match), --machine-label-any SEL (one must match) and --machine-tag EXPR are older forms of --machine-selector, translated into one label selector: `a=1` and `b` stay as they are, several --machine-label are joined with `,`, --machine-label-any `k=v1` `k=v2` becomes `k in (v1,v2)`, a tag `gpu & (region=kul | region=bki)` becomes `gpu,region in (kul,bki)`; a bare tag means the label exists.\nExit codes: 0 deployed (with --wait: available), 1 refused, degraded or timed out, 2 usage error, 3 unexpected failure."
)]
pub struct DeployArgs {
    /// Organization slug [default: the profile's organization]
    #[arg(long, value_name = "SLUG")]
    pub org: Option<String>,
    /// The satusky.toml to use: NAME for satusky.NAME.toml, or a PATH ending in .toml [default: satusky.toml in this directory or above]
    #[arg(long, value_name = "NAME|PATH")]
    pub config: Option<String>,
    /// Image to deploy, e.g. ghcr.io/acme/web:1.2.3 [default: [app].image]
    #[arg(long, value_name = "IMAGE", help_heading = DEPLOY_APP)]
    pub image: Option<String>,
    /// App name [default: [app].name]
    #[arg(long, value_name = "NAME", help_heading = DEPLOY_APP)]
    pub name: Option<String>,
    /// Container port; repeat for more (the first is public)
    #[arg(long = "port", value_name = "PORT", default_value = "8080", help_heading = DEPLOY_APP)]
    pub ports: Vec<u16>,
    /// Environment variable, repeatable; merged over [env] and the app's current variables
    #[arg(long = "env", value_name = "KEY=VALUE", help_heading = DEPLOY_APP)]
    pub env: Vec<String>,
    /// Free-form environment label of a new app (production, staging, …)
    #[arg(long, value_name = "NAME", help_heading = DEPLOY_APP)]
    pub environment: Option<String>,
    /// Number of replicas
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = DEPLOY_RES)]
    pub replicas: u32,
    /// Guaranteed CPU
    #[arg(long, value_name = "CPU", default_value = "250m", help_heading = DEPLOY_RES)]
    pub cpu_request: String,
    /// CPU ceiling
    #[arg(long, value_name = "CPU", default_value = "1", help_heading = DEPLOY_RES)]
    pub cpu_limit: String,
    /// Memory request, and limit unless --memory-limit is given
    #[arg(long, value_name = "MEM", default_value = "256Mi", help_heading = DEPLOY_RES)]
    pub memory: String,
    /// Memory limit [default: --memory]
    #[arg(long, value_name = "MEM", help_heading = DEPLOY_RES)]
    pub memory_limit: Option<String>,
    /// HTTP path probed for readiness and liveness
    #[arg(long, value_name = "PATH", help_heading = DEPLOY_ROLL)]
    pub health_path: Option<String>,
    /// Remove the app's health check (its readiness and liveness probes)
    #[arg(long, conflicts_with = "health_path", help_heading = DEPLOY_ROLL)]
    pub no_health_check: bool,
    /// How replicas are replaced: rolling or recreate
    #[arg(long, value_enum, ignore_case = true, default_value_t = StrategyArg::Rolling, help_heading = DEPLOY_ROLL)]
    pub strategy: StrategyArg,
    /// Extra replicas during a rolling update (count or percentage)
    #[arg(long, value_name = "N|P%", default_value = "25%", help_heading = DEPLOY_ROLL)]
    pub rolling_max_surge: String,
    /// Replicas that may be unavailable during a rolling update (count or percentage)
    #[arg(long, value_name = "N|P%", default_value = "25%", help_heading = DEPLOY_ROLL)]
    pub rolling_max_unavailable: String,
    /// Size of a persistent volume, e.g. 1Gi (with --volume-mount)
    #[arg(long, value_name = "SIZE", requires = "volume_mount", help_heading = DEPLOY_STORAGE)]
    pub volume_size: Option<String>,
    /// Where the volume is mounted, e.g. /data (with --volume-size)
    #[arg(long, value_name = "PATH", requires = "volume_size", help_heading = DEPLOY_STORAGE)]
    pub volume_mount: Option<String>,
    /// Scale between --hpa-min and --hpa-max replicas on CPU use
    #[arg(long, help_heading = DEPLOY_SCALE)]
    pub hpa: bool,
    /// Fewest replicas when autoscaling (implies --hpa)
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = DEPLOY_SCALE)]
    pub hpa_min: u32,
    /// Most replicas when autoscaling (implies --hpa)
    #[arg(long, value_name = "N", default_value_t = 10, help_heading = DEPLOY_SCALE)]
    pub hpa_max: u32,
    /// Target average CPU use, percent of the request (implies --hpa)
    #[arg(long, value_name = "PERCENT", default_value_t = 80, help_heading = DEPLOY_SCALE)]
    pub hpa_cpu: u32,
    /// Stop autoscaling: remove the autoscaler and run --replicas (default: the current count, at least the autoscaler's minimum)
    #[arg(long, conflicts_with_all = ["hpa", "hpa_min", "hpa_max", "hpa_cpu"], help_heading = DEPLOY_SCALE)]
    pub no_hpa: bool,
    /// Remove vertical autoscaling ([vpa] in satusky.toml)
    #[arg(long, help_heading = DEPLOY_SCALE)]
    pub no_vpa: bool,
    /// Replicas kept during voluntary disruptions (count or percentage)
    #[arg(long, value_name = "N|P%", conflicts_with = "pdb_max_unavailable", help_heading = DEPLOY_SCALE)]
    pub pdb_min_available: Option<String>,
    /// Replicas that may be down during voluntary disruptions (count or percentage)
    #[arg(long, value_name = "N|P%", help_heading = DEPLOY_SCALE)]
    pub pdb_max_unavailable: Option<String>,
    /// Remove the disruption budget settings, back to the default: one replica down at a time when more than one runs
    #[arg(long, conflicts_with_all = ["pdb_min_available", "pdb_max_unavailable"], help_heading = DEPLOY_SCALE)]
    pub no_pdb: bool,
    /// Zone to run in, e.g. my-kul-1b
    #[arg(long, value_name = "ZONE", help_heading = DEPLOY_PLACE)]
    pub zone: Option<String>,
    /// Remove the zone constraint (the app stays on its cluster)
    #[arg(long, conflicts_with = "zone", help_heading = DEPLOY_PLACE)]
    pub no_zone: bool,
    /// Label selector over machine labels, e.g. `pool=gpu,zone in (a,b),!maintenance`; "" removes it
    #[arg(long, value_name = "EXPR", conflicts_with_all = ["machine_label", "machine_label_any", "machine_tag"], help_heading = DEPLOY_PLACE)]
    pub machine_selector: Option<String>,
    /// Older form: a selector every machine must match (repeatable)
    #[arg(long, value_name = "SEL", help_heading = DEPLOY_PLACE)]
    pub machine_label: Vec<String>,
    /// Older form: selectors of which one must match (repeatable)
    #[arg(long, value_name = "SEL", help_heading = DEPLOY_PLACE)]
    pub machine_label_any: Vec<String>,
    /// Older form: a tag expression such as `gpu & (region=kul | region=bki)`
    #[arg(long, value_name = "EXPR", help_heading = DEPLOY_PLACE)]
    pub machine_tag: Option<String>,
    /// Remove the machine selector: any node of the cluster may run the app
    #[arg(long, conflicts_with_all = ["machine_selector", "machine_label", "machine_label_any", "machine_tag"], help_heading = DEPLOY_PLACE)]
    pub no_machine_selector: bool,
    /// Wait until the new release is available, showing progress on stderr
    #[arg(long, short = 'w', help_heading = DEPLOY_WAIT)]
    pub wait: bool,
    /// How long --wait waits, e.g. 90s, 5m, 1h
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, help_heading = DEPLOY_WAIT)]
    pub timeout: std::time::Duration,
    /// Makes retries of this deploy safe [default: a new UUID for each run]
    #[arg(long, value_name = "KEY", help_heading = DEPLOY_WAIT)]
    pub idempotency_key: Option<String>,
    /// Deploy nothing: show the request and the machines its selector matches
    #[arg(long, conflicts_with = "wait", help_heading = DEPLOY_WAIT)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    Rolling,
    Recreate,
}

#[derive(Debug, Args)]
pub struct AppArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(subcommand)]
    pub command: AppCommand,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List the organization's apps
    #[command(visible_alias = "ls")]
    List,
    /// Show an app: release, domain and status
    Get {
        /// App name [default: --app, else [app].name of satusky.toml]
        name: Option<String>,
    },
    /// Show an app's observed status, replica by replica
    Status { name: Option<String> },
    /// Delete an app and everything it runs; its volumes only with --delete-volumes
    #[command(visible_aliases = ["rm", "destroy"])]
    Delete {
        name: Option<String>,
        /// Also delete the app's volumes and their data
        #[arg(long)]
        delete_volumes: bool,
        /// Do not ask to type the app's name again
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Restart every replica (rolling; no new release)
    Restart { name: Option<String> },
    /// List an app's releases, newest first
    Releases { name: Option<String> },
    /// Make a new release copying an earlier one
    Rollback {
        name: Option<String>,
        /// Release to go back to [default: the one before the current]
        #[arg(long, value_name = "N")]
        to: Option<u64>,
    },
    /// Set the number of replicas (a new release): `scale 3` or `scale APP 3`
    Scale {
        #[arg(value_name = "[APP] REPLICAS", num_args = 1..=2, required = true)]
        args: Vec<String>,
    },
    /// Print the app's URL
    Open { name: Option<String> },
    /// Show an app's events, oldest first; --follow keeps streaming new ones
    Events {
        name: Option<String>,
        /// Keep following new events (WebSocket) until interrupted
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only events after this sequence number
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        from: u64,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set variables, merged into the current ones (one new release)
    #[command(visible_alias = "set")]
    Create {
        #[arg(value_name = "KEY=VALUE", required = true)]
        pairs: Vec<String>,
    },
    /// List the variables of the current release
    #[command(visible_alias = "ls")]
    List,
    /// Remove variables (one new release)
    Unset {
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(subcommand)]
    pub command: SecretCommand,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set secrets, merged into the current ones (one new release)
    #[command(visible_alias = "set")]
    Create {
        /// KEY=VALUE pairs, or one KEY with --value-stdin
        #[arg(value_name = "KEY=VALUE", required = true)]
        pairs: Vec<String>,
        /// Read the value of the one KEY from standard input (keeps it out of shell history and process lists)
        #[arg(long)]
        value_stdin: bool,
    },
    /// List secret keys and versions; never their values
    #[command(visible_alias = "ls")]
    List,
    /// Print one secret's value (admins; the server audits it)
    Get { key: String },
    /// Remove secrets (one new release)
    Unset {
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct VolumesArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(subcommand)]
    pub command: VolumesCommand,
}

#[derive(Debug, Subcommand)]
pub enum VolumesCommand {
    /// List the volumes of an app's current release
    #[command(visible_alias = "ls")]
    List { name: Option<String> },
    /// Show one volume: size, mount, claim phase and capacity, attached or not
    #[command(visible_alias = "get")]
    Inspect {
        /// Volume name
        volume: String,
    },
    /// Stop mounting a volume (one new release); its data stays until deleted
    Detach {
        /// Volume name
        volume: String,
    },
    /// Delete a detached volume and its data (refused while mounted)
    Delete {
        /// Volume name
        volume: String,
        /// Don't ask for confirmation
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "An app named `stream` is given with --app stream.\nExit codes: 0 success, 1 refused (e.g. no such app), 2 usage error, 3 unexpected failure (a 5xx answer such as 503 when no cluster is reachable)."
)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(subcommand)]
    pub command: Option<LogsCommand>,
    #[command(flatten)]
    pub opts: LogsOptions,
    /// App name [default: --app, else [app].name of satusky.toml]
    pub name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Follow the app's logs until interrupted (like `logs --follow`)
    Stream {
        #[command(flatten)]
        opts: LogsOptions,
        /// App name [default: --app, else [app].name of satusky.toml]
        name: Option<String>,
    },
}

#[derive(Debug, Args, Clone, Default)]
pub struct LogsOptions {
    /// Last lines per replica (server default 100, at most 5000)
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u32).range(0..=5000))]
    pub tail: Option<u32>,
    /// Only lines from the last DURATION, e.g. 30s, 10m, 1h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<std::time::Duration>,
    /// Only this replica (pod name)
    #[arg(long, value_name = "POD")]
    pub pod: Option<String>,
    /// Keep printing new lines (WebSocket) until interrupted
    #[arg(long, short = 'f')]
    pub follow: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "MACHINE is a machine id or name, resolved the same way by every command: an id first, then a name (two machines of that name: give the id).\nExit codes: 0 success, 1 refused (a 4xx, an unknown or ambiguous machine, a bulk action that failed on some machine, an operation that failed or timed out with --wait), 2 usage error, 3 unexpected failure."
)]
pub struct MachineArgs {
    /// Organization slug [default: the profile's organization]
    #[arg(long, global = true, value_name = "SLUG")]
    pub org: Option<String>,
    #[command(subcommand)]
    pub command: MachineCommand,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Follow the operation's events until it completes, showing progress on stderr
    #[arg(long, short = 'w')]
    pub wait: bool,
    /// How long --wait waits, e.g. 90s, 15m, 1h (a drain's: at least its --timeout and a minute)
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration, requires = "wait")]
    pub wait_timeout: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum MachineCommand {
    /// List the machines visible to the organization (its own and public ones)
    #[command(visible_alias = "ls")]
    List {
        /// Only machines whose labels match this selector, e.g. `pool=gpu,zone in (a,b),!maintenance`
        #[arg(long, short = 'l', value_name = "EXPR")]
        selector: Option<String>,
    },
    /// The machines a label selector matches (a pool)
    Query {
        /// Label selector over user and system labels
        #[arg(long, short = 'l', value_name = "EXPR", required = true)]
        selector: String,
    },
    /// Show one machine
    Get { machine: String },
    /// Show everything about a machine: hardware, labels, link, operation
    Inspect { machine: String },
    /// Show a machine's health (link, Talos services, node conditions), state and operation
    Status { machine: String },
    /// Accept a discovered machine into the organization
    Claim { machine: String },
    /// Give a claimed machine back (it returns to `discovered`)
    Release { machine: String },
    /// A machine's user labels
    #[command(subcommand, visible_alias = "label")]
    Labels(LabelsCommand),
    /// Set who may see a machine: owner, organization or public
    Visibility {
        machine: String,
        #[arg(value_enum, ignore_case = true)]
        visibility: VisibilityArg,
    },
    /// Stop scheduling new pods on a machine (or on every machine --selector matches)
    Cordon(TargetMachine),
    /// Allow scheduling on a machine again (or on every machine --selector matches)
    Uncordon(TargetMachine),
    /// Evict a machine's pods, honouring disruption budgets (or on every machine --selector matches)
    Drain {
        #[command(flatten)]
        target: TargetMachine,
        /// Give up after this long; the machine stays cordoned [server default: 300s]
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Also evict pods using emptyDir volumes (their data is lost)
        #[arg(long)]
        delete_emptydir_data: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Reboot through Talos (drains first unless --force)
    Reboot {
        machine: String,
        /// Skip the drain
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Shut down through Talos (drains first unless --force)
    Shutdown {
        machine: String,
        /// Skip the drain
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop a machine's running operation before its first irreversible step
    /// (or that of every machine --selector matches that runs one)
    ///
    /// A drain stops at once, even one held by a disruption budget; the
    /// machine goes back to the state it was in, and only a cordon Satusky
    /// added is removed. Once Talos reboots, shuts down or resets the
    /// machine, or its node is being removed, the operation cannot be
    /// cancelled.
    Cancel {
        #[command(flatten)]
        target: TargetMachine,
        /// Follow the operation's events until it stopped, showing progress on stderr
        #[arg(long, short = 'w')]
        wait: bool,
        /// How long --wait waits, e.g. 90s, 15m
        #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration, requires = "wait")]
        wait_timeout: std::time::Duration,
    },
    /// Drain, reset and remove a machine for good (its record stays)
    Decommission {
        machine: String,
        /// Remove it even when unreachable (it is then marked needs_wipe)
        #[arg(long)]
        force: bool,
        /// Also wipe the user disks (never by default)
        #[arg(long)]
        wipe_user_disks: bool,
        /// Do not ask to type the machine's name again
        #[arg(long, short = 'y')]
        yes: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Telemetry (CPU, memory, load, network, disk): a live sample, the short
    /// history, or samples as the control plane takes them
    Metrics {
        machine: String,
        /// Stream samples as the control plane takes them (WebSocket), after
        /// those of the last minutes, until interrupted
        #[arg(long, short = 'w', conflicts_with = "history")]
        watch: bool,
        /// The stored history (the last hour by default), oldest first
        #[arg(long)]
        history: bool,
        /// With --history: only samples of the last DURATION (e.g. 15m)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "history")]
        since: Option<std::time::Duration>,
    },
    /// A machine's logs: a Talos service (machined, kubelet, containerd, etcd,
    /// apid, …) or the kernel ring buffer; --follow keeps streaming
    Logs {
        machine: String,
        /// Talos service id, or `kernel` for dmesg
        #[arg(
            long,
            short = 's',
            value_name = "SERVICE",
            default_value = "machined",
            conflicts_with = "kernel"
        )]
        service: String,
        /// The kernel ring buffer (same as --service kernel)
        #[arg(long, visible_alias = "dmesg")]
        kernel: bool,
        /// Start with the last N lines (at most 10000)
        #[arg(long, value_name = "N", default_value_t = 100)]
        tail: u32,
        /// Keep streaming new lines (WebSocket) until interrupted
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Usage periods (billing history): when the organization held each
    /// machine, from its claim until it was released or decommissioned
    Usage {
        /// Only this machine (id or name)
        machine: Option<String>,
        /// Only the last DURATION (e.g. 24h, 720h); hours are counted within it
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        since: Option<std::time::Duration>,
    },
    /// A machine's events, oldest first; --follow keeps streaming new ones
    Events {
        machine: String,
        /// Keep following new events (WebSocket) until interrupted
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only events after this sequence number
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        from: u64,
    },
    /// Join tokens: what a new machine boots with to join the organization
    #[command(subcommand, visible_alias = "token")]
    Tokens(JoinTokenCommand),
}

/// One machine, or every machine a selector matches.
#[derive(Debug, Args)]
pub struct TargetMachine {
    /// Machine id or name
    #[arg(required_unless_present = "selector", conflicts_with = "selector")]
    pub machine: Option<String>,
    /// Act on every operable machine this label selector matches
    #[arg(long, short = 'l', value_name = "EXPR")]
    pub selector: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum LabelsCommand {
    /// A machine's user and system labels
    #[command(visible_alias = "ls")]
    List { machine: String },
    /// Set labels: `set MACHINE k=v…`, or `set --selector EXPR k=v…` on every match
    Set {
        /// Act on every operable machine this label selector matches
        #[arg(long, short = 'l', value_name = "EXPR")]
        selector: Option<String>,
        /// MACHINE then KEY=VALUE pairs (only pairs with --selector)
        #[arg(value_name = "[MACHINE] KEY=VALUE", required = true)]
        args: Vec<String>,
    },
    /// Remove labels
    #[command(visible_aliases = ["remove", "rm"])]
    Unset {
        machine: String,
        #[arg(value_name = "KEY", required = true)]
        keys: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VisibilityArg {
    Owner,
    #[value(alias = "organisation")]
    Organization,
    Public,
}

#[derive(Debug, Subcommand)]
pub enum JoinTokenCommand {
    /// Create a join token; prints it once with the kernel arguments to boot with
    Create {
        /// A name unique among the organization's join tokens
        name: String,
        /// Lifetime in hours, 1 to 8760 [server default: 24]
        #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u32).range(1..=8760))]
        expires: Option<u32>,
    },
    /// List join tokens (never their secrets)
    #[command(visible_alias = "ls")]
    List,
    /// Revoke a join token (machines it admitted stay)
    Revoke {
        /// Join token id or name
        token: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Registered clusters (platform administrators)
    #[command(visible_alias = "ls")]
    List,
    /// Zones apps can be placed in (`deploy --zone`)
    Zones,
}

/// `90`, `90s`, `5m`, `1h`, `1m30s`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("`{s}` is not a duration; use e.g. 90s, 5m or 1h");
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        total = total.checked_add(n * unit).ok_or_else(bad)?;
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

/// Roles are accepted in any case (`Admin`, `ADMIN`, `admin`).
fn parse_role(s: &str) -> Result<Role, String> {
    s.to_ascii_lowercase().parse()
}

fn parse_outcome(s: &str) -> Result<Outcome, String> {
    s.to_ascii_lowercase().parse()
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e}; expected RFC 3339, e.g. 2026-01-31T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(super::parse_duration("5m"), Ok(Duration::from_mins(5)));
        assert_eq!(super::parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(super::parse_duration("1h"), Ok(Duration::from_hours(1)));
        assert!(super::parse_duration("5").is_ok());
        assert!(super::parse_duration("5x").is_err());
        assert!(super::parse_duration("m").is_err());
        assert!(super::parse_duration("0s").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
        super::EnvOnly::command().debug_assert();
    }
}
