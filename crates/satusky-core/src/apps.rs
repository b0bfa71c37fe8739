//! The app model: records the store keeps, spec validation, and the desired
//! state the reconciler applies.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use satusky_types::apps::{AppSpec, AppStatus, ReleaseCause, Strategy, VpaMode};

use crate::selector::Selector;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct AppRecord {
    pub id: String,
    pub org_id: String,
    /// Unique per organization.
    pub name: String,
    pub environment: String,
    /// Bumps on every change the reconciler must apply.
    pub generation: u64,
    pub current_release: Option<u64>,
    /// Set by `restart`; the reconciler stamps it on the pod template.
    pub restarted_at: Option<DateTime<Utc>>,
    pub cluster_id: Option<String>,
    pub status: AppStatus,
    /// Deletion requested; the reconciler removes the objects, then the record.
    pub deleting: bool,
    pub delete_volumes: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseRecord {
    pub app_id: String,
    /// 1, 2, 3, … per app.
    pub number: u64,
    pub spec: AppSpec,
    pub cause: ReleaseCause,
    pub rollback_of: Option<u64>,
    pub author_id: Option<String>,
    pub author_email: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An idempotency key remembered with the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub app_id: String,
    pub key: String,
    /// SHA-256 (hex) of the canonical request body.
    pub request_hash: String,
    pub release: u64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEventRecord {
    pub app_id: String,
    /// 1, 2, 3, … per app, assigned by the store.
    pub seq: u64,
    pub kind: String,
    pub message: String,
    pub release: Option<u64>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersionRecord {
    pub app_id: String,
    /// 1, 2, 3, … per app.
    pub version: u64,
    /// The whole key/value map, JSON, sealed with the platform key.
    pub sealed: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRecord {
    pub id: String,
    /// Unique.
    pub name: String,
    pub region: String,
    pub zone: String,
    /// Kubeconfig YAML sealed with the platform key; empty means in-cluster credentials.
    pub sealed_kubeconfig: Vec<u8>,
    pub is_default: bool,
    pub priority: i32,
    /// `unknown`, `healthy` or `unreachable`, with a message.
    pub health: String,
    pub health_message: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What the reconciler applies for one app: everything resolved, secrets
/// opened. Never logged.
#[derive(Clone, PartialEq)]
pub struct DesiredApp {
    pub app_id: String,
    pub app_name: String,
    pub org_id: String,
    pub org_slug: String,
    pub namespace: String,
    pub generation: u64,
    pub release: u64,
    pub spec: AppSpec,
    pub secrets: BTreeMap<String, String>,
    pub restarted_at: Option<DateTime<Utc>>,
    pub domain: String,
    pub cluster_id: Option<String>,
    pub deleting: bool,
    pub delete_volumes: bool,
}

impl std::fmt::Debug for DesiredApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredApp")
            .field("app_id", &self.app_id)
            .field("namespace", &self.namespace)
            .field("generation", &self.generation)
            .field("release", &self.release)
            .field("secrets", &format_args!("<{} keys>", self.secrets.len()))
            .finish_non_exhaustive()
    }
}

/// Where an app runs, for live reads (logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadTarget {
    pub cluster_id: Option<String>,
    pub namespace: String,
    pub app_id: String,
    pub app_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub tail: Option<u32>,
    pub since_seconds: Option<u64>,
    pub pod: Option<String>,
}

/// Live state of workloads, read from the cluster that runs them.
#[async_trait::async_trait]
pub trait Workload: Send + Sync + std::fmt::Debug + 'static {
    /// The last lines of every replica (or one), oldest first per replica.
    async fn logs(
        &self,
        target: &WorkloadTarget,
        opts: &LogOptions,
    ) -> crate::Result<Vec<satusky_types::apps::LogLine>>;
    /// New lines as they are written, from every replica (or one).
    async fn follow_logs(
        &self,
        target: &WorkloadTarget,
        opts: &LogOptions,
    ) -> crate::Result<futures::stream::BoxStream<'static, satusky_types::apps::LogLine>>;
    /// The app's volume claims in the cluster: (volume name, phase, capacity).
    async fn volume_claims(
        &self,
        target: &WorkloadTarget,
    ) -> crate::Result<Vec<(String, Option<String>, Option<String>)>>;
    /// Deletes one volume's claim (its data is lost).
    async fn delete_volume_claim(&self, target: &WorkloadTarget, volume: &str)
    -> crate::Result<()>;
}

/// The claim name the reconciler gives a volume.
pub fn claim_name(app: &str, volume: &str) -> String {
    format!("{app}-{volume}")
}

/// App names: DNS-1035 labels (lowercase letter first, letters, digits and
/// `-`, no trailing `-`), at most 63 characters.
pub fn validate_app_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "app name `{name}` is invalid: use at most 63 lowercase letters, digits and `-`, \
             starting with a letter and not ending with `-`"
        )))
    }
}

