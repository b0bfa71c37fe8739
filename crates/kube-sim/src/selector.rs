//! Label selectors (string grammar and `LabelSelector` objects) and field selectors.

use serde_json::Value;

use crate::error::ApiError;
use crate::registry::ResourceType;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Req {
    key: String,
    op: Op,
}

/// A parsed label selector; an empty one matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<Req>,
    /// Matches nothing (a null PDB selector).
    nothing: bool,
}

fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty()
            || p.len() > 253
            || !p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'))
    {
        return false;
    }
    valid_value(name) && !name.is_empty()
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

/// Splits on commas that are not inside parentheses.
fn split_terms(s: &str) -> Result<Vec<&str>, ApiError> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(ApiError::bad_request(format!(
                "unable to parse requirement: unbalanced parentheses in {s:?}"
            )));
        }
    }
    if depth != 0 {
        return Err(ApiError::bad_request(format!(
            "unable to parse requirement: unbalanced parentheses in {s:?}"
        )));
    }
    out.push(&s[start..]);
    Ok(out)
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to parse requirement: found '{rest}', expected: '('"
            ))
        })?;
    let mut vals = Vec::new();
    for v in inner.split(',') {
        let v = v.trim();
        if !valid_value(v) {
            return Err(ApiError::bad_request(format!(
                "unable to parse requirement: invalid label value: {v:?} in {whole:?}"
            )));
        }
        vals.push(v.to_owned());
    }
    Ok(vals)
}

