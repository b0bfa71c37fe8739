//! A machine's health from its three sources, evaluated live: the link
//! (SideroLink: WireGuard handshakes, as recorded on the machine), Talos
//! (its services) and the Kubernetes node (Ready and pressure conditions).
//! Conditions have the shape of app conditions (one health model).

use satusky_types::apps::Condition;
use satusky_types::machines::{MachineHealth, MachineService, MachineState};

use super::{Ctx, Services, ops_message, talos_target};
use crate::Result;
use crate::authz::Action;
use crate::fleet::ports::{NodeStatus, OpsError, ServiceHealth};

/// Node conditions reported beside `NodeReady` when the node has them.
const PRESSURE: [&str; 4] = [
    "MemoryPressure",
    "DiskPressure",
    "PIDPressure",
    "NetworkUnavailable",
];

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    at: chrono::DateTime<chrono::Utc>,
) -> Condition {
    let message = message.into();
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: (!message.is_empty()).then_some(message),
        last_transition_time: at,
    }
}

/// What Talos said: its services, or why it did not answer; `None` when
/// it was not asked (nothing to ask, or no Talos port).
type TalosAnswer = Option<std::result::Result<Vec<ServiceHealth>, OpsError>>;
/// What the API server said about the node; `None` when not asked.
type NodeAnswer = Option<std::result::Result<Option<NodeStatus>, OpsError>>;

/// The verdict and conditions from what each source said. Pure, so every
/// combination is tested without ports.
pub(super) fn evaluate(
    state: MachineState,
    connected: bool,
    last_seen: Option<chrono::DateTime<chrono::Utc>>,
    node_name: Option<&str>,
    talos: TalosAnswer,
    node: NodeAnswer,
    now: chrono::DateTime<chrono::Utc>,
) -> (String, Vec<Condition>, Vec<MachineService>, bool) {
    let mut conditions = Vec::new();
    let seen = last_seen.map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
    conditions.push(if connected {
        condition(
            "LinkUp",
            "True",
            "Connected",
            format!("last seen {seen}"),
            now,
        )
    } else {
        condition(
            "LinkUp",
            "False",
            "Disconnected",
            format!("no sign of the machine on its SideroLink link since {seen}"),
            now,
        )
    });

    let mut services = Vec::new();
    let mut degraded = !connected;
    match talos {
        None => {
            let why = match state {
                MachineState::Decommissioned | MachineState::NeedsWipe => "Decommissioned",
                MachineState::PoweredOff => "PoweredOff",
                _ => "NotAsked",
            };
            conditions.push(condition("TalosReachable", "Unknown", why, "", now));
            conditions.push(condition("ServicesHealthy", "Unknown", why, "", now));
        }
        Some(Err(e)) => {
            degraded = true;
            conditions.push(condition(
                "TalosReachable",
                "False",
                "Unreachable",
                ops_message(&e),
                now,
            ));
            conditions.push(condition(
                "ServicesHealthy",
                "Unknown",
                "Unreachable",
                "",
                now,
            ));
        }
        Some(Ok(list)) => {
            conditions.push(condition("TalosReachable", "True", "Answered", "", now));
            let unhealthy: Vec<&str> = list
                .iter()
                .filter(|s| !s.healthy)
                .map(|s| s.id.as_str())
                .collect();
            conditions.push(if unhealthy.is_empty() {
                condition(
                    "ServicesHealthy",
                    "True",
                    "AllHealthy",
                    format!("{} services", list.len()),
                    now,
                )
            } else {
                degraded = true;
                condition(
                    "ServicesHealthy",
                    "False",
                    "Unhealthy",
                    format!("not healthy: {}", unhealthy.join(", ")),
                    now,
                )
            });
            services = list
                .into_iter()
                .map(|s| MachineService {
                    id: s.id,
                    state: s.state,
                    healthy: s.healthy,
                })
                .collect();
        }
    }

    let mut unschedulable = false;
    let node_ready = match (node_name, node) {
        (None, _) | (_, None) => {
            conditions.push(condition(
                "NodeReady",
                "Unknown",
                "NotJoined",
                "the machine has no Kubernetes node",
                now,
            ));
            None
        }
        (Some(name), Some(Err(e))) => {
            conditions.push(condition(
                "NodeReady",
                "Unknown",
                "ApiUnavailable",
                format!("node {name}: {}", ops_message(&e)),
                now,
            ));
            None
        }
        (Some(name), Some(Ok(None))) => {
            conditions.push(condition(
                "NodeReady",
                "False",
                "NodeMissing",
                format!("node {name} does not exist"),
                now,
            ));
            Some(false)
        }
        (Some(_), Some(Ok(Some(ns)))) => {
            unschedulable = ns.unschedulable;
            let ready = ns.conditions.iter().find(|c| c.kind == "Ready");
            conditions.push(condition(
                "NodeReady",
                if ns.ready { "True" } else { "False" },
                ready.map_or(if ns.ready { "KubeletReady" } else { "NotReady" }, |c| {
                    if c.reason.is_empty() {
                        if ns.ready { "KubeletReady" } else { "NotReady" }
                    } else {
                        c.reason.as_str()
                    }
                }),
                ready.map(|c| c.message.clone()).unwrap_or_default(),
                now,
            ));
            for kind in PRESSURE {
                if let Some(c) = ns.conditions.iter().find(|c| c.kind == kind) {
                    degraded |= c.status == "True";
                    conditions.push(condition(
                        kind,
                        &c.status,
                        if c.reason.is_empty() { kind } else { &c.reason },
                        c.message.clone(),
                        now,
                    ));
                }
            }
            Some(ns.ready)
        }
    };
    let verdict = match node_ready {
        None => "unknown",
        Some(false) => "unhealthy",
        Some(true) if degraded => "degraded",
        Some(true) => "healthy",
    };
    (verdict.to_owned(), conditions, services, unschedulable)
}

