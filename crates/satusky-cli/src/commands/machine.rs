//! `1ctl machine`: join tokens, the fleet, labels, operations and telemetry.
//!
//! Every MACHINE argument is resolved the same way, by [`resolve`]: against
//! the machines visible to the organization, an id first, then a name (two
//! machines of that name are reported, never guessed). Requests then name the
//! machine by its id.

use std::io::Write as _;
use std::time::Duration;

use satusky_client::{BulkAction, Client, ClientError, MachineEventStream};
use satusky_types::machines::{
    BulkRequest, BulkResult, CreateJoinTokenRequest, DecommissionRequest, DrainRequest,
    LabelsChange, Machine, MachineEvent, MachineLogLine, MachineLogsQuery, MachineOperation,
    PowerRequest, Visibility,
};
use tokio::time::Instant;

use crate::cli::{
    JoinTokenCommand, LabelsCommand, MachineArgs, MachineCommand, OutputFormat, TargetMachine,
    VisibilityArg, WaitArgs,
};
use crate::commands::app::parse_pairs;
use crate::commands::wait::Progress;
use crate::context::Context;
use crate::error::CliError;
use crate::machine_views::{
    Inspect, LabelView, MachineStatus, blockers, machine_event_line, metrics_line, operation_line,
};
use crate::output::{note, time};
use crate::prompt;

/// How often a waiting command reads the machine besides its events.
const POLL: Duration = Duration::from_secs(2);
/// The server's drain timeout when none is given.
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_mins(5);
/// The prefix the server adds to user labels on the node; accepted and dropped.
const LABEL_PREFIX: &str = "satusky.com/";

/// The machine `reference` names: the visible machine with that id, else
/// the one with that name.
pub async fn resolve(
    client: &Client,
    org: &str,
    reference: &str,
    prefix: &str,
) -> Result<Machine, CliError> {
    let machines = client.list_all_machines(org, None).await?;
    pick(machines, reference, org, prefix)
}

fn pick(
    machines: Vec<Machine>,
    reference: &str,
    org: &str,
    prefix: &str,
) -> Result<Machine, CliError> {
    let reference = reference.trim();
    if reference.is_empty() {
        return Err(CliError::usage("the machine reference is empty"));
    }
    let mut by_name = Vec::new();
    for m in machines {
        if m.id == reference {
            return Ok(m);
        }
        if m.name == reference {
            by_name.push(m);
        }
    }
    match by_name.len() {
        0 => Err(CliError::refused(format!(
            "no machine `{reference}` among those visible to `{org}`"
        ))
        .hint(format!("run `{prefix} machine list` to see them"))),
        1 => Ok(by_name.remove(0)),
        n => {
            let ids: Vec<String> = by_name
                .iter()
                .map(|m| format!("{} (org {})", m.id, m.org))
                .collect();
            Err(CliError::refused(format!(
                "`{reference}` names {n} machines: {}",
                ids.join(", ")
            ))
            .hint("give the machine's id instead of its name"))
        }
    }
}

