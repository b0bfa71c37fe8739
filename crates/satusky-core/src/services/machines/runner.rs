//! The operation runner: carries out a machine operation's plan step by
//! step through the ports, recording progress after every step so that a
//! restarted control plane resumes where it stopped.
//!
//! One replica at a time: a runner holds the store lease
//! `machine-op/<machine id>` (holder: this replica, the operation and the
//! run) while it runs, renews it every third of its term, stops as soon as
//! it loses it, and releases it at the end. Every replica looks for running
//! operations twice per lease term and takes over those whose lease expired
//! (their replica stopped, or restarted under a new replica id).
//!
//! What a step began but could not record yet (the boot id a reboot started
//! from) is kept beside the operation in its JSON (key `runner`), so that a
//! resumed `talos_reboot` does not reboot the machine a second time.
//!
//! A cancel is a flag on the stored operation (`cancel_requested`), so the
//! runner sees it whichever replica took the request: it looks before every
//! step and, during a drain, every `machine_poll_interval`, dropping the
//! port's drain call (it stops at once). It then ends the operation
//! `cancelled`, removes only a cordon it added, and puts the machine back
//! where the operation began (`MachineEvent::Cancel`). The API accepts a cancel only until an
//! irreversible step begins, and such a step begins only after the runner
//! re-read the operation, so a cancel the API accepted is always honoured.

use std::time::Duration;

use chrono::{DateTime, Utc};
use satusky_types::ErrorCode;
use satusky_types::machines::{DrainReport, MachineOperation, MachineState};
use satusky_types::orgs::Outcome;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{
    CANCELLED, COMPLETED, FAILED, OpKind, RUNNING, bounded, operation_json, ops_message,
    running_operation, talos_target,
};
use crate::fleet::ports::{ApiMode, DrainOptions, NodeStatus, OpsError, ResetOptions};
use crate::machines::{self as lifecycle, Effect, MachineEvent as Ev, MachineRecord};
use crate::pagination::PageRequest;
use crate::services::Services;
use crate::{Error, Result};

/// How long past its own timeout a drain may take to answer.
const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// How long a node may still look Ready after Talos accepted a reboot: the
/// kubelet stops with the pods, and the node lifecycle controller marks a
/// silent node NotReady only after its grace period (40–50 s). Capped by
/// the node-ready timeout.
const REBOOT_GRACE: Duration = Duration::from_secs(90);

/// Key of the runner's own state in an operation's JSON.
const STATE_KEY: &str = "runner";

/// What the runner keeps beside an operation's wire fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct RunnerState {
    /// Written just before the reboot call; read by `wait_node_ready` and
    /// by a resumed `talos_reboot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reboot: Option<RebootMark>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RebootMark {
    /// The node's boot id before the reboot (`None`: it reported none).
    boot_id: Option<String>,
    /// When the reboot was about to be asked for.
    requested_at: DateTime<Utc>,
    /// The node has been seen NotReady (or gone) since.
    #[serde(default)]
    seen_down: bool,
}

fn runner_state(m: &MachineRecord) -> RunnerState {
    m.operation
        .as_ref()
        .and_then(|v| v.get(STATE_KEY))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The operation's JSON, keeping the runner state the record holds (the
/// caller checked that the record's operation is `op`).
fn op_json(r: &MachineRecord, op: &MachineOperation) -> Result<serde_json::Value> {
    let mut v = operation_json(op)?;
    if let (Some(obj), Some(state)) = (
        v.as_object_mut(),
        r.operation.as_ref().and_then(|o| o.get(STATE_KEY)),
    ) {
        obj.insert(STATE_KEY.to_owned(), state.clone());
    }
    Ok(v)
}

fn superseded() -> Error {
    Error::new(ErrorCode::Conflict, "superseded")
}

fn lease_name(machine_id: &str) -> String {
    format!("machine-op/{machine_id}")
}

/// Whether the node has booted again since `mark`, as far as `s` shows.
fn booted_again(mark: &RebootMark, s: &NodeStatus) -> bool {
    matches!((&mark.boot_id, &s.boot_id), (Some(before), Some(now)) if before != now)
}

/// What a finished step changes on the record.
#[derive(Debug, Default)]
struct StepChange {
    cordoned_by_us: Option<bool>,
    /// The node is gone: forget its name.
    node_deleted: bool,
    connected: Option<bool>,
    drain: Option<DrainReport>,
    detail: String,
}

impl StepChange {
    fn detail(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            ..Self::default()
        }
    }
}

#[derive(Debug)]
struct StepFailure {
    message: String,
    drain: Option<DrainReport>,
}

impl StepFailure {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            drain: None,
        }
    }
}

fn describe_drain(report: &DrainReport) -> String {
    let mut msg = format!(
        "drain {}: {} pod(s) evicted, {} remaining",
        report.phase, report.evicted, report.remaining
    );
    if !report.blockers.is_empty() {
        let blockers: Vec<String> = report
            .blockers
            .iter()
            .map(|b| format!("{}/{} ({})", b.namespace, b.pod, b.reason))
            .collect();
        msg.push_str("; blocked by ");
        msg.push_str(&blockers.join(", "));
    }
    msg
}

impl Services {
    /// Runs a just-started operation in a task, once this replica holds its
    /// machine's lease (at once, unless another replica still runs the
    /// operation this one superseded).
    pub(super) fn spawn_operation(&self, machine_id: String, op_id: String) {
        let services = self.clone();
        tokio::spawn(async move {
            let holder = services.runner_holder(&op_id);
            if services.wait_for_lease(&machine_id, &op_id, &holder).await {
                services.run_leased(&machine_id, &op_id, &holder).await;
            }
        });
    }

