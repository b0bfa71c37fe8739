//! The one error type of the client.

use satusky_types::{ErrorBody, ErrorCode};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL was refused before any request was made.
    #[error("invalid API URL `{url}`: {reason}")]
    InvalidBaseUrl { url: String, reason: String },

    /// The HTTP client could not be built (TLS setup).
    #[error("could not set up the HTTP client")]
    Setup {
        #[source]
        source: reqwest::Error,
    },

    /// The server answered with a non-2xx status and a Satusky error body.
    #[error("{}", body.error.message)]
    Api { status: u16, body: ErrorBody },

    /// The server (or something in front of it) answered with a non-2xx
    /// status but no Satusky error body: a proxy page, or an error code this
    /// client does not know yet.
    #[error("the server answered HTTP {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    UnexpectedStatus {
        status: u16,
        /// `error.code` as sent, when the body had one.
        code: Option<String>,
        /// `error.message` as sent, when the body had one.
        message: Option<String>,
        /// From the body or the `x-request-id` header.
        request_id: Option<String>,
    },

    /// No answer: connection refused, DNS, TLS, timeout, or the body was cut.
    #[error("request to {url} failed")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// The events WebSocket failed: the handshake (other than an HTTP
    /// refusal, which is [`ClientError::Api`]) or the connection.
    #[error("WebSocket to {url} failed")]
    WebSocket {
        url: String,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },

    /// A 2xx answer whose body is not the expected JSON.
    #[error("could not decode the answer of {url} (HTTP {status})")]
    Decode {
        url: String,
        status: u16,
        #[source]
        source: serde_json::Error,
    },

    /// The server repeated a pagination cursor.
    #[error("the server repeated pagination cursor `{cursor}`")]
    PaginationLoop { cursor: String },
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. }
            | Self::UnexpectedStatus { status, .. }
            | Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The stable error code, when the server sent a known one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { body, .. } => Some(body.error.code),
            _ => None,
        }
    }

    /// The request id the server gave the failed request, if any.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api { body, .. } => Some(body.error.request_id.as_str()),
            Self::UnexpectedStatus { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Transport { source, .. } => source.is_timeout(),
            Self::WebSocket { source, .. } => matches!(
                source.as_ref(),
                tokio_tungstenite::tungstenite::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }

    /// Whether no connection could be made (refused, unreachable, DNS).
    pub fn is_connect(&self) -> bool {
        match self {
            Self::Transport { source, .. } => source.is_connect(),
            Self::WebSocket { source, .. } => matches!(
                source.as_ref(),
                tokio_tungstenite::tungstenite::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
            ),
            _ => false,
        }
    }
}

/// Turns a non-2xx answer into an error.
pub(crate) fn from_status(
    status: u16,
    header_request_id: Option<String>,
    bytes: &[u8],
) -> ClientError {
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(bytes)
        && body.error.code != ErrorCode::Unknown
    {
        return ClientError::Api { status, body };
    }
    // Not our error body, or a code this client does not know: keep what can
    // be read of it.
    let value: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let field = |name: &str| {
        value
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(|e| e.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    ClientError::UnexpectedStatus {
        status,
        code: field("code"),
        message: field("message"),
        request_id: field("request_id").or(header_request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_satusky_error_body_becomes_an_api_error() {
        let e = from_status(
            404,
            None,
            br#"{"error":{"code":"org_not_found","message":"no such org","request_id":"r1"}}"#,
        );
        assert_eq!(e.code(), Some(ErrorCode::OrgNotFound));
        assert_eq!(e.request_id(), Some("r1"));
        assert_eq!(e.to_string(), "no such org");
    }

    #[test]
    fn an_unknown_code_keeps_message_and_request_id() {
        let e = from_status(
            418,
            Some("hdr".into()),
            br#"{"error":{"code":"teapot","message":"short and stout","request_id":"r2"}}"#,
        );
        assert!(
            matches!(e, ClientError::UnexpectedStatus { ref code, .. } if code.as_deref() == Some("teapot"))
        );
        assert_eq!(e.request_id(), Some("r2"));
        assert_eq!(
            e.to_string(),
            "the server answered HTTP 418: short and stout"
        );
    }

    #[test]
    fn a_proxy_page_uses_the_header_request_id() {
        let e = from_status(502, Some("hdr".into()), b"<html>bad gateway</html>");
        assert_eq!(e.status(), Some(502));
        assert_eq!(e.request_id(), Some("hdr"));
        assert_eq!(e.to_string(), "the server answered HTTP 502");
    }
}
