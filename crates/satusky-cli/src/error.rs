//! Failures of a command, how they are shown and the exit status they give.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the request was refused: a 4xx from the server, or a local refusal (unknown profile, not logged in, confirmation not given) |
//! | 2 | usage error: bad flags or arguments (clap), a missing required setting, an invalid API URL |
//! | 3 | unexpected failure: no connection, timeout, 5xx, an answer that cannot be read, a file that cannot be written |

use satusky_client::ClientError;
use satusky_types::ErrorCode;

/// The exit status of `1ctl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    Refused = 1,
    Usage = 2,
    Unexpected = 3,
}

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// The API call failed; rendered with the context of the call.
    Client(ClientError),
    /// A failure found by `1ctl` itself.
    Local {
        status: ExitStatus,
        message: String,
        hints: Vec<String>,
    },
}

impl CliError {
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Local {
            status: ExitStatus::Refused,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::Local {
            status: ExitStatus::Usage,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    pub fn unexpected(err: &anyhow::Error) -> Self {
        Self::Local {
            status: ExitStatus::Unexpected,
            message: format!("{err:#}"),
            hints: Vec::new(),
        }
    }

    /// Adds a `hint:` line.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        if let Self::Local { hints, .. } = &mut self {
            hints.push(hint.into());
        }
        self
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        Self::Client(e)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        Self::unexpected(&e)
    }
}

/// What the renderer knows about the invocation, for hints.
pub struct ErrorContext<'a> {
    pub api_url: &'a str,
    /// Where the API URL came from: `--api-url`, `SATUSKY_API_URL`, …
    pub api_url_source: &'a str,
    /// `1ctl` or `1ctl -p NAME`, to write commands in hints.
    pub prefix: String,
}

/// A rendered failure: the exit status, the message and the hints.
pub struct Rendered {
    pub status: ExitStatus,
    pub message: String,
    pub hints: Vec<String>,
}

pub fn render(err: CliError, ctx: &ErrorContext<'_>) -> Rendered {
    match err {
        CliError::Local {
            status,
            message,
            hints,
        } => Rendered {
            status,
            message,
            hints,
        },
        CliError::Client(e) => render_client(&e, ctx),
    }
}

fn render_client(e: &ClientError, ctx: &ErrorContext<'_>) -> Rendered {
    let p = &ctx.prefix;
    let mut hints = Vec::new();
    let (status, message) = match e {
        ClientError::InvalidBaseUrl { .. } => {
            hints.push(format!(
                "the API URL came from {}; set another with --api-url, SATUSKY_API_URL or `{p} profile create NAME --api-url URL`",
                ctx.api_url_source
            ));
            (ExitStatus::Usage, e.to_string())
        }
        ClientError::Api { status, body } => {
            let code = body.error.code;
            hints.extend(hints_for_code(code, p));
            let message = format!("{} ({code})", body.error.message);
            if *status >= 500 {
                hints.push(format!(
                    "the server failed (HTTP {status}); quote request id {} when reporting it",
                    body.error.request_id
                ));
                (ExitStatus::Unexpected, message)
            } else {
                (ExitStatus::Refused, message)
            }
        }
        ClientError::UnexpectedStatus {
            status,
            request_id,
            code,
            ..
        } => {
            if code.is_none() {
                hints.push(format!(
                    "is {} a Satusky API? (the URL came from {})",
                    ctx.api_url, ctx.api_url_source
                ));
            } else {
                hints.push(
                    "this 1ctl does not know that error code; it may be older than the server"
                        .to_owned(),
                );
            }
            if let Some(id) = request_id {
                hints.push(format!("quote request id {id} when reporting it"));
            }
            if *status >= 500 || *status < 400 {
                (ExitStatus::Unexpected, e.to_string())
            } else {
                (ExitStatus::Refused, e.to_string())
            }
        }
        ClientError::Transport { source, .. } => {
            let cause = root_cause(source);
            let message = if e.is_timeout() {
                format!(
                    "the Satusky API at {} did not answer within {} s",
                    ctx.api_url,
                    satusky_client::DEFAULT_TIMEOUT.as_secs()
                )
            } else if e.is_connect() {
                format!(
                    "could not connect to the Satusky API at {}: {cause}",
                    ctx.api_url
                )
            } else {
                format!("{e}: {cause}")
            };
            hints.push(format!(
                "is the server running? The API URL came from {}; change it with --api-url or SATUSKY_API_URL",
                ctx.api_url_source
            ));
            (ExitStatus::Unexpected, message)
        }
        ClientError::Decode { source, .. } => {
            hints.push("1ctl and the server may be of different versions".to_owned());
            (ExitStatus::Unexpected, format!("{e}: {source}"))
        }
        ClientError::Setup { source } => (
            ExitStatus::Unexpected,
            format!("{e}: {}", root_cause(source)),
        ),
        ClientError::PaginationLoop { .. } => (ExitStatus::Unexpected, e.to_string()),
        ClientError::WebSocket { source, .. } if e.is_connect() => {
            hints.push(format!(
                "is the server running? The API URL came from {}; change it with --api-url or SATUSKY_API_URL",
                ctx.api_url_source
            ));
            (
                ExitStatus::Unexpected,
                format!(
                    "could not connect to the Satusky API at {}: {source}",
                    ctx.api_url
                ),
            )
        }
        ClientError::WebSocket { source, .. } => {
            hints.push("a proxy in front of the API may not pass WebSockets through".to_owned());
            (ExitStatus::Unexpected, format!("{e}: {source}"))
        }
    };
    Rendered {
        status,
        message,
        hints,
    }
}