pub async fn run(ctx: &Context, args: MachineArgs) -> Result<(), CliError> {
    let MachineArgs { org, command } = args;
    let client = ctx.client()?;
    let org = ctx.org(org)?;
    let p = ctx.prefix();
    let org = org.as_str();
    match command {
        MachineCommand::List { selector } => {
            let selector = selector.filter(|s| !s.trim().is_empty());
            let machines = client.list_all_machines(org, selector.as_deref()).await?;
            let empty = match &selector {
                Some(s) => format!("No machine visible to `{org}` matches `{s}`."),
                None => format!(
                    "No machines in `{org}` yet: boot one with a join token (`{p} machine tokens create NAME`), then `{p} machine claim MACHINE`."
                ),
            };
            ctx.printer.list(&machines, &empty)?;
        }
        MachineCommand::Query { selector } => {
            let machines = client.list_all_machines(org, Some(&selector)).await?;
            if ctx.printer.is_table() && !machines.is_empty() {
                note(&format!(
                    "{} machine{} match `{selector}`.",
                    machines.len(),
                    if machines.len() == 1 { "" } else { "s" }
                ));
            }
            ctx.printer
                .list(&machines, &format!("No machine matches `{selector}`."))?;
        }
        MachineCommand::Get { machine } => {
            let m = resolve(&client, org, &machine, &p).await?;
            ctx.printer.one(&m)?;
        }
        MachineCommand::Inspect { machine } => {
            let m = resolve(&client, org, &machine, &p).await?;
            let health = client
                .machine_health(org, &m.id)
                .await
                .map_err(|e| e.to_string());
            ctx.printer.one(&Inspect {
                machine: &m,
                health,
            })?;
        }
        MachineCommand::Status { machine } => {
            let m = resolve(&client, org, &machine, &p).await?;
            let health = client.machine_health(org, &m.id).await?;
            ctx.printer.one(&MachineStatus::new(&m, health))?;
        }
        MachineCommand::Claim { machine } => {
            let m = resolve(&client, org, &machine, &p).await?;
            let m = client.claim_machine(org, &m.id).await?;
            note(&format!(
                "Claimed machine `{}`; it joins Kubernetes next.",
                m.name
            ));
            ctx.printer.one(&m)?;
        }
        MachineCommand::Release { machine } => {
            let m = resolve(&client, org, &machine, &p).await?;
            let m = client.release_machine(org, &m.id).await?;
            note(&format!("Released machine `{}`.", m.name));
            ctx.printer.one(&m)?;
        }
        MachineCommand::Labels(cmd) => labels(ctx, &client, org, cmd).await?,
        MachineCommand::Visibility {
            machine,
            visibility,
        } => {
            let m = resolve(&client, org, &machine, &p).await?;
            let v = match visibility {
                VisibilityArg::Owner => Visibility::Owner,
                VisibilityArg::Organization => Visibility::Organization,
                VisibilityArg::Public => Visibility::Public,
            };
            let m = client.set_machine_visibility(org, &m.id, v).await?;
            note(&format!(
                "Machine `{}` is now visible to: {}.",
                m.name,
                m.visibility.as_str()
            ));
            ctx.printer.one(&m)?;
        }
        MachineCommand::Cordon(target) => {
            simple_op(ctx, &client, org, target, BulkAction::Cordon).await?;
        }
        MachineCommand::Uncordon(target) => {
            simple_op(ctx, &client, org, target, BulkAction::Uncordon).await?;
        }
        MachineCommand::Drain {
            target,
            timeout,
            delete_emptydir_data,
            wait,
        } => {
            let drain = DrainRequest {
                timeout_seconds: timeout.map(|t| u32::try_from(t.as_secs()).unwrap_or(u32::MAX)),
                delete_emptydir_data,
            };
            match (target.machine, target.selector) {
                (_, Some(selector)) => {
                    if wait.wait {
                        return Err(CliError::usage(
                            "--wait follows one machine, not a --selector",
                        )
                        .hint(format!("follow each with `{p} machine status MACHINE`")));
                    }
                    let body = BulkRequest {
                        selector,
                        drain,
                        ..BulkRequest::default()
                    };
                    bulk(ctx, &client, org, BulkAction::Drain, &body).await?;
                }
                (Some(machine), None) => {
                    // Waiting never gives up before the drain's own timeout does.
                    let wait = WaitArgs {
                        wait: wait.wait,
                        wait_timeout: wait
                            .wait_timeout
                            .max(timeout.unwrap_or(DEFAULT_DRAIN_TIMEOUT) + Duration::from_mins(1)),
                    };
                    let m = resolve(&client, org, &machine, &p).await?;
                    let from = start_seq(&client, org, &m, &wait).await?;
                    let started = client.drain_machine(org, &m.id, &drain).await?;
                    operation_started(ctx, &client, org, &started, from, &wait, &p).await?;
                }
                (None, None) => {
                    return Err(CliError::usage("which machine? give MACHINE or --selector"));
                }
            }
        }
        MachineCommand::Reboot {
            machine,
            force,
            wait,
        } => {
            let m = resolve(&client, org, &machine, &p).await?;
            let from = start_seq(&client, org, &m, &wait).await?;
            let started = client
                .reboot_machine(org, &m.id, &PowerRequest { force })
                .await?;
            operation_started(ctx, &client, org, &started, from, &wait, &p).await?;
        }
        MachineCommand::Shutdown {
            machine,
            force,
            wait,
        } => {
            let m = resolve(&client, org, &machine, &p).await?;
            let from = start_seq(&client, org, &m, &wait).await?;
            let started = client
                .shutdown_machine(org, &m.id, &PowerRequest { force })
                .await?;
            operation_started(ctx, &client, org, &started, from, &wait, &p).await?;
        }
        MachineCommand::Decommission {
            machine,
            force,
            wipe_user_disks,
            yes,
            wait,
        } => {
            let m = resolve(&client, org, &machine, &p).await?;
            confirm_decommission(&m, wipe_user_disks, yes)?;
            let from = start_seq(&client, org, &m, &wait).await?;
            let started = client
                .decommission_machine(
                    org,
                    &m.id,
                    &DecommissionRequest {
                        force,
                        wipe_user_disks,
                    },
                )
                .await?;
            operation_started(ctx, &client, org, &started, from, &wait, &p).await?;
        }
        MachineCommand::Cancel {
            target,
            wait,
            wait_timeout,
        } => {
            let wait = WaitArgs { wait, wait_timeout };
            cancel(ctx, &client, org, target, &wait).await?;
        }
        MachineCommand::Metrics {
            machine,
            watch,
            history,
            since,
        } => {
            let m = resolve(&client, org, &machine, &p).await?;
            if watch {
                watch_metrics(ctx, &client, org, &m).await?;
            } else if history {
                let samples = client
                    .all_machine_metrics_history(org, &m.id, since.map(|d| d.as_secs()))
                    .await?;
                ctx.printer.list(
                    &samples,
                    &format!(
                        "No samples of `{}` yet: the control plane samples joined machines every few seconds.",
                        m.name
                    ),
                )?;
            } else {
                let sample = client.machine_metrics(org, &m.id).await?;
                ctx.printer.one(&sample)?;
            }
        }
        MachineCommand::Logs {
            machine,
            service,
            kernel,
            tail,
            follow,
        } => {
            let m = resolve(&client, org, &machine, &p).await?;
            let query = MachineLogsQuery {
                source: Some(if kernel { "kernel".to_owned() } else { service }),
                tail: Some(tail),
            };
            if follow {
                follow_logs(ctx, &client, org, &m, &query).await?;
            } else {
                let page = client.machine_logs(org, &m.id, &query).await?;
                print_log_lines(ctx, &page.items)?;
            }
        }
        MachineCommand::Usage { machine, since } => {
            crate::commands::machine_usage::run(ctx, &client, org, machine, since).await?;
        }
        MachineCommand::Events {
            machine,
            follow,
            from,
        } => {
            let m = resolve(&client, org, &machine, &p).await?;
            if follow {
                follow_events(ctx, &client, org, &m, from).await?;
            } else {
                let events = client.list_all_machine_events(org, &m.id, from).await?;
                ctx.printer
                    .list(&events, &format!("No events of `{}` after {from}.", m.name))?;
            }
        }
        MachineCommand::Tokens(cmd) => tokens(ctx, &client, org, cmd).await?,
    }
    Ok(())
}

