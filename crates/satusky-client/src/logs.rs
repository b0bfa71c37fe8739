//! `/v1/orgs/{org}/apps/{app}/logs`: an app's container log lines, once
//! (a page) or followed over a WebSocket.

use satusky_types::Page;
use satusky_types::apps::{LogLine, LogsQuery};

use crate::ws::JsonStream;
use crate::{Client, ClientError};

/// An app's log lines as they are written.
pub type LogStream = JsonStream<LogLine>;

impl Client {
    /// `GET /v1/orgs/{org}/apps/{app}/logs?tail=&since_seconds=&pod=`: the
    /// last lines of each replica (or of `pod`).
    pub async fn app_logs(
        &self,
        org: &str,
        app: &str,
        query: &LogsQuery,
    ) -> Result<Page<LogLine>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "apps", app, "logs"]);
        self.send_json(req.query(query), url).await
    }

    /// `GET /v1/orgs/{org}/apps/{app}/logs/ws` (same query) as a WebSocket:
    /// one `LogLine` per message, as the lines are written.
    pub async fn app_logs_stream(
        &self,
        org: &str,
        app: &str,
        query: &LogsQuery,
    ) -> Result<LogStream, ClientError> {
        let mut url = self.url(&["v1", "orgs", org, "apps", app, "logs", "ws"]);
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(tail) = query.tail {
                pairs.append_pair("tail", &tail.to_string());
            }
            if let Some(since) = query.since_seconds {
                pairs.append_pair("since_seconds", &since.to_string());
            }
            if let Some(pod) = &query.pod {
                pairs.append_pair("pod", pod);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.connect_ws(url).await
    }
}
