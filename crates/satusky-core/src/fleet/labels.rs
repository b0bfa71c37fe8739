//! Machine labels. User labels are stored without the `satusky.com/`
//! prefix; system labels (`arch`, `cpu`, `memory`, `gpu`, `zone`,
//! `hostname`) are facts the platform sets and users cannot change.
//!
//! A selector may use bare keys (`pool=gpu`), prefixed user keys
//! (`satusky.com/pool=gpu`) or the Kubernetes keys system labels become on
//! nodes (`topology.kubernetes.io/zone=a`): [`normalize`] maps them all to
//! machine keys. The same selector, translated with `Selector::for_nodes`,
//! selects the same machines on their nodes' labels, because [`node_labels`]
//! pushes every machine label under `node_label_key` (the kubelet sets
//! `kubernetes.io/arch` and `kubernetes.io/hostname` itself).

use std::collections::BTreeMap;

use satusky_types::machines::{Hardware, LabelsChange};

use crate::selector::{LABEL_PREFIX, Selector, node_label_key, valid_key, valid_value};
use crate::{Error, Result};

/// System label keys: read-only facts.
pub const SYSTEM_KEYS: [&str; 6] = ["arch", "cpu", "memory", "gpu", "zone", "hostname"];

/// Keys that map to Kubernetes-owned node labels and so cannot be user labels.
const RESERVED_KEYS: [&str; 2] = ["os", "region"];

/// System keys the kubelet sets on the node itself.
const KUBELET_KEYS: [&str; 2] = ["arch", "hostname"];

/// A user may have at most this many labels on a machine.
pub const MAX_USER_LABELS: usize = 64;

/// The system labels of a machine.
pub fn system_labels(hw: &Hardware, zone: &str, hostname: &str) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() && valid_value(&v) {
            l.insert(k.to_owned(), v);
        }
    };
    put("arch", hw.arch.clone());
    put("cpu", hw.cpu_cores.to_string());
    put("memory", format!("{}Gi", hw.memory_bytes.div_ceil(1 << 30)));
    put("gpu", hw.gpus.to_string());
    put("zone", zone.to_owned());
    put("hostname", hostname.to_lowercase());
    l
}

/// The machine key a selector or label key names: `satusky.com/x` → `x`,
/// the Kubernetes keys of system labels → their short names, bare keys as
/// they are. Other prefixed keys stay prefixed (they never match).
pub fn normalize(key: &str) -> String {
    if let Some(k) = key.strip_prefix(LABEL_PREFIX) {
        return k.to_owned();
    }
    match key {
        "kubernetes.io/arch" => "arch".to_owned(),
        "kubernetes.io/hostname" => "hostname".to_owned(),
        "topology.kubernetes.io/zone" => "zone".to_owned(),
        other => other.to_owned(),
    }
}

/// A user label key as stored: normalized, bare, and not a system or
/// reserved key.
pub fn user_key(key: &str) -> Result<String> {
    let k = key.trim();
    if !valid_key(k) {
        return Err(Error::validation(format!(
            "`{k}` is not a valid label key (alphanumerics, `-`, `_`, `.`; at most 63 characters)"
        )));
    }
    let k = normalize(k);
    if k.contains('/') {
        return Err(Error::validation(format!(
            "label `{k}`: machine labels live under `{LABEL_PREFIX}`; write the key without a prefix"
        )));
    }
    if SYSTEM_KEYS.contains(&k.as_str()) || RESERVED_KEYS.contains(&k.as_str()) {
        return Err(Error::validation(format!(
            "label `{k}` is a system label and read-only"
        )));
    }
    Ok(k)
}

/// Applies a change to user labels, validating every key and value.
pub fn apply(
    labels: &BTreeMap<String, String>,
    change: &LabelsChange,
) -> Result<BTreeMap<String, String>> {
    let mut out = labels.clone();
    for k in &change.unset {
        out.remove(&user_key(k)?);
    }
    for (k, v) in &change.set {
        let k = user_key(k)?;
        if !valid_value(v) {
            return Err(Error::validation(format!(
                "label `{k}`: `{v}` is not a valid value (at most 63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric)"
            )));
        }
        out.insert(k, v.clone());
    }
    if out.len() > MAX_USER_LABELS {
        return Err(Error::validation(format!(
            "a machine may have at most {MAX_USER_LABELS} labels"
        )));
    }
    Ok(out)
}

