//! `1ctl deploy`: one desired state, sent once with an idempotency key; the
//! server makes the release and reconciles it.
//!
//! Each setting comes from the flag when it was given on the command line
//! (asked of clap's `ValueSource`, never by comparing with the default), else
//! from satusky.toml, else it is left out of the request so the app keeps its
//! current value. A first deploy (no release yet) sends the flags' defaults
//! for the port and resources. Sub-objects the API replaces whole
//! (resources, environment, strategy, volumes, autoscaling) are completed
//! from the current release, so one flag never resets its siblings.

use clap::ArgMatches;
use clap::parser::ValueSource;
use satusky_types::ErrorCode;
use satusky_types::apps::{
    AppSpec, Autoscaling, DeployRequest, DisruptionBudget, HealthCheck, Port, Resources, Strategy,
    Volume, VpaMode,
};

use crate::app_views::url;
use crate::cli::{DeployArgs, StrategyArg};
use crate::commands::wait;
use crate::context::Context;
use crate::error::CliError;
use crate::output::note;
use crate::project::{self, Project};

/// Which flags were given on the command line.
pub struct Given<'a>(pub Option<&'a ArgMatches>);

impl Given<'_> {
    pub fn has(&self, id: &str) -> bool {
        self.0
            .is_some_and(|m| m.value_source(id) == Some(ValueSource::CommandLine))
    }
}

