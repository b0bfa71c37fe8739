//! How each result looks in a table, and the few results that are `1ctl`'s
//! own (profiles, login status). Wire types print as they are in JSON.

use chrono::{DateTime, Utc};
use satusky_types::identity::{ApiToken, Me, TokenCreated, User};
use satusky_types::orgs::{AuditEntry, Member, Org};
use serde::Serialize;

use crate::context::Source;
use crate::output::{Fields, Row, opt, opt_time, time};

impl Row for Org {
    const HEADERS: &'static [&'static str] = &["SLUG", "NAME", "ROLE", "NAMESPACE", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.slug.clone(),
            self.name.clone(),
            self.role.to_string(),
            self.namespace.clone(),
            time(&self.created_at),
        ]
    }
}

impl Fields for Org {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Slug", self.slug.clone()),
            ("Name", self.name.clone()),
            ("Role", self.role.to_string()),
            ("Namespace", self.namespace.clone()),
            ("ID", self.id.clone()),
            ("Created", time(&self.created_at)),
        ]
    }
}

impl Row for Member {
    const HEADERS: &'static [&'static str] = &["EMAIL", "NAME", "ROLE", "USER ID", "JOINED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.email.clone(),
            self.name.clone(),
            self.role.to_string(),
            self.user_id.clone(),
            time(&self.joined_at),
        ]
    }
}

impl Fields for Member {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Email", self.email.clone()),
            ("Name", self.name.clone()),
            ("Role", self.role.to_string()),
            ("User ID", self.user_id.clone()),
            ("Joined", time(&self.joined_at)),
        ]
    }
}

impl Fields for User {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Email", self.email.clone()),
            ("Name", self.name.clone()),
            ("ID", self.id.clone()),
            ("Created", time(&self.created_at)),
        ]
    }
}

impl Fields for Me {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = self.user.fields();
        fields.push(("Auth", self.auth.clone()));
        if let Some(org) = &self.token_org {
            fields.push(("Token org", org.clone()));
        }
        fields.push(("Expires", opt_time(self.expires_at.as_ref())));
        fields
    }
}

impl Row for ApiToken {
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "PREFIX",
        "ORG",
        "ENABLED",
        "EXPIRES",
        "LAST USED",
        "ID",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.prefix.clone(),
            opt(self.org.as_deref()),
            if self.enabled { "yes" } else { "no" }.to_owned(),
            opt_time(self.expires_at.as_ref()),
            opt_time(self.last_used_at.as_ref()),
            self.id.clone(),
        ]
    }
}

impl Fields for ApiToken {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Name", self.name.clone()),
            ("ID", self.id.clone()),
            ("Prefix", self.prefix.clone()),
            ("Org", opt(self.org.as_deref())),
            (
                "Enabled",
                if self.enabled { "yes" } else { "no" }.to_owned(),
            ),
            ("Expires", opt_time(self.expires_at.as_ref())),
            ("Last used", opt_time(self.last_used_at.as_ref())),
            ("Created", time(&self.created_at)),
        ]
    }
}

impl Fields for TokenCreated {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = self.token.fields();
        fields.push(("Secret", self.secret.clone()));
        fields
    }
}

impl Row for AuditEntry {
    const HEADERS: &'static [&'static str] = &["AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "ID"];
    fn cells(&self) -> Vec<String> {
        vec![
            time(&self.at),
            actor(self),
            self.action.clone(),
            self.target.clone(),
            self.outcome.as_str().to_owned(),
            self.id.clone(),
        ]
    }
}

impl Fields for AuditEntry {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ID", self.id.clone()),
            ("At", time(&self.at)),
            ("Actor", actor(self)),
            ("Actor ID", opt(self.actor_id.as_deref())),
            ("Action", self.action.clone()),
            ("Target", self.target.clone()),
            ("Outcome", self.outcome.as_str().to_owned()),
            ("Request ID", self.request_id.clone()),
            ("Org ID", self.org_id.clone()),
        ]
    }
}

fn actor(e: &AuditEntry) -> String {
    e.actor_email
        .clone()
        .or_else(|| e.actor_id.clone())
        .unwrap_or_else(|| "-".to_owned())
}

/// A profile as listed: never its token.
#[derive(Debug, Serialize)]
pub struct ProfileView {
    pub name: String,
    pub active: bool,
    /// The profile's own API URL; absent means the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    pub logged_in: bool,
}

impl Row for ProfileView {
    const HEADERS: &'static [&'static str] = &["", "NAME", "API URL", "EMAIL", "ORG", "LOGGED IN"];
    fn cells(&self) -> Vec<String> {
        vec![
            if self.active { "*" } else { "" }.to_owned(),
            self.name.clone(),
            self.api_url
                .clone()
                .unwrap_or_else(|| "(default)".to_owned()),
            opt(self.email.as_deref()),
            opt(self.org.as_deref()),
            if self.logged_in { "yes" } else { "no" }.to_owned(),
        ]
    }
}

impl Fields for ProfileView {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Name", self.name.clone()),
            ("Active", if self.active { "yes" } else { "no" }.to_owned()),
            (
                "API URL",
                self.api_url
                    .clone()
                    .unwrap_or_else(|| "(default)".to_owned()),
            ),
            ("Email", opt(self.email.as_deref())),
            ("Org", opt(self.org.as_deref())),
            (
                "Logged in",
                if self.logged_in { "yes" } else { "no" }.to_owned(),
            ),
        ]
    }
}

/// The settings in effect for this invocation and where each comes from.
#[derive(Debug, Serialize)]
pub struct CurrentProfile {
    pub name: String,
    pub name_source: Source,
    /// Whether the profile is stored in the configuration file.
    pub exists: bool,
    pub api_url: String,
    pub api_url_source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub logged_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_source: Option<Source>,
    pub config_file: String,
}

fn source(s: Source) -> &'static str {
    match s {
        Source::Flag => "flag",
        Source::Env => "env",
        Source::Profile => "profile file",
        Source::Default => "default",
    }
}

impl Fields for CurrentProfile {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "Profile",
                format!("{} (from {})", self.name, source(self.name_source)),
            ),
            (
                "API URL",
                format!("{} (from {})", self.api_url, source(self.api_url_source)),
            ),
            ("Org", opt(self.org.as_deref())),
            ("Email", opt(self.email.as_deref())),
            (
                "Logged in",
                match self.token_source {
                    Some(s) => format!("yes (token from {})", source(s)),
                    None => "no".to_owned(),
                },
            ),
            ("Config file", self.config_file.clone()),
        ]
    }
}

/// Who the profile is logged in as.
#[derive(Debug, Serialize)]
pub struct AuthStatus {
    pub profile: String,
    pub api_url: String,
    pub user: User,
    /// `session` or `token`.
    pub auth: String,
    /// The organization commands use by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// For a personal token limited to one organization: that organization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_org: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Fields for AuthStatus {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("Profile", self.profile.clone()),
            ("API URL", self.api_url.clone()),
            ("Email", self.user.email.clone()),
            ("Name", self.user.name.clone()),
            ("User ID", self.user.id.clone()),
            ("Auth", self.auth.clone()),
            ("Org", opt(self.org.as_deref())),
        ];
        if let Some(org) = &self.token_org {
            fields.push(("Token org", org.clone()));
        }
        fields.push(("Expires", opt_time(self.expires_at.as_ref())));
        fields
    }
}

/// What a deletion or logout did, for `-o json`/`-o yaml`.
#[derive(Debug, Serialize)]
pub struct Done {
    pub kind: &'static str,
    pub id: String,
    pub action: &'static str,
}
