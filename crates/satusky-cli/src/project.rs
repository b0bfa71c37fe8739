//! `satusky.toml`: how `1ctl deploy` runs an app, kept next to its code.
//!
//! Located by searching from the current directory upward for
//! `satusky.toml`, or chosen with `--config NAME` (`satusky.NAME.toml` next to
//! where `satusky.toml` is, else in the current directory) or
//! `--config PATH.toml`. Files never inherit from each other. Fields of the
//! Go client's older layout (`[app] health_path`, `strategy`, …) are read
//! into their new sections; keys this 1ctl does not use are reported on
//! stderr and ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::CliError;
use crate::output::note;

pub const FILE_NAME: &str = "satusky.toml";

/// A value of `[env]`: strings, and numbers or booleans written bare
/// (`PORT = 8080`), which are passed as their text.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum EnvValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl EnvValue {
    pub fn into_string(self) -> String {
        match self {
            Self::Str(s) => s,
            Self::Int(n) => n.to_string(),
            Self::Float(f) => f.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

/// A `[pdb]` quantity: an integer or a percentage string.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

impl IntOrString {
    pub fn into_string(self) -> String {
        match self {
            Self::Int(n) => n.to_string(),
            Self::Str(s) => s,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Project {
    pub app: AppSection,
    pub checks: ChecksSection,
    pub deploy: DeploySection,
    #[serde(deserialize_with = "env_table")]
    pub env: BTreeMap<String, String>,
    pub volume: VolumeSection,
    pub hpa: HpaSection,
    pub pdb: PdbSection,
    pub vpa: VpaSection,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AppSection {
    pub name: Option<String>,
    pub image: Option<String>,
    pub port: Option<u16>,
    /// Several ports; the first is the public one.
    pub ports: Option<Vec<u16>>,
    pub replicas: Option<u32>,
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    /// Deprecated alias of `cpu_limit`.
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub memory_limit: Option<String>,
    pub zone: Option<String>,
    pub environment: Option<String>,
    pub machine_selector: Option<String>,
    /// Older form: selectors that must all match.
    pub machine_labels: Vec<String>,
    /// Older form: selectors of which one must match.
    pub machine_label_any: Vec<String>,
    // Older layout, read into [checks] and [deploy].
    pub health_path: Option<String>,
    pub strategy: Option<String>,
    pub rolling_max_surge: Option<String>,
    pub rolling_max_unavailable: Option<String>,
    pub machine_tag: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ChecksSection {
    pub health_path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeploySection {
    pub strategy: Option<String>,
    pub rolling_max_surge: Option<String>,
    pub rolling_max_unavailable: Option<String>,
    /// Older form of placement (`gpu & region=kul`).
    pub machine_tag: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VolumeSection {
    pub name: Option<String>,
    pub size: Option<String>,
    pub mount: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HpaSection {
    pub enabled: Option<bool>,
    pub min_replicas: Option<u32>,
    pub max_replicas: Option<u32>,
    pub cpu_target: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PdbSection {
    pub enabled: Option<bool>,
    pub min_available: Option<IntOrString>,
    pub max_unavailable: Option<IntOrString>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VpaSection {
    pub enabled: Option<bool>,
    pub mode: Option<String>,
}

fn env_table<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, EnvValue>::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k, v.into_string())).collect())
}

/// Keys read from each section; anything else is reported and ignored.
const KNOWN: &[(&str, &[&str])] = &[
    (
        "app",
        &[
            "name",
            "image",
            "port",
            "ports",
            "replicas",
            "cpu_request",
            "cpu_limit",
            "cpu",
            "memory",
            "memory_limit",
            "zone",
            "environment",
            "machine_selector",
            "machine_labels",
            "machine_label_any",
            "health_path",
            "strategy",
            "rolling_max_surge",
            "rolling_max_unavailable",
            "machine_tag",
        ],
    ),
    ("checks", &["health_path"]),
    (
        "deploy",
        &[
            "strategy",
            "rolling_max_surge",
            "rolling_max_unavailable",
            "machine_tag",
        ],
    ),
    ("volume", &["name", "size", "mount"]),
    (
        "hpa",
        &["enabled", "min_replicas", "max_replicas", "cpu_target"],
    ),
    ("pdb", &["enabled", "min_available", "max_unavailable"]),
    ("vpa", &["enabled", "mode"]),
];

/// A loaded file and where it was.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub project: Project,
}

/// Searches `start` and its parents for `satusky.toml`.
pub fn find_upward(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// The path `--config` names: a `.toml` path as given, or a name meaning
/// `satusky.NAME.toml` in the directory of `satusky.toml` (else `cwd`).
pub fn named_path(cwd: &Path, config: &str) -> PathBuf {
    if Path::new(config)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
    {
        return cwd.join(config);
    }
    let dir = find_upward(cwd)
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| cwd.to_path_buf());
    dir.join(format!("satusky.{config}.toml"))
}

/// The file to use: the one `--config` names (which must exist), else
/// `satusky.toml` found upward, else none.
pub fn locate(config: Option<&str>) -> Result<Option<PathBuf>, CliError> {
    let cwd = std::env::current_dir().map_err(|e| {
        CliError::unexpected(&anyhow::Error::new(e).context("cannot read the current directory"))
    })?;
    match config.filter(|c| !c.is_empty()) {
        Some(c) => {
            let path = named_path(&cwd, c);
            if path.is_file() {
                Ok(Some(path))
            } else {
                Err(
                    CliError::usage(format!("config file {} does not exist", path.display()))
                        .hint("create it with `1ctl init` (`--config NAME` for satusky.NAME.toml)"),
                )
            }
        }
        None => Ok(find_upward(&cwd)),
    }
}

/// Loads the file `--config` names, or the one found upward; `None` when
/// there is none.
pub fn load(config: Option<&str>) -> Result<Option<Loaded>, CliError> {
    let Some(path) = locate(config)? else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::unexpected(
            &anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
        )
    })?;
    let project = parse(&text)
        .map_err(|e| CliError::usage(format!("{} is not valid: {e}", path.display())))?;
    Ok(Some(Loaded { path, project }))
}

/// Parses the text of a file, reports unused keys on stderr and reads the
/// older layout into the new sections.
pub fn parse(text: &str) -> Result<Project, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    for unused in unused_keys(&table) {
        note(&format!(
            "warning: satusky.toml: `{unused}` is not used by this 1ctl; ignored"
        ));
    }
    let mut project: Project = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    normalize(&mut project);
    Ok(project)
}

fn unused_keys(table: &toml::Table) -> Vec<String> {
    let mut unused = Vec::new();
    for (section, value) in table {
        if section == "env" {
            continue;
        }
        let Some((_, keys)) = KNOWN.iter().find(|(s, _)| s == section) else {
            unused.push(format!("[{section}]"));
            continue;
        };
        if let Some(t) = value.as_table() {
            unused.extend(
                t.keys()
                    .filter(|k| !keys.contains(&k.as_str()))
                    .map(|k| format!("{section}.{k}")),
            );
        }
    }
    unused
}

/// Moves the older `[app]` fields into their sections when those are empty.
fn normalize(p: &mut Project) {
    fn fill(target: &mut Option<String>, legacy: &mut Option<String>) {
        if target.is_none() {
            *target = legacy.take();
        } else {
            *legacy = None;
        }
    }
    fill(&mut p.checks.health_path, &mut p.app.health_path);
    fill(&mut p.deploy.strategy, &mut p.app.strategy);
    fill(
        &mut p.deploy.rolling_max_surge,
        &mut p.app.rolling_max_surge,
    );
    fill(
        &mut p.deploy.rolling_max_unavailable,
        &mut p.app.rolling_max_unavailable,
    );
    fill(&mut p.deploy.machine_tag, &mut p.app.machine_tag);
    fill(&mut p.app.cpu_limit, &mut p.app.cpu);
}

/// A DNS-1035 label from a directory name: lowercase letters, digits and
/// `-`, starting with a letter, at most 63 characters.
pub fn app_name_from_dir(dir: &Path) -> Option<String> {
    let raw = dir.file_name()?.to_str()?.to_ascii_lowercase();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name.trim_start_matches(|c: char| !c.is_ascii_lowercase());
    let mut name: String = name.chars().take(63).collect();
    while name.ends_with('-') {
        name.pop();
    }
    (!name.is_empty()).then_some(name)
}

/// The commented file `1ctl init` writes.
pub fn template(name: &str, image: Option<&str>, port: u16) -> String {
    let image = match image {
        Some(i) => format!("image = \"{i}\""),
        None => "# image = \"ghcr.io/acme/web:1.0.0\"  # or pass --image".to_owned(),
    };
    format!(
        r#"# satusky.toml: how `1ctl deploy` runs this app.
# A flag given on the command line wins over this file. A setting left out
# here (and not given as a flag) keeps the app's current value; on the first
# deploy the documented defaults apply.

[app]
name = "{name}"
{image}
port = {port}
# replicas = 1
# cpu_request = "250m"
# cpu_limit = "1"
# memory = "256Mi"           # request and limit, unless memory_limit is set
# memory_limit = "512Mi"
# zone = "my-kul-1b"
# environment = "production"
# machine_selector = "pool=gpu,region in (kul,bki),!maintenance"

[checks]
# health_path = "/healthz"   # readiness and liveness probe path

[deploy]
# strategy = "rolling"       # or "recreate"
# rolling_max_surge = "25%"
# rolling_max_unavailable = "25%"

[env]
# LOG_LEVEL = "info"         # merged with --env KEY=VALUE (the flag wins per key)

# [volume]
# name = "data"
# size = "1Gi"
# mount = "/data"

# [hpa]
# enabled = true
# min_replicas = 2
# max_replicas = 6
# cpu_target = 70

# [pdb]
# min_available = 1          # or max_unavailable = "25%", not both

# [vpa]
# mode = "initial"           # off, initial or auto (not auto together with [hpa])
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_to_its_name_image_and_port() {
        let p = parse(&template("web", Some("nginx:1"), 8080)).unwrap();
        assert_eq!(p.app.name.as_deref(), Some("web"));
        assert_eq!(p.app.image.as_deref(), Some("nginx:1"));
        assert_eq!(p.app.port, Some(8080));
        assert!(p.env.is_empty());
        assert!(p.deploy.strategy.is_none());
    }

    #[test]
    fn the_older_layout_is_read_into_the_new_sections() {
        let p = parse(
            "[app]\nname = \"a\"\ncpu = \"2\"\nhealth_path = \"/h\"\nstrategy = \"recreate\"\n[deploy]\nrolling_max_surge = \"1\"\n",
        )
        .unwrap();
        assert_eq!(p.app.cpu_limit.as_deref(), Some("2"));
        assert_eq!(p.checks.health_path.as_deref(), Some("/h"));
        assert_eq!(p.deploy.strategy.as_deref(), Some("recreate"));
        assert_eq!(p.deploy.rolling_max_surge.as_deref(), Some("1"));
    }

    #[test]
    fn env_values_may_be_written_bare() {
        let p = parse("[env]\nPORT = 8080\nDEBUG = true\nNAME = \"x\"\n").unwrap();
        assert_eq!(p.env["PORT"], "8080");
        assert_eq!(p.env["DEBUG"], "true");
        assert_eq!(p.env["NAME"], "x");
        assert!(parse("[env]\nLIST = [1]\n").is_err());
        assert!(parse("[app]\nport = \"x\"\n").is_err());
    }

    #[test]
    fn pdb_values_may_be_numbers_or_strings() {
        let p = parse("[pdb]\nmin_available = 2\nmax_unavailable = \"25%\"\n").unwrap();
        assert_eq!(p.pdb.min_available, Some(IntOrString::Int(2)));
        assert_eq!(
            p.pdb.max_unavailable.map(IntOrString::into_string),
            Some("25%".to_owned())
        );
    }

    #[test]
    fn unused_keys_are_found() {
        let t: toml::Table = toml::from_str(
            "[build]\ndockerfile = \"D\"\n[app]\nname = \"a\"\nfast = true\n[env]\nX = \"1\"\n",
        )
        .unwrap();
        assert_eq!(unused_keys(&t), vec!["app.fast", "[build]"]);
    }

    #[test]
    fn names_from_directories_are_dns_labels() {
        assert_eq!(
            app_name_from_dir(Path::new("/x/My_Web App")).as_deref(),
            Some("my-web-app")
        );
        assert_eq!(
            app_name_from_dir(Path::new("/x/42-api")).as_deref(),
            Some("api")
        );
        assert_eq!(app_name_from_dir(Path::new("/x/123")), None);
    }

    #[test]
    fn config_names_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        assert_eq!(named_path(cwd, "prod"), cwd.join("satusky.prod.toml"));
        assert_eq!(named_path(cwd, "x/app.toml"), cwd.join("x/app.toml"));
    }
}