fn hints_for_code(code: ErrorCode, p: &str) -> Vec<String> {
    use ErrorCode as C;
    let hint = match code {
        C::Unauthenticated | C::TokenExpired => format!("run `{p} auth login` to log in again"),
        C::TokenDisabled => format!(
            "enable the token again with `1ctl token enable NAME` from another login, or run `{p} auth login`"
        ),
        C::InvalidCredentials => "check the email and password".to_owned(),
        C::SignupDisabled => "ask an administrator of this installation for an account".to_owned(),
        C::OrgNotFound => format!("run `{p} org list` to see your organizations"),
        C::MemberNotFound | C::UserNotFound => {
            format!("run `{p} org team list` to see the members")
        }
        C::TokenNotFound => format!("run `{p} token list` to see your tokens"),
        C::AuditEntryNotFound => format!("run `{p} audit list` to see the entries"),
        C::RouteNotFound | C::MethodNotAllowed => {
            "the server does not know this route; it may be older than 1ctl".to_owned()
        }
        C::EmailTaken => format!("log in with `{p} auth login --email EMAIL` instead"),
        C::OrgSlugTaken => "choose another slug".to_owned(),
        C::MemberExists => format!("change the role with `{p} org team role USER --role ROLE`"),
        C::TokenNameTaken => "choose another name, or delete the old token first".to_owned(),
        C::LastOwner => "make another member owner first".to_owned(),
        C::RateLimited => "wait a moment and retry".to_owned(),
        C::ConfirmationRequired => "repeat the slug to confirm".to_owned(),
        C::AppNotFound => format!("run `{p} app list` to see the apps"),
        C::ReleaseNotFound => format!("run `{p} app releases APP` to see the releases"),
        C::SecretNotFound => format!("run `{p} secret list --app APP` to see the keys"),
        C::ConfigKeyNotFound => format!("run `{p} config list --app APP` to see the variables"),
        C::VolumeNotFound => format!("run `{p} volumes list APP` to see the volumes"),
        C::NoRelease => format!("deploy it first with `{p} deploy --image IMAGE`"),
        C::AppDeleting => "the app is being deleted; wait, then deploy it again".to_owned(),
        C::IdempotencyKeyReused => {
            "this --idempotency-key was used for another request; use a new one (or none)"
                .to_owned()
        }
        C::Conflict => "another change won; retry".to_owned(),
        C::MachineNotFound => format!("run `{p} machine list` to see the machines"),
        C::JoinTokenNotFound => format!("run `{p} machine tokens list` to see the join tokens"),
        C::MachineLogNotFound => format!(
            "Talos services are named like `machined`, `kubelet`, `containerd`, `etcd`, `apid`; `{p} machine status MACHINE` lists them; use `--kernel` for dmesg"
        ),
        C::JoinTokenNameTaken => "choose another name, or revoke the old token first".to_owned(),
        C::MachineBusy => {
            format!("another operation is running; `{p} machine status MACHINE` shows it")
        }
        C::MachineStateConflict => {
            format!("`{p} machine status MACHINE` shows the machine's state")
        }
        C::ClusterNotFound => format!("run `{p} cluster list` to see the clusters"),
        C::Unavailable => "the installation cannot do this now (no cluster attached, a machine unreachable, or a feature not configured); ask its operator if it persists".to_owned(),
        _ => return Vec::new(),
    };
    vec![hint]
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
