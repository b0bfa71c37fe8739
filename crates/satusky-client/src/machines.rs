//! `/v1/orgs/{org}/join-tokens` and `/v1/orgs/{org}/machines`: join tokens,
//! the fleet, labels, visibility, telemetry, events and operations (one
//! machine, or every machine a selector matches).

use satusky_types::Page;
use satusky_types::machines::{
    BulkRequest, BulkResult, CreateJoinTokenRequest, DecommissionRequest, DrainRequest, JoinToken,
    JoinTokenCreated, LabelsChange, Machine, MachineEvent, MachineEventsQuery, MachineHealth,
    MachineLogLine, MachineLogsQuery, MachineMetrics, MachineMetricsHistoryQuery, MachineQuery,
    MachineUsage, MachineUsageQuery, PlacementPreview, PlacementQuery, PowerRequest, Visibility,
    VisibilityRequest,
};
use satusky_types::page::PageQuery;

use crate::ws::JsonStream;
use crate::{ALL_PAGES_LIMIT, Client, ClientError, collect_pages};

/// A machine's events as they happen.
pub type MachineEventStream = JsonStream<MachineEvent>;
/// A machine's metrics samples as they are taken.
pub type MachineMetricsStream = JsonStream<MachineMetrics>;
/// A machine log's lines as they are written.
pub type MachineLogStream = JsonStream<MachineLogLine>;

/// An action of `POST /v1/orgs/{org}/machines/bulk/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Cordon,
    Uncordon,
    Drain,
    Labels,
    /// Cancels the running operation of every matching machine that has one.
    Cancel,
}

impl BulkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Cordon => "cordon",
            BulkAction::Uncordon => "uncordon",
            BulkAction::Drain => "drain",
            BulkAction::Labels => "labels",
            BulkAction::Cancel => "cancel",
        }
    }
}

impl Client {
    // ---- join tokens