/// Image references: `[registry[:port]/]path[:tag][@algo:hex]`, the grammar
/// of the distribution reference.
pub fn validate_image(image: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::validation(format!(
            "image `{image}` is not a valid image reference: {why}"
        ))
    };
    if image.is_empty() || image.len() > 512 {
        return Err(bad("it must be 1 to 512 characters"));
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let (algo, hex) = d
            .split_once(':')
            .ok_or_else(|| bad("a digest is `algorithm:hex`"))?;
        let algo_ok = !algo.is_empty()
            && algo
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
        if !algo_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the digest is malformed"));
        }
    }
    // A tag follows the last `:` that comes after the last `/`.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok {
            return Err(bad(
                "the tag must be up to 128 letters, digits, `_`, `.` or `-`",
            ));
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        if first.contains(['.', ':']) || first == "localhost" {
            let (host, port) = first.split_once(':').unwrap_or((first, ""));
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b));
            let port_ok = port.is_empty() || port.parse::<u16>().is_ok();
            if !host_ok || !port_ok {
                return Err(bad("the registry host is malformed"));
            }
            components.remove(0);
        }
    }
    for c in components {
        let ok = !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && c.bytes()
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !ok {
            return Err(bad(
                "repository path components are lowercase letters, digits and separators",
            ));
        }
    }
    Ok(())
}

/// Kubernetes quantities: a decimal number with an optional suffix (`m`, `k`,
/// `M`, `G`, `T`, `P`, `E`, `Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`). Returns the
/// value in base units (cores or bytes).
pub fn parse_quantity(field: &str, q: &str) -> Result<f64> {
    let bad = || {
        Error::validation(format!(
            "{field} `{q}` is not a Kubernetes quantity (e.g. `250m`, `1`, `512Mi`, `2Gi`)"
        ))
    };
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        _ => return Err(bad()),
    };
    Ok(n * mult)
}

fn validate_int_or_percent(field: &str, v: &str) -> Result<()> {
    let ok = match v.strip_suffix('%') {
        Some(p) => p.parse::<u32>().is_ok_and(|p| p <= 100),
        None => v.parse::<u32>().is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "{field} `{v}` must be an integer or a percentage like `25%`"
        )))
    }
}

/// Environment variable names: `[A-Za-z_][A-Za-z0-9_]*`, at most 255.
pub fn validate_env_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 255
        && key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "`{key}` is not a valid variable name (letters, digits and `_`, not starting with a digit)"
        )))
    }
}