async fn labels(
    ctx: &Context,
    client: &Client,
    org: &str,
    cmd: LabelsCommand,
) -> Result<(), CliError> {
    let p = ctx.prefix();
    match cmd {
        LabelsCommand::List { machine } => {
            let m = resolve(client, org, &machine, &p).await?;
            let mut rows: Vec<LabelView> = m
                .labels
                .iter()
                .map(|(k, v)| LabelView {
                    key: k.clone(),
                    value: v.clone(),
                    kind: "user",
                })
                .collect();
            rows.extend(m.system_labels.iter().map(|(k, v)| LabelView {
                key: k.clone(),
                value: v.clone(),
                kind: "system",
            }));
            ctx.printer
                .list(&rows, &format!("Machine `{}` has no labels.", m.name))?;
        }
        LabelsCommand::Set { selector, args } => {
            let (machine, pairs) = if selector.is_some() {
                (None, args)
            } else {
                let mut args = args.into_iter();
                let machine = args.next();
                (machine, args.collect::<Vec<_>>())
            };
            if pairs.is_empty() {
                return Err(CliError::usage("no KEY=VALUE given")
                    .hint("e.g. `1ctl machine labels set MACHINE pool=gpu`"));
            }
            let set = parse_pairs(&pairs, "label")?
                .into_iter()
                .map(|(k, v)| (strip_prefix(&k), v))
                .collect();
            let change = LabelsChange {
                set,
                unset: Vec::new(),
            };
            match (machine, selector) {
                (_, Some(selector)) => {
                    let body = BulkRequest {
                        selector,
                        labels: change,
                        ..BulkRequest::default()
                    };
                    bulk(ctx, client, org, BulkAction::Labels, &body).await?;
                }
                (Some(machine), None) => {
                    let m = resolve(client, org, &machine, &p).await?;
                    let m = client.change_machine_labels(org, &m.id, &change).await?;
                    note(&format!("Labels of `{}` set.", m.name));
                    ctx.printer.one(&m)?;
                }
                (None, None) => {
                    return Err(CliError::usage("which machine? give MACHINE or --selector"));
                }
            }
        }
        LabelsCommand::Unset { machine, keys } => {
            let m = resolve(client, org, &machine, &p).await?;
            let change = LabelsChange {
                set: std::collections::BTreeMap::new(),
                unset: keys.iter().map(|k| strip_prefix(k)).collect(),
            };
            let m = client.change_machine_labels(org, &m.id, &change).await?;
            note(&format!("Labels of `{}` removed.", m.name));
            ctx.printer.one(&m)?;
        }
    }
    Ok(())
}