impl LabelSelector {
    /// Parses the string grammar (`a=b,c!=d,e in (f,g),!h`).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        for term in split_terms(s)? {
            let t = term.trim();
            if t.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: found '', expected: identifier in {s:?}"
                )));
            }
            let req = if let Some(k) = t.strip_prefix('!') {
                Req {
                    key: k.trim().to_owned(),
                    op: Op::DoesNotExist,
                }
            } else if let Some((k, v)) = t.split_once("!=") {
                Req {
                    key: k.trim().to_owned(),
                    op: Op::NotEq(v.trim().to_owned()),
                }
            } else if let Some((k, v)) = t.split_once("==") {
                Req {
                    key: k.trim().to_owned(),
                    op: Op::Eq(v.trim().to_owned()),
                }
            } else if let Some((k, v)) = t.split_once('=') {
                Req {
                    key: k.trim().to_owned(),
                    op: Op::Eq(v.trim().to_owned()),
                }
            } else if let Some(idx) = t.find(" notin ").or_else(|| t.find(" notin(")) {
                Req {
                    key: t[..idx].trim().to_owned(),
                    op: Op::NotIn(parse_set(&t[idx + 6..], s)?),
                }
            } else if let Some(idx) = t.find(" in ").or_else(|| t.find(" in(")) {
                Req {
                    key: t[..idx].trim().to_owned(),
                    op: Op::In(parse_set(&t[idx + 3..], s)?),
                }
            } else {
                Req {
                    key: t.to_owned(),
                    op: Op::Exists,
                }
            };
            if !valid_key(&req.key) {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: invalid label key {:?}: name part must consist of alphanumeric characters, '-', '_' or '.'",
                    req.key
                )));
            }
            if let Op::Eq(v) | Op::NotEq(v) = &req.op
                && !valid_value(v)
            {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: invalid label value: {v:?}"
                )));
            }
            reqs.push(req);
        }
        Ok(Self {
            reqs,
            nothing: false,
        })
    }

    /// Builds a selector from a `LabelSelector` object. `null` matches everything unless
    /// `null_matches_nothing`.
    pub fn from_object(v: &Value, null_matches_nothing: bool) -> Result<Self, String> {
        if v.is_null() {
            return Ok(Self {
                reqs: vec![],
                nothing: null_matches_nothing,
            });
        }
        let mut reqs = Vec::new();
        if let Some(m) = v["matchLabels"].as_object() {
            for (k, val) in m {
                reqs.push(Req {
                    key: k.clone(),
                    op: Op::Eq(val.as_str().unwrap_or_default().to_owned()),
                });
            }
        }
        if let Some(exprs) = v["matchExpressions"].as_array() {
            for e in exprs {
                let key = e["key"].as_str().unwrap_or_default().to_owned();
                let values: Vec<String> = e["values"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                let op = match e["operator"].as_str() {
                    Some("In") => Op::In(values),
                    Some("NotIn") => Op::NotIn(values),
                    Some("Exists") => Op::Exists,
                    Some("DoesNotExist") => Op::DoesNotExist,
                    other => return Err(format!("{other:?} is not a valid selector operator")),
                };
                reqs.push(Req { key, op });
            }
        }
        Ok(Self {
            reqs,
            nothing: false,
        })
    }

    /// The `matchLabels` map as a selector.
    pub fn from_map(m: &Value) -> Self {
        let reqs = m
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| Req {
                        key: k.clone(),
                        op: Op::Eq(v.as_str().unwrap_or_default().to_owned()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            reqs,
            nothing: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty() && !self.nothing
    }

    /// Whether the labels (a JSON map, or null) match.
    pub fn matches(&self, labels: &Value) -> bool {
        if self.nothing {
            return false;
        }
        self.reqs.iter().all(|r| {
            let val = labels.get(&r.key).and_then(Value::as_str);
            match &r.op {
                Op::Eq(v) => val == Some(v.as_str()),
                Op::NotEq(v) => val != Some(v.as_str()),
                Op::In(vs) => val.is_some_and(|x| vs.iter().any(|v| v == x)),
                Op::NotIn(vs) => val.is_none_or(|x| !vs.iter().any(|v| v == x)),
                Op::Exists => val.is_some(),
                Op::DoesNotExist => val.is_none(),
            }
        })
    }

    /// The string form, e.g. for `Scale.status.selector`.
    pub fn to_query(&self) -> String {
        self.reqs
            .iter()
            .map(|r| match &r.op {
                Op::Eq(v) => format!("{}={v}", r.key),
                Op::NotEq(v) => format!("{}!={v}", r.key),
                Op::In(vs) => format!("{} in ({})", r.key, vs.join(",")),
                Op::NotIn(vs) => format!("{} notin ({})", r.key, vs.join(",")),
                Op::Exists => r.key.clone(),
                Op::DoesNotExist => format!("!{}", r.key),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses `a=b,c!=d` and checks every field is supported by `rt`.
    pub fn parse(s: &str, rt: &ResourceType) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        for t in s.split(',') {
            let (field, eq, value) = if let Some((f, v)) = t.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = t.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = t.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{t}'"
                )));
            };
            let field = field.trim();
            if !rt.supports_field(field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_owned(), eq, value.trim().to_owned()));
        }
        Ok(Self { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(field, eq, want)| {
            let have = field_value(obj, field);
            (have == *want) == *eq
        })
    }
}

/// The string value of a selectable field (`""` when absent).
pub fn field_value(obj: &Value, field: &str) -> String {
    let mut cur = obj;
    for part in field.split('.') {
        cur = &cur[part];
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null if field == "spec.unschedulable" || field == "spec.hostNetwork" => {
            "false".to_owned()
        }
        Value::Object(o) if field == "source" => o
            .get("component")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_grammar_matches_like_kubernetes() {
        let labels = json!({"app": "web", "tier": "front"});
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("app in (web,api)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier=back", false),
            ("app in (web, api),tier", true),
            ("", true),
        ];
        for (s, want) in cases {
            assert_eq!(
                LabelSelector::parse(s).unwrap().matches(&labels),
                want,
                "{s}"
            );
        }
    }

    #[test]
    fn malformed_label_selectors_are_bad_requests() {
        for s in ["app in (web", "a=b,,c", "-bad=x", "app=b@d"] {
            assert_eq!(LabelSelector::parse(s).unwrap_err().code, 400, "{s}");
        }
    }

    #[test]
    fn null_pdb_selector_matches_nothing_and_empty_matches_all() {
        let null = LabelSelector::from_object(&Value::Null, true).unwrap();
        assert!(!null.matches(&json!({"a": "b"})));
        let empty = LabelSelector::from_object(&json!({}), true).unwrap();
        assert!(empty.matches(&json!({"a": "b"})));
    }
}
