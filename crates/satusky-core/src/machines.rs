//! The machine lifecycle as a pure state machine, plus machine records.
//!
//! `MachineState::on(event)` returns the next state and the ordered plan of
//! effects an operation runner must carry out (cordon, drain, Talos calls,
//! node removal). Refused transitions are errors that name the state and
//! the event, so the API can say why an action is not possible now.
//!
//! Rules taken from users' complaints about other tools: a reboot or
//! shutdown drains first unless forced; a failed drain never leaves behind
//! a cordon we added; we uncordon only what we cordoned; decommissioning an
//! unreachable machine has an explicit force path that marks it `needs_wipe`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
pub use satusky_types::machines::MachineState;
use satusky_types::machines::{Hardware, Visibility};

/// Something that happens to a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineEvent {
    /// Its owner accepts it.
    Claim,
    /// Its owner gives it back before it joined.
    Release,
    /// Its Kubernetes node registered (or came back Ready).
    NodeJoined,
    Cordon,
    Uncordon,
    Drain,
    DrainSucceeded,
    /// The drain failed or timed out.
    DrainFailed,
    Reboot {
        force: bool,
    },
    RebootFinished,
    Shutdown {
        force: bool,
    },
    ShutdownFinished,
    Decommission {
        force: bool,
    },
    DecommissionFinished,
}

/// One step an operation runner carries out, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    CordonNode,
    /// Uncordon, but only if this platform cordoned it.
    UncordonIfOurs,
    DrainNode,
    TalosReboot,
    TalosShutdown,
    /// Resets the machine gracefully (a control-plane node leaves etcd
    /// first); nothing to do when it already answers in maintenance mode.
    TalosReset,
    /// Waits until a rebooted machine's node is Ready with a new boot id.
    WaitNodeReady,
    /// Waits (bounded) until a reset machine answers in maintenance mode,
    /// proof that its configuration and our identity on it are gone.
    WaitMaintenance,
    DeleteNode,
    RemoveLink,
    /// Forget the machine's identity so it cannot come back unnoticed.
    RevokeIdentity,
}

