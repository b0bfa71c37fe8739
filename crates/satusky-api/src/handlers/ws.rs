//! The two shapes of the WebSocket streams, shared by the apps and machines
//! handlers: forwarding a live stream (logs), and replaying from the store
//! then following (events, metrics samples) — woken by bus notices when
//! there are any, polling the store otherwise. Each message is one JSON
//! text frame; the client closing the socket ends the stream.

use std::future::Future;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::StreamExt as _;
use futures::stream::BoxStream;
use satusky_core::bus::Notice;
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};

/// Sends one item; `false` when the socket is gone.
async fn send<T: Serialize>(socket: &mut WebSocket, item: &T) -> bool {
    match serde_json::to_string(item) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => true,
    }
}

/// `true` when the client closed the socket (or it broke).
fn closed(m: Option<Result<Message, axum::Error>>) -> bool {
    matches!(m, Some(Ok(Message::Close(_)) | Err(_)) | None)
}

/// Forwards `items` until they end (then closes the socket) or the client
/// goes away.
pub(crate) async fn forward<T: Serialize>(mut socket: WebSocket, mut items: BoxStream<'static, T>) {
    loop {
        tokio::select! {
            item = items.next() => {
                let Some(item) = item else { break };
                if !send(&mut socket, &item).await {
                    return;
                }
            }
            m = socket.recv() => if closed(m) { return },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// How a replay-then-follow stream reads more: what it sent last decides
/// where the next read starts.
pub(crate) struct Follow<T, C, W, R> {
    /// Items already read (sent first).
    pub first: Vec<T>,
    /// Where reading continues before anything is sent.
    pub cursor: C,
    /// The cursor after an item.
    pub advance: fn(&T, C) -> C,
    /// Bus notices, and which of them mean "look again".
    pub notices: Option<(broadcast::Receiver<Notice>, W)>,
    /// Reads the items after a cursor.
    pub read: R,
    /// How often to look without a notice.
    pub poll: Duration,
}

/// Sends `first`, then whatever `read` finds after the last item sent,
/// whenever a matching notice arrives or `poll` passes.
pub(crate) async fn replay_and_follow<T, C, W, R, F>(
    mut socket: WebSocket,
    follow: Follow<T, C, W, R>,
    what: &'static str,
) where
    T: Serialize,
    C: Clone,
    W: Fn(&Notice, &C) -> bool,
    R: Fn(C) -> F,
    F: Future<Output = satusky_core::Result<Vec<T>>>,
{
    let Follow {
        first,
        mut cursor,
        advance,
        mut notices,
        read,
        poll,
    } = follow;
    let mut pending = first;
    let mut tick = tokio::time::interval(poll);
    loop {
        for item in pending.drain(..) {
            cursor = advance(&item, cursor);
            if !send(&mut socket, &item).await {
                return;
            }
        }
        let notice = async {
            match &mut notices {
                Some((rx, _)) => Some(rx.recv().await),
                None => std::future::pending().await,
            }
        };
        let wake = tokio::select! {
            _ = tick.tick() => true,
            n = notice => match n {
                Some(Ok(n)) => notices.as_ref().is_some_and(|(_, mine)| mine(&n, &cursor)),
                // Missed notices: look in the store anyway.
                Some(Err(RecvError::Lagged(_))) => true,
                // No more notices: polling keeps the stream going.
                Some(Err(RecvError::Closed)) | None => {
                    notices = None;
                    false
                }
            },
            m = socket.recv() => if closed(m) { return } else { false },
        };
        if wake {
            match read(cursor.clone()).await {
                Ok(items) => pending = items,
                Err(e) => tracing::warn!(stream = what, error = %e, "stream read failed"),
            }
        }
    }
}
