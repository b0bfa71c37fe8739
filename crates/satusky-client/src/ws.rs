//! WebSocket streams of JSON text messages (app events, machine events, log
//! lines): the upgrade carries the bearer token and the request id, and a
//! refusal before the upgrade is the server's usual error.

use std::marker::PhantomData;

use futures::StreamExt as _;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::{Client, ClientError, REQUEST_ID_HEADER, error};

impl Client {
    /// Opens a WebSocket to `url` (an `http(s)://` URL of this API, turned
    /// into `ws(s)://`), the handshake bounded by the request timeout.
    pub(crate) async fn connect_ws<T>(&self, mut url: Url) -> Result<JsonStream<T>, ClientError> {
        let http_url = url.to_string();
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        // http → ws and https → wss always succeed.
        let _ = url.set_scheme(scheme);
        let ws_error = |source| ClientError::WebSocket {
            url: http_url.clone(),
            source: Box::new(source),
        };
        let mut request = url.as_str().into_client_request().map_err(ws_error)?;
        let headers = request.headers_mut();
        if let Some(token) = &self.token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            headers.insert("authorization", value);
        }
        if let Some(id) = &self.request_id
            && let Ok(value) = HeaderValue::from_str(id)
        {
            headers.insert(REQUEST_ID_HEADER, value);
        }
        let connect = tokio_tungstenite::connect_async(request);
        let (socket, _) = match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => {
                return Err(ClientError::WebSocket {
                    url: http_url,
                    source: Box::new(tungstenite::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the WebSocket handshake timed out",
                    ))),
                });
            }
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let request_id = resp
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = resp.body().clone().unwrap_or_default();
                return Err(error::from_status(
                    resp.status().as_u16(),
                    request_id,
                    &body,
                ));
            }
            Ok(Err(e)) => return Err(ws_error(e)),
            Ok(Ok(ok)) => ok,
        };
        Ok(JsonStream {
            socket,
            url: http_url,
            _item: PhantomData,
        })
    }
}

/// Items of type `T`, one JSON text message each, as they arrive over a
/// WebSocket.
pub struct JsonStream<T> {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    url: String,
    _item: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for JsonStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonStream")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> JsonStream<T> {
    /// The next item; `None` once the server closes the stream.
    pub async fn next(&mut self) -> Option<Result<T, ClientError>> {
        loop {
            let message = match self.socket.next().await? {
                Ok(m) => m,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return None;
                }
                Err(e) => {
                    return Some(Err(ClientError::WebSocket {
                        url: self.url.clone(),
                        source: Box::new(e),
                    }));
                }
            };
            match message {
                Message::Text(text) => {
                    return Some(serde_json::from_str(text.as_str()).map_err(|source| {
                        ClientError::Decode {
                            url: self.url.clone(),
                            status: 101,
                            source,
                        }
                    }));
                }
                Message::Close(_) => return None,
                // Pings are answered by tungstenite; nothing else is sent.
                _ => {}
            }
        }
    }

    /// Closes the stream politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