/// User and system labels together, as selectors see them.
pub fn all_labels(
    user: &BTreeMap<String, String>,
    system: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut l = user.clone();
    l.extend(system.iter().map(|(k, v)| (k.clone(), v.clone())));
    l
}

/// Parses a selector and maps its keys to machine keys.
pub fn machine_selector(expr: &str) -> Result<Selector> {
    let mut s = Selector::parse(expr)?;
    for r in &mut s.requirements {
        r.key = normalize(&r.key);
    }
    Ok(s)
}

/// The node labels Satusky owns for a machine, keyed by node label key.
pub fn node_labels(
    user: &BTreeMap<String, String>,
    system: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    all_labels(user, system)
        .into_iter()
        .filter(|(k, _)| !KUBELET_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (node_label_key(&k), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hw() -> Hardware {
        Hardware {
            arch: "amd64".to_owned(),
            cpu_cores: 8,
            memory_bytes: 16 * (1 << 30) - 5,
            gpus: 1,
            disks: vec![],
        }
    }

    #[test]
    fn system_labels_describe_the_hardware() {
        let l = system_labels(&hw(), "eu-1a", "Node-1");
        assert_eq!(l["arch"], "amd64");
        assert_eq!(l["cpu"], "8");
        assert_eq!(l["memory"], "16Gi");
        assert_eq!(l["gpu"], "1");
        assert_eq!(l["zone"], "eu-1a");
        assert_eq!(l["hostname"], "node-1");
        assert!(!system_labels(&hw(), "", "h").contains_key("zone"));
    }

    #[test]
    fn user_keys_are_stored_bare_and_system_keys_are_refused() {
        assert_eq!(user_key("satusky.com/pool").unwrap(), "pool");
        assert_eq!(user_key("pool").unwrap(), "pool");
        for bad in [
            "zone",
            "arch",
            "satusky.com/gpu",
            "os",
            "kubernetes.io/foo",
            "-x",
            "",
        ] {
            assert!(user_key(bad).is_err(), "{bad}");
        }
        let change = LabelsChange {
            set: [("pool".to_owned(), "bad value".to_owned())].into(),
            unset: vec![],
        };
        assert!(apply(&BTreeMap::new(), &change).is_err());
    }

    /// The kubelet's own labels on a node of this machine.
    fn kubelet(system: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        [
            ("kubernetes.io/arch", system["arch"].clone()),
            ("kubernetes.io/hostname", system["hostname"].clone()),
            ("kubernetes.io/os", "linux".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    #[test]
    fn a_selector_picks_the_same_machines_as_its_node_form_picks_nodes() {
        let machines: Vec<(BTreeMap<String, String>, BTreeMap<String, String>)> = vec![
            (
                [("pool".to_owned(), "gpu".to_owned())].into(),
                system_labels(&hw(), "a", "m1"),
            ),
            (
                [
                    ("pool".to_owned(), "web".to_owned()),
                    ("ssd".to_owned(), String::new()),
                ]
                .into(),
                system_labels(
                    &Hardware {
                        arch: "arm64".to_owned(),
                        ..hw()
                    },
                    "b",
                    "m2",
                ),
            ),
            (BTreeMap::new(), system_labels(&hw(), "", "m3")),
        ];
        for expr in [
            "pool=gpu",
            "satusky.com/pool=web",
            "pool!=gpu",
            "pool in (gpu,web),zone notin (b)",
            "ssd",
            "!ssd",
            "!pool",
            "arch=arm64",
            "zone=a,cpu=8,memory=16Gi,gpu=1",
            "hostname in (m1,m3)",
            "topology.kubernetes.io/zone=b",
            "kubernetes.io/arch==amd64",
        ] {
            let s = machine_selector(expr).unwrap();
            let nodes = Selector::parse(expr).unwrap().for_nodes();
            for (user, system) in &machines {
                let mut node = kubelet(system);
                node.extend(node_labels(user, system));
                assert_eq!(
                    s.matches(&all_labels(user, system)),
                    nodes.matches(&node),
                    "{expr} on {user:?} {system:?}"
                );
            }
        }
    }
}
