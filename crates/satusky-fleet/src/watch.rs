//! The node watcher and the link poller.
//!
//! Nodes are watched (kube-rs `watcher`), so no Ready/NotReady flip is
//! missed: each flip and each pressure change is recorded in the machine's
//! history. A periodic pass matches nodes to machines (`nodeInfo.systemUUID`,
//! then the hostname when UUIDs collide) and tells core when a claimed,
//! powered-off or rebooting machine's node is Ready (`NodeJoined`) — never for
//! a machine in the middle of an operation, which waits for its node itself.
//! A machine's link is its SideroLink WireGuard peer: up while its latest
//! handshake is recent and its keepalives arrive ([`Links`]); changes go to
//! core (`machine_link_changed`), and where the peer is heard from goes to the
//! store (restored after a restart). Reachability is separate: the Talos API of a
//! machine whose link is up is probed, and a change of it is recorded in the
//! machine's history (`talos.unreachable` / `talos.reachable`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use satusky_core::fleet::{NodeStatus, labels};
use satusky_core::machines::{MachineRecord, is_live};
use satusky_core::services::{Services, machine_operation};
use satusky_types::machines::MachineState;
use tokio::sync::{Notify, watch as tokio_watch};

use crate::index::{MachineIndex, all_machines, record};
use crate::links::Links;
use crate::node_ops::{node_status, pressures};
use crate::talos_ops::TalosClientOps;

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// What the watcher keeps of a node.
#[derive(Debug, Clone)]
pub(crate) struct NodeView {
    pub uuid: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub status: NodeStatus,
}

pub(crate) type Nodes = Arc<Mutex<HashMap<String, NodeView>>>;

fn view(n: &Node) -> NodeView {
    let labels = n.metadata.labels.clone().unwrap_or_default();
    NodeView {
        uuid: n
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.system_uuid.to_lowercase())
            .unwrap_or_default(),
        hostname: labels
            .get("kubernetes.io/hostname")
            .cloned()
            .unwrap_or_default(),
        labels,
        status: node_status(n),
    }
}

fn ready_message(name: &str, s: &NodeStatus) -> (&'static str, String) {
    let cond = s.conditions.iter().find(|c| c.kind == "Ready");
    if s.ready {
        ("node.ready", format!("node {name} is Ready"))
    } else {
        let why = cond
            .map(|c| {
                if c.message.is_empty() {
                    c.reason.clone()
                } else {
                    c.message.clone()
                }
            })
            .unwrap_or_default();
        let mut msg = format!("node {name} is NotReady");
        if !why.is_empty() {
            msg.push_str(": ");
            msg.push_str(&why);
        }
        ("node.not_ready", msg)
    }
}

/// The machine a node belongs to, among `machines`.
fn machine_for<'a>(
    name: &str,
    node: &NodeView,
    machines: &'a [MachineRecord],
) -> Option<&'a MachineRecord> {
    let live = || machines.iter().filter(|m| is_live(m.state));
    if let Some(m) = live().find(|m| m.node_name.as_deref() == Some(name)) {
        return Some(m);
    }
    if node.uuid.is_empty() {
        return None;
    }
    let same: Vec<&MachineRecord> = live()
        .filter(|m| m.uuid.to_lowercase() == node.uuid && m.node_name.is_none())
        .collect();
    match same.as_slice() {
        [one] => Some(one),
        [] => None,
        many => {
            let by_host: Vec<&&MachineRecord> = many
                .iter()
                .filter(|m| {
                    !node.hostname.is_empty()
                        && m.system_labels.get("hostname") == Some(&node.hostname.to_lowercase())
                })
                .collect();
            match by_host.as_slice() {
                [one] => Some(**one),
                _ => None,
            }
        }
    }
}

/// Records Ready flips and pressure changes, then asks for a pass.
async fn on_node_change(
    services: &Services,
    nodes: &Nodes,
    name: &str,
    new: Option<NodeView>,
    pass: &Notify,
) {
    let old = {
        let mut g = nodes.lock().unwrap_or_else(PoisonError::into_inner);
        match &new {
            Some(v) => g.insert(name.to_owned(), v.clone()),
            None => g.remove(name),
        }
    };
    let mut events = Vec::new();
    let meaningful = match (&old, &new) {
        (Some(o), Some(n)) => {
            o.status.ready != n.status.ready || o.uuid != n.uuid || o.labels != n.labels
        }
        _ => true,
    };
    match (&old, &new) {
        (Some(o), Some(n)) => {
            if o.status.ready != n.status.ready {
                let (k, m) = ready_message(name, &n.status);
                events.push((k, m));
            }
            let (po, pn) = (pressures(&o.status), pressures(&n.status));
            if po != pn {
                let msg = if pn.is_empty() {
                    format!("node {name} no longer reports pressure")
                } else {
                    format!("node {name} reports {}", pn.join(", "))
                };
                events.push(("node.pressure", msg));
            }
        }
        (Some(_), None) => events.push(("node.deleted", format!("node {name} was deleted"))),
        _ => {}
    }
    if !events.is_empty() {
        let machines = all_machines(services).await.unwrap_or_default();
        let view = new.as_ref().or(old.as_ref());
        if let Some(m) = view.and_then(|v| machine_for(name, v, &machines)) {
            for (k, msg) in events {
                record(services, &m.id, k, msg).await;
            }
        }
    }
    if meaningful {
        pass.notify_one();
    }
}