fn strip_prefix(key: &str) -> String {
    key.strip_prefix(LABEL_PREFIX).unwrap_or(key).to_owned()
}

/// Cordon or uncordon one machine, or every machine a selector matches.
async fn simple_op(
    ctx: &Context,
    client: &Client,
    org: &str,
    target: TargetMachine,
    action: BulkAction,
) -> Result<(), CliError> {
    match (target.machine, target.selector) {
        (_, Some(selector)) => {
            let body = BulkRequest {
                selector,
                ..BulkRequest::default()
            };
            bulk(ctx, client, org, action, &body).await
        }
        (Some(machine), None) => {
            let m = resolve(client, org, &machine, &ctx.prefix()).await?;
            let m = match action {
                BulkAction::Uncordon => client.uncordon_machine(org, &m.id).await?,
                _ => client.cordon_machine(org, &m.id).await?,
            };
            note(&format!("{} `{}`.", past(action), m.name));
            ctx.printer.one(&m)?;
            Ok(())
        }
        (None, None) => Err(CliError::usage("which machine? give MACHINE or --selector")),
    }
}

fn past(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Cordon => "Cordoned",
        BulkAction::Uncordon => "Uncordoned",
        BulkAction::Drain => "Draining",
        BulkAction::Labels => "Labelled",
        BulkAction::Cancel => "Cancelling",
    }
}