impl Effect {
    /// The step's name in operation plans (`cordon_node`, `talos_reboot`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::CordonNode => "cordon_node",
            Effect::UncordonIfOurs => "uncordon_if_ours",
            Effect::DrainNode => "drain_node",
            Effect::TalosReboot => "talos_reboot",
            Effect::TalosShutdown => "talos_shutdown",
            Effect::TalosReset => "talos_reset",
            Effect::WaitNodeReady => "wait_node_ready",
            Effect::WaitMaintenance => "wait_maintenance",
            Effect::DeleteNode => "delete_node",
            Effect::RemoveLink => "remove_link",
            Effect::RevokeIdentity => "revoke_identity",
        }
    }

    pub const ALL: [Effect; 11] = [
        Effect::CordonNode,
        Effect::UncordonIfOurs,
        Effect::DrainNode,
        Effect::TalosReboot,
        Effect::TalosShutdown,
        Effect::TalosReset,
        Effect::WaitNodeReady,
        Effect::WaitMaintenance,
        Effect::DeleteNode,
        Effect::RemoveLink,
        Effect::RevokeIdentity,
    ];

    pub fn parse(s: &str) -> Option<Effect> {
        Effect::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Whether the step talks to the machine's Kubernetes node.
    pub fn needs_node(self) -> bool {
        matches!(
            self,
            Effect::CordonNode
                | Effect::UncordonIfOurs
                | Effect::DrainNode
                | Effect::WaitNodeReady
                | Effect::DeleteNode
        )
    }

    /// Whether the step talks to Talos on the machine.
    pub fn needs_talos(self) -> bool {
        matches!(
            self,
            Effect::TalosReboot
                | Effect::TalosShutdown
                | Effect::TalosReset
                | Effect::WaitMaintenance
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {state} machine cannot {event}", state = .state.as_str(), event = describe(*.event))]
pub struct InvalidTransition {
    pub state: MachineState,
    pub event: MachineEvent,
}

fn describe(e: MachineEvent) -> &'static str {
    match e {
        MachineEvent::Claim => "be claimed",
        MachineEvent::Release => "be released",
        MachineEvent::NodeJoined => "join as a node",
        MachineEvent::Cordon => "be cordoned",
        MachineEvent::Uncordon => "be uncordoned",
        MachineEvent::Drain => "be drained",
        MachineEvent::DrainSucceeded | MachineEvent::DrainFailed => "finish a drain",
        MachineEvent::Reboot { .. } => "be rebooted",
        MachineEvent::RebootFinished => "finish a reboot",
        MachineEvent::Shutdown { .. } => "be shut down",
        MachineEvent::ShutdownFinished => "finish a shutdown",
        MachineEvent::Decommission { .. } => "be decommissioned",
        MachineEvent::DecommissionFinished => "finish decommissioning",
    }
}

/// Where the machine goes and what must happen.
pub type Transition = (MachineState, Vec<Effect>);

/// The transition function. Whether a cordon is ours is the runner's
/// business: `UncordonIfOurs` consults the machine's `cordoned_by_us`.
#[expect(
    clippy::match_same_arms,
    reason = "one arm per edge keeps the transition table readable"
)]
pub fn on(state: MachineState, event: MachineEvent) -> Result<Transition, InvalidTransition> {
    use Effect as F;
    use MachineEvent as E;
    use MachineState as S;
    let t = match (state, event) {
        (S::Discovered, E::Claim) => (S::Claimed, vec![]),
        (S::Claimed, E::Release) => (S::Discovered, vec![]),
        (S::Claimed | S::PoweredOff | S::Rebooting, E::NodeJoined) => (S::Joined, vec![]),
        (S::Joined | S::Cordoned, E::NodeJoined) => (state, vec![]),
        (S::Joined, E::Cordon) => (S::Cordoned, vec![F::CordonNode]),
        (S::Cordoned, E::Cordon) => (S::Cordoned, vec![]),
        (S::Cordoned, E::Uncordon) => (S::Joined, vec![F::UncordonIfOurs]),
        (S::Joined, E::Uncordon) => (S::Joined, vec![]),
        (S::Joined, E::Drain) => (S::Draining, vec![F::CordonNode, F::DrainNode]),
        (S::Cordoned, E::Drain) => (S::Draining, vec![F::DrainNode]),
        (S::Draining, E::DrainSucceeded) => (S::Cordoned, vec![]),
        (S::Draining, E::DrainFailed) => (S::Joined, vec![F::UncordonIfOurs]),
        (S::Joined | S::Cordoned, E::Reboot { force: false }) => (
            S::Rebooting,
            vec![
                F::CordonNode,
                F::DrainNode,
                F::TalosReboot,
                F::WaitNodeReady,
                F::UncordonIfOurs,
            ],
        ),
        (S::Joined | S::Cordoned, E::Reboot { force: true }) | (S::Claimed, E::Reboot { .. }) => {
            (S::Rebooting, vec![F::TalosReboot, F::WaitNodeReady])
        }
        (S::Rebooting, E::RebootFinished) => (S::Joined, vec![]),
        (S::Joined | S::Cordoned, E::Shutdown { force: false }) => (
            S::ShuttingDown,
            vec![F::CordonNode, F::DrainNode, F::TalosShutdown],
        ),
        (S::Joined | S::Cordoned | S::Claimed | S::Discovered, E::Shutdown { force: true })
        | (S::Claimed | S::Discovered, E::Shutdown { force: false }) => {
            (S::ShuttingDown, vec![F::TalosShutdown])
        }
        (S::ShuttingDown, E::ShutdownFinished) => (S::PoweredOff, vec![]),
        (S::Joined | S::Cordoned | S::Draining, E::Decommission { force: false }) => (
            S::Decommissioning,
            vec![
                F::CordonNode,
                F::DrainNode,
                F::TalosReset,
                F::WaitMaintenance,
                F::DeleteNode,
                F::RemoveLink,
            ],
        ),
        (S::Discovered | S::Claimed | S::PoweredOff, E::Decommission { force: false }) => (
            S::Decommissioning,
            vec![
                F::TalosReset,
                F::WaitMaintenance,
                F::DeleteNode,
                F::RemoveLink,
            ],
        ),
        (
            S::Discovered
            | S::Claimed
            | S::Joined
            | S::Cordoned
            | S::Draining
            | S::Rebooting
            | S::ShuttingDown
            | S::PoweredOff
            | S::Decommissioning,
            E::Decommission { force: true },
        ) => (
            S::NeedsWipe,
            vec![F::DeleteNode, F::RemoveLink, F::RevokeIdentity],
        ),
        (S::Decommissioning, E::DecommissionFinished) => (S::Decommissioned, vec![]),
        _ => return Err(InvalidTransition { state, event }),
    };
    Ok(t)
}

/// Whether the machine's owner may still change it (labels, visibility).
pub fn is_live(state: MachineState) -> bool {
    !matches!(
        state,
        MachineState::Decommissioned | MachineState::NeedsWipe
    )
}

