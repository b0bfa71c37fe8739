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
//!
//! An operation may be cancelled while every step begun so far is
//! reversible ([`Effect::is_reversible`]: cordon, drain, and the waits
//! between them); once a Talos call or the node's removal has begun,
//! [`cancel_blocker`] names the step that keeps it going.

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
    /// A running operation is cancelled before its first irreversible step:
    /// the machine goes back to `back_to`, the state it was in before the
    /// operation (`from_state`). Only a node the operation found schedulable
    /// (`back_to` joined) is uncordoned, and only if this platform cordoned it.
    Cancel {
        back_to: MachineState,
    },
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

    /// Whether the step can be undone: a cordon can be lifted and a drain
    /// stopped (evicted pods are rescheduled elsewhere anyway), but a Talos
    /// reboot, shutdown or reset, or the node's and link's removal, cannot.
    pub fn is_reversible(self) -> bool {
        matches!(
            self,
            Effect::CordonNode | Effect::UncordonIfOurs | Effect::DrainNode
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
        MachineEvent::Cancel { .. } => "have its operation cancelled",
    }
}

/// Why an operation at `step` of `plan` (the step running, or about to)
/// can no longer be cancelled: the first irreversible step begun so far.
/// `None`: every step begun is reversible, so a cancel is honoured. A plan
/// whose steps are all done is finishing and cannot be cancelled either
/// (its last step is returned).
pub fn cancel_blocker(plan: &[Effect], step: usize) -> Option<Effect> {
    if step >= plan.len() {
        return plan.last().copied();
    }
    plan.iter()
        .take(step + 1)
        .copied()
        .find(|e| !e.is_reversible())
}