/// A bulk action: one row per machine; exit 1 when any failed.
async fn bulk(
    ctx: &Context,
    client: &Client,
    org: &str,
    action: BulkAction,
    body: &BulkRequest,
) -> Result<(), CliError> {
    let result: BulkResult = client.bulk_machines(org, action, body).await?;
    let failed = result.items.iter().filter(|i| !i.ok).count();
    if ctx.printer.is_table() {
        ctx.printer.list(
            &result.items,
            &format!("No operable machine matches `{}`.", result.selector),
        )?;
        if !result.items.is_empty() {
            note(&format!(
                "{}: {} of {} machines matching `{}` done.",
                action.as_str(),
                result.items.len() - failed,
                result.items.len(),
                result.selector
            ));
        }
    } else {
        ctx.printer.data(&result)?;
    }
    if failed > 0 {
        return Err(CliError::refused(format!(
            "{} failed on {failed} of {} machines",
            action.as_str(),
            result.items.len()
        ))
        .hint("the MESSAGE column (or `message` in JSON) says why for each"));
    }
    Ok(())
}

/// Cancels one machine's running operation (with --wait, until it stopped),
/// or that of every machine a selector matches that runs one.
async fn cancel(
    ctx: &Context,
    client: &Client,
    org: &str,
    target: TargetMachine,
    wait: &WaitArgs,
) -> Result<(), CliError> {
    let p = ctx.prefix();
    match (target.machine, target.selector) {
        (_, Some(selector)) => {
            if wait.wait {
                return Err(
                    CliError::usage("--wait follows one machine, not a --selector")
                        .hint(format!("follow each with `{p} machine status MACHINE`")),
                );
            }
            let body = BulkRequest {
                selector,
                ..BulkRequest::default()
            };
            bulk(ctx, client, org, BulkAction::Cancel, &body).await
        }
        (Some(machine), None) => {
            let m = resolve(client, org, &machine, &p).await?;
            let from = start_seq(client, org, &m, wait).await?;
            let asked = client.cancel_machine_operation(org, &m.id).await?;
            let (kind, step) = asked.operation.as_ref().map_or_else(
                || ("operation".to_owned(), "its next step".to_owned()),
                |o| {
                    (
                        o.kind.clone(),
                        o.plan
                            .get(o.step as usize)
                            .map_or_else(|| "its end".to_owned(), Clone::clone),
                    )
                },
            );
            note(&format!(
                "Cancel of the {kind} of `{}` requested at {step}: it stops there and the machine goes back to where it was.",
                asked.name
            ));
            if !wait.wait {
                ctx.printer.one(&asked)?;
                note(&format!(
                    "Follow it with `{p} machine status {0}` or `{p} machine events {0} --follow`.",
                    asked.name
                ));
                return Ok(());
            }
            let done = follow_operation(
                client,
                org,
                &asked,
                from,
                wait.wait_timeout,
                &p,
                Expect::Cancelled,
            )
            .await?;
            ctx.printer.one(&done)?;
            Ok(())
        }
        (None, None) => Err(CliError::usage("which machine? give MACHINE or --selector")),
    }
}

/// The last event before an operation, when it is to be followed.
async fn start_seq(
    client: &Client,
    org: &str,
    m: &Machine,
    wait: &WaitArgs,
) -> Result<u64, CliError> {
    if wait.wait {
        Ok(client.last_machine_event_seq(org, &m.id).await?)
    } else {
        Ok(0)
    }
}

/// Reports an accepted operation; with --wait, follows it to its end.
async fn operation_started(
    ctx: &Context,
    client: &Client,
    org: &str,
    started: &Machine,
    from: u64,
    wait: &WaitArgs,
    prefix: &str,
) -> Result<(), CliError> {
    let kind = started
        .operation
        .as_ref()
        .map_or("operation", |o| o.kind.as_str());
    note(&format!(
        "{kind} of `{}` accepted (state {}).",
        started.name,
        started.state.as_str()
    ));
    if !wait.wait {
        ctx.printer.one(started)?;
        note(&format!(
            "Follow it with `{prefix} machine status {0}` or `{prefix} machine events {0} --follow`.",
            started.name
        ));
        return Ok(());
    }
    let done = follow_operation(
        client,
        org,
        started,
        from,
        wait.wait_timeout,
        prefix,
        Expect::Completed,
    )
    .await?;
    ctx.printer.one(&done)?;
    Ok(())
}