pub async fn run(ctx: &Context, args: DeployArgs, given: &Given<'_>) -> Result<(), CliError> {
    let loaded = project::load(args.config.as_deref())?;
    if let Some(l) = &loaded {
        note(&format!("Using {}.", l.path.display()));
    }
    let file = loaded.map(|l| l.project).unwrap_or_default();
    let name = either(given.has("name"), args.name.clone(), file.app.name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            CliError::usage("which app? no --name and no [app].name in satusky.toml")
                .hint("pass --name NAME, or write satusky.toml with `1ctl init`")
        })?;
    // Usage errors before any request.
    build_request(&args, given, &file, None)?;
    let client = ctx.client()?;
    let org = ctx.org(args.org.clone())?;

    let current = match client.get_app(&org, &name).await {
        Ok(app) => match app.current_release {
            Some(n) => Some(client.get_release(&org, &name, n).await?.spec),
            None => None,
        },
        Err(e) if e.code() == Some(ErrorCode::AppNotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let request = build_request(&args, given, &file, current.as_ref())?;
    if args.dry_run {
        return dry_run(ctx, &client, &org, &name, request, current.as_ref()).await;
    }
    let key = args
        .idempotency_key
        .clone()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let from = if args.wait {
        client.last_event_seq(&org, &name).await?
    } else {
        0
    };
    let deployed = client.deploy(&org, &name, &request, Some(&key)).await?;
    if deployed.replayed {
        note(&format!(
            "Idempotency key {key} was used before: this is release {} it made.",
            deployed.release.number
        ));
    } else {
        note(&format!(
            "Deployed {} as release {} of `{name}`.",
            deployed.release.spec.image, deployed.release.number
        ));
    }
    ctx.printer.one(&deployed)?;
    if args.wait {
        wait::rollout(&client, &org, &deployed, from, args.timeout, &ctx.prefix()).await?;
        note(&format!(
            "Release {} of `{name}` is available at {}.",
            deployed.release.number,
            url(&deployed.app)
        ));
    } else {
        note(&format!(
            "Follow it with `{} app status {name}` or `{0} app events {name} --follow`.",
            ctx.prefix()
        ));
    }
    Ok(())
}

/// What `deploy --dry-run` shows: the request that would be sent, and the
/// machines its selector matches with the room each has for its replicas.
/// Nothing is deployed.
#[derive(Debug, serde::Serialize)]
struct DryRun {
    org: String,
    app: String,
    /// The selector in effect: the request's, else the current release's.
    machine_selector: Option<String>,
    request: satusky_types::apps::DeployRequest,
    /// Matching machines (every visible one without a selector), with room.
    placement: satusky_types::machines::PlacementPreview,
}

async fn dry_run(
    ctx: &Context,
    client: &satusky_client::Client,
    org: &str,
    name: &str,
    request: satusky_types::apps::DeployRequest,
    current: Option<&AppSpec>,
) -> Result<(), CliError> {
    let selector = match &request.machine_selector {
        Some(s) => s.clone(),
        None => current.and_then(|c| c.machine_selector.clone()),
    }
    .filter(|s| !s.trim().is_empty());
    // What the release would request: the request's values, else the
    // current release's, else the installation's defaults (server side).
    let resources = request
        .resources
        .clone()
        .or_else(|| current.map(|c| c.resources.clone()))
        .unwrap_or_default();
    let replicas = request
        .replicas
        .or_else(|| current.map(|c| c.replicas))
        .unwrap_or(1);
    let placement = client
        .placement_preview(
            org,
            &satusky_types::machines::PlacementQuery {
                selector: selector.clone(),
                cpu: resources.cpu_request,
                memory: resources.memory_request,
                replicas: Some(replicas.max(1)),
            },
        )
        .await?;
    note(&format!(
        "Dry run: nothing was deployed. Release of `{name}` with image {}.",
        request.image
    ));
    let matched = placement.machines.len();
    match &selector {
        Some(s) => note(&format!(
            "Machine selector `{s}` matches {matched} machine{}.",
            if matched == 1 { "" } else { "s" }
        )),
        None => note("No machine selector: any node of the cluster may run it."),
    }
    if selector.is_some() {
        note(&format!(
            "Room for {} replica{} of {} CPU / {} memory on the matching machines; {} asked: {}.",
            placement.fits,
            if placement.fits == 1 { "" } else { "s" },
            placement.cpu_request,
            placement.memory_request,
            placement.replicas,
            if placement.enough {
                "enough"
            } else {
                "NOT enough; some replicas would stay Pending"
            }
        ));
    }
    if ctx.printer.is_table() {
        ctx.printer.list(&placement.machines, "")?;
    } else {
        ctx.printer.data(&DryRun {
            org: org.to_owned(),
            app: name.to_owned(),
            machine_selector: selector,
            request,
            placement,
        })?;
    }
    Ok(())
}

/// The flag's value when it was given, else the file's.
fn either<T>(flag_given: bool, flag: Option<T>, file: Option<T>) -> Option<T> {
    if flag_given { flag } else { file }
}

/// The flag's value when it was given, else the file's.
fn pick<T>(flag_given: bool, flag: T, file: Option<T>) -> Option<T> {
    if flag_given { Some(flag) } else { file }
}

fn given_str(given: &Given<'_>, id: &str, flag: &str, file: Option<&String>) -> Option<String> {
    pick(given.has(id), flag.to_owned(), file.cloned())
}

/// The request: flag (when given) > satusky.toml > the current release (left
/// out) > on a first deploy, the flags' defaults.
pub fn build_request(
    args: &DeployArgs,
    given: &Given<'_>,
    file: &Project,
    current: Option<&AppSpec>,
) -> Result<DeployRequest, CliError> {
    let first = current.is_none();
    let image = either(
        given.has("image"),
        args.image.clone(),
        file.app.image.clone(),
    )
    .filter(|i| !i.is_empty())
    .ok_or_else(|| {
        CliError::usage("no image to deploy")
            .hint("pass --image IMAGE, or set [app].image in satusky.toml")
    })?;

    let ports = if given.has("ports") {
        Some(args.ports.clone())
    } else if let Some(p) = &file.app.ports {
        Some(p.clone())
    } else if let Some(p) = file.app.port {
        Some(vec![p])
    } else if first {
        Some(args.ports.clone())
    } else {
        None
    };
    let ports = ports.map(|ps| {
        ps.iter()
            .enumerate()
            .map(|(i, &n)| {
                current
                    .and_then(|c| c.ports.iter().find(|p| p.container_port == n))
                    .cloned()
                    .unwrap_or(Port {
                        container_port: n,
                        protocol: "TCP".to_owned(),
                        public: i == 0,
                    })
            })
            .collect()
    });

    let replicas = pick(given.has("replicas"), args.replicas, file.app.replicas);

    let resources = resources(args, given, file, current);

    let env = if file.env.is_empty() && args.env.is_empty() {
        None
    } else {
        let mut env = current.map(|c| c.env.clone()).unwrap_or_default();
        env.extend(file.env.clone());
        env.extend(super::app::parse_pairs(&args.env, "deploy --env")?);
        Some(env)
    };

    let health = if args.no_health_check {
        Some(None)
    } else {
        health(args, given, file, current)?.map(Some)
    };

    let strategy = strategy(args, given, file, current)?;
    let volumes = volumes(args, given, file, current)?;
    let autoscaling = if args.no_hpa {
        Some(None)
    } else {
        autoscaling(args, given, file, current)?.map(Some)
    };
    let vertical_autoscaling = if args.no_vpa {
        Some(None)
    } else {
        vertical_autoscaling(file)?.map(Some)
    };
    let autoscales = match &autoscaling {
        Some(a) => a.is_some(),
        None => current.is_some_and(|c| c.autoscaling.is_some()),
    };
    if vertical_autoscaling == Some(Some(VpaMode::Auto)) && autoscales {
        return Err(CliError::usage(
            "[vpa] mode `auto` cannot be combined with autoscaling ([hpa] or --hpa)",
        )
        .hint("pass --no-hpa to stop autoscaling horizontally"));
    }

    let disruption_budget = if args.no_pdb {
        Some(None)
    } else {
        disruption_budget(args, given, file)?.map(Some)
    };

    let machine_selector = if args.no_machine_selector {
        Some(None)
    } else {
        machine_selector(args, given, file)?.map(Some)
    };

    let zone = if args.no_zone {
        Some(None)
    } else {
        either(given.has("zone"), args.zone.clone(), file.app.zone.clone()).map(Some)
    };

    Ok(DeployRequest {
        image,
        env,
        resources,
        replicas,
        ports,
        health,
        strategy,
        volumes,
        autoscaling,
        vertical_autoscaling,
        machine_selector,
        disruption_budget,
        zone,
        create: true,
        environment: either(
            given.has("environment"),
            args.environment.clone(),
            file.app.environment.clone(),
        ),
    })
}

/// The health check to set, if any.
fn health(
    args: &DeployArgs,
    given: &Given<'_>,
    file: &Project,
    current: Option<&AppSpec>,
) -> Result<Option<HealthCheck>, CliError> {
    Ok(
        match given_str(
            given,
            "health_path",
            args.health_path.as_deref().unwrap_or_default(),
            file.checks.health_path.as_ref(),
        ) {
            Some(path) => {
                if !path.starts_with('/')
                    || path.contains("://")
                    || path.contains(char::is_whitespace)
                {
                    return Err(CliError::usage(format!(
                        "health path `{path}` must start with `/` and hold no whitespace"
                    )));
                }
                let old = current.and_then(|c| c.health.as_ref());
                Some(HealthCheck {
                    path,
                    port: old.and_then(|h| h.port),
                    initial_delay_seconds: old.map_or(0, |h| h.initial_delay_seconds),
                })
            }
            None => None,
        },
    )
}

/// The vertical autoscaling mode of satusky.toml, if any.
fn vertical_autoscaling(file: &Project) -> Result<Option<VpaMode>, CliError> {
    Ok(match (&file.vpa.enabled, &file.vpa.mode) {
        (Some(false), _) => Some(VpaMode::Off),
        (_, Some(mode)) => Some(match mode.to_ascii_lowercase().as_str() {
            "off" => VpaMode::Off,
            "initial" => VpaMode::Initial,
            "auto" => VpaMode::Auto,
            other => {
                return Err(CliError::usage(format!(
                    "satusky.toml: [vpa] mode `{other}` is not off, initial or auto"
                )));
            }
        }),
        _ => None,
    })
}

/// The disruption budget to set, if any.
fn disruption_budget(
    args: &DeployArgs,
    given: &Given<'_>,
    file: &Project,
) -> Result<Option<DisruptionBudget>, CliError> {
    Ok(
        if given.has("pdb_min_available") || given.has("pdb_max_unavailable") {
            Some(DisruptionBudget {
                min_available: args.pdb_min_available.clone(),
                max_unavailable: args.pdb_max_unavailable.clone(),
            })
        } else {
            let min = file
                .pdb
                .min_available
                .clone()
                .map(project::IntOrString::into_string);
            let max = file
                .pdb
                .max_unavailable
                .clone()
                .map(project::IntOrString::into_string);
            if min.is_some() && max.is_some() {
                return Err(CliError::usage(
                    "satusky.toml: [pdb] takes min_available or max_unavailable, not both",
                ));
            }
            if min.is_some() || max.is_some() || file.pdb.enabled == Some(true) {
                Some(DisruptionBudget {
                    min_available: min,
                    max_unavailable: max,
                })
            } else {
                None
            }
        },
    )
}

/// The machine selector to set (`""` removes it too), if any.
fn machine_selector(
    args: &DeployArgs,
    given: &Given<'_>,
    file: &Project,
) -> Result<Option<String>, CliError> {
    Ok(if given.has("machine_selector") {
        args.machine_selector.clone()
    } else if given.has("machine_label")
        || given.has("machine_label_any")
        || given.has("machine_tag")
    {
        legacy_selector(
            &args.machine_label,
            &args.machine_label_any,
            args.machine_tag.as_deref(),
        )
        .map_err(|e| CliError::usage(e).hint("write it as --machine-selector EXPR"))?
    } else if let Some(s) = &file.app.machine_selector {
        Some(s.clone())
    } else {
        legacy_selector(
            &file.app.machine_labels,
            &file.app.machine_label_any,
            file.deploy.machine_tag.as_deref(),
        )
        .map_err(|e| {
            CliError::usage(format!("satusky.toml: {e}"))
                .hint("write it as [app] machine_selector = \"EXPR\"")
        })?
    })
}

fn resources(
    args: &DeployArgs,
    given: &Given<'_>,
    file: &Project,
    current: Option<&AppSpec>,
) -> Option<Resources> {
    let app = &file.app;
    let cpu_request = given_str(
        given,
        "cpu_request",
        &args.cpu_request,
        app.cpu_request.as_ref(),
    );
    let cpu_limit = given_str(given, "cpu_limit", &args.cpu_limit, app.cpu_limit.as_ref());
    let memory = given_str(given, "memory", &args.memory, app.memory.as_ref());
    let memory_limit = given_str(
        given,
        "memory_limit",
        args.memory_limit.as_deref().unwrap_or_default(),
        app.memory_limit.as_ref(),
    )
    .or_else(|| memory.clone());
    if cpu_request.is_none()
        && cpu_limit.is_none()
        && memory.is_none()
        && memory_limit.is_none()
        && current.is_some()
    {
        return None;
    }
    let base = match current {
        Some(c) => c.resources.clone(),
        None => Resources {
            cpu_request: Some(args.cpu_request.clone()),
            cpu_limit: Some(args.cpu_limit.clone()),
            memory_request: Some(args.memory.clone()),
            memory_limit: Some(
                args.memory_limit
                    .clone()
                    .unwrap_or_else(|| args.memory.clone()),
            ),
        },
    };
    Some(Resources {
        cpu_request: cpu_request.or(base.cpu_request),
        cpu_limit: cpu_limit.or(base.cpu_limit),
        memory_request: memory.or(base.memory_request),
        memory_limit: memory_limit.or(base.memory_limit),
    })
}

fn strategy(
    args: &DeployArgs,
    given: &Given<'_>,
    file: &Project,
    current: Option<&AppSpec>,
) -> Result<Option<Strategy>, CliError> {
    let kind = if given.has("strategy") {
        Some(args.strategy)
    } else {
        match file
            .deploy
            .strategy
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => None,
            Some("rolling") => Some(StrategyArg::Rolling),
            Some("recreate") => Some(StrategyArg::Recreate),
            Some(other) => {
                return Err(CliError::usage(format!(
                    "satusky.toml: [deploy] strategy `{other}` is not rolling or recreate"
                )));
            }
        }
    };
    let d = &file.deploy;
    let surge = given_str(
        given,
        "rolling_max_surge",
        &args.rolling_max_surge,
        d.rolling_max_surge.as_ref(),
    );
    let unavailable = given_str(
        given,
        "rolling_max_unavailable",
        &args.rolling_max_unavailable,
        d.rolling_max_unavailable.as_ref(),
    );
    if kind.is_none() && surge.is_none() && unavailable.is_none() {
        return Ok(None);
    }
    let (old_surge, old_unavailable, old_kind) = match current.map(|c| &c.strategy) {
        Some(Strategy::Rolling {
            max_surge,
            max_unavailable,
        }) => (
            Some(max_surge.clone()),
            Some(max_unavailable.clone()),
            StrategyArg::Rolling,
        ),
        Some(Strategy::Recreate) => (None, None, StrategyArg::Recreate),
        None => (None, None, StrategyArg::Rolling),
    };
    let kind = kind.unwrap_or(if surge.is_some() || unavailable.is_some() {
        StrategyArg::Rolling
    } else {
        old_kind
    });
    Ok(Some(match kind {
        StrategyArg::Recreate => {
            if surge.is_some() || unavailable.is_some() {
                return Err(CliError::usage(
                    "rolling_max_surge and rolling_max_unavailable apply to the rolling strategy only",
                ));
            }
            Strategy::Recreate
        }
        StrategyArg::Rolling => Strategy::Rolling {
            max_surge: surge
                .or(old_surge)
                .unwrap_or_else(|| args.rolling_max_surge.clone()),
            max_unavailable: unavailable
                .or(old_unavailable)
                .unwrap_or_else(|| args.rolling_max_unavailable.clone()),
        },
    }))
}

