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
    /// Delete an organization and everything in it
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
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
        super::EnvOnly::command().debug_assert();
    }
}