/// What the machine says about operation `id` (or its latest one).
enum OpVerdict {
    Done,
    Failed(String, Vec<String>),
    /// Stopped on request; why.
    Cancelled(String),
    Running(String),
}

/// How a followed operation is meant to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Completed,
    /// A cancel was asked for: it should stop as `cancelled`.
    Cancelled,
}

fn op_verdict(m: &Machine, id: Option<&str>) -> OpVerdict {
    let Some(op) = m
        .operation
        .as_ref()
        .filter(|o| id.is_none_or(|id| o.id == id))
    else {
        return match m.operation.as_ref() {
            // Another operation replaced ours (e.g. a forced decommission).
            Some(other) => OpVerdict::Failed(
                format!("it was superseded by {} ({})", other.kind, other.id),
                Vec::new(),
            ),
            None => OpVerdict::Done,
        };
    };
    match op.phase.as_str() {
        "completed" => OpVerdict::Done,
        "cancelled" => {
            OpVerdict::Cancelled(op.message.clone().unwrap_or_else(|| "cancelled".to_owned()))
        }
        "failed" => OpVerdict::Failed(
            failure(op),
            op.drain.as_ref().map(blockers).unwrap_or_default(),
        ),
        _ => OpVerdict::Running(operation_line(op)),
    }
}

fn failure(op: &MachineOperation) -> String {
    match (&op.message, &op.drain) {
        (Some(m), _) => m.clone(),
        (None, Some(d)) => crate::machine_views::drain_line(d),
        (None, None) => "no reason given".to_owned(),
    }
}

async fn next_event(
    stream: &mut Option<MachineEventStream>,
) -> Option<Result<MachineEvent, ClientError>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Follows the machine's events (and reads it every 2 s) until the
/// operation ends as `expect`ed (the machine is returned), ends otherwise
/// (fails, is cancelled, or completes despite a cancel) or the timeout
/// passes (exit 1 with what blocks it).
async fn follow_operation(
    client: &Client,
    org: &str,
    started: &Machine,
    from: u64,
    timeout: Duration,
    prefix: &str,
    expect: Expect,
) -> Result<Machine, CliError> {
    let op_id = started.operation.as_ref().map(|o| o.id.clone());
    let kind = started
        .operation
        .as_ref()
        .map_or_else(|| "operation".to_owned(), |o| o.kind.clone());
    let name = started.name.clone();
    let deadline = Instant::now() + timeout;
    let mut progress = Progress::new();
    let mut stream = match client.machine_events_stream(org, &started.id, from).await {
        Ok(s) => Some(s),
        Err(e) => {
            progress.line(&format!(
                "no event stream ({e}); polling the machine instead"
            ));
            None
        }
    };
    let mut m = started.clone();
    let result = loop {
        match op_verdict(&m, op_id.as_deref()) {
            OpVerdict::Done if expect == Expect::Cancelled => {
                break Err(CliError::refused(format!(
                    "{kind} of `{name}` completed before the cancel took effect"
                ))
                .hint(format!(
                    "`{prefix} machine events {name}` shows what happened"
                )));
            }
            OpVerdict::Cancelled(_) if expect == Expect::Cancelled => break Ok(()),
            OpVerdict::Done => break Ok(()),
            OpVerdict::Cancelled(why) => {
                break Err(
                    CliError::refused(format!("{kind} of `{name}` was {why}")).hint(format!(
                        "`{prefix} machine events {name}` shows what happened"
                    )),
                );
            }
            OpVerdict::Failed(why, blocked) => {
                let mut e = CliError::refused(format!("{kind} of `{name}` failed: {why}"));
                for b in blocked {
                    e = e.hint(format!("blocked by {b}"));
                }
                break Err(e.hint(format!(
                    "`{prefix} machine events {name}` shows what happened"
                )));
            }
            OpVerdict::Running(text) => progress.status(&format!("{name}: {text}")),
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                let op = m.operation.as_ref().filter(|o| op_id.as_deref().is_none_or(|id| o.id == id));
                let mut e = CliError::refused(format!(
                    "timed out after {} s waiting for {kind} of `{name}`; last seen: {}",
                    timeout.as_secs(),
                    op.map_or_else(|| m.state.as_str().to_owned(), operation_line),
                ));
                if let Some(d) = op.and_then(|o| o.drain.as_ref()) {
                    for b in blockers(d) {
                        e = e.hint(format!("blocked by {b}"));
                    }
                }
                break Err(e.hint(format!("`{prefix} machine status {name}` shows where it is; --wait-timeout waits longer")));
            }
            event = next_event(&mut stream) => match event {
                Some(Ok(e)) => progress.line(&format!("  {}  {}", e.kind, e.message)),
                Some(Err(e)) => {
                    progress.line(&format!("event stream lost ({e}); polling the machine instead"));
                    stream = None;
                }
                None => stream = None,
            },
            () = tokio::time::sleep(POLL) => {}
        }
        m = match client.get_machine(org, &started.id).await {
            Ok(m) => m,
            Err(e) => break Err(e.into()),
        };
    };
    progress.finish();
    if let Some(s) = stream {
        s.close().await;
    }
    result?;
    note(&format!(
        "{kind} of `{name}` {} (state {}).",
        match expect {
            Expect::Completed => "completed",
            Expect::Cancelled => "cancelled",
        },
        m.state.as_str()
    ));
    Ok(m)
}

