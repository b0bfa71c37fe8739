//! The HTTP layer: path parsing, discovery, CRUD, list, watch, logs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxState};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api::{self, DeleteOpts, Deleted, PatchType, WriteOpts};
use crate::error::ApiError;
use crate::registry::{self, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::{FaultAction, State, Verb, WatchSignal};
use crate::store::{Event, EventType};
use crate::{metrics, openapi, table};

/// The router serving the whole API.
pub fn router(state: Arc<State>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

type Query = HashMap<String, String>;

fn parse_query(q: Option<&str>) -> Query {
    let mut out = HashMap::new();
    for pair in q.unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), decode(v));
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(b);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v)
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> &str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn handle(AxState(st): AxState<Arc<State>>, req: Request) -> Response {
    if let Some(token) = &st.cfg.token {
        let auth = header_str(req.headers(), header::AUTHORIZATION);
        if auth.strip_prefix("Bearer ") != Some(token.as_str()) {
            return ApiError::new(401, "Unauthorized", "Unauthorized").into_response();
        }
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("reading body: {e}")).into_response(),
    };
    let q = parse_query(parts.uri.query());
    let path = parts.uri.path().trim_end_matches('/').to_owned();
    match route(&st, &parts.method, &path, &q, &parts.headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn wants_aggregated(h: &HeaderMap) -> bool {
    header_str(h, header::ACCEPT).contains("as=APIGroupDiscoveryList")
}

fn aggregated_response(v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        )],
        body,
    )
        .into_response()
}