fn volumes(
    args: &DeployArgs,
    given: &Given<'_>,
    file: &Project,
    current: Option<&AppSpec>,
) -> Result<Option<Vec<Volume>>, CliError> {
    let v = &file.volume;
    let from_flags = given.has("volume_size") || given.has("volume_mount");
    let (size, mount) = if from_flags {
        (args.volume_size.clone(), args.volume_mount.clone())
    } else {
        (v.size.clone(), v.mount.clone())
    };
    let (size, mount) = match (size, mount) {
        (None, None) => return Ok(None),
        (Some(s), Some(m)) => (s, m),
        _ => {
            return Err(CliError::usage(
                "a volume needs both a size and a mount path ([volume] size and mount, or --volume-size and --volume-mount)",
            ));
        }
    };
    let name = v.name.clone().unwrap_or_else(|| "data".to_owned());
    let mut volumes = current.map(|c| c.volumes.clone()).unwrap_or_default();
    let volume = Volume {
        name: name.clone(),
        size,
        mount_path: mount,
    };
    match volumes.iter_mut().find(|v| v.name == name) {
        Some(old) => *old = volume,
        None => volumes.push(volume),
    }
    Ok(Some(volumes))
}

fn autoscaling(
    args: &DeployArgs,
    given: &Given<'_>,
    file: &Project,
    current: Option<&AppSpec>,
) -> Result<Option<Autoscaling>, CliError> {
    let h = &file.hpa;
    let old = current.and_then(|c| c.autoscaling.as_ref());
    // --hpa-min, --hpa-max and --hpa-cpu imply --hpa; [hpa] values without
    // `enabled = true` only tune an app that already autoscales.
    let tuned = given.has("hpa_min") || given.has("hpa_max") || given.has("hpa_cpu");
    let enabled = (given.has("hpa") && args.hpa) || h.enabled == Some(true) || tuned;
    if h.enabled == Some(false) && old.is_some() && !enabled {
        note(
            "warning: [hpa] enabled = false does not turn autoscaling off; pass --no-hpa to remove it",
        );
    }
    let file_tuned = h.min_replicas.is_some() || h.max_replicas.is_some() || h.cpu_target.is_some();
    if !enabled && (old.is_none() || !file_tuned || h.enabled == Some(false)) {
        return Ok(None);
    }
    let a = Autoscaling {
        min_replicas: pick(given.has("hpa_min"), args.hpa_min, h.min_replicas)
            .or(old.map(|o| o.min_replicas))
            .unwrap_or(args.hpa_min),
        max_replicas: pick(given.has("hpa_max"), args.hpa_max, h.max_replicas)
            .or(old.map(|o| o.max_replicas))
            .unwrap_or(args.hpa_max),
        cpu_percent: pick(given.has("hpa_cpu"), args.hpa_cpu, h.cpu_target)
            .or(old.map(|o| o.cpu_percent))
            .unwrap_or(args.hpa_cpu),
    };
    if a.min_replicas == 0 || a.min_replicas > a.max_replicas {
        return Err(CliError::usage(format!(
            "autoscaling needs 1 <= min ({}) <= max ({})",
            a.min_replicas, a.max_replicas
        )));
    }
    Ok(Some(a))
}