    /// Continues every operation that was running when the control plane
    /// stopped, from the step after the last one recorded as done, and keeps
    /// looking: an operation whose lease another live replica holds is left
    /// to it, and taken over here once that lease expires (the replica
    /// stopped; a lease the previous process of this replica held also
    /// expires first, within one term). Returns how many it resumed now.
    /// Call once at startup.
    pub async fn resume_machine_operations(&self) -> Result<usize> {
        let resumed = self.sweep_machine_operations("after a restart").await?;
        let services = self.clone();
        tokio::spawn(async move {
            loop {
                // Twice per lease term: a dead replica's operations (or a
                // restarted one's, whose old id no longer renews) resume
                // within one and a half terms.
                tokio::time::sleep(services.inner.config.machine_op_lease_ttl / 2).await;
                let swept = services
                    .sweep_machine_operations(
                        "here: the replica that ran it stopped renewing its lease",
                    )
                    .await;
                if let Err(e) = swept {
                    tracing::warn!(error = %e, "could not look for machine operations to take over");
                }
            }
        });
        Ok(resumed)
    }

    /// Runs every running operation whose lease is free or expired; returns
    /// how many.
    async fn sweep_machine_operations(&self, why: &str) -> Result<usize> {
        let store = &self.inner.store;
        let mut page = PageRequest::first(500);
        let mut resumed = 0;
        let mut elsewhere = 0;
        loop {
            let rows = store.list_all_machines(&page).await?;
            let more = rows.len() > 500;
            for m in rows.iter().take(500) {
                let Some(op) = running_operation(m) else {
                    continue;
                };
                let holder = self.runner_holder(&op.id);
                match self.take_lease(&m.id, &holder).await {
                    Ok(true) => {
                        self.resumed_event(m, &op, why).await;
                        resumed += 1;
                        let services = self.clone();
                        let machine_id = m.id.clone();
                        tokio::spawn(async move {
                            services.run_leased(&machine_id, &op.id, &holder).await;
                        });
                    }
                    Ok(false) => elsewhere += 1,
                    Err(e) => {
                        tracing::warn!(machine.id = %m.id, error = %e, "could not take a machine-operation lease");
                    }
                }
            }
            match (more, rows.get(499)) {
                (true, Some(last)) => page.after = Some(last.id.clone()),
                _ => break,
            }
        }
        if resumed > 0 {
            tracing::info!(
                count = resumed,
                held_elsewhere = elsewhere,
                "resumed machine operations"
            );
        }
        Ok(resumed)
    }

    async fn resumed_event(&self, m: &MachineRecord, op: &MachineOperation, why: &str) {
        let step = op
            .plan
            .get(op.step as usize)
            .cloned()
            .unwrap_or_else(|| "finish".to_owned());
        self.machine_event(
            &m.id,
            "operation.resumed",
            format!("{} resumed at step {step} {why}", op.kind),
        )
        .await;
    }

    /// The lease holder of one runner of an operation: this replica, the
    /// operation, and the run (two runners never share a lease).
    fn runner_holder(&self, op_id: &str) -> String {
        format!(
            "{} op {op_id} run {}",
            self.inner.config.replica_id,
            crate::ids::new_id()
        )
    }

    fn lease_end(&self) -> DateTime<Utc> {
        let ttl = chrono::Duration::from_std(self.inner.config.machine_op_lease_ttl)
            .unwrap_or(chrono::Duration::seconds(30));
        self.inner.clock.now() + ttl
    }

    /// Takes the machine's operation lease for `holder` if it is free or
    /// expired.
    async fn take_lease(&self, machine_id: &str, holder: &str) -> Result<bool> {
        Ok(self
            .inner
            .store
            .acquire_lease(
                &lease_name(machine_id),
                holder,
                self.inner.clock.now(),
                self.lease_end(),
            )
            .await?)
    }