/// Watches nodes until `stop` flips.
pub(crate) async fn watch_nodes(
    services: Services,
    kube: kube::Client,
    nodes: Nodes,
    pass: Arc<Notify>,
    mut stop: tokio_watch::Receiver<bool>,
) {
    let api: Api<Node> = Api::all(kube);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    tokio::pin!(stream);
    loop {
        let ev = tokio::select! {
            ev = stream.try_next() => ev,
            _ = stop.wait_for(|s| *s) => return,
        };
        match ev {
            Ok(Some(watcher::Event::Apply(n) | watcher::Event::InitApply(n))) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                on_node_change(&services, &nodes, &name, Some(view(&n)), &pass).await;
            }
            Ok(Some(watcher::Event::Delete(n))) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                on_node_change(&services, &nodes, &name, None, &pass).await;
            }
            Ok(Some(watcher::Event::Init | watcher::Event::InitDone)) => {}
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "node watch failed; retrying"
                );
            }
        }
    }
}

fn busy(m: &MachineRecord) -> bool {
    machine_operation(m).is_some_and(|op| op.phase == "running")
}

/// One pass: nodes to machines (`NodeJoined`).
async fn pass_nodes(services: &Services, nodes: &Nodes, machines: &[MachineRecord]) {
    let snapshot: Vec<(String, NodeView)> = nodes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (name, node) in snapshot {
        let Some(m) = machine_for(&name, &node, machines) else {
            continue;
        };
        if busy(m) || !node.status.ready {
            continue;
        }
        let join = match m.state {
            MachineState::Claimed | MachineState::PoweredOff | MachineState::Rebooting => true,
            MachineState::Joined | MachineState::Cordoned => {
                m.node_name.as_deref() != Some(name.as_str())
            }
            _ => false,
        };
        if join {
            if let Err(e) = services.machine_node_joined(&m.id, &name).await {
                tracing::warn!(machine.id = %m.id, k8s.node = %name, error = %e, "could not record the node joining");
            }
            continue;
        }
        if m.node_name.as_deref() != Some(name.as_str()) {
            continue;
        }
        // The zone is the node's topology label (Talos does not know it).
        if let Some(zone) = node.labels.get(ZONE_LABEL)
            && *zone != m.zone
            && let Err(e) = services
                .update_machine_facts(&m.id, Some(zone), None, None)
                .await
        {
            tracing::warn!(machine.id = %m.id, error = %e, "could not record the machine's zone");
        }
        // Level-triggered: labels Satusky owns that the node lacks (a node
        // re-created, a label edited by hand) are pushed again.
        let want = labels::node_labels(&m.labels, &m.system_labels);
        if want.iter().any(|(k, v)| node.labels.get(k) != Some(v))
            && let Err(e) = services.sync_machine_node_labels(&m.id).await
        {
            tracing::warn!(machine.id = %m.id, k8s.node = %name, error = %e, "could not resync node labels");
        }
    }
}

/// Last seen Talos API reachability per machine id.
type Reach = Mutex<HashMap<String, bool>>;

