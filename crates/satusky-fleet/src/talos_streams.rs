//! [`MachineLogs`] over the Talos API: service logs (`MachineService/Logs`)
//! and the kernel ring buffer (`MachineService/Dmesg`), as lines.

use async_trait::async_trait;
use futures::{StreamExt as _, stream};
use satusky_core::fleet::{LineStream, LogRequest, LogSource, MachineLogs, OpsError, TalosTarget};
use satusky_machines::{ByteStream, LogsQuery, TalosError};

use crate::talos_ops::{TalosClientOps, talos_error};

/// Splits a byte stream into lines (without their `\n`); a last line
/// without a newline is kept. Invalid UTF-8 is replaced, not refused.
fn lines(bytes: ByteStream, m: TalosTarget, what: &'static str) -> LineStream {
    struct State {
        bytes: ByteStream,
        buf: Vec<u8>,
        ready: std::collections::VecDeque<String>,
        done: bool,
    }
    let state = State {
        bytes,
        buf: Vec::new(),
        ready: std::collections::VecDeque::new(),
        done: false,
    };
    Box::pin(stream::unfold(state, move |mut s| {
        let m = m.clone();
        async move {
            loop {
                if let Some(line) = s.ready.pop_front() {
                    return Some((Ok(line), s));
                }
                if s.done {
                    return None;
                }
                match s.bytes.next().await {
                    Some(Ok(chunk)) => {
                        s.buf.extend_from_slice(&chunk);
                        while let Some(i) = s.buf.iter().position(|b| *b == b'\n') {
                            let rest = s.buf.split_off(i + 1);
                            let mut line = std::mem::replace(&mut s.buf, rest);
                            line.pop();
                            if line.last() == Some(&b'\r') {
                                line.pop();
                            }
                            s.ready
                                .push_back(String::from_utf8_lossy(&line).into_owned());
                        }
                    }
                    Some(Err(e)) => {
                        s.done = true;
                        return Some((Err(talos_error(&m, what, e)), s));
                    }
                    None => {
                        s.done = true;
                        if !s.buf.is_empty() {
                            let line = String::from_utf8_lossy(&s.buf).into_owned();
                            s.buf.clear();
                            s.ready.push_back(line);
                        }
                    }
                }
            }
        }
    }))
}

fn open_error(m: &TalosTarget, source: &LogSource, what: &str, e: TalosError) -> OpsError {
    if let TalosError::Rpc { source: status, .. } = &e
        && status.code() == tonic::Code::NotFound
    {
        return OpsError::NotFound(format!(
            "log `{}` on machine {}",
            source.name(),
            m.machine_id
        ));
    }
    talos_error(m, what, e)
}

#[async_trait]
impl MachineLogs for TalosClientOps {
    async fn logs(&self, m: &TalosTarget, req: &LogRequest) -> Result<LineStream, OpsError> {
        let c = self.client(m)?;
        match &req.source {
            LogSource::Service(id) => {
                let query = LogsQuery {
                    follow: req.follow,
                    tail_lines: req.tail_lines,
                    ..LogsQuery::service(id.clone())
                };
                let bytes = c
                    .logs(query)
                    .await
                    .map_err(|e| open_error(m, &req.source, "Logs", e))?;
                Ok(lines(bytes, m.clone(), "Logs"))
            }
            LogSource::Kernel => {
                let Some(tail) = req.tail_lines else {
                    let bytes = c
                        .dmesg(req.follow, false)
                        .await
                        .map_err(|e| open_error(m, &req.source, "Dmesg", e))?;
                    return Ok(lines(bytes, m.clone(), "Dmesg"));
                };
                // Dmesg has no "last N lines": read what is kept, keep the
                // last N, then follow only new messages.
                let kept = c
                    .dmesg(false, false)
                    .await
                    .map_err(|e| open_error(m, &req.source, "Dmesg", e))?;
                let mut kept: Vec<Result<String, OpsError>> =
                    lines(kept, m.clone(), "Dmesg").collect().await;
                let skip = kept.len().saturating_sub(tail as usize);
                let head: Vec<_> = kept.drain(skip..).collect();
                if !req.follow {
                    return Ok(Box::pin(stream::iter(head)));
                }
                let live = c
                    .dmesg(true, true)
                    .await
                    .map_err(|e| open_error(m, &req.source, "Dmesg", e))?;
                Ok(Box::pin(stream::iter(head).chain(lines(
                    live,
                    m.clone(),
                    "Dmesg",
                ))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> TalosTarget {
        TalosTarget {
            machine_id: "m1".into(),
            uuid: "u".into(),
            endpoint: "127.0.0.1:1".into(),
            overlay_address: String::new(),
        }
    }

    #[tokio::test]
    async fn lines_are_split_across_chunks_and_the_last_partial_line_is_kept() {
        let chunks: Vec<Result<Vec<u8>, TalosError>> = vec![
            Ok(b"first li".to_vec()),
            Ok(b"ne\nsecond\r\nthi".to_vec()),
            Ok(b"rd\n\nlast".to_vec()),
        ];
        let got: Vec<String> = lines(Box::pin(stream::iter(chunks)), target(), "Logs")
            .map(|l| l.unwrap_or_else(|e| panic!("{e}")))
            .collect()
            .await;
        assert_eq!(got, ["first line", "second", "third", "", "last"]);
    }

    #[tokio::test]
    async fn an_error_ends_the_stream_after_the_lines_before_it() {
        let chunks: Vec<Result<Vec<u8>, TalosError>> = vec![
            Ok(b"one\ntw".to_vec()),
            Err(TalosError::EmptyReply { method: "Logs" }),
            Ok(b"never\n".to_vec()),
        ];
        let got: Vec<Result<String, OpsError>> =
            lines(Box::pin(stream::iter(chunks)), target(), "Logs")
                .collect()
                .await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_deref().ok(), Some("one"));
        assert!(got[1].is_err());
    }
}
