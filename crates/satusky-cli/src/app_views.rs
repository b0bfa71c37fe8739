//! How apps, releases, events, variables, secrets and volumes look in a
//! table. JSON and YAML print the wire types as they are, except secrets,
//! which are listed as keys and versions only.

use std::fmt::Write as _;

use satusky_types::apps::{
    App, AppEvent, AppPhase, AppSpec, AppStatus, Deployed, Release, ReplicaStatus, Strategy, Volume,
};
use serde::Serialize;

use crate::output::{Fields, Row, opt, opt_time, time};

pub fn phase(p: AppPhase) -> &'static str {
    match p {
        AppPhase::Pending => "pending",
        AppPhase::Progressing => "progressing",
        AppPhase::Available => "available",
        AppPhase::Degraded => "degraded",
        AppPhase::Deleting => "deleting",
    }
}

fn opt_num(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// `available`, or `degraded (CrashLoopBackOff)`.
pub fn phase_with_reason(s: &AppStatus) -> String {
    match &s.reason {
        Some(r) => format!("{} ({r})", phase(s.phase)),
        None => phase(s.phase).to_owned(),
    }
}

pub fn url(app: &App) -> String {
    format!("https://{}", app.default_domain)
}

impl Row for App {
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "STATUS",
        "READY",
        "RELEASE",
        "ENVIRONMENT",
        "DOMAIN",
        "UPDATED",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            phase_with_reason(&self.status),
            format!(
                "{}/{}",
                self.status.ready_replicas, self.status.desired_replicas
            ),
            opt_num(self.current_release),
            self.environment.clone(),
            self.default_domain.clone(),
            time(&self.updated_at),
        ]
    }
}

impl Fields for App {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let s = &self.status;
        let mut fields = vec![
            ("Name", self.name.clone()),
            ("Org", self.org.clone()),
            ("Environment", self.environment.clone()),
            ("URL", url(self)),
            ("Release", opt_num(self.current_release)),
            ("Status", phase_with_reason(s)),
        ];
        if let Some(m) = &s.message {
            fields.push(("Message", m.clone()));
        }
        fields.extend([
            (
                "Replicas",
                format!(
                    "{}/{} ready, {} updated",
                    s.ready_replicas, s.desired_replicas, s.updated_replicas
                ),
            ),
            ("Observed release", opt_num(s.observed_release)),
            ("Cluster", opt(self.cluster.as_deref())),
            ("Generation", self.generation.to_string()),
            ("ID", self.id.clone()),
            ("Created", time(&self.created_at)),
            ("Updated", time(&self.updated_at)),
        ]);
        fields
    }
}

impl Fields for AppStatus {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![("Status", phase_with_reason(self))];
        if let Some(m) = &self.message {
            fields.push(("Message", m.clone()));
        }
        fields.extend([
            (
                "Replicas",
                format!(
                    "{}/{} ready, {} updated",
                    self.ready_replicas, self.desired_replicas, self.updated_replicas
                ),
            ),
            ("Observed release", opt_num(self.observed_release)),
            ("Observed generation", self.observed_generation.to_string()),
            ("Updated", opt_time(self.updated_at.as_ref())),
        ]);
        for c in &self.conditions {
            let mut text = c.status.clone();
            if let Some(r) = &c.reason {
                let _ = write!(text, " ({r})");
            }
            if let Some(m) = &c.message {
                let _ = write!(text, ": {m}");
            }
            fields.push(("Condition", format!("{} {text}", c.type_)));
        }
        fields
    }
}

impl Row for ReplicaStatus {
    const HEADERS: &'static [&'static str] = &[
        "POD", "PHASE", "READY", "RESTARTS", "REASON", "RELEASE", "NODE",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.pod.clone(),
            self.phase.clone(),
            if self.ready { "yes" } else { "no" }.to_owned(),
            self.restarts.to_string(),
            opt(self.reason.as_deref()),
            opt_num(self.release),
            opt(self.node.as_deref()),
        ]
    }
}

fn strategy(s: &Strategy) -> String {
    match s {
        Strategy::Rolling {
            max_surge,
            max_unavailable,
        } => format!("rolling (surge {max_surge}, unavailable {max_unavailable})"),
        Strategy::Recreate => "recreate".to_owned(),
    }
}

