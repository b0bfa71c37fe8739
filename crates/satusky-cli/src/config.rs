//! The configuration file: `config.json` in `$SATUSKY_CONFIG_DIR`, or in
//! `satusky/` under the user's config dir. It holds named profiles and the
//! active one, and is written atomically (temporary file, then rename) with
//! mode 0600 in a directory created with mode 0700.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Name of the file inside the configuration directory.
pub const FILE_NAME: &str = "config.json";
/// The profile created by `auth login` when there is none.
pub const DEFAULT_PROFILE: &str = "default";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigFile {
    /// The profile used when neither `--profile` nor `SATUSKY_PROFILE` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// Fields written by another version of 1ctl, kept as they are.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Slug of the organization commands use by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Fields written by another version of 1ctl, kept as they are.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Where the configuration lives.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    dir: PathBuf,
}

impl ConfigStore {
    /// `dir` from `--config-dir`/`SATUSKY_CONFIG_DIR`, else the user's config
    /// dir joined with `satusky`.
    pub fn locate(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let dir = match dir.filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => dir,
            None => dirs::config_dir()
                .context("cannot find the user's configuration directory; set SATUSKY_CONFIG_DIR")?
                .join("satusky"),
        };
        Ok(Self { dir })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Reads the file; a missing file is an empty configuration.
    pub fn load(&self) -> anyhow::Result<ConfigFile> {
        let path = self.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid 1ctl configuration", path.display()))
    }

    /// Writes the whole file atomically, readable by its owner only.
    pub fn save(&self, config: &ConfigFile) -> anyhow::Result<()> {
        create_private_dir(&self.dir)?;
        let path = self.path();
        let mut text =
            serde_json::to_string_pretty(config).context("cannot encode the configuration")?;
        text.push('\n');
        // tempfile creates the file with mode 0600 on Unix.
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json.")
            .tempfile_in(&self.dir)
            .with_context(|| format!("cannot create a temporary file in {}", self.dir.display()))?;
        set_private_file(tmp.path())?;
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("cannot write {}", tmp.path().display()))?;
        tmp.persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(unix)]
fn set_private_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict the permissions of {}", path.display()))
}

#[cfg(not(unix))]
fn set_private_file(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Profile names: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn validate_profile_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!(
            "invalid profile name `{name}`: use 1 to 64 characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "invalid profile name `{name}`: `{c}` is not allowed (use letters, digits, `-` and `_`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saving_then_loading_gives_the_same_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::locate(Some(dir.path().join("nested"))).unwrap();
        assert_eq!(store.load().unwrap(), ConfigFile::default());
        let mut config = ConfigFile {
            active_profile: Some("a".into()),
            ..ConfigFile::default()
        };
        config.profiles.insert(
            "a".into(),
            Profile {
                api_url: Some("https://x".into()),
                token: Some("t".into()),
                ..Profile::default()
            },
        );
        store.save(&config).unwrap();
        store.save(&config).unwrap();
        assert_eq!(store.load().unwrap(), config);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(dir.path().join("nested"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn fields_of_other_versions_survive_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::locate(Some(dir.path().to_owned())).unwrap();
        std::fs::write(
            store.path(),
            r#"{"profiles":{"a":{"token":"t","future":1}},"telemetry":false}"#,
        )
        .unwrap();
        let config = store.load().unwrap();
        store.save(&config).unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["telemetry"], false);
        assert_eq!(value["profiles"]["a"]["future"], 1);
    }

    #[test]
    fn profile_names_are_checked() {
        assert!(validate_profile_name("prod-eu_1").is_ok());
        assert!(validate_profile_name("").is_err());
        assert!(validate_profile_name("a/b").is_err());
        assert!(validate_profile_name("../x").is_err());
    }
}
