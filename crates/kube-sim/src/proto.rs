//! A minimal decoder of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).
//!
//! kubectl 1.32 sends typed objects (evictions, `kubectl create namespace|configmap|secret|
//! deployment`, typed deletes) as protobuf. This decodes the `k8s\0` envelope and the few
//! message types those commands send into JSON; unknown fields are skipped and unknown types are
//! refused with 415.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

#[derive(Clone, Copy)]
enum K {
    Str,
    Int,
    Bool,
    Msg(&'static str),
    MapStr,
    MapBytes,
    MapMsg(&'static str),
    RepStr,
    RepMsg(&'static str),
    IntOrString,
}

type Fields = &'static [(u64, &'static str, K)];

fn schema(msg: &str) -> Option<Fields> {
    Some(match msg {
        "ObjectMeta" => &[
            (1, "name", K::Str),
            (2, "generateName", K::Str),
            (3, "namespace", K::Str),
            (5, "uid", K::Str),
            (6, "resourceVersion", K::Str),
            (11, "labels", K::MapStr),
            (12, "annotations", K::MapStr),
            (13, "ownerReferences", K::RepMsg("OwnerReference")),
            (14, "finalizers", K::RepStr),
        ],
        "OwnerReference" => &[
            (1, "kind", K::Str),
            (3, "name", K::Str),
            (4, "uid", K::Str),
            (5, "apiVersion", K::Str),
            (6, "controller", K::Bool),
            (7, "blockOwnerDeletion", K::Bool),
        ],
        "DeleteOptions" => &[
            (1, "gracePeriodSeconds", K::Int),
            (2, "preconditions", K::Msg("Preconditions")),
            (4, "propagationPolicy", K::Str),
            (5, "dryRun", K::RepStr),
        ],
        "Preconditions" => &[(1, "uid", K::Str), (2, "resourceVersion", K::Str)],
        "Eviction" => &[
            (1, "metadata", K::Msg("ObjectMeta")),
            (2, "deleteOptions", K::Msg("DeleteOptions")),
        ],
        "Namespace" => &[
            (1, "metadata", K::Msg("ObjectMeta")),
            (2, "spec", K::Msg("NamespaceSpec")),
        ],
        "NamespaceSpec" => &[(1, "finalizers", K::RepStr)],
        "ConfigMap" => &[
            (1, "metadata", K::Msg("ObjectMeta")),
            (2, "data", K::MapStr),
            (3, "binaryData", K::MapBytes),
            (4, "immutable", K::Bool),
        ],
        "Secret" => &[
            (1, "metadata", K::Msg("ObjectMeta")),
            (2, "data", K::MapBytes),
            (3, "type", K::Str),
            (4, "stringData", K::MapStr),
            (5, "immutable", K::Bool),
        ],
        "PodDisruptionBudget" => &[
            (1, "metadata", K::Msg("ObjectMeta")),
            (2, "spec", K::Msg("PodDisruptionBudgetSpec")),
        ],
        "PodDisruptionBudgetSpec" => &[
            (1, "minAvailable", K::IntOrString),
            (2, "selector", K::Msg("LabelSelector")),
            (3, "maxUnavailable", K::IntOrString),
            (4, "unhealthyPodEvictionPolicy", K::Str),
        ],
        "HorizontalPodAutoscaler" => &[
            (1, "metadata", K::Msg("ObjectMeta")),
            (2, "spec", K::Msg("HorizontalPodAutoscalerSpec")),
        ],
        "HorizontalPodAutoscalerSpec" => &[
            (1, "scaleTargetRef", K::Msg("CrossVersionObjectReference")),
            (2, "minReplicas", K::Int),
            (3, "maxReplicas", K::Int),
            (4, "targetCPUUtilizationPercentage", K::Int),
        ],
        "CrossVersionObjectReference" => &[
            (1, "kind", K::Str),
            (2, "name", K::Str),
            (3, "apiVersion", K::Str),
        ],
        "Service" => &[
            (1, "metadata", K::Msg("ObjectMeta")),
            (2, "spec", K::Msg("ServiceSpec")),
        ],
        "ServiceSpec" => &[
            (1, "ports", K::RepMsg("ServicePort")),
            (2, "selector", K::MapStr),
            (3, "clusterIP", K::Str),
            (4, "type", K::Str),
            (5, "externalIPs", K::RepStr),
            (7, "sessionAffinity", K::Str),
        ],
        "ServicePort" => &[
            (1, "name", K::Str),
            (2, "protocol", K::Str),
            (3, "port", K::Int),
            (4, "targetPort", K::IntOrString),
            (5, "nodePort", K::Int),
        ],
        "Deployment" => &[
            (1, "metadata", K::Msg("ObjectMeta")),
            (2, "spec", K::Msg("DeploymentSpec")),
        ],
        "DeploymentSpec" => &[
            (1, "replicas", K::Int),
            (2, "selector", K::Msg("LabelSelector")),
            (3, "template", K::Msg("PodTemplateSpec")),
            (4, "strategy", K::Msg("DeploymentStrategy")),
            (5, "minReadySeconds", K::Int),
            (6, "revisionHistoryLimit", K::Int),
            (7, "paused", K::Bool),
            (9, "progressDeadlineSeconds", K::Int),
        ],
        "DeploymentStrategy" => &[
            (1, "type", K::Str),
            (2, "rollingUpdate", K::Msg("RollingUpdateDeployment")),
        ],
        "RollingUpdateDeployment" => &[
            (1, "maxUnavailable", K::IntOrString),
            (2, "maxSurge", K::IntOrString),
        ],
        "LabelSelector" => &[
            (1, "matchLabels", K::MapStr),
            (2, "matchExpressions", K::RepMsg("LabelSelectorRequirement")),
        ],
        "LabelSelectorRequirement" => &[
            (1, "key", K::Str),
            (2, "operator", K::Str),
            (3, "values", K::RepStr),
        ],
        "PodTemplateSpec" => &[
            (1, "metadata", K::Msg("ObjectMeta")),
            (2, "spec", K::Msg("PodSpec")),
        ],
        "PodSpec" => &[
            (2, "containers", K::RepMsg("Container")),
            (3, "restartPolicy", K::Str),
            (4, "terminationGracePeriodSeconds", K::Int),
            (6, "dnsPolicy", K::Str),
            (7, "nodeSelector", K::MapStr),
            (8, "serviceAccountName", K::Str),
            (10, "nodeName", K::Str),
            (19, "schedulerName", K::Str),
        ],
        "Container" => &[
            (1, "name", K::Str),
            (2, "image", K::Str),
            (3, "command", K::RepStr),
            (4, "args", K::RepStr),
            (5, "workingDir", K::Str),
            (6, "ports", K::RepMsg("ContainerPort")),
            (7, "env", K::RepMsg("EnvVar")),
            (8, "resources", K::Msg("ResourceRequirements")),
            (13, "terminationMessagePath", K::Str),
            (14, "imagePullPolicy", K::Str),
            (20, "terminationMessagePolicy", K::Str),
        ],
        "ContainerPort" => &[
            (1, "name", K::Str),
            (3, "containerPort", K::Int),
            (4, "protocol", K::Str),
        ],
        "EnvVar" => &[(1, "name", K::Str), (2, "value", K::Str)],
        "ResourceRequirements" => &[
            (1, "limits", K::MapMsg("Quantity")),
            (2, "requests", K::MapMsg("Quantity")),
        ],
        _ => return None,
    })
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

fn bad(what: &str) -> ApiError {
    ApiError::bad_request(format!("malformed protobuf body: {what}"))
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .b
                .get(self.pos)
                .ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ApiError> {
        let n = self.varint()? as usize;
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| bad("truncated field"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Next field: (number, varint value or bytes).
    fn field(&mut self) -> Result<(u64, Result<u64, &'a [u8]>), ApiError> {
        let key = self.varint()?;
        let (num, wt) = (key >> 3, key & 7);
        match wt {
            0 => Ok((num, Ok(self.varint()?))),
            1 => {
                self.pos += 8;
                Ok((num, Ok(0)))
            }
            2 => Ok((num, Err(self.bytes()?))),
            5 => {
                self.pos += 4;
                Ok((num, Ok(0)))
            }
            _ => Err(bad("unsupported wire type")),
        }
    }
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

#[expect(clippy::many_single_char_names)]
fn decode_map_entry(b: &[u8], value: K) -> Result<(String, Value), ApiError> {
    let mut r = Reader { b, pos: 0 };
    let (mut k, mut v) = (String::new(), Value::Null);
    while r.pos < b.len() {
        match r.field()? {
            (1, Err(bytes)) => k = String::from_utf8_lossy(bytes).into_owned(),
            (2, Err(bytes)) => {
                v = match value {
                    K::MapBytes => json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    K::MapMsg(m) => decode_msg(bytes, m)?,
                    _ => text(bytes),
                }
            }
            _ => {}
        }
    }
    if v.is_null() {
        v = json!("");
    }
    Ok((k, v))
}

#[expect(clippy::many_single_char_names)]
fn decode_msg(b: &[u8], msg: &str) -> Result<Value, ApiError> {
    if msg == "Quantity" {
        let mut r = Reader { b, pos: 0 };
        while r.pos < b.len() {
            if let (1, Err(s)) = r.field()? {
                return Ok(text(s));
            }
        }
        return Ok(json!("0"));
    }
    let fields = schema(msg).ok_or_else(|| bad(msg))?;
    let mut out = Map::new();
    let mut r = Reader { b, pos: 0 };
    while r.pos < b.len() {
        let (num, val) = r.field()?;
        let Some((_, name, kind)) = fields.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = (*name).to_owned();
        match (*kind, val) {
            (K::Str, Err(s)) if !s.is_empty() => {
                out.insert(name, text(s));
            }
            (K::Int, Ok(v)) => {
                out.insert(name, json!(v as i64));
            }
            (K::Bool, Ok(v)) => {
                out.insert(name, json!(v != 0));
            }
            (K::Msg(m), Err(s)) => {
                out.insert(name, decode_msg(s, m)?);
            }
            (K::IntOrString, Err(s)) => {
                let mut ir = Reader { b: s, pos: 0 };
                let (mut ty, mut iv, mut sv) = (0, 0i64, String::new());
                while ir.pos < s.len() {
                    match ir.field()? {
                        (1, Ok(t)) => ty = t,
                        (2, Ok(v)) => iv = v as i64,
                        (3, Err(x)) => sv = String::from_utf8_lossy(x).into_owned(),
                        _ => {}
                    }
                }
                out.insert(name, if ty == 1 { json!(sv) } else { json!(iv) });
            }
            (K::MapStr | K::MapBytes | K::MapMsg(_), Err(s)) => {
                let (k, v) = decode_map_entry(s, *kind)?;
                let e = out.entry(name).or_insert_with(|| json!({}));
                e[k] = v;
            }
            (K::RepStr, Err(s)) => {
                let e = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut() {
                    a.push(text(s));
                }
            }
            (K::RepMsg(m), Err(s)) => {
                let v = decode_msg(s, m)?;
                let e = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut() {
                    a.push(v);
                }
            }
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a `k8s\0`-enveloped protobuf body into JSON.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let unsupported = |what: String| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("kube-sim decodes protobuf only for a few kinds, not {what}; send JSON"),
        )
    };
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| bad("missing k8s envelope"))?;
    let mut r = Reader { b: inner, pos: 0 };
    let (mut api_version, mut kind, mut raw): (String, String, &[u8]) =
        (String::new(), String::new(), &[]);
    while r.pos < inner.len() {
        match r.field()? {
            (1, Err(tm)) => {
                let mut t = Reader { b: tm, pos: 0 };
                while t.pos < tm.len() {
                    match t.field()? {
                        (1, Err(s)) => api_version = String::from_utf8_lossy(s).into_owned(),
                        (2, Err(s)) => kind = String::from_utf8_lossy(s).into_owned(),
                        _ => {}
                    }
                }
            }
            (2, Err(s)) => raw = s,
            _ => {}
        }
    }
    if schema(&kind).is_none() {
        return Err(unsupported(kind));
    }
    let mut v = decode_msg(raw, &kind)?;
    v["apiVersion"] = json!(api_version);
    v["kind"] = json!(kind);
    Ok(v)
}