fn spec_fields(spec: &AppSpec) -> Vec<(&'static str, String)> {
    let r = &spec.resources;
    let mut fields = vec![
        ("Image", spec.image.clone()),
        ("Replicas", spec.replicas.to_string()),
        (
            "Ports",
            if spec.ports.is_empty() {
                "-".to_owned()
            } else {
                spec.ports
                    .iter()
                    .map(|p| p.container_port.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "CPU",
            format!(
                "{} request, {} limit",
                opt(r.cpu_request.as_deref()),
                opt(r.cpu_limit.as_deref())
            ),
        ),
        (
            "Memory",
            format!(
                "{} request, {} limit",
                opt(r.memory_request.as_deref()),
                opt(r.memory_limit.as_deref())
            ),
        ),
        ("Strategy", strategy(&spec.strategy)),
        (
            "Health path",
            opt(spec.health.as_ref().map(|h| h.path.as_str())),
        ),
        (
            "Env",
            spec.env.keys().cloned().collect::<Vec<_>>().join(", "),
        ),
        ("Secret version", spec.secret_version.to_string()),
    ];
    if let Some(a) = &spec.autoscaling {
        fields.push((
            "Autoscaling",
            format!(
                "{}..{} replicas at {}% CPU",
                a.min_replicas, a.max_replicas, a.cpu_percent
            ),
        ));
    }
    if !spec.volumes.is_empty() {
        fields.push((
            "Volumes",
            spec.volumes
                .iter()
                .map(|v| format!("{} {} at {}", v.name, v.size, v.mount_path))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if let Some(s) = &spec.machine_selector {
        fields.push(("Machines", s.clone()));
    }
    if let Some(z) = &spec.zone {
        fields.push(("Zone", z.clone()));
    }
    fields
}

impl Row for Release {
    const HEADERS: &'static [&'static str] =
        &["RELEASE", "CAUSE", "IMAGE", "REPLICAS", "AUTHOR", "CREATED"];
    fn cells(&self) -> Vec<String> {
        let cause = match self.rollback_of {
            Some(n) => format!("{} of {n}", self.cause.as_str()),
            None => self.cause.as_str().to_owned(),
        };
        vec![
            self.number.to_string(),
            cause,
            self.spec.image.clone(),
            self.spec.replicas.to_string(),
            opt(self.author.as_deref()),
            time(&self.created_at),
        ]
    }
}

impl Fields for Release {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("Release", self.number.to_string()),
            ("Cause", self.cause.as_str().to_owned()),
        ];
        if let Some(n) = self.rollback_of {
            fields.push(("Rollback of", n.to_string()));
        }
        fields.extend([
            ("Author", opt(self.author.as_deref())),
            ("Created", time(&self.created_at)),
        ]);
        fields.extend(spec_fields(&self.spec));
        fields
    }
}

impl Fields for Deployed {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![("App", self.app.name.clone()), ("URL", url(&self.app))];
        fields.extend(self.release.fields());
        if self.replayed {
            fields.push(("Replayed", "yes".to_owned()));
        }
        fields
    }
}

impl Row for AppEvent {
    const HEADERS: &'static [&'static str] = &["SEQ", "AT", "KIND", "RELEASE", "MESSAGE"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.seq.to_string(),
            time(&self.at),
            self.kind.clone(),
            opt_num(self.release),
            self.message.clone(),
        ]
    }
}

/// One line of `app events --follow` in table mode.
pub fn event_line(e: &AppEvent) -> String {
    format!("{}  {}  {}  {}", e.seq, time(&e.at), e.kind, e.message)
}

/// An environment variable as listed.
#[derive(Debug, Serialize)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
}

impl Row for EnvVar {
    const HEADERS: &'static [&'static str] = &["KEY", "VALUE"];
    fn cells(&self) -> Vec<String> {
        vec![self.key.clone(), self.value.clone()]
    }
}

/// A secret as listed: its key and version, never its value.
#[derive(Debug, Serialize)]
pub struct SecretKey {
    pub key: String,
    pub version: u64,
}

impl Row for SecretKey {
    const HEADERS: &'static [&'static str] = &["KEY", "VERSION"];
    fn cells(&self) -> Vec<String> {
        vec![self.key.clone(), self.version.to_string()]
    }
}

impl Row for Volume {
    const HEADERS: &'static [&'static str] = &["NAME", "SIZE", "MOUNT"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.size.clone(),
            self.mount_path.clone(),
        ]
    }
}

impl Fields for Volume {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Name", self.name.clone()),
            ("Size", self.size.clone()),
            ("Mount", self.mount_path.clone()),
        ]
    }
}

impl Fields for satusky_types::apps::VolumeInfo {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        vec![
            ("Name", self.name.clone()),
            ("Size", or_dash(&self.size)),
            ("Mount", or_dash(&self.mount_path)),
            ("Attached", self.attached.to_string()),
            ("Claim", self.claim.clone()),
            ("Phase", or_dash(&self.phase)),
            ("Capacity", or_dash(&self.capacity)),
        ]
    }
}

/// The URL of an app, for `app open`.
#[derive(Debug, Serialize)]
pub struct AppUrl {
    pub app: String,
    pub url: String,
}