impl Services {
    /// The machine's health from the link, Talos and its node, asked now
    /// (each call bounded by the ports' timeouts, asked concurrently).
    pub async fn machine_health(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
    ) -> Result<MachineHealth> {
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let f = self.find_machine(ctx, &a, machine).await?;
        let m = &f.machine;
        let ask_talos = !m.talos_endpoint.is_empty()
            && !matches!(
                m.state,
                MachineState::Decommissioned | MachineState::NeedsWipe | MachineState::PoweredOff
            );
        let talos = async {
            match (&self.inner.config.talos_ops, ask_talos) {
                (Some(ops), true) => Some(ops.services(&talos_target(m)).await),
                _ => None,
            }
        };
        let node = async {
            match (&self.inner.config.node_ops, &m.node_name) {
                (Some(ops), Some(name)) => Some(ops.node_status(name).await),
                _ => None,
            }
        };
        let (talos, node) = tokio::join!(talos, node);
        let now = self.inner.clock.now();
        let (verdict, conditions, services, unschedulable) = evaluate(
            m.state,
            m.connected,
            m.last_seen_at,
            m.node_name.as_deref(),
            talos,
            node,
            now,
        );
        Ok(MachineHealth {
            machine: m.name.clone(),
            state: m.state,
            verdict,
            conditions,
            services,
            node_name: m.node_name.clone(),
            unschedulable,
            checked_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::ports::NodeCondition;

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn svc(id: &str, healthy: bool) -> ServiceHealth {
        ServiceHealth {
            id: id.into(),
            state: if healthy { "Running" } else { "Failed" }.into(),
            healthy,
        }
    }

    fn node(ready: bool, pressure: &[(&str, &str)]) -> NodeStatus {
        let mut conditions = vec![NodeCondition {
            kind: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            reason: if ready {
                "KubeletReady"
            } else {
                "KubeletNotReady"
            }
            .into(),
            message: "kubelet says so".into(),
        }];
        for (kind, status) in pressure {
            conditions.push(NodeCondition {
                kind: (*kind).into(),
                status: (*status).into(),
                reason: String::new(),
                message: String::new(),
            });
        }
        NodeStatus {
            ready,
            conditions,
            ..NodeStatus::default()
        }
    }

    fn status_of(conds: &[Condition], t: &str) -> String {
        conds
            .iter()
            .find(|c| c.type_ == t)
            .map_or_else(|| format!("no {t}"), |c| c.status.clone())
    }

    #[test]
    fn every_source_well_is_healthy() {
        let (verdict, conds, services, _) = evaluate(
            MachineState::Joined,
            true,
            Some(now()),
            Some("n1"),
            Some(Ok(vec![svc("apid", true), svc("kubelet", true)])),
            Some(Ok(Some(node(true, &[("MemoryPressure", "False")])))),
            now(),
        );
        assert_eq!(verdict, "healthy");
        assert_eq!(services.len(), 2);
        for t in ["LinkUp", "TalosReachable", "ServicesHealthy", "NodeReady"] {
            assert_eq!(status_of(&conds, t), "True", "{t}");
        }
        assert_eq!(status_of(&conds, "MemoryPressure"), "False");
        assert_eq!(status_of(&conds, "DiskPressure"), "no DiskPressure");
    }

    #[test]
    fn a_ready_node_with_a_problem_elsewhere_is_degraded() {
        let cases: Vec<(bool, TalosAnswer, NodeStatus, &str)> = vec![
            (false, Some(Ok(vec![])), node(true, &[]), "LinkUp"),
            (
                true,
                Some(Err(OpsError::unreachable("machine m"))),
                node(true, &[]),
                "TalosReachable",
            ),
            (
                true,
                Some(Ok(vec![svc("etcd", false)])),
                node(true, &[]),
                "ServicesHealthy",
            ),
            (
                true,
                Some(Ok(vec![])),
                node(true, &[("DiskPressure", "True")]),
                "DiskPressure",
            ),
        ];
        for (connected, talos, ns, culprit) in cases {
            let (verdict, conds, _, _) = evaluate(
                MachineState::Joined,
                connected,
                None,
                Some("n1"),
                talos,
                Some(Ok(Some(ns))),
                now(),
            );
            assert_eq!(verdict, "degraded", "{culprit}");
            let c = conds.iter().find(|c| c.type_ == culprit).unwrap();
            assert_ne!(c.status, "Unknown", "{culprit}");
        }
    }

    #[test]
    fn a_node_not_ready_or_missing_is_unhealthy_and_no_node_is_unknown() {
        let (v, conds, _, _) = evaluate(
            MachineState::Rebooting,
            true,
            None,
            Some("n1"),
            Some(Err(OpsError::unreachable("m"))),
            Some(Ok(Some(node(false, &[])))),
            now(),
        );
        assert_eq!(v, "unhealthy");
        let ready = conds.iter().find(|c| c.type_ == "NodeReady").unwrap();
        assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(ready.message.as_deref(), Some("kubelet says so"));

        let (v, _, _, _) = evaluate(
            MachineState::Joined,
            true,
            None,
            Some("n1"),
            Some(Ok(vec![])),
            Some(Ok(None)),
            now(),
        );
        assert_eq!(v, "unhealthy");

        let (v, conds, _, _) = evaluate(
            MachineState::Discovered,
            true,
            None,
            None,
            Some(Ok(vec![])),
            None,
            now(),
        );
        assert_eq!(v, "unknown");
        assert_eq!(status_of(&conds, "NodeReady"), "Unknown");

        let (v, conds, _, _) = evaluate(
            MachineState::Decommissioned,
            false,
            None,
            None,
            None,
            None,
            now(),
        );
        assert_eq!(v, "unknown");
        let talos = conds.iter().find(|c| c.type_ == "TalosReachable").unwrap();
        assert_eq!(talos.reason.as_deref(), Some("Decommissioned"));
    }
}