/// Checks a whole spec. Every rule names the field it refuses.
pub fn validate_spec(spec: &AppSpec) -> Result<()> {
    validate_image(&spec.image)?;
    for k in spec.env.keys() {
        validate_env_key(k)?;
    }
    if spec.replicas > 100 {
        return Err(Error::validation("replicas must be between 0 and 100"));
    }
    let r = &spec.resources;
    for (field, v) in [
        ("cpu_request", &r.cpu_request),
        ("cpu_limit", &r.cpu_limit),
        ("memory_request", &r.memory_request),
        ("memory_limit", &r.memory_limit),
    ] {
        if let Some(v) = v {
            parse_quantity(field, v)?;
        }
    }
    if let (Some(req), Some(lim)) = (&r.cpu_request, &r.cpu_limit)
        && parse_quantity("cpu_request", req)? > parse_quantity("cpu_limit", lim)?
    {
        return Err(Error::validation(format!(
            "cpu_request `{req}` exceeds cpu_limit `{lim}`"
        )));
    }
    if let (Some(req), Some(lim)) = (&r.memory_request, &r.memory_limit)
        && parse_quantity("memory_request", req)? > parse_quantity("memory_limit", lim)?
    {
        return Err(Error::validation(format!(
            "memory_request `{req}` exceeds memory_limit `{lim}`"
        )));
    }
    let mut seen = BTreeSet::new();
    for p in &spec.ports {
        if p.container_port == 0 {
            return Err(Error::validation("ports must be between 1 and 65535"));
        }
        if !matches!(p.protocol.as_str(), "TCP" | "UDP") {
            return Err(Error::validation(format!(
                "port protocol `{}` must be TCP or UDP",
                p.protocol
            )));
        }
        if !seen.insert((p.container_port, p.protocol.clone())) {
            return Err(Error::validation(format!(
                "port {} is listed twice",
                p.container_port
            )));
        }
        if p.public && p.protocol != "TCP" {
            return Err(Error::validation("only TCP ports can be public"));
        }
    }
    if let Some(h) = &spec.health {
        if !h.path.starts_with('/') {
            return Err(Error::validation(format!(
                "health path `{}` must start with `/`",
                h.path
            )));
        }
        if spec.ports.is_empty() && h.port.is_none() {
            return Err(Error::validation("a health check needs a port: add --port"));
        }
    }
    if let Strategy::Rolling {
        max_surge,
        max_unavailable,
    } = &spec.strategy
    {
        validate_int_or_percent("max_surge", max_surge)?;
        validate_int_or_percent("max_unavailable", max_unavailable)?;
        if matches!(max_surge.as_str(), "0" | "0%")
            && matches!(max_unavailable.as_str(), "0" | "0%")
        {
            return Err(Error::validation(
                "max_surge and max_unavailable cannot both be zero",
            ));
        }
    }
    let mut names = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for v in &spec.volumes {
        if !crate::selector::valid_value(&v.name)
            || v.name.contains(['_', '.'])
            || v.name.to_lowercase() != v.name
        {
            return Err(Error::validation(format!(
                "volume name `{}` must be lowercase letters, digits and `-`",
                v.name
            )));
        }
        if parse_quantity("volume size", &v.size)? < 1.0 {
            return Err(Error::validation(format!(
                "volume size `{}` is too small",
                v.size
            )));
        }
        if !v.mount_path.starts_with('/') || v.mount_path.contains(':') {
            return Err(Error::validation(format!(
                "mount path `{}` must be an absolute path",
                v.mount_path
            )));
        }
        if !names.insert(v.name.clone()) || !paths.insert(v.mount_path.clone()) {
            return Err(Error::validation(format!(
                "volume `{}` repeats a name or mount path",
                v.name
            )));
        }
    }
    if let Some(a) = &spec.autoscaling {
        if a.min_replicas == 0 || a.min_replicas > a.max_replicas || a.max_replicas > 100 {
            return Err(Error::validation(
                "autoscaling needs 1 <= min_replicas <= max_replicas <= 100",
            ));
        }
        if !(1..=100).contains(&a.cpu_percent) {
            return Err(Error::validation(
                "autoscaling cpu_percent must be between 1 and 100",
            ));
        }
        if spec.vertical_autoscaling == Some(VpaMode::Auto) {
            return Err(Error::validation(
                "horizontal autoscaling cannot be combined with vertical autoscaling in `auto` mode: both would act on CPU",
            ));
        }
    }
    if let Some(s) = &spec.machine_selector {
        Selector::parse(s)?;
    }
    if let Some(z) = &spec.zone
        && !crate::selector::valid_value(z)
    {
        return Err(Error::validation(format!(
            "zone `{z}` is not a valid label value"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_follow_the_distribution_grammar() {
        for ok in [
            "nginx",
            "nginx:1.27",
            "library/nginx:latest",
            "ghcr.io/acme/web:1.2.3",
            "localhost:5000/a/b:c",
            "registry.example.com:443/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "a.b/c_d__e:tag",
        ] {
            assert!(validate_image(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            "ghcr.io//web",
            "web@sha256:xyz",
            "a b",
            "nginx:tag!",
            "UPPER/case",
        ] {
            assert!(validate_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities_parse_to_base_units() {
        assert!((parse_quantity("cpu", "250m").unwrap() - 0.25).abs() < 1e-9);
        assert!((parse_quantity("mem", "1Gi").unwrap() - 1_073_741_824.0).abs() < 1e-3);
        assert!((parse_quantity("cpu", "1.5").unwrap() - 1.5).abs() < 1e-9);
        for bad in ["", "1.2.3", "abc", "1Xi", ".5", "5."] {
            assert!(parse_quantity("q", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn specs_are_checked_field_by_field() {
        let base = AppSpec {
            image: "nginx:1".into(),
            replicas: 3,
            ..AppSpec::default()
        };
        assert!(validate_spec(&base).is_ok());
        let with = |f: &dyn Fn(&mut AppSpec)| {
            let mut s = base.clone();
            f(&mut s);
            validate_spec(&s).map_err(|e| e.message)
        };
        assert!(with(&|s| s.replicas = 101).is_err());
        assert!(with(&|s| s.resources.cpu_request = Some("lots".into())).is_err());
        assert!(
            with(&|s| {
                s.resources.cpu_request = Some("2".into());
                s.resources.cpu_limit = Some("500m".into());
            })
            .is_err()
        );
        assert!(with(&|s| s.env.insert("1BAD".into(), "x".into()).map_or((), |_| ())).is_err());
        assert!(
            with(&|s| s.strategy = Strategy::Rolling {
                max_surge: "0".into(),
                max_unavailable: "0%".into()
            })
            .is_err()
        );
        assert!(with(&|s| s.machine_selector = Some("pool in gpu".into())).is_err());
        let hpa_vpa = with(&|s| {
            s.autoscaling = Some(satusky_types::apps::Autoscaling {
                min_replicas: 1,
                max_replicas: 3,
                cpu_percent: 80,
            });
            s.vertical_autoscaling = Some(VpaMode::Auto);
        });
        assert!(hpa_vpa.unwrap_err().contains("vertical autoscaling"));
    }

    #[test]
    fn app_names_are_dns_1035_labels() {
        assert!(validate_app_name("web-1").is_ok());
        for bad in ["", "1web", "Web", "web-", "we_b", &"a".repeat(64)] {
            assert!(validate_app_name(bad).is_err(), "{bad}");
        }
    }
}