async fn route(
    st: &Arc<State>,
    method: &Method,
    path: &str,
    q: &Query,
    h: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let reg = &st.store.registry;
    let body = if header_str(h, header::CONTENT_TYPE)
        .starts_with("application/vnd.kubernetes.protobuf")
        && !body.is_empty()
    {
        Bytes::from(serde_json::to_vec(&crate::proto::decode(&body)?).unwrap_or_default())
    } else {
        body
    };
    if let Some(stored) = crate::view::storage_path(path) {
        let watch = method == Method::GET && is_true(q.get("watch"));
        let (m, b) = crate::view::rewrite_request(st, method, path, h, body)?;
        let mut headers = h.clone();
        headers.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let resp = Box::pin(route(st, &m, &stored, q, &headers, b)).await?;
        return Ok(crate::view::convert_response(resp, watch).await);
    }
    match path {
        "/version" => {
            return Ok(ok(
                &json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-kube-sim",
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc",
                "platform": "linux/amd64"}),
            ));
        }
        "/healthz" | "/readyz" | "/livez" => return Ok("ok".into_response()),
        "/api" => {
            if wants_aggregated(h) {
                return Ok(aggregated_response(&registry::aggregated(reg, true)));
            }
            return Ok(ok(&json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})));
        }
        "/apis" => {
            if wants_aggregated(h) {
                return Ok(aggregated_response(&registry::aggregated(reg, false)));
            }
            return Ok(ok(&registry::group_list(reg)));
        }
        "/api/v1" => return Ok(ok(&registry::resource_list(reg, "", "v1"))),
        "/openapi/v3" => return Ok(ok(&openapi::index(reg))),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/openapi/v3/") {
        let doc = if rest == "api/v1" {
            openapi::group_version(reg, "", "v1")
        } else {
            rest.strip_prefix("apis/")
                .and_then(|gv| gv.split_once('/'))
                .and_then(|(g, v)| openapi::group_version(reg, g, v))
        };
        return doc.map(|d| ok(&d)).ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        });
    }
    let (group, version, rest) = if let Some(rest) = path.strip_prefix("/api/v1/") {
        ("", "v1", rest)
    } else if let Some(rest) = path.strip_prefix("/apis/") {
        let mut it = rest.splitn(3, '/');
        let g = it.next().unwrap_or_default();
        let Some(v) = it.next() else {
            let versions = reg.groups().into_iter().find(|(name, _)| name == g);
            return versions
                .map(|(name, vs)| {
                    let vs: Vec<Value> = vs.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
                    ok(&json!({"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": vs, "preferredVersion": vs[0]}))
                })
                .ok_or_else(|| ApiError::new(404, "NotFound", "the server could not find the requested resource"));
        };
        if let Some(rest) = it.next() {
            (g, v, rest)
        } else {
            let list = registry::resource_list(reg, g, v);
            if list["resources"].as_array().is_none_or(Vec::is_empty) {
                return Err(ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ));
            }
            return Ok(ok(&list));
        }
    } else {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let (ns, plural, name, sub) = if segs[0] == "namespaces"
        && segs.len() >= 3
        && !(segs.len() == 3 && matches!(segs[2], "status" | "finalize"))
    {
        (
            Some(segs[1]),
            segs[2],
            segs.get(3).copied(),
            segs.get(4).copied(),
        )
    } else {
        (None, segs[0], segs.get(1).copied(), segs.get(2).copied())
    };
    let rt = st.rt(group, version, plural)?;
    let ns_str = ns.unwrap_or_default();
    if rt.namespaced && ns.is_none() && name.is_some() {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let verb = match (method, name, sub) {
        (&Method::GET, None, _) if is_true(q.get("watch")) => Verb::Watch,
        (&Method::GET, None, _) => Verb::List,
        (&Method::GET, Some(_), _) => Verb::Get,
        (&Method::POST, _, _) => Verb::Create,
        (&Method::PUT, Some(_), _) => Verb::Update,
        (&Method::PATCH, Some(_), _) => Verb::Patch,
        (&Method::DELETE, Some(_), _) => Verb::Delete,
        (&Method::DELETE, None, _) => Verb::DeleteCollection,
        _ => return Err(ApiError::method_not_allowed()),
    };
    for action in st.faults.check(verb, &rt.plural) {
        match action {
            FaultAction::Latency(d) => tokio::time::sleep(d).await,
            FaultAction::Error(code) => return Err(injected(code, &rt, name.unwrap_or_default())),
        }
    }
    if rt.group == "metrics.k8s.io" {
        return metrics::serve(st, &rt, ns, name, verb, q);
    }
    let ua = header_str(h, header::USER_AGENT).to_owned();
    let opts = WriteOpts {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        field_manager: q.get("fieldManager").cloned(),
        force: is_true(q.get("force")),
        skip_managed_fields: false,
    };
    let table_fmt = header_str(h, header::ACCEPT).contains("as=Table");
    let include_object = q.get("includeObject").is_some_and(|v| v == "Object");
    match verb {
        Verb::List => list(st, &rt, ns, q, table_fmt, include_object),
        Verb::Watch => watch(st, rt, ns, q, table_fmt, include_object),
        Verb::Get => {
            let name = name.unwrap_or_default();
            match sub {
                Some("log") => return crate::logs::serve(st, ns_str, name, q),
                Some("scale") if rt.has_sub("scale") => {
                    let obj = st
                        .store
                        .get(&rt, ns_str, name)
                        .ok_or_else(|| ApiError::not_found(&rt, name))?;
                    return Ok(ok(&api::scale_of(&obj)));
                }
                Some(s) if s != "status" || !rt.has_sub(s) => {
                    return Err(ApiError::new(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    ));
                }
                _ => {}
            }
            let obj = st
                .store
                .get(&rt, ns_str, name)
                .ok_or_else(|| ApiError::not_found(&rt, name))?;
            if table_fmt {
                return Ok(ok(&table::table(
                    &rt,
                    &[&obj],
                    json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
                    include_object,
                    true,
                )));
            }
            Ok(ok(&obj))
        }
        Verb::Create => {
            let v = parse_body(&body)?;
            match (name, sub) {
                (None, None) => {
                    let obj = api::create(st, &rt, ns_str, v, &opts, &ua)?;
                    Ok(json_response(StatusCode::CREATED, &obj))
                }
                (Some(name), Some("eviction")) if rt.has_sub("eviction") => {
                    let s = api::evict(st, ns_str, name, &v)?;
                    Ok(json_response(StatusCode::CREATED, &s))
                }
                (Some(name), Some("binding")) if rt.has_sub("binding") => {
                    let node = v["target"]["name"].as_str().unwrap_or_default().to_owned();
                    st.store.modify(&rt, ns_str, name, |old| {
                        if old["spec"]["nodeName"]
                            .as_str()
                            .is_some_and(|n| !n.is_empty())
                        {
                            return Err(ApiError::conflict(&rt, name));
                        }
                        let mut new = old.clone();
                        new["spec"]["nodeName"] = json!(node);
                        crate::controllers::set_condition(&mut new, "PodScheduled", "True", "", "");
                        Ok(Some(new))
                    })?;
                    Ok(json_response(
                        StatusCode::CREATED,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                    ))
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        Verb::Update => {
            let name = name.unwrap_or_default();
            let v = parse_body(&body)?;
            match sub {
                None => Ok(ok(&*api::update(
                    st, &rt, ns_str, name, v, None, &opts, &ua,
                )?)),
                Some("status") if rt.has_sub("status") => Ok(ok(&*api::update(
                    st,
                    &rt,
                    ns_str,
                    name,
                    v,
                    Some("status"),
                    &opts,
                    &ua,
                )?)),
                Some("finalize") if rt.has_sub("finalize") => {
                    let r = st.store.modify(&rt, ns_str, name, |old| {
                        let mut new = old.clone();
                        new["spec"]["finalizers"] = v["spec"]["finalizers"].clone();
                        Ok(Some(new))
                    })?;
                    Ok(ok(&r))
                }
                Some("scale") if rt.has_sub("scale") => {
                    let replicas = v["spec"]["replicas"].as_i64().unwrap_or(0);
                    let r = api::set_scale(
                        st,
                        &rt,
                        ns_str,
                        name,
                        replicas,
                        v["metadata"]["resourceVersion"].as_str(),
                    )?;
                    Ok(ok(&api::scale_of(&r)))
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        Verb::Patch => {
            let name = name.unwrap_or_default();
            let ptype = PatchType::from_content_type(header_str(h, header::CONTENT_TYPE)).ok_or_else(|| {
                ApiError::new(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json".to_string())
            })?;
            match sub {
                Some("scale") if rt.has_sub("scale") => {
                    let obj = st
                        .store
                        .get(&rt, ns_str, name)
                        .ok_or_else(|| ApiError::not_found(&rt, name))?;
                    let mut scale = api::scale_of(&obj);
                    match ptype {
                        PatchType::Json => crate::patch::json_patch(&mut scale, &body)?,
                        PatchType::Merge | PatchType::Strategic => {
                            crate::patch::merge_patch(&mut scale, &parse_body(&body)?);
                        }
                        PatchType::Apply => {
                            let v: Value = serde_yaml::from_slice(&body)
                                .map_err(|e| ApiError::bad_request(e.to_string()))?;
                            crate::patch::merge_patch(&mut scale, &v);
                        }
                    }
                    let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
                    let r = api::set_scale(st, &rt, ns_str, name, replicas, None)?;
                    Ok(ok(&api::scale_of(&r)))
                }
                None | Some("status") => {
                    if sub == Some("status") && !rt.has_sub("status") {
                        return Err(ApiError::new(
                            404,
                            "NotFound",
                            "the server could not find the requested resource",
                        ));
                    }
                    let (obj, created) =
                        api::patch(st, &rt, ns_str, name, ptype, &body, sub, &opts, &ua)?;
                    Ok(json_response(
                        if created {
                            StatusCode::CREATED
                        } else {
                            StatusCode::OK
                        },
                        &obj,
                    ))
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        Verb::Delete => {
            let name = name.unwrap_or_default();
            let dopts = delete_opts(&body, q)?;
            match api::delete(st, &rt, ns_str, name, &dopts)? {
                Deleted::Gone(last) => Ok(ok(&api::success_status(&rt, &last))),
                Deleted::Pending(obj) => Ok(json_response(StatusCode::OK, &obj)),
            }
        }
        Verb::DeleteCollection => {
            let dopts = delete_opts(&body, q)?;
            let items = select(st, &rt, ns, q)?;
            for it in &items {
                let n = it["metadata"]["name"].as_str().unwrap_or_default();
                let ins = it["metadata"]["namespace"].as_str().unwrap_or_default();
                match api::delete(st, &rt, ins, n, &dopts) {
                    Ok(_) | Err(ApiError { code: 404, .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let list: Vec<&Value> = items.iter().map(AsRef::as_ref).collect();
            Ok(ok(
                &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {}, "items": list}),
            ))
        }
    }
}

fn injected(code: u16, rt: &ResourceType, name: &str) -> ApiError {
    match code {
        409 => ApiError::conflict(rt, name),
        429 => ApiError::new(429, "TooManyRequests", "injected fault: too many requests")
            .with_details(json!({"retryAfterSeconds": 1})),
        500 => ApiError::internal("injected fault: internal error"),
        503 => ApiError::new(
            503,
            "ServiceUnavailable",
            "injected fault: service unavailable",
        ),
        410 => ApiError::expired("injected fault: resource version expired"),
        504 => ApiError::new(504, "Timeout", "injected fault: timeout"),
        c => ApiError::new(c, "InternalError", format!("injected fault {c}")),
    }
}

fn is_true(v: Option<&String>) -> bool {
    v.is_some_and(|v| v == "true" || v == "1")
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice(body))
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))
}

fn delete_opts(body: &[u8], q: &Query) -> Result<DeleteOpts, ApiError> {
    let v = if body.is_empty() {
        json!({})
    } else {
        parse_body(body)?
    };
    let mut o = DeleteOpts::from_body(&v);
    if let Some(g) = q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()) {
        o.grace = Some(g);
    }
    if let Some(p) = q.get("propagationPolicy") {
        o.propagation = Some(p.clone());
    }
    if q.get("dryRun").is_some_and(|v| v == "All") {
        o.dry_run = true;
    }
    Ok(o)
}

struct Filter {
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn new(rt: &ResourceType, ns: Option<&str>, q: &Query) -> Result<Self, ApiError> {
        Ok(Self {
            ns: ns.filter(|_| rt.namespaced).map(str::to_owned),
            labels: LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?,
            fields: FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str), rt)?,
        })
    }

    fn matches(&self, o: &Value) -> bool {
        if let Some(ns) = &self.ns
            && o["metadata"]["namespace"].as_str() != Some(ns)
        {
            return false;
        }
        (self.labels.is_empty() || self.labels.matches(&o["metadata"]["labels"]))
            && (self.fields.is_empty() || self.fields.matches(o))
    }
}

fn select(
    st: &State,
    rt: &ResourceType,
    ns: Option<&str>,
    q: &Query,
) -> Result<Vec<Arc<Value>>, ApiError> {
    let f = Filter::new(rt, ns, q)?;
    Ok(st
        .store
        .list(rt, ns)
        .items
        .into_iter()
        .filter(|o| f.matches(o))
        .collect())
}

fn list(
    st: &State,
    rt: &ResourceType,
    ns: Option<&str>,
    q: &Query,
    table_fmt: bool,
    include_object: bool,
) -> Result<Response, ApiError> {
    let f = Filter::new(rt, ns, q)?;
    if let (Some(rv), Some("Exact")) = (
        q.get("resourceVersion"),
        q.get("resourceVersionMatch").map(String::as_str),
    ) {
        let rv: u64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request("invalid resourceVersion"))?;
        st.store.check_fresh(&rt.key(), rv)?;
    }
    let listed = st.store.list(rt, ns);
    let mut rv = listed.rv;
    let mut start_after: Option<(String, String)> = None;
    if let Some(token) = q.get("continue").filter(|t| !t.is_empty()) {
        let (trv, ns, name) = decode_continue(token)?;
        st.store.check_fresh(&rt.key(), trv)?;
        rv = trv;
        start_after = Some((ns, name));
    }
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let mut items: Vec<&Value> = Vec::new();
    let mut more = false;
    let mut remaining = 0usize;
    for o in &listed.items {
        if let Some((sns, sname)) = &start_after {
            let key = (
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default(),
            );
            if (key.0, key.1) <= (sns.as_str(), sname.as_str()) {
                continue;
            }
        }
        if !f.matches(o) {
            continue;
        }
        if items.len() >= limit {
            more = true;
            remaining += 1;
            continue;
        }
        items.push(o);
    }
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if more && let Some(last) = items.last() {
        meta["continue"] = json!(encode_continue(
            rv,
            last["metadata"]["namespace"].as_str().unwrap_or_default(),
            last["metadata"]["name"].as_str().unwrap_or_default()
        ));
        meta["remainingItemCount"] = json!(remaining);
    }
    if table_fmt {
        return Ok(ok(&table::table(rt, &items, meta, include_object, true)));
    }
    let body = json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": meta, "items": items});
    Ok(ok(&body))
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(json!({"v": "meta.k8s.io/v1", "rv": rv, "ns": ns, "start": name}).to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((
        v["rv"].as_u64().ok_or_else(bad)?,
        v["ns"].as_str().unwrap_or_default().to_owned(),
        v["start"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// One watch stream's encoder.
struct WatchOut {
    rt: Arc<ResourceType>,
    table: bool,
    include_object: bool,
    columns_sent: bool,
}

impl WatchOut {
    fn line(&mut self, ty: &str, obj: &Value) -> Bytes {
        let object = if self.table && ty != "BOOKMARK" && ty != "ERROR" {
            let t = table::table(
                &self.rt,
                &[obj],
                json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
                self.include_object,
                !self.columns_sent,
            );
            self.columns_sent = true;
            t
        } else {
            obj.clone()
        };
        let mut s = serde_json::to_vec(&json!({"type": ty, "object": object})).unwrap_or_default();
        s.push(b'\n');
        Bytes::from(s)
    }
}

impl WatchOut {
    /// A watch line for a stored event, serializing its object once for all watchers.
    fn event_line(&mut self, ty: &str, ev: &Event) -> Bytes {
        if self.table {
            return self.line(ty, &ev.object);
        }
        let obj = ev
            .json
            .get_or_init(|| serde_json::to_string(&*ev.object).unwrap_or_default());
        Bytes::from(format!("{{\"type\":\"{ty}\",\"object\":{obj}}}\n"))
    }
}

fn transition(f: &Filter, ev: &Event) -> Option<&'static str> {
    let now = f.matches(&ev.object);
    match ev.kind {
        EventType::Added => now.then_some("ADDED"),
        EventType::Deleted => now.then_some("DELETED"),
        EventType::Modified => {
            let before = ev.prev.as_ref().is_some_and(|p| f.matches(p));
            match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            }
        }
    }
}

fn watch(
    st: &Arc<State>,
    rt: Arc<ResourceType>,
    ns: Option<&str>,
    q: &Query,
    table_fmt: bool,
    include_object: bool,
) -> Result<Response, ApiError> {
    let filter = Filter::new(&rt, ns, q)?;
    let rv_param = q.get("resourceVersion").filter(|r| !r.is_empty()).cloned();
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
    let bookmarks = is_true(q.get("allowWatchBookmarks"));
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let start_rv: Option<u64> = match rv_param.as_deref() {
        None | Some("0") => None,
        Some(r) => Some(
            r.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {r}")))?,
        ),
    };
    let initial = send_initial.unwrap_or(start_rv.is_none());
    let (past, mut rx, _) = st
        .store
        .watch_from(&rt.key(), if initial { None } else { start_rv })?;
    let mut signals = st.faults.watch_tx.subscribe();
    let mut shutdown = st.shutdown.subscribe();
    let (tx, out_rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let mut enc = WatchOut {
        rt: rt.clone(),
        table: table_fmt,
        include_object,
        columns_sent: false,
    };
    let mut last_rv = start_rv.unwrap_or(0);
    let mut first: Vec<Bytes> = Vec::new();
    if initial {
        let listed = st.store.list(&rt, ns);
        for o in listed.items.iter().filter(|o| filter.matches(o)) {
            first.push(enc.line("ADDED", o));
        }
        last_rv = listed.rv;
        if send_initial == Some(true) {
            first.push(enc.line("BOOKMARK", &json!({"kind": rt.kind, "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": last_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}})));
        }
    } else {
        for ev in &past {
            if let Some(ty) = transition(&filter, ev) {
                first.push(enc.event_line(ty, ev));
            }
            last_rv = last_rv.max(ev.rv);
        }
    }
    let store_key = rt.key();
    let state = st.clone();
    tokio::spawn(async move {
        for b in first {
            if tx.send(Ok(b)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let expired = |rv: u64| {
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {rv} ({})", rv + 1), "reason": "Expired", "code": 410})
        };
        loop {
            tokio::select! {
                () = &mut deadline => return,
                _ = shutdown.changed() => return,
                sig = signals.recv() => {
                    match sig {
                        Ok(WatchSignal::Expire) => { let _ = tx.send(Ok(enc.line("ERROR", &expired(last_rv)))).await; return; }
                        Ok(WatchSignal::Drop) | Err(broadcast::error::RecvError::Closed) => return,
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                    }
                }
                _ = tick.tick(), if bookmarks => {
                    let rv = state.store.revision().max(last_rv);
                    let b = enc.line("BOOKMARK", &json!({"kind": enc.rt.kind, "apiVersion": enc.rt.api_version(), "metadata": {"resourceVersion": rv.to_string()}}));
                    if tx.send(Ok(b)).await.is_err() { return; }
                }
                ev = rx.recv() => {
                    match ev {
                        Ok(ev) => {
                            if ev.resource != store_key || ev.rv <= last_rv { continue; }
                            last_rv = ev.rv;
                            if let Some(ty) = transition(&filter, &ev)
                                && tx.send(Ok(enc.event_line(ty, &ev))).await.is_err() { return; }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let _ = tx.send(Ok(enc.line("ERROR", &expired(last_rv)))).await;
                            return;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(out_rx);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