#[derive(Debug, Clone, PartialEq)]
pub struct MachineRecord {
    pub id: String,
    pub org_id: String,
    /// The member who claimed it (for `owner` visibility).
    pub owner_user_id: Option<String>,
    pub name: String,
    pub uuid: String,
    /// Hash of the machine's persisted secret and hardware fingerprint:
    /// two machines with one UUID differ here.
    pub fingerprint: String,
    pub state: MachineState,
    pub visibility: Visibility,
    pub labels: BTreeMap<String, String>,
    pub system_labels: BTreeMap<String, String>,
    pub hardware: Hardware,
    pub zone: String,
    pub overlay_address: String,
    /// Where the Talos API answers (`host:port`).
    pub talos_endpoint: String,
    pub connected: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub node_name: Option<String>,
    pub cordoned_by_us: bool,
    /// A running or last operation (drain report etc.) as JSON, for resuming.
    pub operation: Option<serde_json::Value>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every update; `Store::update_machine` compares and sets it.
    pub version: u64,
}

/// One entry of a machine's event stream (`seq` is per machine, from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineEventRecord {
    pub machine_id: String,
    pub seq: u64,
    pub kind: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTokenRecord {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use Effect as F;
    use MachineEvent as E;
    use MachineState as S;

    const STATES: [S; 11] = [
        S::Discovered,
        S::Claimed,
        S::Joined,
        S::Cordoned,
        S::Draining,
        S::Rebooting,
        S::ShuttingDown,
        S::PoweredOff,
        S::Decommissioning,
        S::Decommissioned,
        S::NeedsWipe,
    ];

    const EVENTS: [E; 17] = [
        E::Claim,
        E::Release,
        E::NodeJoined,
        E::Cordon,
        E::Uncordon,
        E::Drain,
        E::DrainSucceeded,
        E::DrainFailed,
        E::Reboot { force: false },
        E::Reboot { force: true },
        E::RebootFinished,
        E::Shutdown { force: false },
        E::Shutdown { force: true },
        E::ShutdownFinished,
        E::Decommission { force: false },
        E::Decommission { force: true },
        E::DecommissionFinished,
    ];

    /// Every allowed edge, with its target and plan. Anything else is refused.
    fn expected() -> Vec<(S, E, S, Vec<F>)> {
        let drain_reboot = vec![
            F::CordonNode,
            F::DrainNode,
            F::TalosReboot,
            F::WaitNodeReady,
            F::UncordonIfOurs,
        ];
        let decom = vec![
            F::CordonNode,
            F::DrainNode,
            F::TalosReset,
            F::WaitMaintenance,
            F::DeleteNode,
            F::RemoveLink,
        ];
        let force_remove = vec![F::DeleteNode, F::RemoveLink, F::RevokeIdentity];
        let mut v = vec![
            (S::Discovered, E::Claim, S::Claimed, vec![]),
            (S::Claimed, E::Release, S::Discovered, vec![]),
            (S::Claimed, E::NodeJoined, S::Joined, vec![]),
            (S::PoweredOff, E::NodeJoined, S::Joined, vec![]),
            (S::Rebooting, E::NodeJoined, S::Joined, vec![]),
            (S::Joined, E::NodeJoined, S::Joined, vec![]),
            (S::Cordoned, E::NodeJoined, S::Cordoned, vec![]),
            (S::Joined, E::Cordon, S::Cordoned, vec![F::CordonNode]),
            (S::Cordoned, E::Cordon, S::Cordoned, vec![]),
            (S::Cordoned, E::Uncordon, S::Joined, vec![F::UncordonIfOurs]),
            (S::Joined, E::Uncordon, S::Joined, vec![]),
            (
                S::Joined,
                E::Drain,
                S::Draining,
                vec![F::CordonNode, F::DrainNode],
            ),
            (S::Cordoned, E::Drain, S::Draining, vec![F::DrainNode]),
            (S::Draining, E::DrainSucceeded, S::Cordoned, vec![]),
            (
                S::Draining,
                E::DrainFailed,
                S::Joined,
                vec![F::UncordonIfOurs],
            ),
            (
                S::Joined,
                E::Reboot { force: false },
                S::Rebooting,
                drain_reboot.clone(),
            ),
            (
                S::Cordoned,
                E::Reboot { force: false },
                S::Rebooting,
                drain_reboot,
            ),
            (
                S::Joined,
                E::Reboot { force: true },
                S::Rebooting,
                vec![F::TalosReboot, F::WaitNodeReady],
            ),
            (
                S::Cordoned,
                E::Reboot { force: true },
                S::Rebooting,
                vec![F::TalosReboot, F::WaitNodeReady],
            ),
            (
                S::Claimed,
                E::Reboot { force: false },
                S::Rebooting,
                vec![F::TalosReboot, F::WaitNodeReady],
            ),
            (
                S::Claimed,
                E::Reboot { force: true },
                S::Rebooting,
                vec![F::TalosReboot, F::WaitNodeReady],
            ),
            (S::Rebooting, E::RebootFinished, S::Joined, vec![]),
            (
                S::Joined,
                E::Shutdown { force: false },
                S::ShuttingDown,
                vec![F::CordonNode, F::DrainNode, F::TalosShutdown],
            ),
            (
                S::Cordoned,
                E::Shutdown { force: false },
                S::ShuttingDown,
                vec![F::CordonNode, F::DrainNode, F::TalosShutdown],
            ),
            (S::ShuttingDown, E::ShutdownFinished, S::PoweredOff, vec![]),
            (
                S::Joined,
                E::Decommission { force: false },
                S::Decommissioning,
                decom.clone(),
            ),
            (
                S::Cordoned,
                E::Decommission { force: false },
                S::Decommissioning,
                decom.clone(),
            ),
            (
                S::Draining,
                E::Decommission { force: false },
                S::Decommissioning,
                decom,
            ),
            (
                S::Decommissioning,
                E::DecommissionFinished,
                S::Decommissioned,
                vec![],
            ),
        ];
        for s in [S::Joined, S::Cordoned, S::Claimed, S::Discovered] {
            v.push((
                s,
                E::Shutdown { force: true },
                S::ShuttingDown,
                vec![F::TalosShutdown],
            ));
        }
        for s in [S::Claimed, S::Discovered] {
            v.push((
                s,
                E::Shutdown { force: false },
                S::ShuttingDown,
                vec![F::TalosShutdown],
            ));
        }
        for s in [S::Discovered, S::Claimed, S::PoweredOff] {
            v.push((
                s,
                E::Decommission { force: false },
                S::Decommissioning,
                vec![
                    F::TalosReset,
                    F::WaitMaintenance,
                    F::DeleteNode,
                    F::RemoveLink,
                ],
            ));
        }
        for s in STATES {
            if !matches!(s, S::Decommissioned | S::NeedsWipe) {
                v.push((
                    s,
                    E::Decommission { force: true },
                    S::NeedsWipe,
                    force_remove.clone(),
                ));
            }
        }
        v
    }

    #[test]
    fn every_edge_goes_where_it_should_and_everything_else_is_refused() {
        let allowed = expected();
        let mut checked = 0;
        for s in STATES {
            for e in EVENTS {
                let want = allowed.iter().find(|(fs, fe, _, _)| *fs == s && *fe == e);
                match (on(s, e), want) {
                    (Ok((to, effects)), Some((_, _, wto, weffects))) => {
                        assert_eq!((to, &effects), (*wto, weffects), "{s:?} --{e:?}-->");
                    }
                    (Err(err), None) => {
                        assert_eq!((err.state, err.event), (s, e));
                        assert!(
                            err.to_string()
                                .starts_with(&format!("a {} machine cannot", s.as_str()))
                        );
                    }
                    (got, want) => panic!("{s:?} --{e:?}--> got {got:?}, want {want:?}"),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, STATES.len() * EVENTS.len());
    }

    #[test]
    fn a_reboot_drains_first_unless_forced_and_a_failed_drain_removes_our_cordon() {
        let (_, plan) = on(S::Joined, E::Reboot { force: false }).unwrap();
        assert!(
            plan.iter().position(|f| *f == F::DrainNode)
                < plan.iter().position(|f| *f == F::TalosReboot)
        );
        let (_, plan) = on(S::Joined, E::Reboot { force: true }).unwrap();
        assert!(!plan.contains(&F::DrainNode));
        let (to, plan) = on(S::Draining, E::DrainFailed).unwrap();
        assert_eq!((to, plan), (S::Joined, vec![F::UncordonIfOurs]));
    }

    #[test]
    fn a_decommission_waits_for_maintenance_mode_after_the_reset_and_before_removal() {
        for from in [S::Joined, S::Claimed] {
            let (_, plan) = on(from, E::Decommission { force: false }).unwrap();
            let at = |f: F| plan.iter().position(|x| *x == f).unwrap();
            assert_eq!(at(F::WaitMaintenance), at(F::TalosReset) + 1, "{plan:?}");
            assert!(at(F::WaitMaintenance) < at(F::DeleteNode));
        }
        // A forced removal talks to no machine.
        let (_, plan) = on(S::Joined, E::Decommission { force: true }).unwrap();
        assert!(!plan.iter().any(|f| f.needs_talos()));
    }

    #[test]
    fn effect_names_round_trip() {
        for e in Effect::ALL {
            assert_eq!(Effect::parse(e.as_str()), Some(e));
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                serde_json::Value::String(e.as_str().to_owned())
            );
        }
        assert_eq!(Effect::parse("nope"), None);
    }

    #[test]
    fn gone_machines_accept_nothing() {
        for e in EVENTS {
            assert!(on(S::Decommissioned, e).is_err());
            assert!(on(S::NeedsWipe, e).is_err());
        }
        assert!(!is_live(S::Decommissioned) && !is_live(S::NeedsWipe) && is_live(S::Joined));
    }
}
