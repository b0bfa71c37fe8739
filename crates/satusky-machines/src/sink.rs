//! The SideroLink event sink, `events.EventSinkService/Publish`.
//!
//! Talos publishes one event per call, replays its whole backlog on first connect and
//! resumes after the last acknowledged id on reconnect. The machine is identified by
//! the gRPC peer address (its overlay IPv6 address). This server decodes each event,
//! drops duplicates per peer IP and forwards the rest into a channel.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use satusky_proto::events::{
    EventRequest, EventResponse,
    event_sink_service_server::{EventSinkService, EventSinkServiceServer},
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::events::{MachineEvent, decode_payload};
use crate::provision::ServeError;

/// How many recent ids are remembered per peer for de-duplication.
const DEDUP_WINDOW: usize = 4096;

/// An event received by the sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkEvent {
    /// The publishing peer (the machine's overlay address in production).
    pub peer: Option<SocketAddr>,
    /// The event.
    pub event: MachineEvent,
}

#[derive(Debug, Default)]
struct Seen {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Seen {
    /// Records `id`; returns false when it was already seen.
    fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        if self.order.len() > DEDUP_WINDOW
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

/// The `EventSinkService` implementation.
#[derive(Debug)]
pub struct EventSinkServer {
    tx: mpsc::Sender<SinkEvent>,
    seen: Mutex<HashMap<Option<IpAddr>, Seen>>,
}

impl EventSinkServer {
    /// A sink forwarding into `tx`. A full channel slows publishers down; a closed one
    /// makes `Publish` fail with `Unavailable`, so Talos retries later.
    pub fn new(tx: mpsc::Sender<SinkEvent>) -> Self {
        Self {
            tx,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Serves `/events.EventSinkService` on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        tonic::transport::Server::builder()
            .add_service(EventSinkServiceServer::new(self))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
            .await
            .map_err(ServeError::Transport)
    }
}

#[tonic::async_trait]
impl EventSinkService for EventSinkServer {
    async fn publish(
        &self,
        request: Request<EventRequest>,
    ) -> Result<Response<EventResponse>, Status> {
        let peer = request.remote_addr();
        let req = request.into_inner();
        let fresh = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(peer.map(|p| p.ip()))
            .or_default()
            .insert(&req.id);
        if !fresh {
            return Ok(Response::new(EventResponse {}));
        }
        let event = MachineEvent {
            id: req.id,
            actor_id: req.actor_id,
            payload: decode_payload(req.data.as_ref()),
        };
        self.tx
            .send(SinkEvent { peer, event })
            .await
            .map_err(|_| Status::unavailable("event sink is shutting down"))?;
        Ok(Response::new(EventResponse {}))
    }
}