/// One pass: every live machine's link from its WireGuard peer, reported to
/// core on a change; the Talos API of machines whose link is up is probed for
/// reachability (and for facts the machine did not report at admission).
async fn pass_links(
    services: &Services,
    talos: &Arc<TalosClientOps>,
    links: &Links,
    index: &MachineIndex,
    reach: &Reach,
    machines: &[MachineRecord],
) {
    let probes: Vec<_> = machines
        .iter()
        .filter(|m| is_live(m.state))
        .map(|m| {
            let (id, endpoint, connected) = (m.id.clone(), m.talos_endpoint.clone(), m.connected);
            let up = links.is_up(&m.id, &m.uuid);
            // Admitted before its API answered: learn its facts now.
            let needs_facts = m.hardware.cpu_cores == 0;
            let talos = talos.clone();
            async move {
                let reachable = if up && !endpoint.is_empty() {
                    Some(talos.probe(&endpoint).await)
                } else {
                    None
                };
                let facts = if reachable == Some(true) && needs_facts {
                    talos.facts(&endpoint).await
                } else {
                    None
                };
                (id, connected, up, reachable, facts)
            }
        })
        .collect();
    let results: Vec<_> = futures::stream::iter(probes)
        .buffer_unordered(16)
        .collect()
        .await;
    for (id, connected, up, reachable, facts) in results {
        if let Some((hostname, hardware)) = facts {
            let host = (!hostname.is_empty()).then_some(hostname.as_str());
            if let Err(e) = services
                .update_machine_facts(&id, None, Some(&hardware), host)
                .await
            {
                tracing::warn!(machine.id = %id, error = %e, "could not record the machine's facts");
            }
        }
        if connected != up {
            index.set_connected(&id, up);
            if let Err(e) = services.machine_link_changed(&id, up).await {
                tracing::warn!(machine.id = %id, error = %e, "could not record a link change");
            }
        }
        if let Some(r) = reachable {
            let before = reach
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.clone(), r);
            match (before, r) {
                (Some(true), false) => {
                    record(
                        services,
                        &id,
                        "talos.unreachable",
                        "link up, but the Talos API does not answer".to_owned(),
                    )
                    .await;
                }
                (Some(false), true) => {
                    record(
                        services,
                        &id,
                        "talos.reachable",
                        "the Talos API answers again".to_owned(),
                    )
                    .await;
                }
                _ => {}
            }
        }
    }
}

/// Records where live machines' peers are heard from when that changed, so
/// that a restarted runtime can initiate a handshake towards them. A peer
/// the store does not know under its key (its recording at admission
/// failed) is recorded again.
async fn save_endpoints(services: &Services, links: &Links, machines: &[MachineRecord]) {
    for m in machines.iter().filter(|m| is_live(m.state)) {
        let Some((key, endpoint)) = links.endpoint_to_save(&m.id) else {
            continue;
        };
        let (b64, at) = (key.to_base64(), endpoint.to_string());
        let mut saved = services
            .record_machine_link_endpoint(&m.id, &b64, &at)
            .await;
        // Not recorded under this key: record it again, unless the peer was
        // removed meanwhile (its stored row is being forgotten).
        if matches!(saved, Ok(false)) && links.is_bound(&m.id, key) {
            let recorded = services
                .record_machine_link(&m.id, &b64, &m.uuid, &m.overlay_address)
                .await;
            saved = match recorded {
                Ok(()) => {
                    services
                        .record_machine_link_endpoint(&m.id, &b64, &at)
                        .await
                }
                Err(e) => Err(e),
            };
        }
        match saved {
            Ok(_) => links.endpoint_saved(&m.id, key, endpoint),
            Err(e) => {
                tracing::warn!(machine.id = %m.id, error = %e, "could not record the SideroLink peer's endpoint");
            }
        }
    }
}

/// Periodic passes until `stop` flips: nodes every `resync` (and on every
/// node change), links every `link_poll`.
pub(crate) struct Passes {
    pub services: Services,
    pub talos: Arc<TalosClientOps>,
    pub links: Links,
    pub index: Arc<MachineIndex>,
    pub nodes: Nodes,
    pub pass: Arc<Notify>,
    pub resync: Duration,
    pub link_poll: Duration,
}

pub(crate) async fn run_passes(p: Passes, stop: tokio_watch::Receiver<bool>) {
    let Passes {
        services,
        talos,
        links,
        index,
        nodes,
        pass,
        resync,
        link_poll,
    } = p;
    // Links on their own loop: probes of machines that are down take a
    // while and must not hold up nodes joining.
    let links = {
        let (services, index, mut stop) = (services.clone(), index.clone(), stop.clone());
        let reach = Reach::default();
        async move {
            loop {
                match all_machines(&services).await {
                    Ok(machines) => {
                        pass_links(&services, &talos, &links, &index, &reach, &machines).await;
                        save_endpoints(&services, &links, &machines).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "link pass skipped: store unavailable"),
                }
                tokio::select! {
                    () = tokio::time::sleep(link_poll) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    };
    let nodes_loop = async move {
        let mut stop = stop;
        loop {
            match all_machines(&services).await {
                Ok(machines) => {
                    index.update(&machines);
                    pass_nodes(&services, &nodes, &machines).await;
                }
                Err(e) => tracing::warn!(error = %e, "node pass skipped: store unavailable"),
            }
            tokio::select! {
                () = tokio::time::sleep(resync) => {}
                () = pass.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    };
    tokio::join!(links, nodes_loop);
}
