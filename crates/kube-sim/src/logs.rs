//! `GET pods/{name}/log`: container logs written by the simulated kubelet.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::{StatusCode, header};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::state::State;

fn format_line(ts: &str, line: &str, timestamps: bool) -> String {
    if timestamps {
        format!("{ts} {line}\n")
    } else {
        format!("{line}\n")
    }
}

/// Serves the log subresource.
pub fn serve(
    st: &Arc<State>,
    ns: &str,
    name: &str,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let pods = st.rt("", "v1", "pods")?;
    let pod = st
        .store
        .get(&pods, ns, name)
        .ok_or_else(|| ApiError::not_found(&pods, name))?;
    let containers: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let container = match q.get("container") {
        Some(c) if containers.contains(c) => c.clone(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    if q.contains_key("sinceSeconds") && q.contains_key("sinceTime") {
        return Err(ApiError::bad_request(
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    let running = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == container.as_str()))
        .is_some_and(|c| !c["state"]["waiting"].is_object());
    if !running {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    }
    let timestamps = q.get("timestamps").is_some_and(|v| v == "true");
    let since: Option<DateTime<Utc>> = q
        .get("sinceSeconds")
        .and_then(|s| s.parse::<i64>().ok())
        .map(|s| Utc::now() - chrono::Duration::seconds(s))
        .or_else(|| {
            q.get("sinceTime")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        });
    let mut lines = st.logs.get(ns, name, &container);
    if let Some(since) = since {
        lines.retain(|(ts, _)| {
            DateTime::parse_from_rfc3339(ts).is_ok_and(|t| t.with_timezone(&Utc) >= since)
        });
    }
    if let Some(n) = q.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let mut text: String = lines
        .iter()
        .map(|(ts, l)| format_line(ts, l, timestamps))
        .collect();
    let limit = q.get("limitBytes").and_then(|l| l.parse::<usize>().ok());
    if let Some(l) = limit {
        text.truncate(l);
    }
    let follow = q.get("follow").is_some_and(|v| v == "true");
    if !follow {
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response());
    }
    let total = st.logs.get(ns, name, &container).len();
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let state = st.clone();
    let (ns, name, uid) = (
        ns.to_owned(),
        name.to_owned(),
        pod["metadata"]["uid"].clone(),
    );
    tokio::spawn(async move {
        if tx.send(Ok(Bytes::from(text))).await.is_err() {
            return;
        }
        let mut sent = total;
        let mut shutdown = state.shutdown.subscribe();
        loop {
            let notified = state.logs.appended.notified();
            let all = state.logs.get(&ns, &name, &container);
            for (ts, l) in all.iter().skip(sent) {
                if tx
                    .send(Ok(Bytes::from(format_line(ts, l, timestamps))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            sent = all.len();
            let alive = state
                .store
                .get(&pods, &ns, &name)
                .is_some_and(|p| p["metadata"]["uid"] == uid);
            if !alive {
                return;
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response())
}
