//! The operation runner: carries out a machine operation's plan step by
//! step through the ports, recording progress after every step so that a
//! restarted control plane resumes where it stopped.

use std::time::Duration;

use satusky_types::ErrorCode;
use satusky_types::machines::{DrainReport, MachineOperation, MachineState};
use satusky_types::orgs::Outcome;

use super::{
    COMPLETED, FAILED, OpKind, bounded, operation_json, ops_message, running_operation,
    talos_target,
};
use crate::fleet::ports::{DrainOptions, OpsError, ResetOptions};
use crate::machines::{self as lifecycle, Effect, MachineEvent as Ev, MachineRecord};
use crate::pagination::PageRequest;
use crate::services::Services;
use crate::{Error, Result};

/// How long past its own timeout a drain may take to answer.
const DRAIN_GRACE: Duration = Duration::from_secs(30);

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
    pub(super) fn spawn_operation(&self, machine_id: String, op_id: String) {
        let services = self.clone();
        tokio::spawn(async move {
            services.run_operation(&machine_id, &op_id).await;
        });
    }

    /// Continues every operation that was running when the control plane
    /// stopped, from the step after the last one recorded as done. Returns
    /// how many it resumed. Call once at startup.
    pub async fn resume_machine_operations(&self) -> Result<usize> {
        let store = &self.inner.store;
        let mut page = PageRequest::first(500);
        let mut resumed = 0;
        loop {
            let rows = store.list_all_machines(&page).await?;
            let more = rows.len() > 500;
            for m in rows.iter().take(500) {
                if let Some(op) = running_operation(m) {
                    let step = op
                        .plan
                        .get(op.step as usize)
                        .cloned()
                        .unwrap_or_else(|| "finish".to_owned());
                    self.machine_event(
                        &m.id,
                        "operation.resumed",
                        format!("{} resumed at step {step} after a restart", op.kind),
                    )
                    .await;
                    self.spawn_operation(m.id.clone(), op.id);
                    resumed += 1;
                }
            }
            match (more, rows.get(499)) {
                (true, Some(last)) => page.after = Some(last.id.clone()),
                _ => break,
            }
        }
        if resumed > 0 {
            tracing::info!(count = resumed, "resumed machine operations");
        }
        Ok(resumed)
    }

    /// Runs the operation's remaining steps in order, recording each.
    async fn run_operation(&self, machine_id: &str, op_id: &str) {
        loop {
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
            let Some(name) = op.plan.get(op.step as usize) else {
                self.finish_operation(&m, &op).await;
                return;
            };
            let Some(effect) = Effect::parse(name) else {
                let f = StepFailure::new(format!("unknown step `{name}`"));
                self.fail_operation(&m, &op, None, f).await;
                return;
            };
            let outcome = self.run_effect(&m, &op, effect).await;
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
                                .ok_or_else(|| Error::new(ErrorCode::Conflict, "superseded"))?;
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
                            r.operation = Some(operation_json(&cur)?);
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
            Effect::TalosReboot => {
                bounded(talos_ops()?.reboot(&target))
                    .await
                    .map_err(|e| fail("reboot", &e))?;
                Ok(StepChange::detail("Talos is rebooting the machine"))
            }
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
                let opts = ResetOptions {
                    graceful: true,
                    wipe_user_disks: op.wipe_user_disks,
                };
                bounded(talos_ops()?.reset(&target, opts)).await.map_err(|e| {
                    fail(
                        "reset (decommission with force to remove it anyway; it will then need an out-of-band wipe)",
                        &e,
                    )
                })?;
                Ok(StepChange::detail(if op.wipe_user_disks {
                    "Talos reset the machine, user disks included"
                } else {
                    "Talos reset the machine (user disks kept)"
                }))
            }
            Effect::WaitNodeReady => self.wait_ready_step(node).await,
            Effect::DeleteNode => {
                bounded(node_ops()?.delete_node(node))
                    .await
                    .map_err(|e| fail("delete node", &e))?;
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
                    .ok_or_else(|| Error::new(ErrorCode::Conflict, "superseded"))?;
                cur.drain = Some(report.clone());
                r.operation = Some(operation_json(&cur)?);
                Ok(())
            })
            .await;
        if let Err(e) = saved
            && e.code != ErrorCode::Conflict
        {
            tracing::warn!(machine.id = %m.id, error = %e, "could not record drain progress");
        }
    }

    async fn wait_ready_step(&self, node: &str) -> std::result::Result<StepChange, StepFailure> {
        let Some(ops) = self.inner.config.node_ops.as_ref() else {
            return Err(StepFailure::new("node operations are not configured"));
        };
        let config = &self.inner.config;
        let deadline = tokio::time::Instant::now() + config.node_ready_timeout;
        // Give the reboot time to take the node down before looking.
        tokio::time::sleep(config.machine_poll_interval).await;
        loop {
            match bounded(ops.node_status(node)).await {
                Ok(Some(s)) if s.ready => {
                    return Ok(StepChange::detail(format!("node {node} is Ready")));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(k8s.node = node, error = %ops_message(&e), "node status unavailable");
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StepFailure::new(format!(
                    "node {node} did not become Ready within {}s",
                    config.node_ready_timeout.as_secs()
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
                    .ok_or_else(|| Error::new(ErrorCode::Conflict, "superseded"))?;
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
                r.operation = Some(operation_json(&cur)?);
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
                    .ok_or_else(|| Error::new(ErrorCode::Conflict, "superseded"))?;
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
                r.operation = Some(operation_json(&cur)?);
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