/// Translates the older placement forms into one label selector.
///
/// - `--machine-label SEL` (all must match): each `key`, `key=value`,
///   `key!=value` or `!key` is kept as it is; several are joined with `,`.
/// - `--machine-label-any SEL` (one must match): one is kept as it is;
///   several must be `key=value` on one key and become `key in (v1,v2)`.
/// - `--machine-tag EXPR`: `&` joins terms with `,`; `a=1 | a=2` (in
///   parentheses or not) becomes `a in (1,2)`; a bare `gpu` means the label
///   `gpu` exists (the meaning the newer Go client gave it).
///
/// What a label selector cannot say (an OR across keys) is refused.
pub fn legacy_selector(
    all: &[String],
    any: &[String],
    tag: Option<&str>,
) -> Result<Option<String>, String> {
    let mut terms: Vec<String> = Vec::new();
    for s in all {
        terms.push(simple_term(s)?);
    }
    if !any.is_empty() {
        terms.push(one_of(any).map_err(|e| format!("--machine-label-any: {e}"))?);
    }
    if let Some(expr) = tag.filter(|t| !t.trim().is_empty()) {
        for conjunct in split_top(expr, '&')? {
            let inner = conjunct.trim();
            let inner = match inner.strip_prefix('(') {
                Some(rest) => rest
                    .strip_suffix(')')
                    .ok_or_else(|| format!("unbalanced parentheses in `{expr}`"))?,
                None => inner,
            };
            if inner.contains(['(', ')', '&']) {
                return Err(format!(
                    "tag expression `{expr}` nests too deeply for a label selector"
                ));
            }
            let alternatives: Vec<String> = inner.split('|').map(|s| s.trim().to_owned()).collect();
            terms.push(one_of(&alternatives).map_err(|e| format!("tag expression `{expr}`: {e}"))?);
        }
    }
    Ok((!terms.is_empty()).then(|| terms.join(",")))
}