/// What a machine is doing once `blocker` has begun, for messages such as
/// "machine `w1` is already rebooting".
pub fn doing(blocker: Effect) -> &'static str {
    match blocker {
        Effect::TalosReboot | Effect::WaitNodeReady => "rebooting",
        Effect::TalosShutdown => "shutting down",
        Effect::TalosReset | Effect::WaitMaintenance => "being reset",
        Effect::DeleteNode | Effect::RemoveLink | Effect::RevokeIdentity => {
            "being removed from the cluster"
        }
        Effect::CordonNode | Effect::UncordonIfOurs | Effect::DrainNode => "finishing",
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
        // Cancelled before anything irreversible: back where it was. A node
        // that was schedulable before loses the cordon we added; one that
        // was cordoned before stays cordoned.
        (
            S::Draining | S::Rebooting | S::ShuttingDown | S::Decommissioning,
            E::Cancel { back_to: S::Joined },
        )
        | (
            S::Decommissioning,
            E::Cancel {
                back_to: S::Draining,
            },
        ) => (S::Joined, vec![F::UncordonIfOurs]),
        (
            S::Draining | S::Rebooting | S::ShuttingDown | S::Decommissioning,
            E::Cancel {
                back_to: S::Cordoned,
            },
        ) => (S::Cordoned, vec![]),
        (
            S::Rebooting | S::ShuttingDown | S::Decommissioning,
            E::Cancel {
                back_to: S::Claimed,
            },
        ) => (S::Claimed, vec![]),
        (
            S::ShuttingDown | S::Decommissioning,
            E::Cancel {
                back_to: S::Discovered,
            },
        ) => (S::Discovered, vec![]),
        (
            S::Decommissioning,
            E::Cancel {
                back_to: S::PoweredOff,
            },
        ) => (S::PoweredOff, vec![]),
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

    /// `EVENTS` and a cancel back to every state.
    fn all_events() -> Vec<E> {
        let mut v = EVENTS.to_vec();
        v.extend(STATES.map(|back_to| E::Cancel { back_to }));
        v
    }

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
        // Cancels: back to where the operation began; our cordon goes only
        // when the node was schedulable before (a machine that was still
        // draining when a decommission began counts as joined).
        let cancel = |back_to| E::Cancel { back_to };
        for s in [
            S::Draining,
            S::Rebooting,
            S::ShuttingDown,
            S::Decommissioning,
        ] {
            v.push((s, cancel(S::Joined), S::Joined, vec![F::UncordonIfOurs]));
            v.push((s, cancel(S::Cordoned), S::Cordoned, vec![]));
        }
        for s in [S::Rebooting, S::ShuttingDown, S::Decommissioning] {
            v.push((s, cancel(S::Claimed), S::Claimed, vec![]));
        }
        for s in [S::ShuttingDown, S::Decommissioning] {
            v.push((s, cancel(S::Discovered), S::Discovered, vec![]));
        }
        v.push((
            S::Decommissioning,
            cancel(S::PoweredOff),
            S::PoweredOff,
            vec![],
        ));
        v.push((
            S::Decommissioning,
            cancel(S::Draining),
            S::Joined,
            vec![F::UncordonIfOurs],
        ));
        v
    }

    #[test]
    fn every_edge_goes_where_it_should_and_everything_else_is_refused() {
        let allowed = expected();
        let mut checked = 0;
        let events = all_events();
        for s in STATES {
            for e in events.iter().copied() {
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
        assert_eq!(checked, STATES.len() * events.len());
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
        for e in all_events() {
            assert!(on(S::Decommissioned, e).is_err());
            assert!(on(S::NeedsWipe, e).is_err());
        }
        assert!(!is_live(S::Decommissioned) && !is_live(S::NeedsWipe) && is_live(S::Joined));
    }

    #[test]
    fn every_operation_that_can_be_started_can_be_cancelled_back_to_where_it_began() {
        // From every state an operation begins in, a cancel from the state
        // it moves to goes back (a stale `draining` counts as joined).
        for from in STATES {
            for e in EVENTS {
                let Ok((to, plan)) = on(from, e) else {
                    continue;
                };
                if plan.is_empty()
                    || to == from
                    || matches!(e, E::Cordon | E::Uncordon | E::NodeJoined)
                    || matches!(to, S::NeedsWipe | S::Joined | S::Cordoned | S::Claimed)
                {
                    continue;
                }
                let (back, _) = on(to, E::Cancel { back_to: from })
                    .unwrap_or_else(|err| panic!("{from:?} --{e:?}--> {to:?}: {err}"));
                let want = if from == S::Draining { S::Joined } else { from };
                assert_eq!(back, want, "{from:?} --{e:?}--> {to:?} --cancel-->");
            }
        }
        // Settled and gone machines have nothing to cancel.
        for s in [
            S::Joined,
            S::Cordoned,
            S::Claimed,
            S::Decommissioned,
            S::NeedsWipe,
        ] {
            for back_to in STATES {
                assert!(on(s, E::Cancel { back_to }).is_err(), "{s:?}");
            }
        }
        let err = on(S::Joined, E::Cancel { back_to: S::Joined }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a joined machine cannot have its operation cancelled"
        );
    }

    #[test]
    fn a_cancel_is_possible_only_until_an_irreversible_step_begins() {
        let (_, reboot) = on(S::Joined, E::Reboot { force: false }).unwrap();
        // cordon_node, drain_node: reversible.
        assert_eq!(cancel_blocker(&reboot, 0), None);
        assert_eq!(cancel_blocker(&reboot, 1), None);
        // talos_reboot has begun, and everything after it.
        for step in 2..reboot.len() {
            assert_eq!(cancel_blocker(&reboot, step), Some(F::TalosReboot));
        }
        // All done: finishing.
        assert_eq!(
            cancel_blocker(&reboot, reboot.len()),
            Some(F::UncordonIfOurs)
        );
        let (_, forced) = on(S::Joined, E::Reboot { force: true }).unwrap();
        assert_eq!(cancel_blocker(&forced, 0), Some(F::TalosReboot));

        let (_, shutdown) = on(S::Cordoned, E::Shutdown { force: false }).unwrap();
        assert_eq!(cancel_blocker(&shutdown, 1), None);
        assert_eq!(cancel_blocker(&shutdown, 2), Some(F::TalosShutdown));

        let (_, decom) = on(S::Joined, E::Decommission { force: false }).unwrap();
        assert_eq!(cancel_blocker(&decom, 1), None);
        for step in 2..decom.len() {
            assert_eq!(cancel_blocker(&decom, step), Some(F::TalosReset));
        }
        let (_, remove) = on(S::Joined, E::Decommission { force: true }).unwrap();
        assert_eq!(cancel_blocker(&remove, 0), Some(F::DeleteNode));

        let (_, drain) = on(S::Joined, E::Drain).unwrap();
        assert_eq!(cancel_blocker(&drain, 0), None);
        assert_eq!(cancel_blocker(&drain, 1), None);
        assert_eq!(cancel_blocker(&drain, 2), Some(F::DrainNode));
        assert_eq!(cancel_blocker(&[], 0), None);

        for e in Effect::ALL {
            let reversible = matches!(e, F::CordonNode | F::UncordonIfOurs | F::DrainNode);
            assert_eq!(e.is_reversible(), reversible, "{e:?}");
        }
        assert_eq!(doing(F::TalosReboot), "rebooting");
        assert_eq!(doing(F::TalosShutdown), "shutting down");
        assert_eq!(doing(F::TalosReset), "being reset");
        assert_eq!(doing(F::DeleteNode), "being removed from the cluster");
    }
}