    /// `GET /v1/orgs/{org}/join-tokens`: one page (never the secrets).
    pub async fn list_join_tokens(
        &self,
        org: &str,
        query: &PageQuery,
    ) -> Result<Page<JoinToken>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "join-tokens"]);
        self.send_json(req.query(query), url).await
    }

    /// Every join token of an organization, following cursors.
    pub async fn list_all_join_tokens(&self, org: &str) -> Result<Vec<JoinToken>, ClientError> {
        collect_pages(|cursor| {
            let query = PageQuery {
                limit: Some(ALL_PAGES_LIMIT),
                cursor,
            };
            async move { self.list_join_tokens(org, &query).await }
        })
        .await
    }

    /// `POST /v1/orgs/{org}/join-tokens`: the token and the kernel arguments
    /// to boot with, in this answer only.
    pub async fn create_join_token(
        &self,
        org: &str,
        body: &CreateJoinTokenRequest,
    ) -> Result<JoinTokenCreated, ClientError> {
        let (req, url) = self.post(&["v1", "orgs", org, "join-tokens"]);
        self.send_json(req.json(body), url).await
    }

    /// `POST /v1/orgs/{org}/join-tokens/{token}/revoke` (token id or name).
    pub async fn revoke_join_token(
        &self,
        org: &str,
        token: &str,
    ) -> Result<JoinToken, ClientError> {
        let (req, url) = self.post(&["v1", "orgs", org, "join-tokens", token, "revoke"]);
        self.send_json(req, url).await
    }

    // ---- the fleet

    /// `GET /v1/orgs/{org}/machines[?selector=]`: one page of the machines
    /// visible to the organization.
    pub async fn list_machines(
        &self,
        org: &str,
        query: &MachineQuery,
    ) -> Result<Page<Machine>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "machines"]);
        self.send_json(req.query(query), url).await
    }

    /// Every visible machine (matching `selector`, when given), following cursors.
    pub async fn list_all_machines(
        &self,
        org: &str,
        selector: Option<&str>,
    ) -> Result<Vec<Machine>, ClientError> {
        collect_pages(|cursor| {
            let query = MachineQuery {
                selector: selector.map(str::to_owned),
                limit: Some(ALL_PAGES_LIMIT),
                cursor,
            };
            async move { self.list_machines(org, &query).await }
        })
        .await
    }

    /// `GET /v1/orgs/{org}/machines/{machine}` (the server takes an id or a name).
    pub async fn get_machine(&self, org: &str, machine: &str) -> Result<Machine, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "machines", machine]);
        self.send_json(req, url).await
    }

    fn machine_post(
        &self,
        org: &str,
        machine: &str,
        action: &str,
    ) -> (reqwest::RequestBuilder, url::Url) {
        self.post(&["v1", "orgs", org, "machines", machine, action])
    }

    /// `POST …/machines/{machine}/claim`: accept a discovered machine.
    pub async fn claim_machine(&self, org: &str, machine: &str) -> Result<Machine, ClientError> {
        let (req, url) = self.machine_post(org, machine, "claim");
        self.send_json(req, url).await
    }

    /// `POST …/machines/{machine}/release`: back to `discovered`.
    pub async fn release_machine(&self, org: &str, machine: &str) -> Result<Machine, ClientError> {
        let (req, url) = self.machine_post(org, machine, "release");
        self.send_json(req, url).await
    }

    /// `PATCH …/machines/{machine}/labels`: set and remove user labels.
    pub async fn change_machine_labels(
        &self,
        org: &str,
        machine: &str,
        change: &LabelsChange,
    ) -> Result<Machine, ClientError> {
        let (req, url) = self.patch(&["v1", "orgs", org, "machines", machine, "labels"]);
        self.send_json(req.json(change), url).await
    }

    /// `PUT …/machines/{machine}/visibility`.
    pub async fn set_machine_visibility(
        &self,
        org: &str,
        machine: &str,
        visibility: Visibility,
    ) -> Result<Machine, ClientError> {
        let (req, url) = self.put(&["v1", "orgs", org, "machines", machine, "visibility"]);
        self.send_json(req.json(&VisibilityRequest { visibility }), url)
            .await
    }

    /// `GET …/machines/{machine}/events?from=&limit=`: events with `seq > from`.
    pub async fn list_machine_events(
        &self,
        org: &str,
        machine: &str,
        query: &MachineEventsQuery,
    ) -> Result<Page<MachineEvent>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "machines", machine, "events"]);
        self.send_json(req.query(query), url).await
    }

    /// Every event of a machine with `seq > from`, following the cursor.
    pub async fn list_all_machine_events(
        &self,
        org: &str,
        machine: &str,
        from: u64,
    ) -> Result<Vec<MachineEvent>, ClientError> {
        let mut items: Vec<MachineEvent> = Vec::new();
        let mut from = from;
        loop {
            let query = MachineEventsQuery {
                from: Some(from),
                limit: Some(1000),
            };
            let page = self.list_machine_events(org, machine, &query).await?;
            items.extend(page.items);
            match page.next_cursor.and_then(|c| c.parse::<u64>().ok()) {
                Some(next) if next > from => from = next,
                _ => return Ok(items),
            }
        }
    }

    /// The `seq` of the machine's latest event (0 without any).
    pub async fn last_machine_event_seq(
        &self,
        org: &str,
        machine: &str,
    ) -> Result<u64, ClientError> {
        let events = self.list_all_machine_events(org, machine, 0).await?;
        Ok(events.last().map_or(0, |e| e.seq))
    }

    /// `GET …/machines/{machine}/events/ws?from=` as a WebSocket: every event
    /// with `seq > from`, then each new one (operation progress included).
    pub async fn machine_events_stream(
        &self,
        org: &str,
        machine: &str,
        from: u64,
    ) -> Result<MachineEventStream, ClientError> {
        let mut url = self.url(&["v1", "orgs", org, "machines", machine, "events", "ws"]);
        url.query_pairs_mut().append_pair("from", &from.to_string());
        self.connect_ws(url).await
    }

    /// `GET …/machines/{machine}/metrics`: one live sample.
    pub async fn machine_metrics(
        &self,
        org: &str,
        machine: &str,
    ) -> Result<MachineMetrics, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "machines", machine, "metrics"]);
        self.send_json(req, url).await
    }

    /// `GET /v1/orgs/{org}/machine-usage`: one page of usage periods, newest first.
    pub async fn machine_usage(
        &self,
        org: &str,
        query: &MachineUsageQuery,
    ) -> Result<Page<MachineUsage>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "machine-usage"]);
        self.send_json(req.query(query), url).await
    }

    /// Every usage period matching `query` (its limit and cursor are ignored),
    /// following cursors.
    pub async fn all_machine_usage(
        &self,
        org: &str,
        query: &MachineUsageQuery,
    ) -> Result<Vec<MachineUsage>, ClientError> {
        collect_pages(|cursor| {
            let query = MachineUsageQuery {
                limit: Some(ALL_PAGES_LIMIT),
                cursor,
                ..query.clone()
            };
            async move { self.machine_usage(org, &query).await }
        })
        .await
    }

    /// `GET /v1/orgs/{org}/placement?selector=&cpu=&memory=&replicas=`: the
    /// machines a selector matches and the room each has for the request.
    pub async fn placement_preview(
        &self,
        org: &str,
        query: &PlacementQuery,
    ) -> Result<PlacementPreview, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "placement"]);
        self.send_json(req.query(query), url).await
    }

    /// `GET …/machines/{machine}/health`: link, Talos services and node
    /// conditions, evaluated now, with a verdict.
    pub async fn machine_health(
        &self,
        org: &str,
        machine: &str,
    ) -> Result<MachineHealth, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "machines", machine, "health"]);
        self.send_json(req, url).await
    }

    /// `GET …/machines/{machine}/metrics/history`: one page of the short
    /// metrics history, oldest first.
    pub async fn machine_metrics_history(
        &self,
        org: &str,
        machine: &str,
        query: &MachineMetricsHistoryQuery,
    ) -> Result<Page<MachineMetrics>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "machines", machine, "metrics", "history"]);
        self.send_json(req.query(query), url).await
    }

    /// Every sample of the last `since_seconds` (all kept when `None`),
    /// following cursors.
    pub async fn all_machine_metrics_history(
        &self,
        org: &str,
        machine: &str,
        since_seconds: Option<u64>,
    ) -> Result<Vec<MachineMetrics>, ClientError> {
        collect_pages(|cursor| {
            let query = MachineMetricsHistoryQuery {
                since_seconds,
                limit: Some(ALL_PAGES_LIMIT),
                cursor,
            };
            async move { self.machine_metrics_history(org, machine, &query).await }
        })
        .await
    }

    /// `GET …/machines/{machine}/metrics/ws` as a WebSocket: the samples of
    /// the last minutes, then each new one as the control plane takes it.
    pub async fn machine_metrics_stream(
        &self,
        org: &str,
        machine: &str,
    ) -> Result<MachineMetricsStream, ClientError> {
        let url = self.url(&["v1", "orgs", org, "machines", machine, "metrics", "ws"]);
        self.connect_ws(url).await
    }

    /// `GET …/machines/{machine}/logs?source=&tail=`: the last lines of a
    /// Talos service log, or of the kernel (`source=kernel`).
    pub async fn machine_logs(
        &self,
        org: &str,
        machine: &str,
        query: &MachineLogsQuery,
    ) -> Result<Page<MachineLogLine>, ClientError> {
        let (req, url) = self.get(&["v1", "orgs", org, "machines", machine, "logs"]);
        self.send_json(req.query(query), url).await
    }

    /// `GET …/machines/{machine}/logs/ws` (same query) as a WebSocket: the
    /// last `tail` lines, then lines as they are written.
    pub async fn machine_logs_stream(
        &self,
        org: &str,
        machine: &str,
        query: &MachineLogsQuery,
    ) -> Result<MachineLogStream, ClientError> {
        let mut url = self.url(&["v1", "orgs", org, "machines", machine, "logs", "ws"]);
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(source) = &query.source {
                pairs.append_pair("source", source);
            }
            if let Some(tail) = query.tail {
                pairs.append_pair("tail", &tail.to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.connect_ws(url).await
    }

    // ---- operations (202 with the machine; progress in its events)

    /// `POST …/machines/{machine}/cordon`.
    pub async fn cordon_machine(&self, org: &str, machine: &str) -> Result<Machine, ClientError> {
        let (req, url) = self.machine_post(org, machine, "cordon");
        self.send_json(req, url).await
    }

    /// `POST …/machines/{machine}/uncordon`.
    pub async fn uncordon_machine(&self, org: &str, machine: &str) -> Result<Machine, ClientError> {
        let (req, url) = self.machine_post(org, machine, "uncordon");
        self.send_json(req, url).await
    }

    /// `POST …/machines/{machine}/drain`.
    pub async fn drain_machine(
        &self,
        org: &str,
        machine: &str,
        body: &DrainRequest,
    ) -> Result<Machine, ClientError> {
        let (req, url) = self.machine_post(org, machine, "drain");
        self.send_json(req.json(body), url).await
    }

    /// `POST …/machines/{machine}/reboot` (drains first unless `force`).
    pub async fn reboot_machine(
        &self,
        org: &str,
        machine: &str,
        body: &PowerRequest,
    ) -> Result<Machine, ClientError> {
        let (req, url) = self.machine_post(org, machine, "reboot");
        self.send_json(req.json(body), url).await
    }

    /// `POST …/machines/{machine}/shutdown` (drains first unless `force`).
    pub async fn shutdown_machine(
        &self,
        org: &str,
        machine: &str,
        body: &PowerRequest,
    ) -> Result<Machine, ClientError> {
        let (req, url) = self.machine_post(org, machine, "shutdown");
        self.send_json(req.json(body), url).await
    }

    /// `POST …/machines/{machine}/decommission`.
    pub async fn decommission_machine(
        &self,
        org: &str,
        machine: &str,
        body: &DecommissionRequest,
    ) -> Result<Machine, ClientError> {
        let (req, url) = self.machine_post(org, machine, "decommission");
        self.send_json(req.json(body), url).await
    }

    /// `POST …/machines/{machine}/cancel`: stops the running operation
    /// before its first irreversible step (202 with `cancel_requested`; the
    /// phase becomes `cancelled` once the runner stopped).
    pub async fn cancel_machine_operation(
        &self,
        org: &str,
        machine: &str,
    ) -> Result<Machine, ClientError> {
        let (req, url) = self.machine_post(org, machine, "cancel");
        self.send_json(req, url).await
    }

    /// `POST /v1/orgs/{org}/machines/bulk/{action}`: the action on every
    /// operable machine `body.selector` matches; the outcome per machine.
    pub async fn bulk_machines(
        &self,
        org: &str,
        action: BulkAction,
        body: &BulkRequest,
    ) -> Result<BulkResult, ClientError> {
        let (req, url) = self.post(&["v1", "orgs", org, "machines", "bulk", action.as_str()]);
        self.send_json(req.json(body), url).await
    }
}
