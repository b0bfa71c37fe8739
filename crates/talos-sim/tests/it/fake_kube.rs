//! A small in-memory stand-in for the Kubernetes API: just the calls a kubelet makes
//! (nodes, node status, leases), reached through a real `kube::Client`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct FakeKube {
    objects: Arc<Mutex<HashMap<String, Value>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

fn merge(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = json!({});
        }
        let t = target.as_object_mut().unwrap();
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    } else {
        *target = patch.clone();
    }
}

fn status(code: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": reason, "reason": reason, "code": code.as_u16()});
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn ok(code: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

impl FakeKube {
    pub fn client(&self) -> kube::Client {
        let me = self.clone();
        let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
            let me = me.clone();
            async move { Ok::<_, std::convert::Infallible>(me.handle(req).await) }
        });
        kube::Client::new(svc, "default")
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        self.objects.lock().unwrap().get(key).cloned()
    }

    pub fn node(&self, name: &str) -> Option<Value> {
        self.get(&format!("/api/v1/nodes/{name}"))
    }

    pub fn lease(&self, name: &str) -> Option<Value> {
        self.get(&format!(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        ))
    }

    pub fn ready(&self, name: &str) -> Option<String> {
        let node = self.node(name)?;
        node["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["status"].as_str().map(ToOwned::to_owned))
    }

    async fn handle(&self, req: Request<kube::client::Body>) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        self.calls.lock().unwrap().push(format!("{method} {path}"));
        let mut objects = self.objects.lock().unwrap();
        let (key, sub) = match path.strip_suffix("/status") {
            Some(k) => (k.to_owned(), true),
            None => (path.clone(), false),
        };
        match method {
            Method::POST => {
                let mut obj: Value = serde_json::from_slice(&body).unwrap();
                let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
                let key = format!("{path}/{name}");
                if objects.contains_key(&key) {
                    return status(StatusCode::CONFLICT, "AlreadyExists");
                }
                obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
                obj["metadata"]["resourceVersion"] = json!("1");
                if let Some(o) = obj.as_object_mut() {
                    // Status is a subresource: ignored on create.
                    o.remove("status");
                }
                objects.insert(key, obj.clone());
                ok(StatusCode::CREATED, &obj)
            }
            Method::GET => match objects.get(&key) {
                Some(o) => ok(StatusCode::OK, o),
                None => status(StatusCode::NOT_FOUND, "NotFound"),
            },
            Method::PATCH => {
                let patch: Value = serde_json::from_slice(&body).unwrap();
                let Some(obj) = objects.get_mut(&key) else {
                    return status(StatusCode::NOT_FOUND, "NotFound");
                };
                let patch = if sub {
                    json!({"status": patch["status"].clone()})
                } else {
                    let mut p = patch;
                    if let Some(o) = p.as_object_mut() {
                        o.remove("status");
                    }
                    p
                };
                merge(obj, &patch);
                ok(StatusCode::OK, obj)
            }
            Method::DELETE => match objects.remove(&key) {
                Some(o) => ok(StatusCode::OK, &o),
                None => status(StatusCode::NOT_FOUND, "NotFound"),
            },
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
        }
    }
}