fn confirm_decommission(m: &Machine, wipe: bool, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !prompt::interactive() {
        return Err(CliError::usage(format!(
            "refusing to decommission machine `{}` without confirmation",
            m.name
        ))
        .hint("pass --yes to decommission it without being asked"));
    }
    note(&format!(
        "Decommissioning `{}` drains it, resets it through Talos and removes it from the cluster{}.",
        m.name,
        if wipe {
            ", wiping its user disks"
        } else {
            "; user disks are kept"
        }
    ));
    let answer = prompt::line(&format!("Type `{}` to confirm: ", m.name))?;
    if answer != m.name {
        return Err(CliError::refused(
            "the confirmation did not match; nothing was done",
        ));
    }
    Ok(())
}

async fn watch_metrics(
    ctx: &Context,
    client: &Client,
    org: &str,
    m: &Machine,
) -> Result<(), CliError> {
    let stream = client.machine_metrics_stream(org, &m.id).await?;
    if ctx.printer.is_table() {
        note(&format!(
            "Streaming samples of `{}` as the control plane takes them; Ctrl-C stops.",
            m.name
        ));
    }
    crate::follow::follow(stream, |sample| {
        Ok(ctx.printer.item(&sample, metrics_line)?)
    })
    .await
}

/// Log lines as text (table), one JSON object per line, or YAML documents.
fn print_log_lines(ctx: &Context, lines: &[MachineLogLine]) -> Result<(), CliError> {
    match ctx.printer.format {
        OutputFormat::Table => {
            let mut out = std::io::stdout().lock();
            for l in lines {
                writeln!(out, "{}", l.line).map_err(anyhow::Error::from)?;
            }
        }
        OutputFormat::Json => {
            for l in lines {
                println!("{}", serde_json::to_string(l).map_err(anyhow::Error::from)?);
            }
        }
        OutputFormat::Yaml => {
            for l in lines {
                print!(
                    "---\n{}",
                    serde_yaml::to_string(l).map_err(anyhow::Error::from)?
                );
            }
        }
    }
    Ok(())
}

