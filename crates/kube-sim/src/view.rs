//! Older API versions served as converting views over the stored version.
//!
//! Only `autoscaling/v1` HorizontalPodAutoscalers (stored as `autoscaling/v2`), which
//! `kubectl autoscale` creates. A request to a view is rewritten to the stored version, and
//! the answer (a single object, a list or a watch stream) is converted back.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::api::PatchType;
use crate::error::ApiError;
use crate::state::State;

/// `(view apiVersion, stored apiVersion, kind)` of every view.
pub const VIEWS: &[(&str, &str, &str)] = &[(
    "autoscaling/v1",
    "autoscaling/v2",
    "HorizontalPodAutoscaler",
)];

fn cpu_metric(metrics: &Value) -> Option<&Value> {
    metrics
        .as_array()?
        .iter()
        .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
}

/// autoscaling/v2 → autoscaling/v1.
pub fn hpa_to_v1(v2: &Value) -> Value {
    let mut out = json!({
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": v2["metadata"],
        "spec": {
            "scaleTargetRef": v2["spec"]["scaleTargetRef"],
            "minReplicas": v2["spec"]["minReplicas"],
            "maxReplicas": v2["spec"]["maxReplicas"],
        },
    });
    if let Some(u) =
        cpu_metric(&v2["spec"]["metrics"]).map(|m| &m["resource"]["target"]["averageUtilization"])
    {
        out["spec"]["targetCPUUtilizationPercentage"] = u.clone();
    }
    if v2["status"].is_object() {
        let s = &v2["status"];
        out["status"] = json!({
            "observedGeneration": s["observedGeneration"],
            "lastScaleTime": s["lastScaleTime"],
            "currentReplicas": s["currentReplicas"].as_i64().unwrap_or(0),
            "desiredReplicas": s["desiredReplicas"].as_i64().unwrap_or(0),
        });
        if let Some(u) = cpu_metric(&s["currentMetrics"])
            .map(|m| &m["resource"]["current"]["averageUtilization"])
        {
            out["status"]["currentCPUUtilizationPercentage"] = u.clone();
        }
    }
    crate::store::strip_nulls(&mut out);
    out
}

/// autoscaling/v1 → autoscaling/v2.
pub fn hpa_to_v2(v1: &Value) -> Value {
    let mut out = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": v1["metadata"],
        "spec": {
            "scaleTargetRef": v1["spec"]["scaleTargetRef"],
            "minReplicas": v1["spec"]["minReplicas"],
            "maxReplicas": v1["spec"]["maxReplicas"],
        },
    });
    if let Some(u) = v1["spec"]["targetCPUUtilizationPercentage"].as_i64() {
        out["spec"]["metrics"] = json!([{"type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": u}}}]);
    }
    crate::store::strip_nulls(&mut out);
    out
}

fn convert_answer(v: &mut Value) {
    match v["kind"].as_str() {
        Some("HorizontalPodAutoscaler") => *v = hpa_to_v1(v),
        Some("HorizontalPodAutoscalerList") => {
            v["apiVersion"] = json!("autoscaling/v1");
            if let Some(items) = v["items"].as_array_mut() {
                for i in items {
                    *i = hpa_to_v1(i);
                }
            }
        }
        _ => {}
    }
}

/// The stored version's path for a view path, if `path` is under a view.
pub fn storage_path(path: &str) -> Option<String> {
    VIEWS.iter().find_map(|(view, stored, _)| {
        path.strip_prefix(&format!("/apis/{view}/"))
            .map(|rest| format!("/apis/{stored}/{rest}"))
    })
}

/// Rewrites a view request for the stored version. Patches become updates of the patched,
/// converted object.
pub fn rewrite_request(
    st: &Arc<State>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(Method, Bytes), ApiError> {
    let parse = |b: &[u8]| -> Result<Value, ApiError> {
        serde_json::from_slice(b)
            .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))
    };
    match *method {
        Method::POST | Method::PUT if !body.is_empty() => {
            let v = hpa_to_v2(&parse(&body)?);
            Ok((
                method.clone(),
                Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            ))
        }
        Method::PATCH => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let ptype = PatchType::from_content_type(ct);
            let rt = st.rt("autoscaling", "v2", "horizontalpodautoscalers")?;
            let mut segs = path.rsplit('/');
            let name = segs.next().unwrap_or_default();
            let _plural = segs.next();
            let ns = segs.next().unwrap_or_default();
            let current = st
                .store
                .get(&rt, ns, name)
                .ok_or_else(|| ApiError::not_found(&rt, name))?;
            let mut view = hpa_to_v1(&current);
            match ptype {
                Some(PatchType::Json) => crate::patch::json_patch(&mut view, &body)?,
                Some(PatchType::Merge) => crate::patch::merge_patch(&mut view, &parse(&body)?),
                Some(PatchType::Strategic) => {
                    crate::patch::strategic_merge(&mut view, &parse(&body)?);
                }
                _ => {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        "kube-sim serves autoscaling/v1 as a view: use merge, JSON or strategic merge patch, or apply autoscaling/v2",
                    ));
                }
            }
            let v = hpa_to_v2(&view);
            Ok((
                Method::PUT,
                Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            ))
        }
        _ => Ok((method.clone(), body)),
    }
}

/// Converts an answer of the stored version back to the view.
pub async fn convert_response(resp: Response, watch: bool) -> Response {
    let (parts, body) = resp.into_parts();
    if watch && parts.status == StatusCode::OK {
        let stream = body.into_data_stream().map(|chunk| {
            chunk.map(|b| {
                let Ok(mut ev) = serde_json::from_slice::<Value>(&b) else {
                    return b;
                };
                convert_answer(&mut ev["object"]);
                let mut line = serde_json::to_vec(&ev).unwrap_or_default();
                line.push(b'\n');
                Bytes::from(line)
            })
        });
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::internal("reading an answer").into_response();
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    convert_answer(&mut v);
    Response::from_parts(
        parts,
        Body::from(serde_json::to_vec(&v).unwrap_or_default()),
    )
}
