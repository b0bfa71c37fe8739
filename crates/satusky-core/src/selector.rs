//! Kubernetes label selectors: the full string grammar (`a=b`, `a==b`,
//! `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, comma-joined), parsed
//! into requirements that can be matched against labels and turned into
//! node-affinity terms. Used for machine pools and workload placement.

use std::collections::BTreeMap;

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

fn bad(expr: &str, why: &str) -> Error {
    Error::validation(format!("invalid label selector `{expr}`: {why}"))
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters (alphanumerics with `-`, `_`, `.` inside).
pub fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && valid_value(name)
}

/// A label value: empty, or at most 63 alphanumerics with `-`, `_`, `.` inside.
pub fn valid_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()))
}

/// Splits on commas that are not inside parentheses.
fn split_top(expr: &str) -> Result<Vec<&str>> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in expr.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(bad(expr, "unbalanced `)`"));
                }
            }
            ',' if depth == 0 => {
                parts.push(&expr[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad(expr, "unbalanced `(`"));
    }
    parts.push(&expr[start..]);
    Ok(parts)
}

impl Selector {
    pub fn parse(expr: &str) -> Result<Self> {
        let mut requirements = Vec::new();
        if expr.trim().is_empty() {
            return Ok(Self { requirements });
        }
        for raw in split_top(expr)? {
            let part = raw.trim();
            if part.is_empty() {
                return Err(bad(expr, "empty requirement"));
            }
            requirements.push(Self::requirement(expr, part)?);
        }
        Ok(Self { requirements })
    }

    fn requirement(expr: &str, part: &str) -> Result<Requirement> {
        let check_key = |k: &str| -> Result<String> {
            let k = k.trim();
            if valid_key(k) {
                Ok(k.to_owned())
            } else {
                Err(bad(expr, &format!("`{k}` is not a valid label key")))
            }
        };
        let check_value = |v: &str| -> Result<String> {
            let v = v.trim();
            if valid_value(v) {
                Ok(v.to_owned())
            } else {
                Err(bad(expr, &format!("`{v}` is not a valid label value")))
            }
        };
        if let Some(k) = part.strip_prefix('!') {
            return Ok(Requirement {
                key: check_key(k)?,
                op: Op::DoesNotExist,
                values: vec![],
            });
        }
        for (token, op) in [(" notin ", Op::NotIn), (" in ", Op::In)] {
            if let Some((k, rest)) = part.split_once(token) {
                let rest = rest.trim();
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| bad(expr, "a set must be written `(a,b)`"))?;
                let values = inner
                    .split(',')
                    .map(check_value)
                    .collect::<Result<Vec<_>>>()?;
                if values.iter().any(String::is_empty) && values.len() > 1 {
                    return Err(bad(expr, "empty value in a set"));
                }
                return Ok(Requirement {
                    key: check_key(k)?,
                    op,
                    values,
                });
            }
        }
        for (token, op) in [("!=", Op::NotEq), ("==", Op::Eq), ("=", Op::Eq)] {
            if let Some((k, v)) = part.split_once(token) {
                return Ok(Requirement {
                    key: check_key(k)?,
                    op,
                    values: vec![check_value(v)?],
                });
            }
        }
        if part.contains(['(', ')', '<', '>', ' ']) {
            return Err(bad(expr, &format!("cannot read `{part}`")));
        }
        Ok(Requirement {
            key: check_key(part)?,
            op: Op::Exists,
            values: vec![],
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| {
            let v = labels.get(&r.key);
            match r.op {
                Op::Eq | Op::In => v.is_some_and(|v| r.values.contains(v)),
                Op::NotEq | Op::NotIn => v.is_none_or(|v| !r.values.contains(v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
            }
        })
    }

    /// The canonical string form, as Kubernetes prints it.
    pub fn to_canonical(&self) -> String {
        self.requirements
            .iter()
            .map(|r| match r.op {
                Op::Eq => format!("{}={}", r.key, r.values[0]),
                Op::NotEq => format!("{}!={}", r.key, r.values[0]),
                Op::In => format!("{} in ({})", r.key, r.values.join(",")),
                Op::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Op::Exists => r.key.clone(),
                Op::DoesNotExist => format!("!{}", r.key),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Prefix of user machine labels on Kubernetes nodes.
pub const LABEL_PREFIX: &str = "satusky.com/";

/// The node label key for a machine label key as users write it: keys with
/// a prefix are taken as they are; the well-known short names map to the
/// Kubernetes labels; every other bare key lives under `satusky.com/`.
pub fn node_label_key(key: &str) -> String {
    if key.contains('/') {
        return key.to_owned();
    }
    match key {
        "arch" => "kubernetes.io/arch".to_owned(),
        "os" => "kubernetes.io/os".to_owned(),
        "hostname" => "kubernetes.io/hostname".to_owned(),
        "zone" => "topology.kubernetes.io/zone".to_owned(),
        "region" => "topology.kubernetes.io/region".to_owned(),
        other => format!("{LABEL_PREFIX}{other}"),
    }
}

impl Selector {
    /// The same selector over node label keys (see [`node_label_key`]).
    pub fn for_nodes(&self) -> Selector {
        Selector {
            requirements: self
                .requirements
                .iter()
                .map(|r| Requirement {
                    key: node_label_key(&r.key),
                    ..r.clone()
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bare_keys_map_to_node_label_keys() {
        let s = Selector::parse("pool=gpu,zone in (a),!satusky.com/maintenance,arch")
            .unwrap()
            .for_nodes();
        assert_eq!(
            s.to_canonical(),
            "satusky.com/pool=gpu,topology.kubernetes.io/zone in (a),!satusky.com/maintenance,kubernetes.io/arch"
        );
    }

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_the_full_grammar() {
        let s = Selector::parse(
            "pool=gpu,zone in (a, b),!maintenance,tier!=free,satusky.com/ssd,env notin (dev)",
        )
        .unwrap();
        assert_eq!(s.requirements.len(), 6);
        assert_eq!(
            s.to_canonical(),
            "pool=gpu,zone in (a,b),!maintenance,tier!=free,satusky.com/ssd,env notin (dev)"
        );
        assert_eq!(Selector::parse("a==b").unwrap().requirements[0].op, Op::Eq);
    }

    #[test]
    fn matches_like_kubernetes() {
        let s = Selector::parse("pool=gpu,zone in (a,b),!maintenance,tier!=free").unwrap();
        assert!(s.matches(&labels(&[("pool", "gpu"), ("zone", "a")])));
        assert!(s.matches(&labels(&[("pool", "gpu"), ("zone", "b"), ("tier", "pro")])));
        assert!(!s.matches(&labels(&[("pool", "gpu"), ("zone", "c")])));
        assert!(!s.matches(&labels(&[
            ("pool", "gpu"),
            ("zone", "a"),
            ("maintenance", "")
        ])));
        assert!(!s.matches(&labels(&[("pool", "gpu"), ("zone", "a"), ("tier", "free")])));
        assert!(Selector::parse("").unwrap().matches(&labels(&[])));
    }

    #[test]
    fn rejects_malformed_selectors_with_a_reason() {
        for bad in [
            "a in b",
            "a in (b",
            "=b",
            "a=b=c d",
            "a,,b",
            "-a=b",
            "a=b c",
            "a in (x,,y)",
            "a > 3",
        ] {
            let e = Selector::parse(bad).unwrap_err();
            assert!(
                e.message.contains("invalid label selector"),
                "{bad}: {}",
                e.message
            );
        }
    }
}