async fn follow_logs(
    ctx: &Context,
    client: &Client,
    org: &str,
    m: &Machine,
    query: &MachineLogsQuery,
) -> Result<(), CliError> {
    let stream = client.machine_logs_stream(org, &m.id, query).await?;
    if ctx.printer.is_table() {
        note(&format!(
            "Following the `{}` log of `{}`; Ctrl-C stops.",
            query.source.as_deref().unwrap_or("machined"),
            m.name
        ));
    }
    crate::follow::follow(stream, |line| {
        if line.source == "satusky" {
            // Why the stream stopped: a note on stderr, not a log line.
            note(&line.line);
            Ok(())
        } else {
            print_log_lines(ctx, std::slice::from_ref(&line))
        }
    })
    .await
}

async fn follow_events(
    ctx: &Context,
    client: &Client,
    org: &str,
    m: &Machine,
    from: u64,
) -> Result<(), CliError> {
    let stream = client.machine_events_stream(org, &m.id, from).await?;
    if ctx.printer.is_table() {
        note(&format!("Following events of `{}`; Ctrl-C stops.", m.name));
    }
    crate::follow::follow(stream, |e| Ok(ctx.printer.item(&e, machine_event_line)?)).await
}

async fn tokens(
    ctx: &Context,
    client: &Client,
    org: &str,
    cmd: JoinTokenCommand,
) -> Result<(), CliError> {
    match cmd {
        JoinTokenCommand::Create { name, expires } => {
            let created = client
                .create_join_token(
                    org,
                    &CreateJoinTokenRequest {
                        name,
                        expires_in_hours: expires,
                    },
                )
                .await?;
            if ctx.printer.is_table() {
                let t = &created.join_token;
                note(&format!(
                    "Created join token `{}` ({}) for `{}`, expires {}.",
                    t.name,
                    t.id,
                    t.org,
                    time(&t.expires_at)
                ));
                note(
                    "Copy the token now; it will not be shown again. Boot Talos with the kernel arguments on the second line.",
                );
                println!("{}", created.token);
                println!("{}", created.kernel_args.join(" "));
            } else {
                ctx.printer.data(&created)?;
            }
        }
        JoinTokenCommand::List => {
            let tokens = client.list_all_join_tokens(org).await?;
            ctx.printer.list(
                &tokens,
                &format!(
                    "No join tokens in `{org}` yet: `{} machine tokens create NAME` makes one.",
                    ctx.prefix()
                ),
            )?;
        }
        JoinTokenCommand::Revoke { token } => {
            let t = client.revoke_join_token(org, &token).await?;
            note(&format!(
                "Revoked join token `{}`; machines it admitted stay.",
                t.name
            ));
            ctx.printer.one(&t)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, name: &str, org: &str) -> Machine {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "uuid": "u", "org": org, "state": "joined",
            "visibility": "organization", "labels": {}, "system_labels": {},
            "hardware": {"arch": "amd64", "cpu_cores": 4, "memory_bytes": 1024},
            "zone": "z", "link": {"connected": true, "address": "a"}, "operable": true,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn references_resolve_by_id_then_name_and_report_ambiguity() {
        let fleet = || {
            vec![
                m("mch_1", "node-a", "acme"),
                m("mch_2", "node-b", "acme"),
                m("mch_3", "node-b", "other"),
                m("mch_4", "mch_1", "acme"),
            ]
        };
        assert_eq!(pick(fleet(), "mch_2", "acme", "1ctl").unwrap().id, "mch_2");
        assert_eq!(pick(fleet(), "node-a", "acme", "1ctl").unwrap().id, "mch_1");
        // An id wins over a machine named like it.
        assert_eq!(pick(fleet(), "mch_1", "acme", "1ctl").unwrap().id, "mch_1");
        assert!(pick(fleet(), "node-b", "acme", "1ctl").is_err());
        assert!(pick(fleet(), "nope", "acme", "1ctl").is_err());
    }
}