    /// Renews the lease; false when `holder` lost it (or the store failed:
    /// then it cannot be sure).
    async fn renew_lease(&self, machine_id: &str, holder: &str) -> bool {
        match self
            .inner
            .store
            .renew_lease(&lease_name(machine_id), holder, self.lease_end())
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(machine.id = %machine_id, error = &e as &dyn std::error::Error, "could not renew a machine-operation lease");
                false
            }
        }
    }

    /// Runs the operation while `holder` holds its machine's lease: keeps it
    /// renewed, stops when it is lost or the operation is superseded, and
    /// releases it at the end.
    async fn run_leased(&self, machine_id: &str, op_id: &str, holder: &str) {
        let (lost_tx, lost_rx) = watch::channel(false);
        let keeper = {
            let services = self.clone();
            let (machine_id, op_id, holder) =
                (machine_id.to_owned(), op_id.to_owned(), holder.to_owned());
            tokio::spawn(async move {
                services
                    .keep_lease(&machine_id, &op_id, &holder, lost_tx)
                    .await;
            })
        };
        self.run_operation(machine_id, op_id, holder, lost_rx).await;
        keeper.abort();
        let released = self
            .inner
            .store
            .release_lease(&lease_name(machine_id), holder)
            .await;
        if let Err(e) = released {
            tracing::warn!(machine.id = %machine_id, error = &e as &dyn std::error::Error, "could not release a machine-operation lease (it expires)");
        }
    }

    /// Waits until `holder` holds the lease of a just-started operation;
    /// false when the operation ended (or was superseded) meanwhile. A lease
    /// still held for the operation this one superseded is broken.
    async fn wait_for_lease(&self, machine_id: &str, op_id: &str, holder: &str) -> bool {
        loop {
            match self.inner.store.get_machine(machine_id).await {
                Ok(Some(m)) if running_operation(&m).is_some_and(|o| o.id == op_id) => {}
                Ok(_) => return false,
                Err(e) => {
                    tracing::warn!(machine.id = %machine_id, error = &e as &dyn std::error::Error, "machine operation waits: store unavailable");
                    tokio::time::sleep(self.inner.config.machine_poll_interval).await;
                    continue;
                }
            }
            match self.take_lease(machine_id, holder).await {
                Ok(true) => return true,
                Ok(false) => {
                    let current = self
                        .inner
                        .store
                        .get_lease(&lease_name(machine_id))
                        .await
                        .ok()
                        .flatten();
                    if let Some(l) = current
                        && !l.holder.contains(&format!(" op {op_id} "))
                        && self.break_superseded_lease(machine_id, &l.holder).await
                    {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(machine.id = %machine_id, error = %e, "could not take a machine-operation lease");
                }
            }
            tokio::time::sleep(self.inner.config.machine_poll_interval).await;
        }
    }

    /// Breaks a lease held for an operation that is no longer the
    /// machine's running one (a forced removal superseded it): its runner
    /// stops at its next renewal instead of holding the new operation up.
    async fn break_superseded_lease(&self, machine_id: &str, holder: &str) -> bool {
        match self
            .inner
            .store
            .release_lease(&lease_name(machine_id), holder)
            .await
        {
            Ok(broken) => {
                if broken {
                    tracing::info!(machine.id = %machine_id, holder, "broke the lease of a superseded machine operation");
                }
                broken
            }
            Err(e) => {
                tracing::warn!(machine.id = %machine_id, error = &e as &dyn std::error::Error, "could not break a superseded machine-operation lease");
                false
            }
        }
    }

    /// Renews the lease every third of its term; flags `lost` when it is
    /// lost or the operation is no longer the machine's running one.
    async fn keep_lease(
        &self,
        machine_id: &str,
        op_id: &str,
        holder: &str,
        lost: watch::Sender<bool>,
    ) {
        let every = (self.inner.config.machine_op_lease_ttl / 3).max(Duration::from_millis(1));
        loop {
            tokio::time::sleep(every).await;
            let current = match self.inner.store.get_machine(machine_id).await {
                Ok(m) => m
                    .as_ref()
                    .and_then(running_operation)
                    .is_some_and(|o| o.id == op_id),
                Err(_) => true,
            };
            if !current {
                tracing::info!(machine.id = %machine_id, "machine operation superseded; stopping");
                lost.send_replace(true);
                return;
            }
            if !self.renew_lease(machine_id, holder).await {
                tracing::warn!(machine.id = %machine_id, "machine-operation lease lost; another replica continues");
                lost.send_replace(true);
                return;
            }
        }
    }

    /// Runs the operation's remaining steps in order, recording each, until
    /// it ends or `lost` flips.
    async fn run_operation(
        &self,
        machine_id: &str,
        op_id: &str,
        holder: &str,
        mut lost: watch::Receiver<bool>,
    ) {
        loop {
            if *lost.borrow() {
                return;
            }
            let m = match self.inner.store.get_machine(machine_id).await {
                Ok(Some(m)) => m,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(machine.id = %machine_id, error = &e as &dyn std::error::Error, "machine operation stopped: store unavailable");
                    return;
                }
            };
            let Some(op) = running_operation(&m).filter(|op| op.id == op_id) else {
                return;
            };
            // Before anything else: a cancel accepted while every step
            // begun was reversible wins over the next step.
            if op.cancel_requested {
                if self.renew_lease(machine_id, holder).await {
                    self.cancel_operation(&m, &op).await;
                }
                return;
            }
            let Some(name) = op.plan.get(op.step as usize) else {
                if self.renew_lease(machine_id, holder).await {
                    self.finish_operation(&m, &op).await;
                }
                return;
            };
            let Some(effect) = Effect::parse(name) else {
                let f = StepFailure::new(format!("unknown step `{name}`"));
                if self.renew_lease(machine_id, holder).await {
                    self.fail_operation(&m, &op, None, f).await;
                }
                return;
            };
            let outcome = tokio::select! {
                outcome = self.run_effect(&m, &op, effect) => outcome,
                _ = lost.wait_for(|lost| *lost) => {
                    tracing::info!(machine.id = %machine_id, step = effect.as_str(), "machine operation step abandoned to another replica");
                    return;
                }
                // Only a drain is interrupted: it is the one long step, and
                // stopping it changes nothing (evicted pods are rescheduled
                // anyway). A cordon or uncordon is one short call whose
                // outcome must be recorded (a cordon we added is removed on
                // cancel only if we know of it); the cancel follows it.
                () = self.cancel_asked(machine_id, op_id), if effect == Effect::DrainNode => {
                    tracing::info!(machine.id = %machine_id, step = effect.as_str(), "machine operation cancelled during a step");
                    // The next round reads the request and ends the operation.
                    continue;
                }
            };
            // Record nothing unless this replica still runs the operation.
            if !self.renew_lease(machine_id, holder).await {
                tracing::warn!(machine.id = %machine_id, step = effect.as_str(), "machine-operation lease lost before the step was recorded");
                return;
            }
            let outcome = match outcome {
                Err(f) if op.kind == OpKind::Decommission.as_str() && op.force => {
                    // A forced removal goes on whatever fails: the machine is gone.
                    Ok(StepChange::detail(format!("ignored: {}", f.message)))
                }
                other => other,
            };
            match outcome {
                Ok(change) => {
                    let detail = change.detail.clone();
                    let op_id = op.id.clone();
                    let now = self.inner.clock.now();
                    let saved = self
                        .update_machine_with(machine_id, |r| {
                            let mut cur = running_operation(r)
                                .filter(|o| o.id == op_id)
                                .ok_or_else(superseded)?;
                            cur.step += 1;
                            if let Some(d) = &change.drain {
                                cur.drain = Some(d.clone());
                            }
                            if let Some(c) = change.cordoned_by_us {
                                r.cordoned_by_us = c;
                            }
                            if change.node_deleted {
                                r.node_name = None;
                            }
                            if let Some(c) = change.connected {
                                r.connected = c;
                                r.last_seen_at = Some(now);
                            }
                            r.operation = Some(op_json(r, &cur)?);
                            Ok(())
                        })
                        .await;
                    if let Err(e) = saved {
                        if e.code != ErrorCode::Conflict {
                            tracing::error!(machine.id = %machine_id, error = %e, "could not record an operation step");
                        }
                        return;
                    }
                    self.machine_event(
                        machine_id,
                        "operation.step",
                        format!("{}: {detail}", effect.as_str()),
                    )
                    .await;
                }
                Err(f) => {
                    self.fail_operation(&m, &op, Some(effect), f).await;
                    return;
                }
            }
        }
    }

    /// Returns once the running operation `op_id` has a cancel request,
    /// reading the store every `machine_poll_interval`.
    async fn cancel_asked(&self, machine_id: &str, op_id: &str) {
        loop {
            tokio::time::sleep(self.inner.config.machine_poll_interval).await;
            match self.inner.store.get_machine(machine_id).await {
                Ok(Some(m))
                    if running_operation(&m)
                        .is_some_and(|o| o.id == op_id && o.cancel_requested) =>
                {
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(machine.id = %machine_id, error = &e as &dyn std::error::Error, "could not look for a cancel request");
                }
            }
        }
    }

    async fn run_effect(
        &self,
        m: &MachineRecord,
        op: &MachineOperation,
        effect: Effect,
    ) -> std::result::Result<StepChange, StepFailure> {
        let config = &self.inner.config;
        let node = m.node_name.as_deref();
        if effect.needs_node() && node.is_none() {
            return Ok(StepChange::detail("skipped: the machine has no node"));
        }
        let node = node.unwrap_or_default();
        let node_ops = || {
            config
                .node_ops
                .as_ref()
                .ok_or_else(|| StepFailure::new("node operations are not configured"))
        };
        let talos_ops = || {
            config
                .talos_ops
                .as_ref()
                .ok_or_else(|| StepFailure::new("Talos operations are not configured"))
        };
        let fail =
            |what: &str, e: &OpsError| StepFailure::new(format!("{what}: {}", ops_message(e)));
        let target = talos_target(m);
        match effect {
            Effect::CordonNode => {
                let ops = node_ops()?;
                match bounded(ops.node_status(node))
                    .await
                    .map_err(|e| fail("cordon", &e))?
                {
                    None => Ok(StepChange::detail(format!("node {node} is gone"))),
                    Some(s) if s.unschedulable => Ok(StepChange::detail(format!(
                        "node {node} was already cordoned"
                    ))),
                    Some(_) => {
                        bounded(ops.cordon(node, true))
                            .await
                            .map_err(|e| fail("cordon", &e))?;
                        Ok(StepChange {
                            cordoned_by_us: Some(true),
                            ..StepChange::detail(format!("node {node} cordoned"))
                        })
                    }
                }
            }
            Effect::UncordonIfOurs => {
                if !m.cordoned_by_us {
                    return Ok(StepChange::detail(format!(
                        "node {node} left as it is: Satusky did not cordon it"
                    )));
                }
                bounded(node_ops()?.cordon(node, false))
                    .await
                    .map_err(|e| fail("uncordon", &e))?;
                Ok(StepChange {
                    cordoned_by_us: Some(false),
                    ..StepChange::detail(format!("node {node} uncordoned"))
                })
            }
            Effect::DrainNode => self.drain_step(m, op, node).await,
            Effect::TalosReboot => self.reboot_step(m, op).await,
            Effect::TalosShutdown => {
                bounded(talos_ops()?.shutdown(&target))
                    .await
                    .map_err(|e| fail("shutdown", &e))?;
                Ok(StepChange {
                    connected: Some(false),
                    ..StepChange::detail("Talos is shutting the machine down")
                })
            }
            Effect::TalosReset => {
                let talos = talos_ops()?;
                if let Ok(ApiMode::Maintenance) = bounded(talos.api_mode(&target)).await {
                    // Omni's rule: a machine in maintenance mode has no
                    // configuration left to wipe.
                    return Ok(StepChange::detail(
                        "the machine already answers in maintenance mode: nothing to reset",
                    ));
                }
                let control_plane = match (&m.node_name, &config.node_ops) {
                    (Some(node), Some(ops)) => {
                        matches!(bounded(ops.node_status(node)).await, Ok(Some(s)) if s.control_plane)
                    }
                    _ => false,
                };
                // Graceful always: Talos drains, stops the pods and, on a
                // control-plane node, removes its etcd member before wiping
                // (a wiped member left in etcd costs the cluster quorum).
                let opts = ResetOptions {
                    graceful: true,
                    wipe_user_disks: op.wipe_user_disks,
                };
                bounded(talos.reset(&target, opts)).await.map_err(|e| {
                    fail(
                        "reset (decommission with force to remove it anyway; it will then need an out-of-band wipe)",
                        &e,
                    )
                })?;
                let disks = if op.wipe_user_disks {
                    "user disks included"
                } else {
                    "user disks kept"
                };
                Ok(StepChange::detail(if control_plane {
                    format!(
                        "Talos is resetting the control-plane machine gracefully: it leaves etcd, then wipes ({disks})"
                    )
                } else {
                    format!("Talos is resetting the machine gracefully ({disks})")
                }))
            }
            Effect::WaitNodeReady => self.wait_ready_step(m, op, node).await,
            Effect::WaitMaintenance => self.wait_maintenance_step(m).await,
            Effect::DeleteNode => {
                let ops = node_ops()?;
                let control_plane = op.force
                    && matches!(bounded(ops.node_status(node)).await, Ok(Some(s)) if s.control_plane);
                bounded(ops.delete_node(node))
                    .await
                    .map_err(|e| fail("delete node", &e))?;
                if control_plane {
                    self.machine_event(
                        &m.id,
                        "machine.etcd_member_left",
                        format!(
                            "node {node} was a control-plane node removed without a reset: its etcd member is still in the cluster; remove it (talosctl etcd remove-member) before the cluster loses quorum"
                        ),
                    )
                    .await;
                }
                Ok(StepChange {
                    cordoned_by_us: Some(false),
                    node_deleted: true,
                    ..StepChange::detail(format!("node {node} deleted"))
                })
            }
            Effect::RemoveLink => {
                if let Some(ops) = &config.talos_ops {
                    bounded(ops.remove_link(&target))
                        .await
                        .map_err(|e| fail("remove link", &e))?;
                }
                Ok(StepChange {
                    connected: Some(false),
                    ..StepChange::detail("SideroLink peer removed")
                })
            }
            Effect::RevokeIdentity => Ok(StepChange::detail(
                "identity revoked: the machine is refused until it is wiped",
            )),
        }
    }

    async fn drain_step(
        &self,
        m: &MachineRecord,
        op: &MachineOperation,
        node: &str,
    ) -> std::result::Result<StepChange, StepFailure> {
        let Some(ops) = self.inner.config.node_ops.as_ref() else {
            return Err(StepFailure::new("node operations are not configured"));
        };
        let opts = DrainOptions {
            timeout: Duration::from_secs(u64::from(op.drain_timeout_seconds.max(1))),
            delete_emptydir_data: op.delete_emptydir_data,
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<DrainReport>();
        let progress = move |r: &DrainReport| {
            let _ = tx.send(r.clone());
        };
        // The port bounds the drain; this bounds the port.
        let limit = opts.timeout + DRAIN_GRACE;
        let drain = tokio::time::timeout(limit, ops.drain(node, &opts, &progress));
        tokio::pin!(drain);
        let result = loop {
            tokio::select! {
                res = &mut drain => break res,
                Some(report) = rx.recv() => self.drain_progress(m, &op.id, report).await,
            }
        };
        while let Ok(report) = rx.try_recv() {
            self.drain_progress(m, &op.id, report).await;
        }
        let result = result.unwrap_or_else(|_| {
            Err(OpsError::failed(format!(
                "the drain did not return within {}s",
                limit.as_secs()
            )))
        });
        match result {
            Ok(report) if report.phase == COMPLETED => Ok(StepChange {
                drain: Some(report.clone()),
                ..StepChange::detail(describe_drain(&report))
            }),
            Ok(report) => Err(StepFailure {
                message: describe_drain(&report),
                drain: Some(report),
            }),
            Err(e) => Err(StepFailure::new(format!("drain: {}", ops_message(&e)))),
        }
    }

    async fn drain_progress(&self, m: &MachineRecord, op_id: &str, report: DrainReport) {
        self.machine_event(&m.id, "drain.progress", describe_drain(&report))
            .await;
        let saved = self
            .update_machine_with(&m.id, |r| {
                let mut cur = running_operation(r)
                    .filter(|o| o.id == op_id)
                    .ok_or_else(superseded)?;
                cur.drain = Some(report.clone());
                r.operation = Some(op_json(r, &cur)?);
                Ok(())
            })
            .await;
        if let Err(e) = saved
            && e.code != ErrorCode::Conflict
        {
            tracing::warn!(machine.id = %m.id, error = %e, "could not record drain progress");
        }
    }

    /// Stores what `f` changes in the runner state of the running
    /// operation `op_id`.
    async fn save_runner_state(
        &self,
        machine_id: &str,
        op_id: &str,
        f: impl Fn(&mut RunnerState) + Send + Sync,
    ) -> Result<()> {
        self.update_machine_with(machine_id, |r| {
            running_operation(r)
                .filter(|o| o.id == op_id)
                .ok_or_else(superseded)?;
            let mut state = runner_state(r);
            f(&mut state);
            let state = serde_json::to_value(&state).map_err(Error::internal)?;
            r.operation
                .as_mut()
                .and_then(serde_json::Value::as_object_mut)
                .ok_or_else(superseded)?
                .insert(STATE_KEY.to_owned(), state);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Reboots the machine, first recording the node's boot id so that
    /// `wait_node_ready` knows the reboot happened, and so that a resumed
    /// step does not reboot a second time when the first one is under way.
    async fn reboot_step(
        &self,
        m: &MachineRecord,
        op: &MachineOperation,
    ) -> std::result::Result<StepChange, StepFailure> {
        let config = &self.inner.config;
        let Some(talos) = config.talos_ops.as_ref() else {
            return Err(StepFailure::new("Talos operations are not configured"));
        };
        let node = m.node_name.as_deref();
        if let (Some(node), Some(mark)) = (node, runner_state(m).reboot)
            && let Some(how) = self.reboot_under_way(node, &mark).await
        {
            return Ok(StepChange::detail(format!(
                "the reboot asked for before the control plane restarted is under way: {how}"
            )));
        }
        if let Some(node) = node {
            let boot_id = match config.node_ops.as_ref() {
                Some(ops) => match bounded(ops.node_status(node)).await {
                    Ok(Some(s)) => s.boot_id,
                    _ => None,
                },
                None => None,
            };
            let mark = RebootMark {
                boot_id,
                requested_at: self.inner.clock.now(),
                seen_down: false,
            };
            self.save_runner_state(&m.id, &op.id, |s| s.reboot = Some(mark.clone()))
                .await
                .map_err(|e| StepFailure::new(format!("reboot: could not record it: {e}")))?;
        }
        bounded(talos.reboot(&talos_target(m)))
            .await
            .map_err(|e| StepFailure::new(format!("reboot: {}", ops_message(&e))))?;
        Ok(StepChange::detail("Talos is rebooting the machine"))
    }

    /// For a resumed `talos_reboot` whose call may have happened: how the
    /// node shows that it did (booted again, or down), watching it for as
    /// long as it may take to go down; `None`: it did not happen.
    async fn reboot_under_way(&self, node: &str, mark: &RebootMark) -> Option<String> {
        let config = &self.inner.config;
        let ops = config.node_ops.as_ref()?;
        if mark.seen_down {
            return Some(format!("node {node} was seen NotReady"));
        }
        let grace = config.node_ready_timeout.min(REBOOT_GRACE);
        let watch_until = tokio::time::Instant::now() + grace;
        let grace_end = mark.requested_at
            + chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::seconds(90));
        loop {
            match bounded(ops.node_status(node)).await {
                Ok(None) => return Some(format!("node {node} is gone")),
                Ok(Some(s)) if booted_again(mark, &s) => {
                    return Some(format!("node {node} booted again"));
                }
                Ok(Some(s)) if !s.ready => return Some(format!("node {node} is NotReady")),
                Ok(Some(_)) => {}
                Err(e) => {
                    tracing::debug!(k8s.node = node, error = %ops_message(&e), "node status unavailable");
                }
            }
            if self.inner.clock.now() >= grace_end || tokio::time::Instant::now() >= watch_until {
                return None;
            }
            tokio::time::sleep(config.machine_poll_interval).await;
        }
    }

    /// Waits until the node is Ready again *after* the reboot: with another
    /// boot id than before it, or, when the kubelet reports none, after
    /// having been seen NotReady. A node still Ready from before the reboot
    /// does not count.
    async fn wait_ready_step(
        &self,
        m: &MachineRecord,
        op: &MachineOperation,
        node: &str,
    ) -> std::result::Result<StepChange, StepFailure> {
        let Some(ops) = self.inner.config.node_ops.as_ref() else {
            return Err(StepFailure::new("node operations are not configured"));
        };
        let config = &self.inner.config;
        let deadline = tokio::time::Instant::now() + config.node_ready_timeout;
        let mark = runner_state(m).reboot;
        let mut seen_down = mark.as_ref().is_some_and(|k| k.seen_down);
        let mut last: Option<NodeStatus> = None;
        loop {
            match bounded(ops.node_status(node)).await {
                Ok(Some(s)) if s.ready => {
                    let back = match &mark {
                        // Recorded by an older version: no way to tell.
                        None => true,
                        // With boot ids, only another one will do: a node
                        // may flap NotReady and back without rebooting.
                        Some(k) if k.boot_id.is_some() && s.boot_id.is_some() => {
                            booted_again(k, &s)
                        }
                        Some(_) => seen_down,
                    };
                    if back {
                        return Ok(StepChange::detail(match &s.boot_id {
                            Some(id) => format!("node {node} is Ready (boot id {id})"),
                            None => format!("node {node} is Ready again"),
                        }));
                    }
                    last = Some(s);
                }
                Ok(s) => {
                    if !seen_down {
                        seen_down = true;
                        let saved = self
                            .save_runner_state(&m.id, &op.id, |st| {
                                if let Some(k) = &mut st.reboot {
                                    k.seen_down = true;
                                }
                            })
                            .await;
                        if let Err(e) = saved {
                            tracing::debug!(machine.id = %m.id, error = %e, "could not record that the node went down");
                        }
                    }
                    last = s;
                }
                Err(e) => {
                    tracing::debug!(k8s.node = node, error = %ops_message(&e), "node status unavailable");
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let why = match (&last, &mark) {
                    (Some(s), Some(k))
                        if s.ready && s.boot_id.is_some() && s.boot_id == k.boot_id =>
                    {
                        format!(
                            "it is still Ready with boot id {} from before the reboot, which did not happen",
                            k.boot_id.as_deref().unwrap_or_default()
                        )
                    }
                    (Some(s), Some(_)) if s.ready && !seen_down => {
                        "it never went NotReady, so the reboot did not happen".to_owned()
                    }
                    _ => "it is not Ready".to_owned(),
                };
                return Err(StepFailure::new(format!(
                    "node {node} did not become Ready after the reboot within {}s: {why}",
                    config.node_ready_timeout.as_secs()
                )));
            }
            tokio::time::sleep(config.machine_poll_interval).await;
        }
    }

    /// Waits (up to `machine_reset_timeout`) until the reset machine answers
    /// in maintenance mode: its configuration, and our identity on it, are
    /// gone. A machine that never does keeps the operation failed; a forced
    /// decommission then removes it as `needs_wipe`.
    async fn wait_maintenance_step(
        &self,
        m: &MachineRecord,
    ) -> std::result::Result<StepChange, StepFailure> {
        let config = &self.inner.config;
        let Some(talos) = config.talos_ops.as_ref() else {
            return Err(StepFailure::new("Talos operations are not configured"));
        };
        let target = talos_target(m);
        let deadline = tokio::time::Instant::now() + config.machine_reset_timeout;
        let mut last = None;
        loop {
            match bounded(talos.api_mode(&target)).await {
                Ok(ApiMode::Maintenance) => {
                    return Ok(StepChange::detail(
                        "the machine answers in maintenance mode: its configuration and our identity on it are gone",
                    ));
                }
                Ok(mode) => last = Some(mode),
                Err(e) => {
                    tracing::debug!(machine.id = %m.id, error = %ops_message(&e), "maintenance probe failed");
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let secs = config.machine_reset_timeout.as_secs();
                let what = if last == Some(ApiMode::Configured) {
                    format!("the machine still answers with our identity {secs}s after the reset")
                } else {
                    format!(
                        "the machine did not come back in maintenance mode within {secs}s of the reset"
                    )
                };
                return Err(StepFailure::new(format!(
                    "{what}; decommission with force to remove it anyway (it will then need an out-of-band wipe)"
                )));
            }
            tokio::time::sleep(config.machine_poll_interval).await;
        }
    }

    /// Whether the node is cordoned right now (false without a node or ports).
    async fn node_cordoned(&self, m: &MachineRecord) -> bool {
        let (Some(node), Some(ops)) = (&m.node_name, &self.inner.config.node_ops) else {
            return false;
        };
        matches!(ops.node_status(node).await, Ok(Some(s)) if s.unschedulable)
    }

    async fn finish_operation(&self, m: &MachineRecord, op: &MachineOperation) {
        let kind = OpKind::parse(&op.kind);
        let finishing = match kind {
            Some(OpKind::Drain) => Some(Ev::DrainSucceeded),
            Some(OpKind::Reboot) => Some(Ev::RebootFinished),
            Some(OpKind::Shutdown) => Some(Ev::ShutdownFinished),
            Some(OpKind::Decommission) if !op.force => Some(Ev::DecommissionFinished),
            _ => None,
        };
        let cordoned = self.node_cordoned(m).await;
        let now = self.inner.clock.now();
        let op_id = op.id.clone();
        let from_state = op.from_state;
        let saved = self
            .update_machine_with(&m.id, |r| {
                let mut cur = running_operation(r)
                    .filter(|o| o.id == op_id)
                    .ok_or_else(superseded)?;
                if let Some(ev) = finishing
                    && let Ok((to, _)) = lifecycle::on(r.state, ev)
                {
                    r.state = to;
                }
                if r.state == MachineState::Joined {
                    if r.node_name.is_none() && kind == Some(OpKind::Reboot) {
                        // A machine without a node goes back to where it was.
                        r.state = from_state;
                    } else if cordoned {
                        // Someone else's cordon stays, and the state says so.
                        r.state = MachineState::Cordoned;
                    }
                }
                COMPLETED.clone_into(&mut cur.phase);
                cur.finished_at = Some(now);
                r.operation = Some(op_json(r, &cur)?);
                Ok(())
            })
            .await;
        match saved {
            Ok(r) => {
                self.machine_event(
                    &r.id,
                    "operation.completed",
                    format!("{} completed; machine is {}", op.kind, r.state.as_str()),
                )
                .await;
            }
            Err(e) if e.code == ErrorCode::Conflict => {}
            Err(e) => {
                tracing::error!(machine.id = %m.id, error = %e, "could not record a finished operation");
            }
        }
    }

    /// Ends a cancelled operation: removes a cordon it added when the node
    /// was schedulable before, and puts the machine back in the state the
    /// operation began from (`MachineEvent::Cancel`).
    async fn cancel_operation(&self, m: &MachineRecord, op: &MachineOperation) {
        let (to, effects) = lifecycle::on(
            m.state,
            Ev::Cancel {
                back_to: op.from_state,
            },
        )
        .unwrap_or_else(|e| {
            tracing::warn!(machine.id = %m.id, error = %e, "cancelled operation: no cancel edge; the machine goes back to where it began");
            (op.from_state, Vec::new())
        });
        let mut uncordoned = false;
        if effects.contains(&Effect::UncordonIfOurs)
            && m.cordoned_by_us
            && let (Some(node), Some(ops)) = (&m.node_name, &self.inner.config.node_ops)
        {
            match bounded(ops.cordon(node, false)).await {
                Ok(()) => {
                    uncordoned = true;
                    self.machine_event(
                        &m.id,
                        "operation.step",
                        format!("uncordon_if_ours: node {node} uncordoned after the cancel"),
                    )
                    .await;
                }
                Err(e) => {
                    self.machine_event(
                        &m.id,
                        "operation.step",
                        format!(
                            "uncordon_if_ours: could not uncordon node {node}: {}",
                            ops_message(&e)
                        ),
                    )
                    .await;
                }
            }
        }
        let cordoned = to == MachineState::Joined && self.node_cordoned(m).await;
        let now = self.inner.clock.now();
        let op_id = op.id.clone();
        let who = op
            .cancel_requested_by
            .clone()
            .unwrap_or_else(|| "a member".to_owned());
        let at = op
            .plan
            .get(op.step as usize)
            .map_or("the end", String::as_str)
            .to_owned();
        let message = format!("cancelled by {who} at {at}");
        let saved = self
            .update_machine_with(&m.id, |r| {
                let mut cur = running_operation(r)
                    .filter(|o| o.id == op_id)
                    .ok_or_else(superseded)?;
                if uncordoned {
                    r.cordoned_by_us = false;
                }
                // Someone else's cordon stays, and the state says so.
                r.state = if cordoned { MachineState::Cordoned } else { to };
                CANCELLED.clone_into(&mut cur.phase);
                cur.message = Some(message.clone());
                if let Some(d) = &mut cur.drain
                    && d.phase == RUNNING
                {
                    CANCELLED.clone_into(&mut d.phase);
                    d.finished_at = Some(now);
                }
                cur.finished_at = Some(now);
                r.operation = Some(op_json(r, &cur)?);
                Ok(())
            })
            .await;
        match saved {
            Ok(r) => {
                self.machine_event(
                    &r.id,
                    "operation.cancelled",
                    format!(
                        "{} cancelled by {who} at {at}; machine is {}",
                        op.kind,
                        r.state.as_str()
                    ),
                )
                .await;
            }
            Err(e) if e.code == ErrorCode::Conflict => {}
            Err(e) => {
                tracing::error!(machine.id = %m.id, error = %e, "could not record a cancelled operation");
            }
        }
    }

    /// Records a failed operation. After a failed drain, or a failed reboot or
    /// shutdown call, a cordon this platform added is removed (R9) and the
    /// machine goes back to `joined`/`cordoned`; a decommission that could not
    /// reset the machine stays `decommissioning` (force is the way out); a
    /// node that did not come back after a reboot stays `rebooting`.
    async fn fail_operation(
        &self,
        m: &MachineRecord,
        op: &MachineOperation,
        effect: Option<Effect>,
        failure: StepFailure,
    ) {
        let kind = OpKind::parse(&op.kind);
        let recover = matches!(effect, Some(Effect::DrainNode))
            || (matches!(effect, Some(Effect::TalosReboot | Effect::TalosShutdown))
                && matches!(kind, Some(OpKind::Reboot | OpKind::Shutdown)))
            || matches!(kind, Some(OpKind::Cordon | OpKind::Uncordon));
        let mut uncordoned = false;
        if recover
            && m.cordoned_by_us
            && kind != Some(OpKind::Cordon)
            && let (Some(node), Some(ops)) = (&m.node_name, &self.inner.config.node_ops)
        {
            match ops.cordon(node, false).await {
                Ok(()) => {
                    uncordoned = true;
                    self.machine_event(
                        &m.id,
                        "operation.step",
                        format!("uncordon_if_ours: node {node} uncordoned after the failure"),
                    )
                    .await;
                }
                Err(e) => {
                    self.machine_event(
                        &m.id,
                        "operation.step",
                        format!(
                            "uncordon_if_ours: could not uncordon node {node}: {}",
                            ops_message(&e)
                        ),
                    )
                    .await;
                }
            }
        }
        let cordoned = if recover {
            self.node_cordoned(m).await
        } else {
            false
        };
        let now = self.inner.clock.now();
        let op_id = op.id.clone();
        let from_state = op.from_state;
        let message = failure.message.clone();
        let saved = self
            .update_machine_with(&m.id, |r| {
                let mut cur = running_operation(r)
                    .filter(|o| o.id == op_id)
                    .ok_or_else(superseded)?;
                if uncordoned {
                    r.cordoned_by_us = false;
                }
                if recover {
                    r.state = if kind == Some(OpKind::Drain) && r.state == MachineState::Draining {
                        lifecycle::on(r.state, Ev::DrainFailed)
                            .map_or(MachineState::Joined, |(to, _)| to)
                    } else if r.node_name.is_some() {
                        MachineState::Joined
                    } else {
                        from_state
                    };
                    if r.state == MachineState::Joined && cordoned {
                        r.state = MachineState::Cordoned;
                    }
                }
                FAILED.clone_into(&mut cur.phase);
                cur.message = Some(message.clone());
                if let Some(d) = &failure.drain {
                    cur.drain = Some(d.clone());
                }
                cur.finished_at = Some(now);
                r.operation = Some(op_json(r, &cur)?);
                Ok(())
            })
            .await;
        match saved {
            Ok(r) => {
                self.machine_event(
                    &r.id,
                    "operation.failed",
                    format!(
                        "{} failed: {}; machine is {}",
                        op.kind,
                        failure.message,
                        r.state.as_str()
                    ),
                )
                .await;
                self.audit_platform(
                    &r.org_id,
                    &format!("machine.{}", op.kind),
                    &format!("machine:{}", r.name),
                    Outcome::Failure,
                )
                .await;
            }
            Err(e) if e.code == ErrorCode::Conflict => {}
            Err(e) => {
                tracing::error!(machine.id = %m.id, error = %e, "could not record a failed operation");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(ready: bool, boot_id: Option<&str>) -> NodeStatus {
        NodeStatus {
            ready,
            boot_id: boot_id.map(str::to_owned),
            ..NodeStatus::default()
        }
    }

    fn mark(boot_id: Option<&str>) -> RebootMark {
        RebootMark {
            boot_id: boot_id.map(str::to_owned),
            requested_at: DateTime::<Utc>::UNIX_EPOCH,
            seen_down: false,
        }
    }

    #[test]
    fn only_another_boot_id_shows_a_node_booted_again() {
        let before = mark(Some("b1"));
        assert!(!booted_again(&before, &status(true, Some("b1"))));
        assert!(booted_again(&before, &status(true, Some("b2"))));
        assert!(booted_again(&before, &status(false, Some("b2"))));
        // Without boot ids nothing is known: the NotReady rule decides.
        assert!(!booted_again(&before, &status(true, None)));
        assert!(!booted_again(&mark(None), &status(true, Some("b2"))));
    }

    #[test]
    fn the_runner_state_survives_writes_of_the_operation_and_stays_off_the_wire() {
        let op: MachineOperation = serde_json::from_value(serde_json::json!({
            "id": "op-1", "kind": "reboot", "phase": "running",
            "plan": ["talos_reboot", "wait_node_ready"], "step": 0,
            "from_state": "joined", "started_at": "2026-11-21T10:00:00Z",
        }))
        .unwrap();
        let mut json = operation_json(&op).unwrap();
        let state = RunnerState {
            reboot: Some(mark(Some("b1"))),
        };
        json[STATE_KEY] = serde_json::to_value(&state).unwrap();
        let record: MachineRecord = MachineRecord {
            id: "m".to_owned(),
            org_id: "o".to_owned(),
            owner_user_id: None,
            name: "w1".to_owned(),
            uuid: "u".to_owned(),
            fingerprint: "f".to_owned(),
            state: MachineState::Rebooting,
            visibility: satusky_types::machines::Visibility::Organization,
            labels: std::collections::BTreeMap::new(),
            system_labels: std::collections::BTreeMap::new(),
            hardware: satusky_types::machines::Hardware::default(),
            zone: String::new(),
            overlay_address: String::new(),
            talos_endpoint: String::new(),
            connected: true,
            last_seen_at: None,
            node_name: Some("n".to_owned()),
            cordoned_by_us: false,
            operation: Some(json),
            note: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            version: 1,
        };
        assert_eq!(runner_state(&record), state);
        let mut next = op.clone();
        next.step = 1;
        let written = op_json(&record, &next).unwrap();
        assert_eq!(written["step"], 1);
        assert_eq!(written[STATE_KEY], serde_json::to_value(&state).unwrap());
        // The wire DTO reads the operation and ignores the runner's part.
        let dto: MachineOperation = serde_json::from_value(written).unwrap();
        assert_eq!(dto.step, 1);
        // An operation without runner state reads as the empty state.
        let bare = MachineRecord {
            operation: Some(operation_json(&op).unwrap()),
            ..record
        };
        assert_eq!(runner_state(&bare), RunnerState::default());
    }
}
