//! The resolved settings of one invocation. Each setting comes from the flag,
//! then the environment, then the profile file, then the default; whether a
//! value came from the flag or the environment is asked of clap, never
//! guessed by comparing with a default.

use clap::parser::ValueSource;
use satusky_client::Client;
use serde::Serialize;

use crate::cli::{DEFAULT_API_URL, EnvOnly, GlobalArgs};
use crate::config::{ConfigFile, ConfigStore, DEFAULT_PROFILE, Profile};
use crate::error::{CliError, ErrorContext};
use crate::output::Printer;

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Flag,
    Env,
    Profile,
    Default,
}

pub struct Context {
    pub printer: Printer,
    pub store: ConfigStore,
    pub config: ConfigFile,
    pub profile_name: String,
    pub profile_source: Source,
    pub api_url: String,
    pub api_url_source: Source,
    pub token: Option<String>,
    pub token_source: Option<Source>,
}

/// Value sources of the global flags, read from clap's matches.
pub struct Sources {
    pub api_url: Option<ValueSource>,
    pub profile: Option<ValueSource>,
}

fn from_clap(source: Option<ValueSource>) -> Source {
    match source {
        Some(ValueSource::EnvVariable) => Source::Env,
        _ => Source::Flag,
    }
}

impl Context {
    pub fn resolve(global: GlobalArgs, envs: EnvOnly, sources: &Sources) -> Result<Self, CliError> {
        let GlobalArgs {
            api_url,
            profile,
            output,
            config_dir,
        } = global;
        let printer = Printer::new(output, envs.no_color());
        let store = ConfigStore::locate(config_dir)?;
        let config = store.load()?;

        let (profile_name, profile_source) = match profile.filter(|p| !p.is_empty()) {
            Some(name) => (name, from_clap(sources.profile)),
            None => match &config.active_profile {
                Some(name) => (name.clone(), Source::Profile),
                None => (DEFAULT_PROFILE.to_owned(), Source::Default),
            },
        };
        if profile_source != Source::Default && profile_source != Source::Profile {
            crate::config::validate_profile_name(&profile_name).map_err(CliError::usage)?;
        }
        let stored = config.profiles.get(&profile_name);

        let (api_url, api_url_source) = match api_url.filter(|u| !u.is_empty()) {
            Some(url) => (url, from_clap(sources.api_url)),
            None => match stored.and_then(|p| p.api_url.clone()) {
                Some(url) => (url, Source::Profile),
                None => (DEFAULT_API_URL.to_owned(), Source::Default),
            },
        };
        let (token, token_source) = match envs.token.filter(|t| !t.is_empty()) {
            Some(t) => (Some(t), Some(Source::Env)),
            None => match stored.and_then(|p| p.token.clone()) {
                Some(t) => (Some(t), Some(Source::Profile)),
                None => (None, None),
            },
        };
        Ok(Self {
            printer,
            store,
            config,
            profile_name,
            profile_source,
            api_url,
            api_url_source,
            token,
            token_source,
        })
    }

    /// `1ctl`, or `1ctl -p NAME` when a profile was chosen for this run, to
    /// write commands in hints.
    pub fn prefix(&self) -> String {
        match self.profile_source {
            Source::Flag => format!("1ctl -p {}", self.profile_name),
            _ => "1ctl".to_owned(),
        }
    }

    pub fn error_context(&self) -> ErrorContext<'_> {
        ErrorContext {
            api_url: &self.api_url,
            api_url_source: match self.api_url_source {
                Source::Flag => "the --api-url flag",
                Source::Env => "SATUSKY_API_URL",
                Source::Profile => "the profile",
                Source::Default => "the default",
            },
            prefix: self.prefix(),
        }
    }

    /// The stored profile in use, if it exists.
    pub fn profile(&self) -> Option<&Profile> {
        self.config.profiles.get(&self.profile_name)
    }

    /// The profile in use, for changing; an explicitly chosen profile must
    /// exist, the implicit one is created.
    pub fn profile_mut(&mut self) -> Result<&mut Profile, CliError> {
        if !self.config.profiles.contains_key(&self.profile_name)
            && self.profile_source != Source::Default
        {
            return Err(self.missing_profile());
        }
        if self.config.active_profile.is_none() {
            self.config.active_profile = Some(self.profile_name.clone());
        }
        Ok(self
            .config
            .profiles
            .entry(self.profile_name.clone())
            .or_default())
    }

    pub fn missing_profile(&self) -> CliError {
        CliError::refused(format!("profile `{}` does not exist", self.profile_name)).hint(format!(
            "create it with `1ctl profile create {}`",
            self.profile_name
        ))
    }

    /// Fails when a profile named with `-p`/`SATUSKY_PROFILE` does not exist.
    pub fn require_existing_profile(&self) -> Result<(), CliError> {
        if matches!(self.profile_source, Source::Flag | Source::Env) && self.profile().is_none() {
            return Err(self.missing_profile());
        }
        Ok(())
    }

    pub fn save(&self) -> Result<(), CliError> {
        Ok(self.store.save(&self.config)?)
    }

    /// A client without credentials.
    pub fn anonymous_client(&self) -> Result<Client, CliError> {
        Ok(Client::new(&self.api_url, None)?)
    }

    /// A client with the given token.
    pub fn client_with(&self, token: String) -> Result<Client, CliError> {
        Ok(Client::new(&self.api_url, Some(token))?)
    }

    /// A client with the token of the invocation; fails when there is none.
    pub fn client(&self) -> Result<Client, CliError> {
        self.require_existing_profile()?;
        let token = self.token.clone().ok_or_else(|| {
            CliError::refused(format!("not logged in (profile `{}`)", self.profile_name)).hint(
                format!("run `{} auth login`, or set SATUSKY_TOKEN", self.prefix()),
            )
        })?;
        self.client_with(token)
    }

    /// The organization to act on: `--org`, else the profile's.
    pub fn org(&self, flag: Option<String>) -> Result<String, CliError> {
        if let Some(org) = flag.filter(|o| !o.is_empty()) {
            return Ok(org);
        }
        self.profile().and_then(|p| p.org.clone()).ok_or_else(|| {
            CliError::usage(format!("no organization selected in profile `{}`", self.profile_name))
                .hint(format!(
                    "pass --org SLUG, or choose one with `{} org switch SLUG` (`{0} org list` shows yours)",
                    self.prefix()
                ))
        })
    }
}