fn simple_term(s: &str) -> Result<String, String> {
    let t = s.trim();
    let ok_key = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    };
    let valid = if let Some((k, v)) = t.split_once("!=") {
        ok_key(k.trim()) && !v.contains([',', '(', ')', ' '])
    } else if let Some((k, v)) = t.split_once('=') {
        ok_key(k.trim()) && !v.contains([',', '(', ')', ' ', '='])
    } else if let Some(k) = t.strip_prefix('!') {
        ok_key(k)
    } else {
        ok_key(t)
    };
    if valid {
        Ok(t.replace(' ', ""))
    } else {
        Err(format!(
            "`{s}` is not a label term (key, key=value, key!=value or !key)"
        ))
    }
}

/// One term, or `key in (…)` for `key=value` alternatives on one key.
fn one_of(alternatives: &[String]) -> Result<String, String> {
    match alternatives {
        [] => Err("empty".to_owned()),
        [one] => simple_term(one),
        many => {
            let mut key: Option<&str> = None;
            let mut values = Vec::new();
            for a in many {
                let term = simple_term(a)?;
                let Some((k, v)) = a.split_once('=').filter(|(k, _)| !k.ends_with('!')) else {
                    return Err(format!(
                        "`{term}`: only key=value alternatives on one key can be combined"
                    ));
                };
                let k = k.trim();
                if key.is_some_and(|old| old != k) {
                    return Err(format!(
                        "alternatives on different keys ({} and {k}) cannot be one label selector",
                        key.unwrap_or_default()
                    ));
                }
                key = Some(k);
                values.push(v.trim().to_owned());
            }
            Ok(format!(
                "{} in ({})",
                key.unwrap_or_default(),
                values.join(",")
            ))
        }
    }
}

/// Splits at `sep` outside parentheses.
fn split_top(expr: &str, sep: char) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in expr.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return Err(format!("unbalanced parentheses in `{expr}`"));
        }
        if c == sep && depth == 0 {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parentheses in `{expr}`"));
    }
    parts.push(cur);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::legacy_selector;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn older_placement_forms_become_one_selector() {
        assert_eq!(
            legacy_selector(&s(&["pool=gpu", "ssd"]), &[], None).unwrap(),
            Some("pool=gpu,ssd".to_owned())
        );
        assert_eq!(
            legacy_selector(&[], &s(&["region=kul", "region=bki"]), None).unwrap(),
            Some("region in (kul,bki)".to_owned())
        );
        assert_eq!(
            legacy_selector(&[], &[], Some("gpu & (region=kul | region=bki)")).unwrap(),
            Some("gpu,region in (kul,bki)".to_owned())
        );
        assert_eq!(
            legacy_selector(&s(&["!maintenance"]), &[], Some("gpu")).unwrap(),
            Some("!maintenance,gpu".to_owned())
        );
        assert_eq!(legacy_selector(&[], &[], None).unwrap(), None);
    }

    #[test]
    fn what_a_selector_cannot_say_is_refused() {
        assert!(legacy_selector(&[], &s(&["a=1", "b=2"]), None).is_err());
        assert!(legacy_selector(&[], &[], Some("gpu | ssd")).is_err());
        assert!(legacy_selector(&[], &[], Some("(a=1 | (a=2))")).is_err());
        assert!(legacy_selector(&[], &[], Some("(a=1")).is_err());
        assert!(legacy_selector(&s(&["a b"]), &[], None).is_err());
    }
}
